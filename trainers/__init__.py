"""Training of HyperRec configurations (ResNet34/50 image classification) for at2-tune.

The package ``__init__`` only exports the error types, so that importing a light submodule
(``trainers.cli`` for the argument parser, ``trainers.models`` / ``trainers.pipeline`` for the
benchmark) does not pull in the rest. Public API, by module:

* :func:`trainers.train.train` — train one config without Ray (returns a
  :class:`trainers.train.TrainResult`).
* :class:`trainers.data.DataSpec`, :func:`trainers.data.load_data`,
  :func:`trainers.data.known_datasets` — data sources and the 60/20/20 split.
* :func:`trainers.models.build_model`, :func:`trainers.optim.build_optimizer`,
  :func:`trainers.optim.build_scheduler`, :func:`trainers.config.validate_config`.
* :func:`trainers.ray_trainable.make_trainable` — the Ray Tune function trainable (the only
  module that imports Ray).
* :func:`trainers.cli.add_train_parser`, :func:`trainers.cli.run_train` — ``at2-tune train``.

See ``trainers/README.md`` for the semantics, the files a run writes and the GPU notes.
"""

from __future__ import annotations

from trainers.errors import (CheckpointError, DatasetError, DivergenceError, TrainerConfigError,
                             TrainerError, TrainerOutOfMemoryError)

__all__ = ["CheckpointError", "DatasetError", "DivergenceError", "TrainerConfigError",
           "TrainerError", "TrainerOutOfMemoryError"]
