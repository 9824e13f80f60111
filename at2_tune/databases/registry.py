"""The learning-curve databases at2-tune knows, with the checksums of their public release.

The checksums are pinned here, in the code: a file is parsed only after its SHA-256 matches.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from at2_tune.errors import UnknownDatabaseError

RELEASE_BASE_URL = "https://github.com/xiaoyuxin1002/amortized-auto-tuning/raw/main/data/"
"""Public location of the AT2 authors' release (MIT License); a file's URL is this + its remote path."""

PAIRS_FILE = "train_test_pairs.json"


@dataclass(frozen=True)
class ReleaseFile:
    """One file of a release: where it lives in a data directory and in the public release."""

    local_path: str
    """Path relative to a data directory, e.g. ``hyperrec/profiles.pkl``."""
    remote_path: str
    """Path relative to :data:`RELEASE_BASE_URL`, e.g. ``HyperRec/profiles.pkl``."""
    sha256: str


@dataclass(frozen=True)
class DatabaseSpec:
    """What a database release holds and how it is laid out."""

    name: str
    """The name users type: ``hyperrec`` or ``lcbench``."""
    release_name: str
    """The name the release uses (folder and key of the pairs file)."""
    configs: ReleaseFile
    profiles: ReleaseFile
    pairs: ReleaseFile
    n_seeds: int
    n_tasks: int
    n_configs: int
    n_epochs: int
    """Epochs of training per curve that the database keeps: value ``e`` is the validation
    accuracy after ``e + 1`` epochs."""
    release_values: int | None = None
    """Values per curve in the release file, where it holds more than the trained epochs
    (default: ``n_epochs``)."""
    first_epoch: int = 0
    """Index, in the release's curve, of the value after the first epoch of training; the
    database keeps the ``n_epochs`` values from there."""

    @property
    def files(self) -> tuple[ReleaseFile, ...]:
        return (self.configs, self.profiles, self.pairs)

    @property
    def values_per_curve(self) -> int:
        """How many values each curve of the release file holds."""
        return self.n_epochs if self.release_values is None else self.release_values


_PAIRS = ReleaseFile(PAIRS_FILE, PAIRS_FILE,
                     "35dc40422a4bb2ae7a34cb9a0a6bc9dfca9bd80a2bf4bd584d6d5bba6b45c8f1")

DATABASES: dict[str, DatabaseSpec] = {
    "hyperrec": DatabaseSpec(
        name="hyperrec", release_name="HyperRec",
        configs=ReleaseFile("hyperrec/configs.pkl", "HyperRec/configs.pkl",
                            "343ce512e7a4bca6556531e2567ea7651f8433fd9da7ab202409bd23ac1c8ae8"),
        profiles=ReleaseFile("hyperrec/profiles.pkl", "HyperRec/profiles.pkl",
                             "d3498b0e17e14722aa5eb25187e7c85fc3c29ba187c6fe6fb8608361f42dfef6"),
        pairs=_PAIRS, n_seeds=2, n_tasks=27, n_configs=100, n_epochs=75),
    "lcbench": DatabaseSpec(
        name="lcbench", release_name="LCBench",
        configs=ReleaseFile("lcbench/configs.pkl", "LCBench/configs.pkl",
                            "365edd1e144b5d752cad8330b5fba6a849b37346ee0d436770e99e0f49ce55ee"),
        profiles=ReleaseFile("lcbench/profiles.pkl", "LCBench/profiles.pkl",
                             "ccde6817331b2028d038b11032abaf4e791d30c38151454e440342f1d5bbc24a"),
        pairs=_PAIRS, n_seeds=1, n_tasks=35, n_configs=100, n_epochs=50,
        # LCBench trains 50 epochs (Zimmer et al. 2021); the release's 52 values per curve
        # are the network evaluated before training (at chance on every task: 0.07-0.11 on
        # Fashion-MNIST), the 50 epochs, and a repeat of the last. Syne Tune's LCBench drops
        # the same two (syne-tune pull request 318).
        release_values=52, first_epoch=1),
}


def get_spec(name: str) -> DatabaseSpec:
    """The spec of database ``name`` (case-insensitive).

    Raises:
        UnknownDatabaseError: ``name`` is not a known database; the message lists the known ones.
    """
    key = str(name).lower()
    if key in DATABASES:
        return DATABASES[key]
    close = difflib.get_close_matches(key, DATABASES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownDatabaseError(f"unknown database {name!r}; known databases: "
                               f"{', '.join(sorted(DATABASES))}.{hint}")
