"""``at2-tune train`` through trainers.cli (a local argparse parser)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from tests.trainers.helpers import ConfigFactory
from trainers.cli import add_train_parser, run_train


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="at2-tune")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config))
    return path


@pytest.mark.integration  # `at2-tune train` end to end, then resumed
def test_train_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           make_config: ConfigFactory) -> None:
    config = write_config(tmp_path / "cfg.json", make_config("Adam", "ExponentialLR"))
    out = tmp_path / "run"
    common = ["train", "--dataset", "synthetic", "--synthetic-images", "64",
              "--synthetic-classes", "4", "--config", str(config), "--out", str(out),
              "--device", "cpu", "--seed", "3", "--image-size", "8", "--small-input-stem"]
    args = parse([*common, "--epochs", "1"])
    assert args.func is run_train
    assert run_train(args) == 0
    assert "epoch   1" in capsys.readouterr().out
    assert run_train(parse([*common, "--epochs", "2", "--resume"])) == 0
    assert "done: 2 epochs" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    required = {"epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                "val_top10", "test_top1", "epoch_time_s"}
    assert all(required <= set(r) for r in records)
    assert records[1]["lr"] == pytest.approx(records[0]["lr"] * 0.9)
    run = json.loads((out / "run.json").read_text())
    assert run["small_input_stem"] is True and run["resumed_at"] == [1]
    assert run["data"]["image_size"] == 8 and run["data"]["num_classes"] == 4
    assert (out / "checkpoint" / "state.pt").is_file()


def test_imagefolder_dataset(image_folder: Path, tmp_path: Path,
                             make_config: ConfigFactory) -> None:
    config = write_config(tmp_path / "cfg.json", make_config("Momentum", "StepLR"))
    args = parse(["train", "--dataset", "imagefolder", "--data-root", str(image_folder),
                  "--config", str(config), "--epochs", "1", "--out", str(tmp_path / "run"),
                  "--device", "cpu", "--image-size", "16", "--pipeline", "loader",
                  "--num-workers", "0"])
    assert run_train(args) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["pipeline"] == "loader" and run["data"]["num_images"] == 64


@pytest.mark.parametrize("case,expected", [
    ("unknown_dataset", "unknown dataset 'cifar11'"),
    ("missing_root", "does not exist"),
    ("bad_config", "batch_size"),
    ("not_json", "is not valid JSON"),
    ("no_checkpoint", "holds no checkpoint"),
])
def test_bad_input_exits_2_with_message(case: str, expected: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str],
                                        make_config: ConfigFactory) -> None:
    config = write_config(tmp_path / "cfg.json", make_config())
    argv = ["train", "--dataset", "synthetic", "--config", str(config), "--epochs", "1",
            "--out", str(tmp_path / "run"), "--device", "cpu"]
    if case == "unknown_dataset":
        argv[2] = "cifar11"
    elif case == "missing_root":
        argv[2:3] = ["CIFAR10", "--data-root", str(tmp_path / "missing")]
    elif case == "bad_config":
        write_config(config, make_config(batch_size=1000))
    elif case == "not_json":
        config.write_text("{batch_size: 32")
    else:
        argv.append("--resume")
    assert run_train(parse(argv)) == 2
    assert expected in capsys.readouterr().err
