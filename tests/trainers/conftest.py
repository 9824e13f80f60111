"""Shared fixtures of the trainers tests (CPU only, tiny generated data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainers.helpers import (IMAGE_SIZE, OPTIMIZER_VALUES, SCHEDULER_VALUES,
                                   ConfigFactory, write_image_folder)
from trainers.data import DataSpec, SplitData, load_data


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageFolder tree of 64 32-px PNG images in 3 classes."""
    return write_image_folder(tmp_path_factory.mktemp("imagefolder"))


@pytest.fixture(scope="session")
def folder_spec(image_folder: Path) -> DataSpec:
    return DataSpec(name="imagefolder", root=str(image_folder), image_size=IMAGE_SIZE)


@pytest.fixture(scope="session")
def folder_data(folder_spec: DataSpec) -> SplitData:
    """The image folder loaded and split once for the whole session (38/12/14 images)."""
    return load_data(folder_spec)


@pytest.fixture
def make_config() -> ConfigFactory:
    """``make_config(optimizer, scheduler, **overrides)`` -> a valid flat HyperRec config."""

    def factory(optimizer: str = "Adam", scheduler: str = "StepLR",
                **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {"batch_size": 32, "model": "ResNet34", "optimizer": optimizer,
                                  "scheduler": scheduler, "lr": 1e-3, "weight_decay": 1e-4}
        config.update(OPTIMIZER_VALUES[optimizer])
        config.update(SCHEDULER_VALUES[scheduler])
        config.update(overrides)
        return config

    return factory


@pytest.fixture(autouse=True)
def _global_rng_untouched() -> Any:
    """Every test checks that the trainers leave the global torch RNG alone."""
    before = torch.get_rng_state()
    yield
    assert torch.equal(before, torch.get_rng_state()), "global torch RNG state was changed"


@pytest.fixture(scope="session", autouse=True)
def _one_intra_op_thread() -> Any:
    """Run the CPU kernels on one thread: on a small (and possibly shared) 2-core machine,
    OpenMP with 2 threads stalls for seconds per step whenever another process competes for a
    core, while one thread runs at a steady speed. Restored after the session."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
