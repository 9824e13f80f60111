"""Bench runs through real Ray Tune (local Ray): every method spends exactly its budget, the
command writes a valid, resumable summary, warm starts and seeds do what they say."""

import json

import pytest

ray = pytest.importorskip("ray")

from at2_tune import cli
from at2_tune.bench import baselines  # noqa: E402
from at2_tune.bench import methods as bench_methods  # noqa: E402
from at2_tune.bench.runs import Job, plan, run_job  # noqa: E402
from at2_tune.errors import AT2Error  # noqa: E402
from at2_tune.simulator import resolve_task  # noqa: E402

pytestmark = pytest.mark.integration  # local Ray for the whole module


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _job(db, method, budget=12, seed=0, concurrency=2, prior=True):
    pair = db.pair(0)
    return Job(db.name, "pairs", f"{pair.test_task}@sp0", pair.test_task, 0,
               tuple(pair.train_tasks) if prior else (), method, seed, budget, concurrency)


@pytest.mark.parametrize("method", ["hyperband", "bohb", "optuna"])
def test_ray_methods_spend_exactly_the_budget_on_database_configs(hyperrec, release_dir, method):
    document = run_job(_job(hyperrec, method, prior=False), hyperrec, str(release_dir))
    trace = document["trace"]
    assert len(trace) == 12 and trace[-1]["epochs_spent"] == 12
    assert all(0 <= row["config_id"] < hyperrec.n_configs for row in trace)
    curves = hyperrec.task_curves("CIFAR100", 0)
    assert all(row["value"] == pytest.approx(curves[row["config_id"], row["epoch"] - 1])
               for row in trace)
    best = max(trace, key=lambda row: row["value"])  # the first of the best values
    assert trace[-1]["recommended_config_id"] == best["config_id"]


def test_optuna_warm_starts_from_the_priors_best_configurations(hyperrec, release_dir):
    # one slot: ASHA promotes the first trial at every rung (nothing to compare with) to its
    # 75th epoch; then the second trial starts
    document = run_job(_job(hyperrec, "optuna-warm", budget=80, concurrency=1), hyperrec,
                       str(release_dir))
    first_epochs = [row["config_id"] for row in document["trace"] if row["epoch"] == 1]
    order = baselines.prior_order(hyperrec, resolve_task(hyperrec, pair=0), "test")
    assert first_epochs[:2] == [int(order[0]), int(order[1])]
    assert [row["epoch"] for row in document["trace"][:76]] == [*range(1, 76), 1]


def test_random_search_is_reproducible_per_seed(hyperrec, release_dir):
    runs = [run_job(_job(hyperrec, "random", budget=8, seed=s, concurrency=1, prior=False),
                    hyperrec, str(release_dir))["trace"] for s in (3, 3, 4)]
    configs = [[row["config_id"] for row in trace] for trace in runs]
    assert configs[0] == configs[1] and configs[0] != configs[2]
    assert [row["epoch"] for row in runs[0]] == list(range(1, 9))  # FIFO: one trial to the end


def test_at2_through_the_bench_keeps_its_own_recommendation(hyperrec, release_dir,
                                                           fast_settings):
    document = run_job(_job(hyperrec, "at2", budget=10), hyperrec, str(release_dir),
                       settings=fast_settings)
    assert document["method"] == "at2" and document["backend"] == "ray"
    assert len(document["trace"]) == 10
    assert document["timing"]["overhead_s_per_query"] > 0


def test_a_tiny_bench_writes_a_valid_resumable_summary(hyperrec, release_dir, tmp_path, capsys):
    argv = ["bench", "--database", "hyperrec", "--pairs", "0", "--seed-profiles", "0",
            "--methods", "asha,top3", "--budget", "10", "--repeats", "1", "--concurrency", "2",
            "--data-dir", str(release_dir), "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["budget"] == 10 and summary["protocol"] == "pairs"
    assert list(summary["methods"]) == ["asha", "top3"]
    task = resolve_task(hyperrec, pair=0, budget=10)
    top3 = baselines.top_k_round_robin(hyperrec, task, 3)
    for name, entry in summary["methods"].items():
        assert {"rank@10", "regret@10", "rank_se@10", "regret_se@10", "runs",
                "overhead_s_per_query"} <= set(entry)
        assert "rank@25" not in entry  # checkpoints above the budget are left out
        assert entry["runs"] == 1 and entry["epochs_spent"] == 10
    assert summary["methods"]["top3"]["rank@10"] == hyperrec.rank("CIFAR100",
                                                                  top3.recommended[9], 0)
    runs = sorted((tmp_path / "runs").glob("*.json"))
    assert len(runs) == 2
    assert all(len(json.loads(p.read_text())["trace"]) == 10 for p in runs)
    for plot in ("regret", "average_rank", "tasks_rank", "tasks_regret"):
        assert (tmp_path / "plots" / f"{plot}.png").stat().st_size > 10_000
    assert "| asha | 1 | 1 |" in (tmp_path / "summary.md").read_text()
    stamps = [p.stat().st_mtime_ns for p in runs]
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert "2 runs already in" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in runs] == stamps


