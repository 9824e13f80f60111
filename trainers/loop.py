"""One training epoch and one evaluation pass.

Metrics:

* loss: mean cross-entropy.
* top-k accuracy for k in :data:`TOPK` = (1, 5, 10): fraction of images whose label is among
  the k largest logits. When ``k`` exceeds the number of classes ``C`` it is clamped to ``C``
  (the label is then always among the "top k", so top-k = 1.0) — documented, not an error.
* Training metrics are computed on the augmented batches during the epoch (before each
  optimizer step, in train mode) and averaged over batches (each batch weighs the same); the
  per-batch values are returned for the run's ``batches.jsonl``.
* Validation / test metrics are computed in eval mode without augmentation and averaged over
  images.

Per-batch statistics stay on the device and are copied to the host once per epoch (plus one
small sync every ``check_every`` batches for the NaN / inf check), so the GPU is never stalled
by per-step ``.item()`` calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainers.pipeline import augment_batch, to_model_input

TOPK: tuple[int, int, int] = (1, 5, 10)


def topk_correct(logits: Tensor, targets: Tensor, ks: tuple[int, ...] = TOPK) -> Tensor:
    """Number of images whose label is in the top-k logits, for each k.

    Args:
        logits: ``[B, C]``.
        targets: int64 ``[B]``.
        ks: the k values; each is clamped to ``C``.

    Returns:
        float32 ``[len(ks)]`` counts (on the logits' device).
    """
    num_classes = logits.shape[1]
    kmax = min(max(ks), num_classes)
    top = logits.topk(kmax, dim=1).indices                       # [B, kmax]
    hits = (top == targets[:, None]).float().cumsum(dim=1)        # [B, kmax], 0/1 per row
    # column slices (no host-to-device copy of an index tensor in the training step)
    return torch.stack([hits[:, min(k, num_classes) - 1] for k in ks]).sum(dim=1)


@dataclass
class StepContext:
    """Everything a train / eval step needs besides the batches.

    Attributes:
        model: the (possibly ``torch.compile``-d) model, float ``[B,3,S,S]`` -> ``[B,C]``.
        optimizer: stepped once per batch here (the LR scheduler is stepped by the caller,
            once per epoch).
        scaler: ``torch.amp.GradScaler`` (enabled only for fp16 autocast).
        device: training device.
        amp_dtype: autocast dtype (``torch.bfloat16`` / ``torch.float16``) or ``None``.
        mean, std: float32 ``[1, 3, 1, 1]`` normalisation constants on ``device``.
        channels_last: feed NHWC inputs.
        augment_generator: CPU generator of the augmentation parameters, ``None`` = no
            augmentation.
        augment_pad: zero padding of the random crop.
        check_every: batches between NaN / inf checks (1 on CPU).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    amp_dtype: torch.dtype | None
    mean: Tensor
    std: Tensor
    channels_last: bool = False
    augment_generator: torch.Generator | None = None
    augment_pad: int = 4
    check_every: int = 1

    def autocast(self) -> Any:
        """Autocast context (disabled when ``amp_dtype`` is None)."""
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def sync(self) -> None:
        """Wait for the device (for honest timings)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@dataclass
class TrainEpochResult:
    """Result of :func:`train_epoch`.

    Attributes:
        loss, top1, top5, top10: averages over batches (NaN/inf when diverged).
        per_batch: float64 ``[n_batches, 5]`` rows ``(loss, top1, top5, top10, batch_size)``.
        num_images: images trained on.
        time_s: wall time including data loading, after a device sync.
        diverged: a non-finite loss was seen; training stopped at ``diverged_batch``.
    """

    loss: float
    top1: float
    top5: float
    top10: float
    per_batch: Tensor
    num_images: int
    time_s: float
    diverged: bool = False
    diverged_batch: int | None = None


@dataclass
class EvalResult:
    """Image-averaged loss and top-k accuracies of one split."""

    loss: float
    top1: float
    top5: float
    top10: float
    num_images: int
    time_s: float


def train_epoch(ctx: StepContext, batches: Iterable[tuple[Tensor, Tensor]]) -> TrainEpochResult:
    """Train one epoch over ``batches`` of ``(uint8 [B,3,S,S], int64 [B])`` device tensors."""
    model, optimizer, scaler = ctx.model, ctx.optimizer, ctx.scaler
    model.train()
    ctx.sync()
    start = time.perf_counter()
    rows: list[Tensor] = []      # per batch, on the device: [loss, top1, top5, top10]
    sizes: list[int] = []        # per batch, on the host: batch size
    checked = 0
    diverged_batch: int | None = None
    for images, targets in batches:
        if ctx.augment_generator is not None:
            images = augment_batch(images, ctx.augment_generator, ctx.augment_pad)
        x = to_model_input(images, ctx.mean, ctx.std, ctx.channels_last)
        with ctx.autocast():
            logits = model(x)
            loss = nn.functional.cross_entropy(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        with torch.no_grad():
            n = targets.numel()
            acc = topk_correct(logits.detach().float(), targets) / n
            rows.append(torch.cat([loss.detach().float().reshape(1), acc]))
            sizes.append(n)
        if len(rows) - checked >= ctx.check_every:
            losses = torch.stack([r[0] for r in rows[checked:]])
            finite = torch.isfinite(losses)
            if not bool(finite.all()):
                diverged_batch = checked + int((~finite).nonzero()[0, 0])
                rows = rows[:diverged_batch + 1]
                break
            checked = len(rows)
    if diverged_batch is None and len(rows) > checked:
        finite = torch.isfinite(torch.stack([r[0] for r in rows[checked:]]))
        if not bool(finite.all()):
            diverged_batch = checked + int((~finite).nonzero()[0, 0])
            rows = rows[:diverged_batch + 1]
    ctx.sync()
    elapsed = time.perf_counter() - start
    per_batch = (torch.cat([torch.stack(rows).double().cpu(),
                            torch.tensor(sizes[:len(rows)], dtype=torch.float64)[:, None]], dim=1)
                 if rows else torch.zeros(0, 5, dtype=torch.float64))
    means = per_batch[:, :4].mean(dim=0) if rows else torch.full((4,), float("nan"))
    return TrainEpochResult(loss=float(means[0]), top1=float(means[1]), top5=float(means[2]),
                            top10=float(means[3]), per_batch=per_batch,
                            num_images=int(per_batch[:, 4].sum()), time_s=elapsed,
                            diverged=diverged_batch is not None, diverged_batch=diverged_batch)


@torch.inference_mode()
def evaluate(ctx: StepContext, batches: Iterable[tuple[Tensor, Tensor]]) -> EvalResult:
    """Loss and top-k accuracies over ``batches`` (eval mode, no augmentation)."""
    model = ctx.model
    model.eval()
    ctx.sync()
    start = time.perf_counter()
    totals = torch.zeros(4, dtype=torch.float64, device=ctx.device)
    count = 0
    for images, targets in batches:
        x = to_model_input(images, ctx.mean, ctx.std, ctx.channels_last)
        with ctx.autocast():
            logits = model(x)
        logits = logits.float()
        loss_sum = nn.functional.cross_entropy(logits, targets, reduction="sum")
        totals[0] += loss_sum.double()
        totals[1:] += topk_correct(logits, targets).double()
        count += targets.numel()
    ctx.sync()
    elapsed = time.perf_counter() - start
    means = (totals / max(count, 1)).cpu()
    return EvalResult(loss=float(means[0]), top1=float(means[1]), top5=float(means[2]),
                      top10=float(means[3]), num_images=count, time_s=elapsed)
