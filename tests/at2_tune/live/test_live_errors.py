"""``at2-tune tune`` refuses bad input with one clear line before anything trains."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from at2_tune.cli import main
from at2_tune.errors import AT2Error
from at2_tune.live.cluster import ClusterResources, check_reachable, parse_address, \
    trial_resources

SYNTHETIC = ["--dataset", "synthetic", "--synthetic-images", "256", "--synthetic-classes", "3",
             "--image-size", "8", "--prior", "none", "--epochs", "2"]


def _error_of(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    assert main(["tune", *argv]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def test_unknown_dataset_names_the_closest(tmp_path: Path, capsys) -> None:
    err = _error_of(["--dataset", "CIFAR1O", "--budget-epochs", "4", "--out",
                     str(tmp_path / "out")], capsys)
    assert "unknown dataset 'CIFAR1O'" in err and "CIFAR10" in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_empty_image_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "images").mkdir()
    err = _error_of(["--dataset", "imagefolder", "--data-root", str(tmp_path / "images"),
                     "--budget-epochs", "4", "--out", str(tmp_path / "out")], capsys)
    assert "has no class folders" in err


def test_missing_torchvision_files_mention_download(tmp_path: Path, capsys) -> None:
    err = _error_of(["--dataset", "CIFAR10", "--data-root", str(tmp_path / "nowhere"),
                     "--budget-epochs", "4", "--out", str(tmp_path / "out")], capsys)
    assert "does not exist" in err and "--download" in err


@pytest.mark.parametrize("budget", ["0", "-3"])
def test_budget_below_one_epoch(tmp_path: Path, capsys, budget: str) -> None:
    err = _error_of([*SYNTHETIC, "--budget-epochs", budget, "--out", str(tmp_path)], capsys)
    assert f"--budget-epochs {budget} must be a whole number >= 1" in err


def test_negative_max_failures(tmp_path: Path, capsys) -> None:
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--max-failures", "-1", "--out",
                     str(tmp_path / "out")], capsys)
    assert "--max-failures -1 must be a whole number >= 0" in err
    assert not (tmp_path / "out").exists()


def test_too_few_images_for_the_largest_batch(tmp_path: Path, capsys) -> None:
    argv = [*SYNTHETIC, "--budget-epochs", "4", "--out", str(tmp_path)]
    argv[argv.index("256")] = "64"
    err = _error_of(argv, capsys)
    assert "38 training images" in err and "up to 128" in err
    assert "--synthetic-images >= 214" in err


def test_epochs_must_match_the_hyperrec_prior(tmp_path: Path, capsys, release_dir) -> None:
    argv = [*SYNTHETIC, "--budget-epochs", "4", "--out", str(tmp_path),
            "--data-dir", str(release_dir)]
    argv[argv.index("none")] = "hyperrec"
    err = _error_of(argv, capsys)
    assert "--epochs 2 differs from the 75 epochs of the HyperRec database" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_address(tmp_path: Path, capsys) -> None:
    port = _free_port()
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--address", f"127.0.0.1:{port}",
                     "--out", str(tmp_path)], capsys)
    assert f"cannot reach a Ray cluster at --address 127.0.0.1:{port}" in err
    assert f"ray start --head --port {port}" in err


@pytest.mark.parametrize("address", ["localhost", "10.0.0.1:port", ":6379", "h:70000"])
def test_malformed_address(address: str) -> None:
    with pytest.raises(AT2Error, match="is not HOST:PORT"):
        parse_address(address)


def test_reachable_address_passes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")


def test_resume_needs_a_run_and_a_fresh_start_an_empty_folder(tmp_path: Path, capsys) -> None:
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--resume", "--out", str(tmp_path)],
                    capsys)
    assert "holds no tuning run" in err
    (tmp_path / "live-options.json").write_text("{}")
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--out", str(tmp_path)], capsys)
    assert "already holds a tuning run" in err and "--resume" in err


CPU_ONLY = ClusterResources(nodes=2, cpus=4.0, gpus=0.0, max_node_cpus=2.0, max_node_gpus=0.0)
GPU_NODES = ClusterResources(nodes=2, cpus=16.0, gpus=3.0, max_node_cpus=8.0, max_node_gpus=2.0)


def test_trial_resources_default_gpu_follows_the_cluster() -> None:
    assert trial_resources(1.0, None, CPU_ONLY) == {"cpu": 1.0, "gpu": 0.0}
    assert trial_resources(2.0, None, GPU_NODES) == {"cpu": 2.0, "gpu": 1.0}
    assert trial_resources(2.0, 0.5, GPU_NODES) == {"cpu": 2.0, "gpu": 0.5}


def test_more_gpus_per_trial_than_any_node_has() -> None:
    with pytest.raises(AT2Error, match=r"--gpus-per-trial 3 is more than any node .*the most "
                                       r"on one node: 2, 3 GPUs on 2 nodes"):
        trial_resources(1.0, 3.0, GPU_NODES)
    with pytest.raises(AT2Error, match=r"--gpus-per-trial 1 is more .* 0 GPUs on 2 nodes"):
        trial_resources(1.0, 1.0, CPU_ONLY)
    with pytest.raises(AT2Error, match="--cpus-per-trial 3 is more than any node"):
        trial_resources(3.0, 0.0, CPU_ONLY)


@pytest.mark.integration  # starts local Ray
def test_gpus_per_trial_checked_on_the_real_local_cluster(tmp_path: Path, capsys) -> None:
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--gpus-per-trial", "1",
                     "--out", str(tmp_path)], capsys)
    assert "--gpus-per-trial 1 is more than any node of the cluster has" in err
    assert not (tmp_path / "live-options.json").exists()  # refused before anything was saved


def test_a_transfer_method_without_a_prior_is_refused(tmp_path: Path, capsys) -> None:
    for method in ("top3", "portfolio", "optuna-warm"):
        err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--method", method, "--out",
                         str(tmp_path / method)], capsys)
        assert f"--method {method} transfers from a prior, but --prior is none" in err
        assert "asha, random, bohb, optuna" in err and not (tmp_path / method).exists()


def test_an_unknown_method_lists_the_methods_and_the_old_name_names_the_new(
        tmp_path: Path, capsys) -> None:
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--method", "hyperopt", "--out",
                     str(tmp_path / "x")], capsys)
    assert "--method 'hyperopt' is not a method of at2-tune tune" in err
    assert "at2, asha, random, bohb, optuna, optuna-warm, top3, portfolio" in err
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--method", "zero-shot", "--out",
                     str(tmp_path / "y")], capsys)
    assert "--method zero-shot is now called portfolio" in err and "--method portfolio" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_resuming_a_ray_method_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "live-options.json").write_text("{}")
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--method", "asha", "--resume",
                     "--out", str(tmp_path)], capsys)
    assert "--resume continues runs of at2, top3, portfolio" in err
    assert "start it again with another --out" in err


def test_an_objective_for_a_method_that_does_not_plan_is_refused(tmp_path: Path, capsys) -> None:
    err = _error_of([*SYNTHETIC, "--budget-epochs", "4", "--method", "asha", "--objective",
                     "configuration", "--out", str(tmp_path / "out")], capsys)
    assert "--objective configuration" in err and "--method asha does not plan" in err
    assert not (tmp_path / "out").exists()


def test_the_searchers_objective_sets_what_the_planner_plans_for() -> None:
    from at2_tune.tune import AT2Searcher

    assert AT2Searcher(prior=None).setup.settings.policy.objective == "model"
    searcher = AT2Searcher(prior=None, objective="configuration")
    assert searcher.setup.settings.policy.objective == "configuration"
    with pytest.raises(ValueError, match="objective='final' is not one of 'model', "
                                         "'configuration'"):
        AT2Searcher(prior=None, objective="final")
