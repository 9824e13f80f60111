"""The fit-free replica makes the engine's decisions, query by query."""

import dataclasses
import json

import pytest

from at2_tune.core.engine import AT2Engine
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from experiments.policy_replica import loo_ranks, main, replay, table
from search_spaces import get_space

TINY = AT2Settings(n_inducing=32, offline_epochs=2, hidden_dim=8, feature_dim=4)


def _engine_run(db, prior, curves, settings, budget):
    engine = AT2Engine(get_space(db.space_name), prior, settings, seed=0)
    engine.condition()
    trained, recommended = [], []
    for _ in range(budget):
        query = engine.next_query()
        value = float(curves[query.candidate, query.epoch - 1])
        engine.observe(query.candidate, query.epoch, value)
        engine.condition()
        trained.append(query.candidate)
        recommended.append(engine.recommend())
    return trained, recommended


@pytest.mark.parametrize("changes", [
    {"residual_kernel": "fixed"}, {"residual_kernel": "prior"}, {"residual_min_epochs": 1},
    {"transfer_mean": "prior_quantile"},
    {"acquisition": "expected_improvement", "recommend_from": "observed"},
    {"acquisition": "thompson", "recommend_from": "all", "residual_kernel": "fixed"},
    {"acquisition": "mf_pi", "recommend_from": "observed"}])
def test_replica_queries_and_recommendations_equal_the_engines(hyperrec, changes):
    pair = hyperrec.pair(1)
    prior = PriorData.from_database(hyperrec, pair.train_tasks, seed_profile=0)
    curves = hyperrec.task_curves(pair.test_task, 0)
    settings = dataclasses.replace(TINY, **changes)
    expected = _engine_run(hyperrec, prior, curves, settings, 30)
    assert replay(prior, curves, settings, 30) == expected
    assert len(set(expected[0])) >= 3  # the policy moves between configurations: a real test


def test_settings_where_the_gp_decides_are_refused(hyperrec):
    prior = PriorData.from_database(hyperrec, ["CIFAR10", "CIFAR100", "SCENE15"], seed_profile=0)
    curves = hyperrec.task_curves("SOP", 0)
    gp_std = AT2Settings(acquisition="thompson", transfer_std="gp")
    with pytest.raises(ValueError, match="acquisition='thompson' uses the posterior std.*"
                                         "transfer_std='gp'.*replay_benchmark"):
        replay(prior, curves, gp_std, 5)
    with pytest.raises(ValueError, match="transfer_mean='gp'.*replay_benchmark"):
        replay(prior, curves, AT2Settings(transfer_mean="gp"), 5)


def test_leave_one_task_out_table_has_every_case_and_the_paired_difference(lcbench):
    ranks = loo_ranks(lcbench, AT2Settings(), budget=10)
    assert {m: v.shape for m, v in ranks.items()} == {m: (35, 1) for m in ranks}
    text = table(ranks, (10,))
    assert "| replica - best baseline |" in text and "(top3)" in text


def test_subsets_protocol_prints_a_table_per_prior_size(release_dir, tmp_path, capsys):
    out = tmp_path / "ranks.json"
    assert main(["--database", "lcbench", "--protocol", "subsets", "--prior-sizes", "3,6",
                 "--draws", "1", "--budget", "10", "--data-dir", str(release_dir),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## lcbench, subsets-3 (35 cases)" in printed and "## lcbench, subsets-6 (35 cases)" \
        in printed
    results = json.loads(out.read_text())["ranks"]["lcbench"]
    assert set(results) == {"subsets-3", "subsets-6"}
    assert {len(v) for r in results.values() for v in r.values()} == {35}
    assert results["subsets-3"]["top3"] != results["subsets-6"]["top3"]  # other priors


@pytest.mark.parametrize("assignment, message", [
    ("leaders=x", "--set: setting 'leaders=x': the value 'x' is not JSON"),
    ('calibrate=true', "--set: AT2Settings.calibrate=True: the replica only"),
])
def test_bad_set_options_are_usage_errors(assignment, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--database", "lcbench", "--set", assignment])
    assert stop.value.code == 2 and message in capsys.readouterr().err
