"""``at2-tune train``: train one configuration without Ray.

``add_train_parser(subparsers)`` registers the sub-command (it imports nothing heavy, so the
main CLI stays fast); ``run_train(args)`` runs it and returns the exit status:

* 0: trained all epochs (or the resumed run was already complete);
* 1: the run diverged (NaN / inf loss); metrics.jsonl ends with a ``"diverged": true`` line;
* 2: bad input (config outside the space, unknown dataset, missing data, nothing to resume,
  ...) or out of GPU memory; the message is printed to stderr.

Example::

    at2-tune train --dataset CIFAR10 --data-root /data/cifar10 --config cfg.json \\
        --epochs 20 --out runs/cifar10-cfg1 --small-input-stem
    at2-tune train ... --epochs 40 --out runs/cifar10-cfg1 --resume   # 20 more epochs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from at2_tune.errors import USER_ERRORS, AT2Error

if TYPE_CHECKING:
    from trainers.data import DataSpec


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command to an ``argparse`` sub-parsers object.

    Returns:
        The new sub-parser (its ``func`` default is :func:`run_train`).
    """
    p = subparsers.add_parser(
        "train", help="train one HyperRec configuration (no Ray)",
        description="Train one configuration of the HyperRec space on a dataset and write "
                    "DIR/metrics.jsonl (one JSON object per epoch), DIR/batches.jsonl, "
                    "DIR/run.json and DIR/checkpoint/.")
    add_data_arguments(p)
    p.add_argument("--config", required=True, type=Path,
                   help="JSON file with the flat HyperRec config (active keys only)")
    p.add_argument("--epochs", required=True, type=int, help="total number of epochs")
    p.add_argument("--out", required=True, type=Path, help="output directory of the run")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last checkpoint in --out")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0,
                   help="training seed: init, data order, augmentation (default 0)")
    p.add_argument("--small-input-stem", action="store_true",
                   help="3x3 stride-1 stem without max-pool, for 32-64 px images")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="mixed precision (auto: bf16 on CUDA if supported, off on CPU)")
    p.add_argument("--pipeline", choices=("auto", "tensor", "loader"), default="auto",
                   help="input pipeline (auto: whole dataset on the device for <= 64 px)")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--no-augment", action="store_true",
                   help="no random crop / flip on training batches")
    p.add_argument("--compile", action="store_true", help="use torch.compile")
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.set_defaults(func=run_train)
    return p


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The data-source options (``--dataset``, ``--data-root``, ``--download``, ...) that
    :func:`data_spec` turns into a :class:`~trainers.data.DataSpec`."""
    p.add_argument("--dataset", required=True,
                   help="torchvision dataset class name (CIFAR10, Flowers102, ...), "
                        "'imagefolder' (ROOT/<class>/<image>), 'digits' (scikit-learn's "
                        "bundled 8x8 digits, no download) or 'synthetic'")
    p.add_argument("--data-root", default=None, help="local directory of the dataset files")
    p.add_argument("--download", action="store_true",
                   help="let torchvision fetch a missing dataset into --data-root (needs "
                        "internet); without it nothing is downloaded")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the 60/20/20 split and of synthetic images (default 0)")
    p.add_argument("--image-size", type=int, default=None,
                   help="square image side in pixels (default: per dataset, e.g. 32 for "
                        "CIFAR, 224 for ImageFolder)")
    p.add_argument("--synthetic-images", type=int, default=512,
                   help="number of images of --dataset synthetic")
    p.add_argument("--synthetic-classes", type=int, default=10,
                   help="number of classes of --dataset synthetic")


def data_spec(args: argparse.Namespace) -> DataSpec:
    """The :class:`~trainers.data.DataSpec` of the options of :func:`add_data_arguments`."""
    from trainers.data import DataSpec

    return DataSpec(name=args.dataset, root=args.data_root, image_size=args.image_size,
                    data_seed=args.data_seed, synthetic_images=args.synthetic_images,
                    synthetic_classes=args.synthetic_classes, download=args.download)


def _load_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except OSError as exc:
        raise AT2Error(f"cannot read --config {str(path)!r}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise AT2Error(f"--config {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise AT2Error(f"--config {str(path)!r} must hold a JSON object of hyperparameters, "
                       f"got {type(config).__name__}")
    return config


def _print_epoch(metrics: dict[str, Any], _checkpoint: Any) -> None:
    if metrics.get("diverged"):
        print(f"epoch {metrics['epoch']}: DIVERGED ({metrics.get('diverged_reason')})",
              flush=True)
        return
    print(f"epoch {metrics['epoch']:>3}  lr {metrics['lr']:.3g}  "
          f"train loss {metrics['train_loss']:.4f} top1 {metrics['train_top1']:.3f}  "
          f"val loss {metrics['val_loss']:.4f} top1 {metrics['val_top1']:.3f}  "
          f"test top1 {metrics['test_top1']:.3f}  {metrics['epoch_time_s']:.1f}s "
          f"({metrics['images_per_s']:.0f} img/s)", flush=True)


def run_train(args: argparse.Namespace) -> int:
    """Run ``at2-tune train`` with parsed ``args``; returns the exit status (0 / 1 / 2)."""
    from trainers.errors import DivergenceError
    from trainers.train import train

    try:
        config = _load_config(args.config)
        spec = data_spec(args)
        result = train(config, spec, epochs=args.epochs, report=_print_epoch, out_dir=args.out,
                       resume=bool(args.resume), device=args.device, seed=args.seed,
                       small_input_stem=args.small_input_stem, amp=args.amp,
                       pipeline=args.pipeline, num_workers=args.num_workers,
                       augment=not args.no_augment, compile_model=args.compile,
                       eval_batch_size=args.eval_batch_size)
    except DivergenceError as exc:
        print(f"at2-tune train: diverged: {exc}", file=sys.stderr)
        return 1
    except USER_ERRORS as exc:
        print(f"at2-tune train: error: {exc}", file=sys.stderr)
        return 2
    if result.metrics:
        last = result.metrics[-1]
        print(f"done: {len(result.metrics)} epochs, val top1 {last['val_top1']:.3f}, "
              f"test top1 {last['test_top1']:.3f}; metrics in {args.out / 'metrics.jsonl'}")
    return 0
