"""The replay benchmark harness end to end, with cheap baselines only (AT2 runs take minutes)."""

import json

import numpy as np
import pytest

from at2_tune import evaluation
from at2_tune.bench import protocols
from experiments.replay_benchmark import evaluated, main


def _prior_order(db, train_tasks, profile=0):
    return np.argsort(np.mean([db.ranks(t, profile) for t in train_tasks], axis=0),
                      kind="stable").tolist()


def _trained(run):
    return [row["config_id"] for row in run["trace"] if row["config_id"] is not None]


def _recommended(run):
    return [row["recommended_config_id"] for row in run["trace"]]


def _ranks(run):
    return [row["rank"] for row in run["trace"]]


def _files(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_pairs_benchmark_writes_runs_resumes_and_reports(hyperrec, release_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["--methods", "zero-shot,top3", "--protocol", "pairs", "--pairs", "0", "--budget", "10",
            "--database", "hyperrec", "--seed-profiles", "0", "--jobs", "1",
            "--data-dir", str(release_dir), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    runs = {json.loads(p.read_text())["method"]: json.loads(p.read_text())
            for p in (out / "runs").glob("*.json")}
    assert set(runs) == {"zero-shot", "top3"} and len(list((out / "runs").iterdir())) == 2
    pair = hyperrec.pair(0)
    order = _prior_order(hyperrec, pair.train_tasks)
    ranks, final = hyperrec.ranks("CIFAR100"), hyperrec.final_values("CIFAR100")
    top3 = runs["top3"]  # the bench's run document: one trace row per epoch
    assert _trained(top3) == [order[i % 3] for i in range(10)]
    assert [row["epoch"] for row in top3["trace"]] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert top3["train_tasks"] == list(pair.train_tasks) and top3["test_task"] == "CIFAR100"
    assert _ranks(top3) == [int(ranks[c]) for c in _recommended(top3)]
    judged = evaluated({**top3, "protocol": "pairs", "case": "0"}, str(release_dir))
    assert judged["regrets"] == pytest.approx(
        [(final.max() - final[c]) / (final.max() - final.min()) for c in _recommended(top3)])
    held = np.maximum.accumulate([row["value"] for row in top3["trace"]])
    assert judged["held_regrets"] == pytest.approx((final.max() - held) / (final.max() - final.min()))
    assert top3["method"] == "top3" and top3["backend"] == "in-process"
    assert _recommended(runs["zero-shot"]) == [order[0]] * 10
    assert _trained(runs["zero-shot"]) == []
    assert runs["top3"]["timing"]["query_s_median"] is None and runs["top3"]["peak_rss_mb"] > 0

    summary = json.loads((out / "summary.json").read_text())
    zero_shot = summary["hyperrec"]["pairs"]["zero-shot"]
    assert zero_shot["rank@10"] == ranks[order[0]] and zero_shot["cases"] == 1
    assert summary["hyperrec"]["pairs"]["top3"]["rank@10"] == _ranks(top3)[9]
    assert summary["hyperrec"]["pairs"]["top3"]["touched"] == 3
    assert "rank@25" not in zero_shot  # beyond the budget
    markdown = (out / "summary.md").read_text()
    assert markdown.strip() in printed and "| top3 | 1 | 1 |" in markdown

    before = _files(out / "runs")
    assert main(argv) == 0  # every run file exists: nothing runs again
    assert _files(out / "runs") == before
    assert json.loads((out / "summary.json").read_text()) == summary
    (out / "summary.json").unlink()
    assert main(argv + ["--report-only"]) == 0
    assert json.loads((out / "summary.json").read_text()) == summary
    assert _files(out / "runs") == before


def test_loo_runs_share_the_random_baselines_with_pairs(lcbench, release_dir, tmp_path):
    out = tmp_path / "bench"
    argv = ["--database", "lcbench", "--protocol", "pairs", "--protocol", "loo", "--pairs", "0",
            "--tasks", "adult,kc1", "--methods", "zero-shot,screening", "--baseline-seeds", "2",
            "--budget", "12", "--jobs", "1", "--data-dir", str(release_dir), "--out", str(out)]
    assert main(argv) == 0
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    # zero-shot: adult with the pair's 4 prior tasks, adult and kc1 with the 34 others;
    # screening (no prior): adult and kc1, 2 seeds each, shared by both protocols.
    assert sorted((r["method"], r["test_task"], len(r["train_tasks"]), r["seed"]) for r in runs) == [
        ("screening", "adult", 0, 0), ("screening", "adult", 0, 1),
        ("screening", "kc1", 0, 0), ("screening", "kc1", 0, 1),
        ("zero-shot", "adult", 4, 0), ("zero-shot", "adult", 34, 0), ("zero-shot", "kc1", 34, 0)]
    summary = json.loads((out / "summary.json").read_text())
    loo = summary["lcbench"]["loo"]
    assert loo["screening"]["cases"] == 2 and loo["screening"]["seeds"] == 2
    assert loo["screening"]["rank@10"] == pytest.approx(np.mean(
        [_ranks(r)[9] for r in runs if r["method"] == "screening"]))
    assert summary["lcbench"]["pairs"]["screening"]["cases"] == 1
    zero_shot = [loo["zero-shot"]["rank@10"], loo["zero-shot"]["rank_se@10"]]
    by_case = [lcbench.rank(t, _prior_order(lcbench, lcbench.tasks_excluding([t]))[0])
               for t in ("adult", "kc1")]
    assert zero_shot == [pytest.approx(np.mean(by_case)),
                         pytest.approx(evaluation.standard_error(by_case))]


def test_bad_options_are_one_line_errors(release_dir, tmp_path, capsys):
    common = ["--data-dir", str(release_dir), "--out", str(tmp_path), "--database", "hyperrec"]
    assert main(common + ["--protocol", "loo", "--tasks", "CIFAR1000"]) == 2
    assert "Did you mean 'CIFAR100'" in capsys.readouterr().err
    assert main(common + ["--methods", "at2", "--set", "betta=1"]) == 2
    assert "setting 'betta=1': expected FIELD=JSON with FIELD one of" in capsys.readouterr().err
    assert main(common + ["--report-only", "--methods", "zero-shot"]) == 1
    assert "no run file" in capsys.readouterr().err
    assert main(common + ["--protocol", "subsets", "--prior-sizes", "27"]) == 2
    assert "prior size 27 is not between 1 and 26" in capsys.readouterr().err


def test_subsets_protocol_reports_each_prior_size_apart(lcbench, release_dir, tmp_path):
    out = tmp_path / "bench"
    argv = ["--database", "lcbench", "--protocol", "subsets", "--prior-sizes", "2,5",
            "--draws", "2", "--tasks", "adult", "--methods", "zero-shot,screening",
            "--baseline-seeds", "1", "--budget", "10", "--jobs", "1",
            "--data-dir", str(release_dir), "--out", str(out)]
    assert main(argv) == 0
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    zero_shot = {tuple(r["train_tasks"]): r for r in runs if r["method"] == "zero-shot"}
    expected = {c.train_tasks: c for c in protocols.cases(
        lcbench, "subsets", tasks=["adult"], prior_sizes=(2, 5), draws=2)}
    assert set(zero_shot) == set(expected) and len(expected) == 4
    for prior, run in zero_shot.items():
        assert _recommended(run) == [_prior_order(lcbench, prior)[0]] * 10
    assert [r["method"] for r in runs].count("screening") == 1  # no prior: one run for all
    summary = json.loads((out / "summary.json").read_text())["lcbench"]
    assert set(summary) == {"subsets-2", "subsets-5"}
    for size in (2, 5):
        entry = summary[f"subsets-{size}"]
        assert entry["zero-shot"]["cases"] == 2 and entry["screening"]["cases"] == 2
        ranks = [_ranks(r)[9] for p, r in zero_shot.items() if len(p) == size]
        assert entry["zero-shot"]["rank@10"] == pytest.approx(np.mean(ranks))


def test_histories_protocol_runs_the_baselines_on_the_cases_and_histories_of_bench(
        lcbench, release_dir, tmp_path):
    from at2_tune.bench import runs as bench_runs
    from at2_tune.simulator import resolve_task

    out = tmp_path / "bench"
    argv = ["--database", "lcbench", "--protocol", "histories", "--prior-sizes", "3",
            "--draws", "1", "--tasks", "adult", "--history-configs", "10", "--draw-seed", "2",
            "--methods", "top3,portfolio", "--budget", "12", "--seed-profiles", "0",
            "--jobs", "1", "--data-dir", str(release_dir), "--out", str(out)]
    assert main(argv) == 0
    runs = {r["method"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}
    history = {"configs": 10, "overlap": "independent", "scheduler": "asha", "draw_seed": 2}
    bench_jobs = bench_runs.plan(lcbench, "histories", ["top3", "portfolio"], budget=12,
                                 repeats=1, concurrency=1, tasks=["adult"], prior_sizes=[3],
                                 seed_profiles=[0], history=history)
    assert {j.method for j in bench_jobs} == set(runs) == {"top3", "portfolio"}
    for job in bench_jobs:
        run = runs[job.method]
        assert run["job"]["history"] == history and run["train_tasks"] == list(job.train_tasks)
        task = resolve_task(lcbench, train_tasks=job.train_tasks, test_task="adult",
                            seed_profile=0, budget=12)
        expected = bench_runs.history_baseline(job.method, lcbench, task,
                                               bench_runs.history_prior(job, lcbench), 1)
        assert _trained(run) == expected.trained
        assert _recommended(run) == expected.recommended[:12]
    assert len(set(_trained(runs["top3"]))) == 3
    summary = json.loads((out / "summary.json").read_text())["lcbench"]
    assert summary["histories-3"]["top3"]["cases"] == 1
