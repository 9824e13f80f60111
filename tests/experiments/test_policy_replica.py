"""The fit-free replica makes the engine's decisions, query by query."""

import dataclasses

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


@pytest.mark.parametrize("kernel", ["fixed", "prior"])
def test_replica_queries_and_recommendations_equal_the_engines(hyperrec, kernel):
    pair = hyperrec.pair(1)
    prior = PriorData.from_database(hyperrec, pair.train_tasks, seed_profile=0)
    curves = hyperrec.task_curves(pair.test_task, 0)
    settings = dataclasses.replace(TINY, residual_kernel=kernel)
    expected = _engine_run(hyperrec, prior, curves, settings, 40)
    assert replay(prior, curves, settings, 40) == expected
    assert len(set(expected[0])) >= 3  # the leaders rotate: a real comparison


def test_settings_where_the_gp_decides_are_refused(hyperrec):
    prior = PriorData.from_database(hyperrec, ["CIFAR10", "CIFAR100", "SCENE15"], seed_profile=0)
    with pytest.raises(ValueError, match="acquisition='thompson'.*replay_benchmark"):
        replay(prior, hyperrec.task_curves("SOP", 0), AT2Settings(acquisition="thompson"), 5)


def test_leave_one_task_out_table_has_every_case_and_the_paired_difference(lcbench):
    ranks = loo_ranks(lcbench, AT2Settings(), budget=10)
    assert {m: v.shape for m, v in ranks.items()} == {m: (35, 1) for m in ranks}
    text = table(ranks, (10,))
    assert "| replica - best baseline |" in text and "(top3)" in text


@pytest.mark.parametrize("assignment, message", [
    ("leaders=x", "--set: setting 'leaders=x': the value 'x' is not JSON"),
    ('acquisition="thompson"', "--set: AT2Settings.acquisition='thompson': the replica only"),
])
def test_bad_set_options_are_usage_errors(assignment, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--database", "lcbench", "--set", assignment])
    assert stop.value.code == 2 and message in capsys.readouterr().err
