"""Training-throughput benchmark: the trainers fast path versus a plain fp32 torchvision loop.

    python -m experiments.bench_trainer --device cuda --out results/bench_trainer
    python -m experiments.bench_trainer --device cpu --quick --out /tmp/bench   # smoke test

For ResNet34 and ResNet50 at 32, 64 and 224 px (synthetic data, ``--batch-size`` images per
step, SGD with momentum) it measures training images/s over ``--steps`` steps after
``--warmup`` steps, and the peak GPU memory, for two paths:

* ``fast``: exactly the training step of :func:`trainers.loop.train_epoch`: the uint8 images
  live in device memory (:class:`trainers.pipeline.TensorBatchSource`), random crop + flip and
  normalisation run on the device, bf16 autocast (fp16 + GradScaler where bf16 is missing),
  channels_last, cudnn.benchmark, optionally ``torch.compile`` (``--compile``);
* ``plain``: a textbook loop: ``DataLoader`` over a ``TensorDataset`` of normalised float32 CPU
  tensors (shuffled, no workers, no pinned memory), ``.to(device)`` per batch, fp32, NCHW.

Prints a table and writes it to ``--out/bench_trainer.json`` and ``--out/bench_trainer.csv``.
Only torch, torchvision and the Ray-free trainer modules (models, optim, loop, pipeline) are
used. On CPU, AMP and channels_last are off in the fast path too (it then only differs by the
data pipeline); ``--quick`` shrinks batch and steps so the whole table takes seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torchvision  # noqa: E402

from trainers.loop import StepContext, train_epoch  # noqa: E402
from trainers.models import build_model  # noqa: E402
from trainers.optim import build_optimizer  # noqa: E402
from trainers.pipeline import IMAGENET_MEAN, IMAGENET_STD, TensorBatchSource  # noqa: E402

MODELS = ("ResNet34", "ResNet50")
SIZES = (32, 64, 224)
NUM_CLASSES = 100
POOL_BATCHES = 4
"""The synthetic pool holds this many batches; steps cycle through it in random order."""
OPTIMIZER = {"optimizer": "Momentum", "lr": 0.01, "weight_decay": 5e-4, "momentum": 0.9}
COLUMNS = ("model", "image_size", "path", "batch_size", "steps", "images_per_s", "step_ms",
           "speedup", "peak_mem_mib", "amp", "channels_last", "compile", "status")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _synthetic(n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``[n, 3, size, size]`` images and int64 ``[n]`` labels."""
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    return images, torch.randint(0, NUM_CLASSES, (n,), generator=gen)


