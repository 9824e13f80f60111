"""Ray Tune function trainable: a thin adapter around :func:`trainers.train.train`.

This is the only module of :mod:`trainers` that imports Ray. Usage::

    from ray import tune
    from trainers.data import DataSpec
    from trainers.ray_trainable import make_trainable

    trainable = make_trainable(DataSpec("CIFAR10", root="/data/cifar10"), epochs=50,
                               small_input_stem=True)
    # 4 trials share one GPU; each gets 2 CPU cores for its DataLoader workers.
    trainable = tune.with_resources(trainable, {"cpu": 2, "gpu": 0.25})
    tuner = tune.Tuner(trainable, param_space=HYPERREC_SPACE.to_param_space(),
                       tune_config=tune.TuneConfig(metric="val_top1", mode="max",
                                                   scheduler=..., reuse_actors=True))

Per epoch the trainable calls ``tune.report(metrics, checkpoint=...)`` with the checkpoint of
that epoch (``metrics`` also carry ``node_id``, the Ray node the trial ran on), so
``training_iteration`` equals ``metrics["epoch"]`` and every result (also the one
a scheduler PAUSEs on) has a checkpoint; on (re)start it resumes from ``tune.get_checkpoint()``.
Ray restores ``training_iteration`` from the checkpoint's result, so after PAUSE / resume or a
failure the numbering continues at the next epoch.

Fractional GPUs: ``tune.with_resources(trainable, {"cpu": c, "gpu": f})`` packs ``1 / f``
trials on one GPU (Ray only sets ``CUDA_VISIBLE_DEVICES``; it does not partition memory).
Size ``f`` by the peak memory the trials need: ``gpu_peak_mem_mib`` is reported per epoch on
CUDA, and ``experiments/bench_trainer.py`` prints the peak memory per model and image size
(ResNet50 at 224 px needs several times what ResNet34 at 32 px needs, so pack fewer of them).
With ``pipeline="auto"`` each trial also keeps its own copy of a <= 64 px dataset in GPU
memory, but only if it takes <= 15 % of the free memory (else it uses DataLoader workers).
``DataLoader`` workers default to ``cpu - 1`` of the trial's CPU share.

Reuse safety (``reuse_actors=True``): the trainable keeps no module-level state; every call
builds its own model, optimizer, generators and data pipeline and releases them on return.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray import tune

from search_spaces import HYPERREC_SPACE
from trainers.data import DataSpec
from trainers.staging import staging_folder
from trainers.train import train

RUN_SUBDIR = "at2_run"
"""Folder (in a temporary staging folder of the trial) of the trainer's run.json,
metrics.jsonl, batches.jsonl and checkpoint; each reported checkpoint carries the three files."""


def _trial_cpus(default: int = 1) -> int:
    try:
        resources = tune.get_context().get_trial_resources()
        return max(1, int(resources.required_resources.get("CPU", default)))
    except Exception:  # noqa: BLE001 - outside a Tune session / older Ray: use the default
        return default


def _node_id() -> str:
    """The Ray node this trial runs on (several nodes of one machine share an IP address)."""
    return ray.get_runtime_context().get_node_id()


def run_trial(config: dict[str, Any], *, data: DataSpec, epochs: int,
              **train_kwargs: Any) -> None:
    """Body of the trainable: resume from Tune's checkpoint, train, report each epoch.

    Args:
        config: the trial's config: a canonical HyperRec config, or one sampled from
            ``HYPERREC_SPACE.to_param_space()`` (all branches, ``<name>_factor`` keys); it is
            turned into the canonical config with ``HYPERREC_SPACE.from_ray_config``, which
            drops the inactive branches (the canonical config is what run.json records).
        data: data source (each trial loads it itself; nothing is cached across trials).
        epochs: maximum number of epochs (schedulers such as ASHA may stop earlier).
        **train_kwargs: forwarded to :func:`trainers.train.train` (``seed``, ``device``,
            ``small_input_stem``, ``amp``, ``pipeline``, ``num_workers``, ...).
    """
    canonical = HYPERREC_SPACE.from_ray_config(config)
    kwargs = dict(train_kwargs)
    kwargs.setdefault("num_workers", max(0, _trial_cpus() - 1))

    node_id = _node_id()

    def report(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        metrics = {**metrics, "node_id": node_id}
        if checkpoint_dir is None:
            tune.report(metrics)
        else:  # Ray copies the directory into the trial's storage before returning
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))

    # The trainer's files are staged outside the trial folder and removed when the trial
    # stops (also on a PAUSE: Tune ends the function inside tune.report with SystemExit): each
    # epoch's checkpoint reaches Tune's storage inside tune.report, and it carries run.json,
    # metrics.jsonl and batches.jsonl. In the trial folder Ray would keep the last checkpoint
    # twice more, in its session folder under /tmp/ray (never cleaned: 1-2 GB per 24-epoch
    # digits run) and as an artifact next to the checkpoints in storage. A killed trial's
    # folder is removed by the next trial on its host (trainers.staging).
    with staging_folder() as staging:
        out_dir = staging / RUN_SUBDIR
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            train(canonical, data, epochs=epochs, report=report, out_dir=out_dir,
                  overwrite=True, **kwargs)
        else:
            with checkpoint.as_directory() as ckpt_dir:
                train(canonical, data, epochs=epochs, report=report, out_dir=out_dir,
                      resume=Path(ckpt_dir), **kwargs)


def make_trainable(data: DataSpec, *, epochs: int,
                   **train_kwargs: Any) -> Callable[[dict[str, Any]], None]:
    """A Ray Tune function trainable training each trial's config on ``data``.

    Args:
        data: the data source (a small, picklable :class:`~trainers.data.DataSpec`).
        epochs: maximum epochs per trial.
        **train_kwargs: options of :func:`trainers.train.train` shared by all trials.

    Returns:
        ``trainable(config) -> None`` for ``tune.Tuner`` / ``tune.with_resources``.
    """

    def at2_trainable(config: dict[str, Any]) -> None:
        run_trial(config, data=data, epochs=epochs, **train_kwargs)

    return at2_trainable
