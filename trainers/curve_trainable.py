"""Replay trainable: a Ray Tune function trainable that replays database learning curves.

For a (task, configuration) of a learning-curve database it reports the stored validation
value of each epoch, one ``tune.report`` per epoch with a checkpoint holding the epoch, so that
PAUSE / resume continues where it stopped. It optionally sleeps ``seconds_per_epoch`` to
simulate training time. Reuse-safe: nothing but the (immutable) database is kept between calls.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from ray import tune

from search_spaces import config_key, get_space
from search_spaces.nearest import NearestConfig

EPOCH_FILE = "replay_epoch.json"


@functools.lru_cache(maxsize=4)
def _database(name: str, data_dir: str | None):
    from at2_tune.databases import load_database

    return load_database(name, data_dir)


def make_replay_trainable(database: str, task: str, seed_profile: int = 0,
                          seconds_per_epoch: float = 0.0, metric: str = "val_acc",
                          data_dir: str | None = None,
                          fail_on: Callable[[dict[str, Any]], bool] | None = None,
                          fail_at_epoch: int = 1, snap: bool = False) -> Callable:
    """A function trainable replaying ``task`` of ``database``.

    Args:
        snap: train any configuration of the database's space (canonical, or sampled from
            ``space.to_param_space()``) as the nearest database configuration
            (:class:`search_spaces.nearest.NearestConfig`); without it a configuration that is
            not one of the database's is an error.
        fail_on: for tests and demos: configurations for which the trainable raises when it
            is about to train epoch ``fail_at_epoch`` (after reporting the epochs before it).
    Reports per epoch: ``metric`` (validation accuracy), ``epoch``, ``config_id``.
    """
    from at2_tune.databases import get_spec, locate

    location = locate(get_spec(database), data_dir)
    data_dir = str(location.data_dir) if location else None  # absolute: workers run elsewhere
    db = _database(database, data_dir)
    db.task_index(task)
    db.final_values(task, seed_profile)
    index = {config_key(c): i for i, c in enumerate(db.configs)}
    nearest = NearestConfig(get_space(db.space_name), db.configs) if snap else None

    def replay_trainable(config: dict[str, Any]) -> None:
        curves = _database(database, data_dir).task_curves(task, seed_profile)
        config_id = nearest.index(config) if nearest is not None else index.get(config_key(config))
        if config_id is None:
            raise ValueError(f"configuration {config} is not one of the {len(index)} "
                             f"configurations of {database!r}; replay can only train those (or "
                             "make the trainable with snap=True to train the nearest one)")
        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                start = json.loads((Path(directory) / EPOCH_FILE).read_text())["epoch"]
        for epoch in range(start + 1, curves.shape[1] + 1):
            if epoch >= fail_at_epoch and fail_on is not None and fail_on(config):
                raise RuntimeError(f"simulated training failure of config {config_id} in epoch {epoch}")
            if seconds_per_epoch:
                time.sleep(seconds_per_epoch)
            with tempfile.TemporaryDirectory() as directory:
                (Path(directory) / EPOCH_FILE).write_text(json.dumps({"epoch": epoch}))
                tune.report({metric: float(curves[config_id, epoch - 1]), "epoch": epoch,
                             "config_id": config_id},
                            checkpoint=tune.Checkpoint.from_directory(directory))

    replay_trainable.__name__ = f"replay_{database}_{task}"
    return replay_trainable
