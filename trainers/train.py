"""Train one HyperRec configuration, epoch by epoch, without Ray.

:func:`train` is the single implementation of the training semantics; the Ray Tune trainable
(:mod:`trainers.ray_trainable`) and the CLI (:mod:`trainers.cli`) are thin adapters around it.

Files written to ``out_dir`` (all optional: ``out_dir=None`` writes nothing):

* ``run.json``: config, data description, seed, options (``small_input_stem``, AMP, pipeline,
  ...), library versions, and the epochs at which the run was resumed.
* ``metrics.jsonl``: one JSON object per epoch (the dict passed to ``report``; non-finite
  numbers are written as ``null``).
* ``batches.jsonl``: one JSON object per training batch: epoch, batch, loss, top1, top5,
  top10, batch_size.
* ``checkpoint/``: the latest checkpoint (see :mod:`trainers.checkpoint`), rewritten after
  every epoch *before* the epoch is reported, so every report has a checkpoint. It also holds
  copies of the three files above up to its epoch; a resumed run restores them from there
  (dropping lines of epochs after the checkpoint, e.g. of a diverged or crashed epoch).

Resuming (``resume=True`` or a checkpoint directory) restores model, optimizer, LR scheduler,
GradScaler, the run's data-order and augmentation generators and the global torch RNG states,
then continues with the next epoch; on CPU the resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from trainers.checkpoint import (CHECKPOINT_DIR, capture_rng, find_checkpoint, load_checkpoint,
                                 restore_rng, save_checkpoint, to_json_safe, write_json)
from trainers.config import validate_config
from trainers.data import DataSpec, SplitData, load_data, materialize
from trainers.errors import (CheckpointError, DivergenceError, TrainerConfigError,
                             TrainerOutOfMemoryError)
from trainers.loop import StepContext, evaluate, train_epoch
from trainers.models import build_model
from trainers.optim import build_optimizer, build_scheduler
from trainers.pipeline import (IMAGENET_MEAN, IMAGENET_STD, LoaderBatchSource, TensorBatchSource,
                               eval_batch_plan, train_batch_plan)

ReportFn = Callable[[dict[str, Any], "Path | None"], None]
"""``report(metrics, checkpoint_dir)``: called once per epoch; ``checkpoint_dir`` is the
directory holding the checkpoint of that epoch (``None`` when nothing is written or the epoch
diverged)."""

METRICS_FILE = "metrics.jsonl"
BATCHES_FILE = "batches.jsonl"
RUN_FILE = "run.json"

AMP_MODES = ("auto", "bf16", "fp16", "off")
PIPELINES = ("auto", "tensor", "loader")
TENSOR_PIPELINE_MAX_SIZE = 64
"""``pipeline="auto"`` keeps the pool on the device only for images up to this many pixels."""
TENSOR_PIPELINE_GPU_FRACTION = 0.15
"""... and only if it takes at most this fraction of the free GPU memory (several trials may
share one GPU)."""
TENSOR_PIPELINE_CPU_BYTES = 2 << 30
"""... or, on CPU, at most this many bytes of RAM."""

# Options that must match between a checkpoint and the run that resumes it.
_RESUME_KEYS = ("config", "seed", "data", "small_input_stem", "augment", "image_size",
                "num_classes")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        metrics: one dict per epoch, epochs 1..``epochs`` (including epochs before a resume).
        config: the validated config.
        out_dir: output directory or ``None``.
        checkpoint_dir: latest checkpoint directory or ``None``.
        run_info: the ``run.json`` content.
    """

    metrics: list[dict[str, Any]]
    config: dict[str, Any]
    out_dir: Path | None
    checkpoint_dir: Path | None
    run_info: dict[str, Any]