def bench_fast(model_name: str, size: int, args: argparse.Namespace,
               device: torch.device) -> dict[str, Any]:
    """images/s of the trainers' training step (tensor pipeline on the device)."""
    gen = torch.Generator().manual_seed(0)
    n = POOL_BATCHES * args.batch_size
    images, targets = _synthetic(n, size, gen)
    cuda = device.type == "cuda"
    amp_dtype = None
    if cuda and args.amp != "off":
        amp_dtype = (torch.bfloat16 if args.amp == "bf16" and torch.cuda.is_bf16_supported()
                     else torch.float16)
    channels_last = cuda
    prev_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = cuda
    try:
        model = build_model(model_name, NUM_CLASSES, small_input_stem=args.small_input_stem)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(OPTIMIZER, model.parameters())
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        run_model = torch.compile(model) if args.compile else model
        source = TensorBatchSource(images, targets, device)
        ctx = StepContext(model=run_model, optimizer=optimizer, scaler=scaler, device=device,
                          amp_dtype=amp_dtype,
                          mean=torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
                          std=torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1),
                          channels_last=channels_last, augment_generator=gen,
                          augment_pad=max(1, size // 8), check_every=50 if cuda else 1)

        def plan(steps: int) -> list[torch.Tensor]:
            order = torch.randint(0, n, (steps, args.batch_size), generator=gen)
            return list(order)

        train_epoch(ctx, source.iterate(plan(args.warmup)))
        result = train_epoch(ctx, source.iterate(plan(args.steps)))
        source.close()
    finally:
        torch.backends.cudnn.benchmark = prev_benchmark
    return {"images_per_s": result.num_images / result.time_s,
            "step_ms": 1000 * result.time_s / args.steps,
            "amp": None if amp_dtype is None else str(amp_dtype).replace("torch.", ""),
            "channels_last": channels_last, "compile": bool(args.compile)}


def bench_plain(model_name: str, size: int, args: argparse.Namespace,
                device: torch.device) -> dict[str, Any]:
    """images/s of a plain fp32 loop fed by a DataLoader over CPU float tensors."""
    gen = torch.Generator().manual_seed(0)
    images, targets = _synthetic(POOL_BATCHES * args.batch_size, size, gen)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    dataset = torch.utils.data.TensorDataset((images.float() / 255 - mean) / std, targets)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                         drop_last=True, generator=gen)
    # the same torchvision network (and initialisation) as the fast path
    model = build_model(model_name, NUM_CLASSES, small_input_stem=args.small_input_stem)
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=OPTIMIZER["lr"],
                                momentum=OPTIMIZER["momentum"],
                                weight_decay=OPTIMIZER["weight_decay"])
    criterion = torch.nn.CrossEntropyLoss()

    def run(steps: int) -> float:
        done = 0
        _sync(device)
        start = time.perf_counter()
        while done < steps:
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                loss = criterion(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                done += 1
                if done == steps:
                    break
        _sync(device)
        return time.perf_counter() - start

    run(args.warmup)
    elapsed = run(args.steps)
    return {"images_per_s": args.steps * args.batch_size / elapsed,
            "step_ms": 1000 * elapsed / args.steps, "amp": None, "channels_last": False,
            "compile": False}


def run_case(path: str, model_name: str, size: int, args: argparse.Namespace,
             device: torch.device) -> dict[str, Any]:
    row: dict[str, Any] = {"model": model_name, "image_size": size, "path": path,
                           "batch_size": args.batch_size, "steps": args.steps}
    _reset_peak(device)
    try:
        bench = bench_fast if path == "fast" else bench_plain
        row.update(bench(model_name, size, args, device))
        row["status"] = "ok"
    except torch.OutOfMemoryError:
        row.update(images_per_s=None, step_ms=None, status="out of memory")
    row["peak_mem_mib"] = _peak_mib(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ("model", "px", "path", "batch", "images/s", "step ms", "speedup", "peak MiB",
              "amp", "status")
    lines = [header]
    for r in rows:
        lines.append((r["model"], str(r["image_size"]), r["path"], str(r["batch_size"]),
                      _fmt(r["images_per_s"]), _fmt(r["step_ms"], 2), _fmt(r.get("speedup"), 2),
                      _fmt(r["peak_mem_mib"], 0), _fmt(r["amp"]), r["status"]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.rjust(w) if i >= 3 else cell.ljust(w)
                     for i, (cell, w) in enumerate(zip(line, widths))) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per case (default 50; 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first (default 10; 1 with --quick)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per step (default 128; 4 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny batches and steps: a smoke test that runs on CPU in seconds")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated image sizes in pixels (default 32,64,224)")
    parser.add_argument("--amp", choices=("bf16", "fp16", "off"), default="bf16",
                        help="autocast of the fast path on CUDA (default bf16)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    parser.add_argument("--small-input-stem", action="store_true",
                        help="3x3 stride-1 stem without max-pool in both paths")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for bench_trainer.json / bench_trainer.csv")
    args = parser.parse_args(argv)
    args.steps = args.steps or (2 if args.quick else 50)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 10)
    args.batch_size = args.batch_size or (4 if args.quick else 128)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"--models: {unknown} not in {list(MODELS)}")
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 2:
        parser.error("--steps must be >= 1, --warmup >= 0 and --batch-size >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"--device {args.device}: CUDA is not available here; use --device cpu",
              file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device: {device} ({name or 'cpu'}), torch {torch.__version__}, "
          f"batch {args.batch_size}, {args.warmup} warmup + {args.steps} timed steps", flush=True)
    rows: list[dict[str, Any]] = []
    for model_name in args.models:
        for size in args.sizes:
            pair = {path: run_case(path, model_name, size, args, device)
                    for path in ("plain", "fast")}
            plain, fast = pair["plain"]["images_per_s"], pair["fast"]["images_per_s"]
            pair["fast"]["speedup"] = fast / plain if plain and fast else None
            rows.extend(pair.values())
            print(f"  {model_name} {size}px: plain {_fmt(plain)} img/s, fast {_fmt(fast)} img/s",
                  flush=True)
    print(format_table(rows))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {"device": str(device), "device_name": name, "torch": torch.__version__,
                "torchvision": torchvision.__version__, "batch_size": args.batch_size,
                "steps": args.steps, "warmup": args.warmup, "compile": args.compile,
                "small_input_stem": args.small_input_stem, "time": time.time()}
        (args.out / "bench_trainer.json").write_text(
            json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        with (args.out / "bench_trainer.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.out / 'bench_trainer.json'} and {args.out / 'bench_trainer.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
