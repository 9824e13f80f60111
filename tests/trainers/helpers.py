"""Helpers shared by the trainers tests (imported as ``tests.trainers.helpers``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

ConfigFactory = Callable[..., dict[str, Any]]
"""Type of the ``make_config`` fixture: ``make_config(optimizer, scheduler, **overrides)``."""

NUM_IMAGES = 64
NUM_CLASSES = 3
IMAGE_SIZE = 32
COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]], dtype=np.float64)

# Hyperparameter values inside the HyperRec space (flat config, only the active keys).
OPTIMIZER_VALUES: dict[str, dict[str, Any]] = {
    "Adam": {"beta0": 0.9, "beta1": 0.999},
    "Momentum": {"momentum": 0.9},
}
SCHEDULER_VALUES: dict[str, dict[str, Any]] = {
    "StepLR": {"step_size": 2, "step_gamma": 0.5},
    "ExponentialLR": {"exp_gamma": 0.9},
    # max_lr must lie in [1.1, 1.5] x lr and eta_min in [0.5, 0.9] x lr (lr = 1e-3 by default)
    "CyclicLR": {"cyclic_gamma": 0.5, "max_lr": 1.5e-3, "step_size_up": 2},
    "CosineAnnealingWarmRestarts": {"T_0": 2, "T_mult": 2, "eta_min": 5e-4},
}


def write_image_folder(root: Path, num_images: int = NUM_IMAGES, num_classes: int = NUM_CLASSES,
                       size: int = IMAGE_SIZE, seed: int = 0) -> Path:
    """ROOT/class_k/img_i.png with a class colour plus noise (learnable, deterministic)."""
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        label = i % num_classes
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = COLOURS[label] + rng.normal(0.0, 40.0, size=(size, size, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"img_{i:03d}.png")
    return root


def ended_pid() -> int:
    """The process id of a process that has ended (and been reaped): the owner of a killed
    trial's staging folder."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
