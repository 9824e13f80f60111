"""Batching, on-device augmentation and normalisation.

Both input pipelines deliver exactly the same uint8 batches for the same batch plan, so the
choice between them is a pure performance decision:

* ``"tensor"``: the whole pool is decoded once (:func:`trainers.data.materialize`) and kept as
  one uint8 tensor ``[N, 3, S, S]`` on the training device (GPU memory for CIFAR-sized / 64 px
  data); a batch is an ``index_select`` on the device, with no Python data loading per step.
* ``"loader"``: a :class:`torch.utils.data.DataLoader` with (persistent) worker processes decodes
  images per batch, with pinned memory and ``non_blocking`` copies to the GPU.

Randomness (the shuffling order and the augmentation parameters) is drawn from seeded CPU
:class:`torch.Generator` objects owned by the training run, never from the global RNG, so a
run is reproducible and resumable bit-for-bit on CPU whichever pipeline feeds it.
Augmentation (random crop with zero padding + horizontal flip) runs batched on the device with
tensor ops: only ``3 * B`` random numbers are drawn on the CPU and copied over.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def train_batch_plan(indices: Tensor, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """Shuffle ``indices`` with ``generator`` and cut them into batches.

    The last batch may be smaller; a last batch of a single image is dropped because BatchNorm
    cannot train on one sample.

    Args:
        indices: pool indices of the training split, int64 ``[n]``.
        batch_size: ``B``.
        generator: CPU generator of the data order (advanced by one ``randperm``).

    Returns:
        List of int64 index tensors of shape ``[B]`` (last one ``[<= B]``).
    """
    order = indices[torch.randperm(indices.numel(), generator=generator)]
    batches = list(order.split(batch_size))
    if len(batches) > 1 and batches[-1].numel() == 1:
        batches.pop()
    return batches


def eval_batch_plan(indices: Tensor, batch_size: int) -> list[Tensor]:
    """``indices`` in order, cut into batches of ``batch_size`` (last one smaller)."""
    return list(indices.split(batch_size))


def augment_batch(images: Tensor, generator: torch.Generator, pad: int) -> Tensor:
    """Random crop with zero padding and random horizontal flip, per image, on the device.

    Args:
        images: uint8 ``[B, C, H, W]`` on any device.
        generator: CPU generator of the augmentation parameters (advanced by ``3 B`` draws).
        pad: padding on each side; the crop offset is uniform in ``[0, 2 pad]`` per axis.

    Returns:
        uint8 ``[B, C, H, W]`` on the same device.
    """
    b, c, h, w = images.shape
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5
    device = images.device
    offsets = offsets.to(device, non_blocking=True)
    flips = flips.to(device, non_blocking=True)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = offsets[:, 0, None] + torch.arange(h, device=device)  # [B, H]
    cols = offsets[:, 1, None] + torch.arange(w, device=device)  # [B, W]
    cols = torch.where(flips[:, None], cols.flip(1), cols)       # flip = reversed columns
    batch = torch.arange(b, device=device)[:, None, None, None]
    chan = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def to_model_input(images: Tensor, mean: Tensor, std: Tensor, channels_last: bool) -> Tensor:
    """uint8 ``[B, 3, H, W]`` -> normalised float32 ``[B, 3, H, W]``.

    Args:
        mean, std: float32 ``[1, 3, 1, 1]`` on the images' device.
        channels_last: return NHWC memory format (faster convolutions with tensor cores).
    """
    x = images.float().div_(255.0).sub_(mean).div_(std)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class BatchSource(Protocol):
    """Turns a batch plan (list of pool-index tensors) into device batches."""

    def iterate(self, plan: Sequence[Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(images uint8 [B, 3, S, S], targets int64 [B])`` on the device."""
        ...

    def close(self) -> None:
        """Release workers / device memory."""
        ...


class TensorBatchSource:
    """All images live in one device tensor; batching is ``index_select``."""

    def __init__(self, images: Tensor, targets: Tensor, device: torch.device) -> None:
        """Args: images uint8 ``[N, 3, S, S]``, targets int64 ``[N]`` (any device)."""
        self.images: Tensor | None = images.to(device)
        self.targets: Tensor | None = targets.to(device)
        self.device = device

    def iterate(self, plan: Sequence[Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
        assert self.images is not None and self.targets is not None, "source closed"
        for idx in plan:
            idx = idx.to(self.device, non_blocking=True)
            yield self.images.index_select(0, idx), self.targets.index_select(0, idx)

    def close(self) -> None:
        self.images = None
        self.targets = None


class _PlanSampler(Sampler[list[int]]):
    """A batch sampler whose batches are set before each pass (iterated in the main process,
    so it works with persistent workers)."""

    def __init__(self) -> None:
        self.plan: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.plan)

    def __len__(self) -> int:
        return len(self.plan)


class LoaderBatchSource:
    """Decodes images in DataLoader workers; pinned memory + non-blocking copies on CUDA."""

    def __init__(self, pool: Dataset, device: torch.device, num_workers: int,
                 prefetch_factor: int = 4) -> None:
        self.device = device
        self._sampler = _PlanSampler()
        cuda = device.type == "cuda"
        kwargs = {}
        if num_workers > 0:
            kwargs = {"persistent_workers": True, "prefetch_factor": prefetch_factor}
        self._loader: DataLoader | None = DataLoader(
            pool, batch_sampler=self._sampler, num_workers=num_workers, pin_memory=cuda,
            generator=torch.Generator(),  # its base seed must not come from the global RNG
            **kwargs)

    def iterate(self, plan: Sequence[Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
        assert self._loader is not None, "source closed"
        self._sampler.plan = [idx.tolist() for idx in plan]
        for images, targets in self._loader:
            yield (images.to(self.device, non_blocking=True),
                   targets.to(self.device, non_blocking=True))

    def close(self) -> None:
        self._loader = None  # persistent workers shut down with the loader's iterator
