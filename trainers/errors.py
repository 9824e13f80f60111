"""Exception types of the :mod:`trainers` package.

All of them derive from :class:`at2_tune.errors.AT2Error`, so a caller can catch every error a
user can trigger with bad input (unknown dataset, bad config, diverged run, too large a batch
for the GPU) without catching programming errors. Messages name the offending value, the
constraint it broke and how to fix it.
"""

from __future__ import annotations

from typing import Any

from at2_tune.errors import AT2Error


class TrainerError(AT2Error):
    """Training could not start or could not finish."""


class TrainerConfigError(TrainerError, ValueError):
    """A training option (device, AMP mode, batch size versus data, ...) is invalid."""


class DatasetError(AT2Error, ValueError):
    """A data source is unknown, missing, or laid out in a way that cannot be used."""


class CheckpointError(TrainerError):
    """A checkpoint is missing, unreadable, or belongs to a different run."""


class DivergenceError(TrainerError):
    """The training loss (or an evaluation loss) became NaN or infinite.

    Attributes:
        epoch: 1-based epoch in which the non-finite loss was seen.
        config: the configuration that diverged.
        metrics: the last (partial) metrics dict, reported with ``diverged: True``.
    """

    def __init__(self, message: str, *, epoch: int, config: dict[str, Any],
                 metrics: dict[str, Any]) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.config = dict(config)
        self.metrics = dict(metrics)


class TrainerOutOfMemoryError(TrainerError):
    """The accelerator ran out of memory for this model / batch size / image size."""