def derive_seed(seed: int, stream: int) -> int:
    """Independent 63-bit seed for RNG stream ``stream`` of run seed ``seed`` (a hash; no RNG
    state is touched)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(stream)])
               .generate_state(1, np.uint64)[0] >> np.uint64(1))


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> ``cuda`` if available else ``cpu``; checks that CUDA exists if asked for.

    Raises:
        TrainerConfigError: unknown device string or CUDA requested but unavailable.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise TrainerConfigError(
                f"device {device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TrainerConfigError(
            f"device {str(device)!r} asked for CUDA but torch.cuda.is_available() is False "
            f"here; use --device cpu (or auto)")
    if resolved.type not in ("cpu", "cuda"):
        raise TrainerConfigError(f"device {str(device)!r} is not supported; use cpu or cuda")
    return resolved


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``amp`` in :data:`AMP_MODES` (``auto``: bf16 on CUDA if supported,
    else fp16 on CUDA; off on CPU)."""
    if amp not in AMP_MODES:
        raise TrainerConfigError(f"amp={amp!r} is not one of {', '.join(AMP_MODES)}")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise TrainerConfigError("amp='fp16' needs a CUDA device; use amp='bf16' or 'off' on CPU")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def _choose_pipeline(requested: str, data: SplitData, device: torch.device) -> str:
    if requested not in PIPELINES:
        raise TrainerConfigError(
            f"pipeline={requested!r} is not one of {', '.join(PIPELINES)}")
    if requested != "auto":
        return requested
    n_bytes = data.targets.numel() * 3 * data.image_size ** 2
    if data.images is not None and device.type == "cpu":
        return "tensor"
    if data.image_size > TENSOR_PIPELINE_MAX_SIZE:
        return "loader"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return "tensor" if n_bytes <= TENSOR_PIPELINE_GPU_FRACTION * free else "loader"
    return "tensor" if n_bytes <= TENSOR_PIPELINE_CPU_BYTES else "loader"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(to_json_safe(r), allow_nan=False) + "\n"
                           for r in records))
    os.replace(tmp, path)


def _history_until(ckpt_dir: Path, out_path: Path | None, name: str,
                   last_epoch: int) -> list[dict[str, Any]]:
    """Records of ``name`` with ``epoch <= last_epoch``: from the checkpoint's copy, or else
    from the output directory."""
    source = ckpt_dir / name
    if not source.is_file() and out_path is not None:
        source = out_path / name
    return [r for r in _read_jsonl(source) if int(r.get("epoch", 0)) <= last_epoch]


def _append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a") as fh:
        for record in records:
            fh.write(json.dumps(to_json_safe(record), allow_nan=False) + "\n")


def _restore_json_floats(record: dict[str, Any]) -> dict[str, Any]:
    """Metrics read back from JSON: ``null`` -> NaN for numeric metric keys."""
    return {k: (float("nan") if v is None and k not in ("diverged_reason",) else v)
            for k, v in record.items()}


