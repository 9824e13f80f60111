"""Smoke test of experiments/bench_trainer.py on CPU (--quick), in a fresh interpreter."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # a fresh interpreter trains ResNet34 on CPU

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from experiments import bench_trainer
rc = bench_trainer.main(sys.argv[1:])
imported = [m for m in ("ray", "search_spaces") if m in sys.modules]
assert not imported, f"the benchmark imported {imported}"
sys.exit(rc)
"""


def test_bench_quick_on_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, "--device", "cpu", "--quick", "--models", "ResNet34",
         "--sizes", "32", "--steps", "1", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "images/s" in proc.stdout and "ResNet34" in proc.stdout
    rows = json.loads((tmp_path / "bench_trainer.json").read_text())["rows"]
    assert [(r["model"], r["image_size"], r["path"]) for r in rows] == [
        ("ResNet34", 32, "plain"), ("ResNet34", 32, "fast")]
    assert all(r["status"] == "ok" and r["images_per_s"] > 0 for r in rows)
    with (tmp_path / "bench_trainer.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 2
