"""Checkpoints: tensors and state dicts via ``torch.save`` + JSON metadata; no arbitrary pickles.

A checkpoint is a directory with

* ``state.pt``: ``torch.save`` of a dict holding only tensors, numbers, strings, lists / tuples
  / dicts of those (model, optimizer, LR scheduler and GradScaler state dicts, RNG states,
  epoch), read back with ``torch.load(..., weights_only=True)``;
* ``meta.json``: epoch, config, seed, data spec, training options, library versions;
* copies of the run's ``run.json``, ``metrics.jsonl`` and ``batches.jsonl`` up to that epoch,
  so that a checkpoint alone (e.g. the one Ray Tune persisted for a trial) holds the complete
  history of the run and a resumed run can restore it wherever it writes its files.

Checkpoints are written atomically: into a temporary sibling directory first, then renamed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from trainers.errors import CheckpointError

STATE_FILE = "state.pt"
META_FILE = "meta.json"
CHECKPOINT_DIR = "checkpoint"
"""Name of the latest checkpoint directory inside a run's output directory."""


def to_json_safe(value: Any) -> Any:
    """Recursively replace non-finite floats by ``None`` and numpy / torch scalars by Python
    numbers, so the result can be written with ``json.dumps(..., allow_nan=False)``."""
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
        if isinstance(value, bool) or isinstance(value, int):
            return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as pretty JSON (atomically)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_json_safe(obj), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def save_checkpoint(directory: Path, state: dict[str, Any], meta: dict[str, Any],
                    files: Sequence[Path] = ()) -> Path:
    """Atomically (re)write the checkpoint directory ``directory``.

    Args:
        directory: target directory (replaced if it exists).
        state: tensors / state dicts (see module docstring).
        meta: JSON-compatible metadata.
        files: existing files copied into the checkpoint under their own names.

    Returns:
        ``directory``.
    """
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.tmp")
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / STATE_FILE)
    write_json(tmp / META_FILE, meta)
    for path in files:
        if path.is_file():
            shutil.copyfile(path, tmp / path.name)
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def find_checkpoint(out_dir: Path) -> Path | None:
    """The latest checkpoint directory of a run output directory, or ``None``.

    Falls back to the previous checkpoint if a crash happened between the two renames of
    :func:`save_checkpoint`.
    """
    for candidate in (out_dir / CHECKPOINT_DIR, out_dir / f".{CHECKPOINT_DIR}.old"):
        if (candidate / STATE_FILE).is_file() and (candidate / META_FILE).is_file():
            return candidate
    return None


def load_checkpoint(directory: Path | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint directory; all tensors are loaded to the CPU (``load_state_dict``
    then copies them to the model's / optimizer's device).

    Returns:
        ``(state, meta)``.

    Raises:
        CheckpointError: the directory or a file is missing or unreadable.
    """
    directory = Path(directory)
    state_path, meta_path = directory / STATE_FILE, directory / META_FILE
    if not state_path.is_file() or not meta_path.is_file():
        raise CheckpointError(
            f"{str(directory)!r} is not an at2-tune checkpoint (needs {STATE_FILE} and "
            f"{META_FILE}); pass the directory a previous run wrote, or start without resume")
    try:
        meta = json.loads(meta_path.read_text())
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"could not read checkpoint {str(directory)!r}: {exc}; the files are damaged "
            f"or were not written by at2-tune") from exc
    return state, meta


def capture_rng(generators: Mapping[str, torch.Generator]) -> dict[str, Any]:
    """RNG states: the run's own CPU generators plus the global torch CPU / CUDA states.

    Returns:
        ``{"generators": {name: uint8 tensor}, "torch_cpu": uint8 tensor,
        "torch_cuda": [uint8 tensor per device]}``.
    """
    return {
        "generators": {name: gen.get_state() for name, gen in generators.items()},
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(states: Mapping[str, Any], generators: Mapping[str, torch.Generator]) -> None:
    """Inverse of :func:`capture_rng` (CUDA states only if the device count matches)."""
    for name, gen in generators.items():
        gen.set_state(states["generators"][name])
    torch.set_rng_state(states["torch_cpu"])
    cuda_states = list(states.get("torch_cuda", []))
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
