"""What a live tuning run is asked to do, checked before Ray starts or anything trains."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from at2_tune.core.settings import OBJECTIVES
from at2_tune.errors import AT2Error
from at2_tune.live.methods import COORDINATED, RAY, check_method
from trainers.data import DataSpec

METRIC = "val_top1"
"""What AT2 maximizes: the trainer's validation top-1 accuracy (a fraction in [0, 1])."""

DEFAULT_SAMPLES_WITH_PRIOR = 50
DEFAULT_SAMPLES_WITHOUT_PRIOR = 100
OPTIONS_FILE = "live-options.json"
RESUME_FREE = ("address", "resume", "fit_cache", "data_dir")
"""Options a resumed run may change (where it runs, not what it tunes; ``Tuner.restore`` keeps
the run's own ``RunConfig``, so ``max_failures`` stays what the run started with)."""


@dataclass(frozen=True)
class LiveOptions:
    """One ``at2-tune tune`` run.

    Attributes:
        data: the dataset to tune on.
        out: folder of ``summary.json``, ``trials/<id>/metrics.jsonl``, ``curves.png``.
        budget_epochs: total epochs over all trials.
        epochs: epochs per trial (with a prior: the prior's epochs).
        concurrency: trials training at the same time (the freeze-thaw slots).
        cpus_per_trial, gpus_per_trial: Ray resources of one trial; ``gpus_per_trial=None``
            takes 1 GPU when the cluster has GPUs, else 0.
        prior: ``"hyperrec"``, ``"none"`` or the folder of a prior database
            (``at2-tune prior import``).
        samples: configurations sampled from the space on top of the prior's (``None``:
            50 with a prior, 100 without).
        address: ``None`` (start a local Ray), ``"auto"`` or ``HOST:PORT`` of a running cluster.
        storage: Tune's storage path (a folder or an ``s3://`` / ``gs://`` URI; default
            ``out/ray``).
        resume: continue the experiment in ``storage`` (``Tuner.restore``).
        seed: seed of the samples, the AT2 model and the training runs.
        device, small_input_stem: trainer options.
        fit_cache: folder of AT2's offline fits (``None``: ``~/.cache/at2-tune/fits``).
        data_dir: where the HyperRec release lies (``None``: ``$AT2_DATA_DIR``).
        method: the tuner (:data:`at2_tune.live.methods.METHODS`; default ``"at2"``).
        objective: ``at2`` only: ``"model"`` (the best model trained within the budget) or
            ``"configuration"`` (a configuration to train again to its end; the AT2 paper's);
            what the budget planner plans for (``AT2Searcher(objective=...)``).
        max_failures: how often Tune restarts a failed trial from its last checkpoint
            (``FailureConfig(max_failures=...)``: a worker killed by the out-of-memory killer,
            a lost node); a trial that fails more often fails its configuration.
    """

    data: DataSpec
    out: Path
    budget_epochs: int
    epochs: int = 75
    concurrency: int = 1
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None
    prior: str = "hyperrec"
    samples: int | None = None
    address: str | None = None
    storage: str | None = None
    resume: bool = False
    seed: int = 0
    device: str = "auto"
    small_input_stem: bool = False
    fit_cache: str | None = field(default=None)
    data_dir: str | None = None
    method: str = "at2"
    objective: str = "model"
    max_failures: int = 1

    @property
    def storage_path(self) -> str:
        return self.storage if self.storage else str(Path(self.out).resolve() / "ray")

    @property
    def n_samples(self) -> int:
        if self.samples is not None:
            return self.samples
        return DEFAULT_SAMPLES_WITHOUT_PRIOR if self.prior == "none" \
            else DEFAULT_SAMPLES_WITH_PRIOR

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["data"] = self.data.to_json()
        out["out"] = str(self.out)
        return out


