"""Priors from the user's own Tune experiments: import, verify, add, inspect, and tune with."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import BasicVariantGenerator

from at2_tune.cli import main
from at2_tune.core.prior import PriorData
from at2_tune.databases.tune_import import ImportedTask, TrialCurve, build_database, \
    infer_space, read_tune_experiment, shared_configs
from at2_tune.databases.user import CURVES_FILE, META_FILE, SUMS_FILE, UserTask, \
    load_user_database, write_user_database
from at2_tune.errors import AT2Error, ChecksumError, DatabaseError, DatabaseNotFoundError

EPOCHS = 6
SPACE = {"lr": tune.loguniform(1e-4, 1e-1), "opt": {"name": tune.choice(["adam", "sgd"]),
                                                      "width": tune.uniform(0.0, 1.0)}}


def make_trainable(log_optimum: float):
    """A learning-curve formula with checkpoints (made in a closure: Ray pickles it by value)."""

    def trainable(config: dict[str, Any]) -> None:
        import json as json_
        import tempfile
        from pathlib import Path as Path_

        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                start = json_.loads((Path_(folder) / "e.json").read_text())["epoch"]
        peak = 0.9 - 0.1 * (math.log10(config["lr"]) - log_optimum) ** 2 \
            + 0.05 * config["opt"]["width"]
        for epoch in range(start + 1, EPOCHS + 1):
            with tempfile.TemporaryDirectory() as folder:
                (Path_(folder) / "e.json").write_text(json_.dumps({"epoch": epoch}))
                tune.report({"acc": peak * (1 - math.exp(-0.5 * epoch))},
                            checkpoint=tune.Checkpoint.from_directory(folder))

    return trainable


@pytest.fixture(scope="module")
def experiments(tmp_path_factory) -> Iterator[list[Path]]:
    """Two real Tune experiments (random search + ASHA, so some trials stop early); the tests
    that use them are marked ``integration``."""
    storage = tmp_path_factory.mktemp("tune")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    folders = []
    for index, optimum in enumerate((-2.5, -2.0)):
        tune.Tuner(make_trainable(optimum), param_space=SPACE, tune_config=tune.TuneConfig(
            metric="acc", mode="max", num_samples=8,
            search_alg=BasicVariantGenerator(random_state=100 + index),
            scheduler=ASHAScheduler(max_t=EPOCHS, grace_period=1, reduction_factor=2)),
            run_config=tune.RunConfig(name=f"exp{index}", storage_path=str(storage),
                                      verbose=0)).fit()
        folders.append(storage / f"exp{index}")
    yield folders
    ray.shutdown()


def _result_values(trial_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    return {r["training_iteration"]: r["acc"] for r in rows}


@pytest.mark.integration
def test_import_keeps_partial_curves_as_observed(experiments: list[Path], tmp_path: Path,
                                                 capsys) -> None:
    out = tmp_path / "db"
    assert main(["prior", "import", *map(str, experiments), "--metric", "acc", "--mode", "max",
                 "--task", "first,second", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    db = load_user_database(out)
    assert db.task_names == ("first", "second") and db.n_epochs == EPOCHS
    assert db.curves.shape == (2, 16, EPOCHS)  # 8 distinct configs per experiment, none shared
    assert shared_configs(db).tolist() == [[8, 0], [0, 8]]
    stopped = 0
    for task, folder in enumerate(experiments):
        for trial_dir in sorted(p.parent for p in folder.glob("*/params.json")):
            config = db.space.validate(json.loads((trial_dir / "params.json").read_text()))
            column = list(db.configs).index(config)
            values = _result_values(trial_dir)
            expected = [values.get(e, np.nan) for e in range(1, EPOCHS + 1)]
            np.testing.assert_array_equal(db.curves[task, column], expected)
            assert np.isnan(db.curves[1 - task, column]).all()
            stopped += len(values) < EPOCHS
    assert stopped >= 4  # ASHA stopped trials early: their later epochs stay NaN
    assert "first" in printed and "2 task(s), 16 configurations, 6 epochs" in printed
    assert "1 task pair(s) share no configuration" in printed


@pytest.mark.integration
def test_inferred_space(experiments: list[Path]) -> None:
    trials = read_tune_experiment(experiments[0], "acc")
    space = infer_space([t.config for t in trials])
    assert space.numeric_names == ("lr", "opt/width")
    lrs = [t.config["lr"] for t in trials]
    lr = space.parameter("lr")
    assert (lr.low, lr.high) == (min(lrs), max(lrs)) and lr.log == (max(lrs) / min(lrs) >= 20)
    assert space.parameter("opt/name").choices in (("adam", "sgd"), ("adam",), ("sgd",)) \
        or "opt/name" in space.constants


def test_infer_space_rules() -> None:
    configs = [{"a": 1, "b": 0.001, "c": "x", "d": True, "k": 5},
               {"a": 4, "b": 0.5, "c": "y", "d": False, "k": 5}]
    space = infer_space(configs)
    assert space.parameter("a").low == 1 and space.parameter("a").high == 4
    assert not space.parameter("a").log and space.parameter("b").log
    assert space.parameter("c").choices == ("x", "y")
    assert set(space.parameter("d").choices) == {False, True}
    assert space.constants == {"k": 5}
    with pytest.raises(AT2Error, match="appear in some trials only"):
        infer_space([{"a": 1}, {"a": 2, "b": 1.0}])


@pytest.mark.integration
def test_tampered_truncated_or_incomplete_databases_are_refused(experiments: list[Path],
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "db"
    main(["prior", "import", str(experiments[0]), "--metric", "acc", "--mode", "max",
          "--out", str(out)])
    curves = (out / CURVES_FILE).read_bytes()
    (out / CURVES_FILE).write_bytes(curves[:-1] + bytes([curves[-1] ^ 1]))
    with pytest.raises(ChecksumError, match="curves.npz has SHA-256 .* changed or truncated"):
        load_user_database(out)
    (out / CURVES_FILE).write_bytes(curves[: len(curves) // 2])
    with pytest.raises(ChecksumError, match="changed or truncated"):
        load_user_database(out)
    (out / CURVES_FILE).write_bytes(curves)
    meta = (out / META_FILE).read_text()
    (out / META_FILE).write_text(meta.replace('"acc"', '"loss"'))
    with pytest.raises(ChecksumError, match="database.json has SHA-256"):
        load_user_database(out)
    (out / META_FILE).write_text(meta)
    assert load_user_database(out).metric == "acc"  # restored: loads again
    (out / SUMS_FILE).unlink()
    with pytest.raises(DatabaseNotFoundError, match="SHA256SUMS is missing"):
        load_user_database(out)
    with pytest.raises(DatabaseNotFoundError, match="does not exist"):
        load_user_database(tmp_path / "nothing")


@pytest.mark.integration
def test_existing_output_is_not_overwritten(experiments: list[Path], tmp_path: Path,
                                            capsys) -> None:
    out = tmp_path / "db"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["prior", "import", str(experiments[0]), "--metric", "acc", "--mode", "max",
                 "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.integration
def test_unknown_metric_names_the_fields(experiments: list[Path], tmp_path: Path,
                                         capsys) -> None:
    assert main(["prior", "import", str(experiments[0]), "--metric", "accuracy", "--mode",
                 "max", "--out", str(tmp_path / "db")]) == 2
    err = capsys.readouterr().err
    assert "no trial of" in err and "reported 'accuracy'" in err and "acc" in err


def test_with_task_unions_configs_and_pads_epochs() -> None:
    first = TrialCurve("t0", {"x": 0.1}, {1: 0.5, 2: 0.6})
    db = build_database([ImportedTask("a", "src", [first, TrialCurve("t1", {"x": 0.9},
                                                                      {1: 0.4})])],
                        "acc", "max", "training_iteration", infer_space([{"x": 0.1}, {"x": 0.9}]))
    grown = db.with_task(UserTask("b", "run", 2), [{"x": 0.9}, {"x": 0.5}],
                         np.array([[0.7, 0.8, 0.9], [0.3, np.nan, np.nan]]))
    assert grown.configs == ({"x": 0.1}, {"x": 0.9}, {"x": 0.5})
    np.testing.assert_array_equal(grown.curves[0], [[0.5, 0.6, np.nan], [0.4, np.nan, np.nan],
                                                    [np.nan] * 3])
    np.testing.assert_array_equal(grown.curves[1], [[np.nan] * 3, [0.7, 0.8, 0.9],
                                                    [0.3, np.nan, np.nan]])
    with pytest.raises(AT2Error, match="task 'a' is already in the database"):
        grown.with_task(UserTask("a", "x", 1), [{"x": 0.1}], np.array([[0.1]]))


def test_min_mode_is_negated_for_at2(tmp_path: Path) -> None:
    db = build_database([ImportedTask("a", "s", [TrialCurve("t", {"x": 1.0}, {1: 2.0, 2: 1.5}),
                                                 TrialCurve("u", {"x": 3.0}, {1: 2.5})])],
                        "loss", "min", "training_iteration")
    write_user_database(db, tmp_path / "db")
    prior = PriorData.from_user_database(load_user_database(tmp_path / "db"))
    np.testing.assert_array_equal(prior.curves[0], [[-2.0, -1.5], [-2.5, np.nan]])
    with pytest.raises(DatabaseError, match="mode 'median'"):
        type(db)(db.space, "loss", "median", "t", db.tasks, db.configs, db.curves)


@pytest.mark.integration
def test_at2_tunes_a_related_task_with_the_imported_prior(experiments: list[Path],
                                                          tmp_path: Path) -> None:
    from at2_tune.tune import AT2Scheduler, AT2Searcher

    main(["prior", "import", *map(str, experiments), "--metric", "acc", "--mode", "max",
          "--out", str(tmp_path / "db")])
    db = load_user_database(tmp_path / "db")
    searcher = AT2Searcher(prior=str(tmp_path / "db"), max_epochs=EPOCHS, budget_epochs=10,
                           fit_cache=None, n_candidates=20)
    tune.Tuner(make_trainable(-2.2), param_space=SPACE, tune_config=tune.TuneConfig(
        metric="acc", mode="max", search_alg=searcher, scheduler=AT2Scheduler(searcher),
        num_samples=100, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "runs"), verbose=0)).fit()
    engine = searcher.coordinator.engine
    assert engine.prior.n_tasks == 2
    np.testing.assert_array_equal(np.isnan(engine.raw_prior.curves), np.isnan(db.curves))
    assert engine.candidates[:len(db.configs)] == [dict(c) for c in db.configs]
    assert len(engine.candidates) == len(db.configs) + 20
    assert searcher.coordinator.epochs_spent == 10
    first = next(iter(searcher.coordinator.trials.values())).candidate
    assert first < len(db.configs)  # the prior's curves decide the first trial


@pytest.mark.integration
def test_prior_metric_must_match_the_run(experiments: list[Path], tmp_path: Path) -> None:
    from at2_tune.tune import AT2Searcher

    main(["prior", "import", str(experiments[0]), "--metric", "acc", "--mode", "max",
          "--out", str(tmp_path / "db")])
    searcher = AT2Searcher(prior=str(tmp_path / "db"), metric="loss", mode="min",
                           max_epochs=EPOCHS, fit_cache=None)
    with pytest.raises(AT2Error, match="holds 'acc', but this run tunes 'loss'"):
        searcher._new_engine()


@pytest.mark.integration
def test_a_shorter_history_serves_a_longer_run(experiments: list[Path], tmp_path: Path) -> None:
    from at2_tune.tune import AT2Searcher

    main(["prior", "import", str(experiments[0]), "--metric", "acc", "--mode", "max",
          "--out", str(tmp_path / "db")])
    db = load_user_database(tmp_path / "db")
    for epochs in (EPOCHS + 3, 2):
        searcher = AT2Searcher(prior=str(tmp_path / "db"), metric="acc", mode="max",
                               max_epochs=epochs, fit_cache=None, n_candidates=5)
        curves = searcher._new_engine().raw_prior.curves
        assert curves.shape == (1, len(db.configs), epochs)
        kept = min(epochs, EPOCHS)
        np.testing.assert_array_equal(curves[..., :kept], db.curves[..., :kept])
        assert np.isnan(curves[..., kept:]).all()  # added epochs are unobserved, not filled
