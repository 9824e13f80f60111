"""train(): every optimizer x scheduler branch, both models, files, resume, errors, divergence."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import trainers.train as train_module
from search_spaces import SearchSpaceError
from tests.trainers.helpers import ConfigFactory
from trainers.checkpoint import load_checkpoint
from trainers.data import SplitData
from trainers.errors import (CheckpointError, DivergenceError, TrainerConfigError,
                             TrainerOutOfMemoryError)
from trainers.models import build_model
from trainers.train import train

TIMING_KEYS = {"train_time_s", "eval_time_s", "epoch_time_s", "images_per_s"}
METRIC_KEYS = {"epoch", "train_loss", "train_top1", "train_top5", "train_top10", "val_loss",
               "val_top1", "val_top5", "val_top10", "test_loss", "test_top1", "test_top5",
               "test_top10", "lr", "diverged"} | TIMING_KEYS


def check_metrics(metrics: dict[str, Any], epoch: int) -> None:
    assert METRIC_KEYS <= set(metrics)
    assert metrics["epoch"] == epoch and metrics["diverged"] is False
    for split in ("train", "val", "test"):
        assert math.isfinite(metrics[f"{split}_loss"]) and metrics[f"{split}_loss"] > 0
        assert 0.0 <= metrics[f"{split}_top1"] <= metrics[f"{split}_top5"] <= 1.0
        # 3 classes: top-5 and top-10 are clamped to top-3, which always contains the label
        assert metrics[f"{split}_top5"] == metrics[f"{split}_top10"] == 1.0
    assert metrics["train_time_s"] > 0 and metrics["images_per_s"] > 0
    assert metrics["epoch_time_s"] == pytest.approx(metrics["train_time_s"]
                                                    + metrics["eval_time_s"])


@pytest.mark.parametrize("optimizer", ["Adam", "Momentum"])
@pytest.mark.parametrize("scheduler", ["StepLR", "ExponentialLR", "CyclicLR",
                                       "CosineAnnealingWarmRestarts"])
def test_every_optimizer_scheduler_branch_trains(optimizer: str, scheduler: str,
                                                 folder_data: SplitData,
                                                 make_config: ConfigFactory) -> None:
    config = make_config(optimizer, scheduler)
    reports: list[tuple[dict[str, Any], Any]] = []
    result = train(config, folder_data, epochs=1, device="cpu", seed=1,
                   report=lambda m, c: reports.append((m, c)))
    assert len(reports) == 1 and reports[0][1] is None  # out_dir=None: no checkpoint
    metrics = reports[0][0]
    check_metrics(metrics, epoch=1)
    assert metrics["lr"] == pytest.approx(config["lr"])
    assert result.metrics == [metrics] and result.run_info["pipeline"] == "tensor"


def test_resnet50_writes_run_files(folder_data: SplitData, tmp_path: Path,
                                   make_config: ConfigFactory) -> None:
    config = make_config("Momentum", "StepLR", model="ResNet50")
    result = train(config, folder_data, epochs=1, device="cpu", out_dir=tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    check_metrics(json.loads(lines[0]), epoch=1)
    batches = [json.loads(line) for line in (tmp_path / "batches.jsonl").read_text().splitlines()]
    assert [(b["epoch"], b["batch"], b["batch_size"]) for b in batches] == [(1, 0, 32), (1, 1, 6)]
    mean_loss = sum(b["loss"] for b in batches) / 2
    assert result.metrics[0]["train_loss"] == pytest.approx(mean_loss)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["model"] == "ResNet50" and run["small_input_stem"] is False
    assert run["data"]["num_train"] == 38 and run["config"] == result.config
    state, meta = load_checkpoint(result.checkpoint_dir)  # torch.load(weights_only=True)
    assert meta["epoch"] == state["epoch"] == 1 and meta["config"] == result.config
    assert set(state) == {"epoch", "model", "optimizer", "scheduler", "scaler", "rng"}
    assert state["scheduler"]["last_epoch"] == 1
    assert set(state["rng"]["generators"]) == {"order", "augment"}
    for name in ("run.json", "metrics.jsonl", "batches.jsonl"):  # the history travels along
        assert (result.checkpoint_dir / name).read_text() == (tmp_path / name).read_text()


@pytest.mark.integration  # trains twice, a DataLoader worker process
def test_resume_equals_uninterrupted_run(folder_data: SplitData, tmp_path: Path,
                                         make_config: ConfigFactory) -> None:
    """Train 2 epochs in one go (tensor pipeline) versus 1 epoch, a crash right after the
    epoch-1 checkpoint, and a resumed epoch 2 (DataLoader pipeline, which must give the same
    batches). Momentum + CyclicLR exercises optimizer buffers, LR and momentum cycling."""
    config = make_config("Momentum", "CyclicLR", step_size_up=1)
    full = train(config, folder_data, epochs=2, device="cpu", seed=7, out_dir=tmp_path / "full")

    class Crash(Exception):
        pass

    def crash_after_first(metrics: dict[str, Any], checkpoint: Path | None) -> None:
        assert checkpoint is not None and (checkpoint / "state.pt").is_file()
        raise Crash

    part_dir = tmp_path / "part"
    with pytest.raises(Crash):
        train(config, folder_data, epochs=2, device="cpu", seed=7, out_dir=part_dir,
              report=crash_after_first)
    with pytest.raises(TrainerConfigError, match="already holds a run"):
        train(config, folder_data, epochs=2, device="cpu", seed=7, out_dir=part_dir)
    with pytest.raises(CheckpointError, match="seed=8"):
        train(config, folder_data, epochs=2, device="cpu", seed=8, out_dir=part_dir, resume=True)
    resumed = train(config, folder_data, epochs=2, device="cpu", seed=7, out_dir=part_dir,
                    resume=True, pipeline="loader", num_workers=1)  # persistent worker

    assert [m["epoch"] for m in resumed.metrics] == [1, 2]
    assert resumed.metrics[0]["lr"] != resumed.metrics[1]["lr"]
    for a, b in zip(full.metrics, resumed.metrics):
        for key in METRIC_KEYS - TIMING_KEYS:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    full_batches = (tmp_path / "full" / "batches.jsonl").read_text().splitlines()
    part_batches = (part_dir / "batches.jsonl").read_text().splitlines()
    assert len(full_batches) == len(part_batches) == 4
    for a, b in zip(full_batches, part_batches):
        ra, rb = json.loads(a), json.loads(b)
        assert ra["epoch"] == rb["epoch"] and ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
    state_full, _ = load_checkpoint(full.checkpoint_dir)
    state_part, meta_part = load_checkpoint(resumed.checkpoint_dir)
    assert meta_part["resumed_at"] == [1]
    for key, value in state_full["model"].items():
        torch.testing.assert_close(value, state_part["model"][key], rtol=1e-4, atol=1e-5)
    assert torch.equal(state_full["rng"]["generators"]["order"],
                       state_part["rng"]["generators"]["order"])
    # a finished run resumed with the same epochs has nothing left to do
    again = train(config, folder_data, epochs=2, device="cpu", seed=7, out_dir=part_dir,
                  resume=True)
    assert [m["epoch"] for m in again.metrics] == [1, 2]


def test_autocast_and_channels_last_paths_run_on_cpu(folder_data: SplitData,
                                                     make_config: ConfigFactory) -> None:
    """The CUDA fast-path switches (bf16 autocast, channels_last) also work on CPU."""
    result = train(make_config("Adam", "CosineAnnealingWarmRestarts"), folder_data, epochs=1,
                   device="cpu", amp="bf16", channels_last=True, augment=False)
    check_metrics(result.metrics[0], epoch=1)
    assert result.run_info["amp"] == "torch.bfloat16" and result.run_info["channels_last"]


def test_batch_size_larger_than_training_split(folder_data: SplitData,
                                               make_config: ConfigFactory) -> None:
    with pytest.raises(TrainerConfigError, match=r"batch_size 64 .* \(38 images"):
        train(make_config(batch_size=64), folder_data, epochs=1, device="cpu")


def test_config_outside_space(folder_data: SplitData,
                              make_config: ConfigFactory) -> None:
    with pytest.raises(SearchSpaceError, match="weight_decay"):
        train(make_config(weight_decay=0.5), folder_data, epochs=1, device="cpu")
    with pytest.raises(SearchSpaceError, match="momentum"):
        train(make_config("Adam", momentum=0.9), folder_data, epochs=1, device="cpu")


def test_bad_options(folder_data: SplitData, tmp_path: Path,
                     make_config: ConfigFactory) -> None:
    config = make_config()
    if not torch.cuda.is_available():
        with pytest.raises(TrainerConfigError, match="CUDA"):
            train(config, folder_data, epochs=1, device="cuda")
    with pytest.raises(TrainerConfigError, match="fp16"):
        train(config, folder_data, epochs=1, device="cpu", amp="fp16")
    with pytest.raises(TrainerConfigError, match="amp='fast'"):
        train(config, folder_data, epochs=1, device="cpu", amp="fast")
    with pytest.raises(TrainerConfigError, match="epochs=0"):
        train(config, folder_data, epochs=0, device="cpu")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(config, folder_data, epochs=1, device="cpu", out_dir=tmp_path, resume=True)


def _patch_model(monkeypatch: pytest.MonkeyPatch, hook: Callable[..., Any]) -> None:
    def patched(name: str, num_classes: int, **kwargs: Any) -> torch.nn.Module:
        model = build_model(name, num_classes, **kwargs)
        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(train_module, "build_model", patched)


def test_divergence_ends_run_with_clear_reason(folder_data: SplitData, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               make_config: ConfigFactory) -> None:
    calls = {"train": 0}

    def inject_inf(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> Any:
        if module.training:
            calls["train"] += 1
            if calls["train"] >= 2:  # the second training batch produces infinite logits
                return output * float("inf")
        return None

    _patch_model(monkeypatch, inject_inf)
    config = make_config("Momentum", "ExponentialLR")
    reports: list[tuple[dict[str, Any], Any]] = []
    with pytest.raises(DivergenceError) as info:
        train(config, folder_data, epochs=3, device="cpu", out_dir=tmp_path,
              report=lambda m, c: reports.append((m, c)))
    error = info.value
    assert error.epoch == 1 and error.config["lr"] == config["lr"]
    assert "epoch 1" in str(error) and "'optimizer': 'Momentum'" in str(error)
    assert "lower lr" in str(error).lower()
    assert len(reports) == 1
    last, checkpoint = reports[0]
    assert last["diverged"] is True and checkpoint is None
    assert "batch 1 of epoch 1" in last["diverged_reason"]
    assert not math.isfinite(last["train_loss"])
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["diverged"] is True and line["train_loss"] is None
    assert not (tmp_path / "checkpoint").exists()


def test_out_of_memory_names_batch_size_and_model(folder_data: SplitData,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  make_config: ConfigFactory) -> None:
    def oom(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    _patch_model(monkeypatch, oom)
    with pytest.raises(TrainerOutOfMemoryError) as info:
        train(make_config(batch_size=32), folder_data, epochs=1, device="cpu")
    message = str(info.value)
    assert "batch_size 32" in message and "ResNet34" in message and "32px" in message
    assert "Tried to allocate 2.00 GiB" in message


@pytest.mark.integration  # trains ResNet34 on 1,797 real images for 2 epochs (~15 s)
def test_resnet34_learns_scikit_learns_digits(make_config: ConfigFactory) -> None:
    from trainers.data import DataSpec, load_data

    data = load_data(DataSpec("digits", image_size=16))
    result = train(make_config("Adam", "StepLR"), data, epochs=2, device="cpu", seed=0)
    first, second = (m["val_top1"] for m in result.metrics)
    # 10 balanced classes: chance is 0.1; measured 0.31 and 0.60 (test 0.65) on 2026-12-04
    assert 0.2 < first < second and second > 0.45
    assert result.metrics[-1]["test_top1"] > 0.45
    again = train(make_config("Adam", "StepLR"), data, epochs=1, device="cpu", seed=0)
    assert again.metrics[0]["val_top1"] == first  # seeded: the same run again