def test_plan_runs_deterministic_methods_once_and_drops_the_prior_where_unused(hyperrec):
    jobs = plan(hyperrec, "pairs", ["top3", "asha", "at2"], budget=10, repeats=3,
                concurrency=2, pairs=[0, 1], seed_profiles=[0])
    counts = {m: sum(j.method == m for j in jobs) for m in ("top3", "asha", "at2")}
    assert counts == {"top3": 2, "asha": 6, "at2": 6}
    assert jobs[0].method == "at2"  # the longest first
    assert all(j.train_tasks == () for j in jobs if j.method == "asha")
    assert all(len(j.train_tasks) == 4 for j in jobs if j.method != "asha")
    assert len({j.key for j in jobs}) == len(jobs)


def test_bad_bench_input_is_refused_with_the_fix():
    with pytest.raises(AT2Error, match="unknown bench method 'tpe'; choose from at2"):
        bench_methods.check_methods(["at2", "tpe"])
    assert bench_methods.check_methods(["AT2", " top3", "at2"]) == ["at2", "top3"]
    assert cli.main(["bench", "--database", "hyperrec", "--budget", "0", "--out", "x"]) == 2


def test_the_histories_protocol_plans_random_priors_with_their_history_options(lcbench):
    history = {"configs": 10, "overlap": "none", "scheduler": "asha", "draw_seed": 3}
    jobs = plan(lcbench, "histories", ["at2", "top3", "asha"], budget=20, repeats=1,
                concurrency=1, tasks=["adult", "kc1"], prior_sizes=[2, 4], draws=2,
                history=history)
    assert len(jobs) == 2 * 2 * 2 * 3  # tasks x sizes x draws x methods
    assert {j.protocol for j in jobs} == {"histories-2", "histories-4"}
    assert all(j.history == history and len(j.train_tasks) == int(j.protocol[-1])
               for j in jobs if j.method != "asha")
    assert all(j.history == {} and j.train_tasks == () for j in jobs if j.method == "asha")
    other = plan(lcbench, "histories", ["at2"], budget=20, repeats=1, concurrency=1,
                 tasks=["adult"], prior_sizes=[2], draws=1, history={**history, "configs": 11})
    assert other[0].key != jobs[0].key  # the history options are part of the run's key
    with pytest.raises(ValueError, match="the histories protocol, and only it"):
        plan(lcbench, "loo", ["at2"], budget=20, repeats=1, concurrency=1, history=history)


def test_the_histories_protocol_runs_at2_and_the_baselines_on_the_same_histories(
        lcbench, release_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--database", "lcbench", "--protocol", "histories", "--tasks", "adult",
            "--prior-sizes", "4", "--history-configs", "10", "--methods",
            "at2,top3,portfolio,zero-shot", "--budget", "12", "--repeats", "1",
            "--data-dir", str(release_dir), "--out", str(out)]
    assert cli.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "histories" and list(summary["prior_sizes"]) == ["histories-4"]
    assert summary["history"] == {"configs": 10, "overlap": "independent", "scheduler": "asha",
                                  "draw_seed": 0}
    assert (out / "plots" / "histories-4" / "regret.png").stat().st_size > 1000  # per size
    sources = summary["prior_sizes"]["histories-4"]["at2_decisions"]
    assert set(sources) == {"observed_cell", "beyond_history", "new_config"}
    assert sum(sources.values()) == pytest.approx(1.0)
    documents = {json.loads(p.read_text())["method"]: json.loads(p.read_text())
                 for p in (out / "runs").glob("*.json")}
    assert set(documents) == {"at2", "top3", "portfolio", "zero-shot"}
    # every transfer baseline only trains what the histories trained
    from at2_tune.bench.histories import case_history
    from at2_tune.bench.harness import Job

    job = Job(**{**documents["top3"]["job"], "train_tasks": tuple(documents["top3"]["job"]
                                                                   ["train_tasks"])})
    history = case_history(lcbench, job, tmp_path / "history")
    order = history.order_of(lcbench.configs)
    trained = [row["config_id"] for row in documents["top3"]["trace"]]
    assert trained == [order[i % 3] for i in range(12)]
    assert documents["zero-shot"]["trace"][0]["recommended_config_id"] == order[0]
    at2 = [row["config_id"] for row in documents["at2"]["trace"]]
    assert len(at2) == 12 and len(set(at2)) >= 2