def check_options(options: LiveOptions) -> None:
    """Raise :class:`AT2Error` naming the value, the constraint and the fix for bad numbers."""
    check_method(options.method, options.prior)
    if options.objective not in OBJECTIVES:
        raise AT2Error(f"--objective {options.objective!r} is not one of "
                       f"{', '.join(OBJECTIVES)}")
    if options.objective != "model" and options.method != "at2":
        raise AT2Error(f"--objective {options.objective} is what AT2's budget planner plans "
                       f"for; --method {options.method} does not plan: leave --objective out or "
                       "use --method at2")
    _positive_int("--budget-epochs", options.budget_epochs, "at least one epoch of training")
    _positive_int("--epochs", options.epochs, "each trial trains at least one epoch")
    _positive_int("--concurrency", options.concurrency, "at least one trial at a time")
    if isinstance(options.max_failures, bool) or not isinstance(options.max_failures, int) \
            or options.max_failures < 0:
        raise AT2Error(f"--max-failures {options.max_failures!r} must be a whole number >= 0 "
                       "(0: a trial that fails once fails its configuration)")
    if options.samples is not None and (isinstance(options.samples, bool)
                                        or not isinstance(options.samples, int)
                                        or options.samples < 0):
        raise AT2Error(f"--samples {options.samples!r} must be a whole number >= 0")
    if options.prior == "none" and options.n_samples < 1:
        raise AT2Error("--samples 0 with --prior none leaves no configuration to try; "
                       "use --samples N >= 1 or a prior")
    if not (math.isfinite(options.cpus_per_trial) and options.cpus_per_trial > 0):
        raise AT2Error(f"--cpus-per-trial {options.cpus_per_trial!r} must be > 0 "
                       "(fractions share a CPU between trials)")
    gpus = options.gpus_per_trial
    if gpus is not None and not (math.isfinite(gpus) and gpus >= 0):
        raise AT2Error(f"--gpus-per-trial {gpus!r} must be >= 0 (0: train on CPUs; a fraction "
                       "such as 0.5 packs two trials on one GPU)")
    if options.budget_epochs < options.concurrency:
        raise AT2Error(f"--budget-epochs {options.budget_epochs} is smaller than --concurrency "
                       f"{options.concurrency}: some slots could never train; use a budget of "
                       "at least one epoch per slot")


def _positive_int(flag: str, value: Any, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AT2Error(f"{flag} {value!r} must be a whole number >= 1 ({why})")


def check_dataset(data: DataSpec, max_batch_size: int) -> dict[str, Any]:
    """Open the dataset once in the driver (unknown names, missing or malformed folders fail
    here, not in every trial) and check that its training split holds the space's largest
    batch; returns a short description (name, classes, images, image size)."""
    from trainers.data import load_data

    split = load_data(data)
    n_train = int(split.train_idx.numel())
    if n_train < max_batch_size:
        fix = (f"--synthetic-images >= {math.ceil(max_batch_size / 0.6)}"
               if split.name == "synthetic" else "a dataset with more images")
        raise AT2Error(
            f"dataset {split.name!r} has {n_train} training images (60% of "
            f"{len(split.targets)}), but the search space trains batches of up to "
            f"{max_batch_size} images; use {fix}")
    return split.describe()


def check_resume(options: LiveOptions) -> None:
    """On ``--resume``: the options must be those the run was started with (but where it
    runs); on a fresh start: the output folder must not hold another run."""
    saved_path = Path(options.out) / OPTIONS_FILE
    if not options.resume:
        if saved_path.exists():
            raise AT2Error(f"{options.out} already holds a tuning run ({OPTIONS_FILE}); pass "
                           "--resume to continue it, or choose another --out")
        return
    if not saved_path.exists():
        raise AT2Error(f"--resume: {options.out} holds no tuning run ({OPTIONS_FILE} is "
                       "missing); start it without --resume")
    # runs before --method, --objective, --max-failures (Ray's default then: no retry)
    saved = {"method": "at2", "objective": "model", "max_failures": 0,
             **json.loads(saved_path.read_text())}
    if options.method in RAY:
        raise AT2Error(f"--resume continues runs of {', '.join(COORDINATED)}; a --method "
                       f"{options.method} run cannot be continued (its epoch budget is counted "
                       "in the driver that died): start it again with another --out")
    here = options.to_json()
    differ = [f"{key}: started with {saved.get(key)!r}, now {here[key]!r}"
              for key in here if key not in RESUME_FREE and saved.get(key) != here[key]]
    if differ:
        raise AT2Error("--resume continues a run with its own options, but these differ: "
                       + "; ".join(differ) + ". Pass the same options (or start a new run "
                       "with another --out)")


def save_options(options: LiveOptions) -> None:
    from at2_tune.paths import atomic_write

    Path(options.out).mkdir(parents=True, exist_ok=True)
    text = json.dumps(options.to_json(), indent=2, sort_keys=True)
    atomic_write(Path(options.out) / OPTIONS_FILE, lambda handle: handle.write(text.encode()))