def _versions() -> dict[str, str]:
    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def train(config: Mapping[str, Any], data: DataSpec | SplitData | str, *, epochs: int,
          report: ReportFn | None = None, out_dir: str | Path | None = None,
          resume: bool | str | Path = False, device: str | torch.device = "auto",
          seed: int = 0, small_input_stem: bool = False, amp: str = "auto",
          channels_last: bool | None = None, compile_model: bool = False,
          pipeline: str = "auto", num_workers: int | None = None, augment: bool = True,
          eval_batch_size: int = 256, overwrite: bool = False) -> TrainResult:
    """Train ``config`` on ``data`` for ``epochs`` epochs, reporting after every epoch.

    Args:
        config: flat HyperRec configuration (validated with ``HYPERREC_SPACE.validate``).
        data: a :class:`~trainers.data.DataSpec`, an already loaded
            :class:`~trainers.data.SplitData`, or a source name (``"synthetic"``).
        epochs: total number of epochs (a resumed run trains ``epochs - done`` more).
        report: ``report(metrics, checkpoint_dir)`` called after every epoch; see
            :data:`ReportFn`. ``metrics`` holds ``epoch`` (1-based), ``train_loss``,
            ``train_top1/5/10`` (batch averages), ``val_loss``, ``val_top1/5/10``,
            ``test_loss``, ``test_top1/5/10`` (image averages), ``train_time_s``,
            ``eval_time_s``, ``epoch_time_s`` (train + eval), ``images_per_s`` (training
            images / ``train_time_s``), ``lr`` (LR used during the epoch), ``diverged``
            (bool) and, on CUDA, ``gpu_peak_mem_mib``.
        out_dir: where run.json, metrics.jsonl, batches.jsonl and checkpoint/ go; ``None``
            writes nothing (and passes ``checkpoint_dir=None`` to ``report``).
        resume: ``True`` continues from ``out_dir/checkpoint``; a path continues from that
            checkpoint directory; ``False`` starts fresh.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or a torch.device.
        seed: training seed (weight init, data order, augmentation); independent of the split
            seed ``DataSpec.data_seed``.
        small_input_stem: 3x3 stride-1 stem without max-pool (for 32-64 px images); recorded
            in run.json and checked on resume.
        amp: ``"auto"`` (bf16 autocast on CUDA if supported, else fp16 with GradScaler; off on
            CPU), ``"bf16"``, ``"fp16"`` (CUDA only) or ``"off"``.
        channels_last: NHWC memory format; ``None`` = on for CUDA, off for CPU.
        compile_model: wrap the model in ``torch.compile``.
        pipeline: ``"tensor"`` (whole pool in device memory, on-device batching),
            ``"loader"`` (DataLoader workers) or ``"auto"`` (tensor for <= 64 px pools that fit);
            both give identical batches.
        num_workers: DataLoader workers (default ``min(8, cpu_count - 1)``).
        augment: random crop (zero padding ``S // 8``) + horizontal flip on training batches.
        eval_batch_size: batch size of the validation / test passes.
        overwrite: allow a fresh (non-resumed) run to replace the files of an earlier run in
            ``out_dir`` (otherwise that is an error).

    Returns:
        :class:`TrainResult`.

    Raises:
        at2_tune.errors.SearchSpaceError: config outside the HyperRec space.
        DatasetError: bad data source.
        TrainerConfigError: bad option, or ``batch_size`` larger than the training split.
        CheckpointError: nothing to resume, or a checkpoint of a different run.
        DivergenceError: NaN / inf loss (after a last report with ``diverged: True``).
        TrainerOutOfMemoryError: CUDA out of memory (names batch size, model, image size).
    """
    cfg = validate_config(config)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise TrainerConfigError(f"epochs={epochs!r} must be a positive integer")
    if isinstance(eval_batch_size, bool) or not isinstance(eval_batch_size, int) \
            or eval_batch_size < 1:
        raise TrainerConfigError(f"eval_batch_size={eval_batch_size!r} must be a positive integer")
    dev = resolve_device(device)
    amp_dtype = resolve_amp(amp, dev)
    split = data if isinstance(data, SplitData) else load_data(data)
    batch_size = cfg["batch_size"]
    n_train = int(split.train_idx.numel())
    if batch_size > n_train:
        raise TrainerConfigError(
            f"batch_size {batch_size} is larger than the training split of {split.name!r} "
            f"({n_train} images = 60% of {split.targets.numel()}); use batch_size <= {n_train} "
            f"or a data source with more images")
    if num_workers is None:
        num_workers = min(8, max(0, (os.cpu_count() or 1) - 1))
    use_channels_last = dev.type == "cuda" if channels_last is None else bool(channels_last)
    out_path = Path(out_dir) if out_dir is not None else None

    ckpt_dir = _resolve_resume(resume, out_path, overwrite)
    options = {"seed": int(seed), "small_input_stem": bool(small_input_stem),
               "augment": bool(augment), "image_size": split.image_size,
               "num_classes": split.num_classes, "config": cfg,
               "data": split.spec.to_json()}

    model = build_model(cfg["model"], split.num_classes, small_input_stem=small_input_stem,
                        seed=derive_seed(seed, 0))
    gens = {"order": torch.Generator().manual_seed(derive_seed(seed, 1)),
            "augment": torch.Generator().manual_seed(derive_seed(seed, 2))}
    start_epoch = 0
    history: list[dict[str, Any]] = []
    resumed_at: list[int] = []
    state: dict[str, Any] | None = None
    prior_batches: list[dict[str, Any]] = []
    if ckpt_dir is not None:
        state, meta = load_checkpoint(ckpt_dir)
        _check_resume_meta(meta, options, ckpt_dir)
        start_epoch = int(state["epoch"])
        resumed_at = [int(e) for e in meta.get("resumed_at", [])] + [start_epoch]
        model.load_state_dict(state["model"])
        history = [_restore_json_floats(r)
                   for r in _history_until(ckpt_dir, out_path, METRICS_FILE, start_epoch)]
        prior_batches = _history_until(ckpt_dir, out_path, BATCHES_FILE, start_epoch)

    prev_benchmark = torch.backends.cudnn.benchmark
    source = None
    try:
        model.to(dev)
        if use_channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(cfg, model.parameters())
        scheduler = build_scheduler(cfg, optimizer)
        scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype == torch.float16)
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            restore_rng(state["rng"], gens)
            state = None
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        run_model = torch.compile(model) if compile_model else model

        chosen = _choose_pipeline(pipeline, split, dev)
        if chosen == "tensor":
            source = TensorBatchSource(materialize(split, num_workers), split.targets, dev)
        else:
            source = LoaderBatchSource(split.pool, dev, num_workers)
        mean = torch.tensor(IMAGENET_MEAN, device=dev).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=dev).view(1, 3, 1, 1)
        ctx = StepContext(model=run_model, optimizer=optimizer, scaler=scaler, device=dev,
                          amp_dtype=amp_dtype, mean=mean, std=std,
                          channels_last=use_channels_last,
                          augment_generator=gens["augment"] if augment else None,
                          augment_pad=max(1, split.image_size // 8),
                          check_every=50 if dev.type == "cuda" else 1)

        run_info = {
            "config": cfg, "epochs": epochs, "seed": int(seed), "data": split.describe(),
            "model": cfg["model"], "small_input_stem": bool(small_input_stem),
            "augment": bool(augment), "amp": None if amp_dtype is None else str(amp_dtype),
            "channels_last": use_channels_last, "compile": bool(compile_model),
            "pipeline": chosen, "num_workers": num_workers, "eval_batch_size": eval_batch_size,
            "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "resumed_at": resumed_at, "versions": _versions(),
        }
        run_files: tuple[Path, ...] = ()
        if out_path is not None:  # (re)start the files from the checkpoint's history
            out_path.mkdir(parents=True, exist_ok=True)
            _write_jsonl(out_path / METRICS_FILE, history)
            _write_jsonl(out_path / BATCHES_FILE, prior_batches)
            write_json(out_path / RUN_FILE, run_info)
            run_files = (out_path / RUN_FILE, out_path / METRICS_FILE, out_path / BATCHES_FILE)

        eval_plans = (eval_batch_plan(split.val_idx, eval_batch_size),
                      eval_batch_plan(split.test_idx, eval_batch_size))
        for epoch in range(start_epoch + 1, epochs + 1):
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            lr = float(optimizer.param_groups[0]["lr"])
            plan = train_batch_plan(split.train_idx, batch_size, gens["order"])
            tr = train_epoch(ctx, source.iterate(plan))
            metrics: dict[str, Any] = {
                "epoch": epoch, "train_loss": tr.loss, "train_top1": tr.top1,
                "train_top5": tr.top5, "train_top10": tr.top10,
            }
            if tr.diverged:
                reason = (f"non-finite training loss at batch {tr.diverged_batch} of "
                          f"epoch {epoch}")
                _diverge(metrics, reason, tr.time_s, lr, cfg, epoch, report, out_path, tr)
            va = evaluate(ctx, source.iterate(eval_plans[0]))
            te = evaluate(ctx, source.iterate(eval_plans[1]))
            metrics.update({
                "val_loss": va.loss, "val_top1": va.top1, "val_top5": va.top5,
                "val_top10": va.top10, "test_loss": te.loss, "test_top1": te.top1,
                "test_top5": te.top5, "test_top10": te.top10,
                "train_time_s": tr.time_s, "eval_time_s": va.time_s + te.time_s,
                "epoch_time_s": tr.time_s + va.time_s + te.time_s,
                "images_per_s": tr.num_images / tr.time_s if tr.time_s > 0 else float("nan"),
                "lr": lr, "diverged": False,
            })
            if dev.type == "cuda":
                metrics["gpu_peak_mem_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
            if not (np.isfinite(va.loss) and np.isfinite(te.loss)):
                _diverge(metrics, f"non-finite validation/test loss in epoch {epoch}",
                         tr.time_s, lr, cfg, epoch, report, out_path, tr)
            scheduler.step()
            history.append(metrics)
            checkpoint_dir = None
            if out_path is not None:
                _append_jsonl(out_path / BATCHES_FILE, _batch_records(epoch, tr.per_batch))
                _append_jsonl(out_path / METRICS_FILE, [metrics])
                checkpoint_dir = save_checkpoint(
                    out_path / CHECKPOINT_DIR,
                    state={"epoch": epoch, "model": model.state_dict(),
                           "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict(),
                           "scaler": scaler.state_dict(), "rng": capture_rng(gens)},
                    meta={**options, "epoch": epoch, "resumed_at": resumed_at,
                          "versions": _versions(), "time": time.time()},
                    files=run_files)
            if report is not None:
                report(dict(metrics), checkpoint_dir)
    except torch.OutOfMemoryError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "out of memory"
        oom = TrainerOutOfMemoryError(
            f"{dev} out of memory training model {cfg['model']} with batch_size {batch_size} "
            f"on {split.image_size}px images (amp={amp}, small_input_stem={small_input_stem}): "
            f"{message}. Use a smaller batch_size or image size, amp='bf16', or give each "
            f"trial a larger GPU share (fewer trials per GPU in tune.with_resources)")
    else:
        oom = None
    finally:
        torch.backends.cudnn.benchmark = prev_benchmark
        if source is not None:
            source.close()
    if oom is not None:
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        raise oom
    final_ckpt = find_checkpoint(out_path) if out_path is not None else None
    return TrainResult(metrics=history, config=cfg, out_dir=out_path,
                       checkpoint_dir=final_ckpt, run_info=run_info)


def _batch_records(epoch: int, per_batch: torch.Tensor) -> list[dict[str, Any]]:
    return [{"epoch": epoch, "batch": i, "loss": float(row[0]), "top1": float(row[1]),
             "top5": float(row[2]), "top10": float(row[3]), "batch_size": int(row[4])}
            for i, row in enumerate(per_batch.tolist())]


def _diverge(metrics: dict[str, Any], reason: str, train_time_s: float, lr: float,
             cfg: dict[str, Any], epoch: int, report: ReportFn | None, out_path: Path | None,
             tr: Any) -> None:
    """Finish a diverged epoch: last report with ``diverged: True``, then raise."""
    nan = float("nan")
    for key in ("val_loss", "val_top1", "val_top5", "val_top10", "test_loss", "test_top1",
                "test_top5", "test_top10"):
        metrics.setdefault(key, nan)
    metrics.update({"train_time_s": train_time_s, "lr": lr, "diverged": True,
                    "diverged_reason": reason})
    metrics.setdefault("eval_time_s", 0.0)
    metrics.setdefault("epoch_time_s", train_time_s)
    metrics.setdefault("images_per_s", tr.num_images / train_time_s if train_time_s > 0 else nan)
    if out_path is not None:
        _append_jsonl(out_path / BATCHES_FILE, _batch_records(epoch, tr.per_batch))
        _append_jsonl(out_path / METRICS_FILE, [metrics])
    if report is not None:
        report(dict(metrics), None)
    raise DivergenceError(
        f"training diverged in epoch {epoch} ({reason}) with config {cfg}; the last report "
        f"has diverged=True. Lower lr (now {cfg['lr']:g}"
        + (f", max_lr {cfg['max_lr']:g}" if "max_lr" in cfg else "")
        + ") or weight_decay", epoch=epoch, config=cfg, metrics=metrics)


def _resolve_resume(resume: bool | str | Path, out_path: Path | None,
                    overwrite: bool) -> Path | None:
    """Checkpoint directory to resume from, or None for a fresh run (checks out_dir)."""
    if resume is True:
        if out_path is None:
            raise CheckpointError("resume=True needs out_dir (the directory of the run to "
                                  "continue)")
        found = find_checkpoint(out_path)
        if found is None:
            raise CheckpointError(
                f"resume requested but {str(out_path)!r} holds no checkpoint "
                f"({CHECKPOINT_DIR}/{'{state.pt,meta.json}'}); run without --resume to start "
                f"fresh, or point --out at the earlier run's directory")
        return found
    if resume is not False and resume is not None:
        path = Path(resume)
        if not path.is_dir():
            raise CheckpointError(f"checkpoint directory {str(path)!r} does not exist")
        return path
    if out_path is not None and out_path.exists():
        existing = [name for name in (METRICS_FILE, CHECKPOINT_DIR, BATCHES_FILE, RUN_FILE)
                    if (out_path / name).exists()]
        if existing and not overwrite:
            raise TrainerConfigError(
                f"output directory {str(out_path)!r} already holds a run ({', '.join(existing)}); "
                f"use resume (--resume) to continue it or choose an empty directory")
        for name in existing:
            target = out_path / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
    return None


def _check_resume_meta(meta: Mapping[str, Any], options: Mapping[str, Any],
                       ckpt_dir: Path) -> None:
    for key in _RESUME_KEYS:
        if key not in meta:
            continue
        old, new = to_json_safe(meta[key]), to_json_safe(options[key])
        if key == "data":  # the data may have moved (or been fetched): not root, download
            old, new = ({k: v for k, v in d.items() if k not in ("root", "download")}
                        for d in (old, new))
        if old != new:
            raise CheckpointError(
                f"checkpoint {str(ckpt_dir)!r} was written with {key}={meta[key]!r} but this "
                f"run has {key}={options[key]!r}; resume with the same {key} or start a fresh "
                f"run in another directory")
