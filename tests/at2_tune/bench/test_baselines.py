from collections import Counter

import numpy as np
import pytest

from at2_tune.bench import baselines
from at2_tune.databases import LearningCurveDatabase
from at2_tune.simulator import ReplayTask, resolve_task


def best_so_far(curves: np.ndarray, trained: list[int], budget: int) -> list[int]:
    """By hand: after each query, the config with the best value observed so far (ties: the
    earliest observation), padded to the budget with the last recommendation."""
    epochs: Counter = Counter()
    best, best_value, recommended = None, -np.inf, []
    for config in trained:
        epochs[config] += 1
        value = curves[config, epochs[config] - 1]
        if value > best_value:
            best, best_value = config, value
        recommended.append(best)
    return recommended + [recommended[-1]] * (budget - len(recommended))


def prior_order(db, task) -> list[int]:
    average = np.mean([db.ranks(t, task.seed_profile) for t in task.train_tasks], axis=0)
    return np.argsort(average, kind="stable").tolist()


# A tiny database: 6 configurations, 3 epochs; prior tasks P1, P2 and test task T.
# Final values P1 [.1 .9 .5 .7 .3 .2] -> ranks [5 0 2 1 3 4]; P2 [.2 .6 .9 .8 .1 .3] -> ranks
# [4 2 0 1 5 3]; average [4.5 1 1 1 4 3.5] -> order (ties by index) [1 2 3 5 4 0].
P1 = [0.1, 0.9, 0.5, 0.7, 0.3, 0.2]
P2 = [0.2, 0.6, 0.9, 0.8, 0.1, 0.3]
T = [[0.1, 0.2, 0.3],
     [0.5, 0.4, 0.6],
     [0.3, 0.7, 0.7],
     [0.5, 0.5, 0.8],
     [0.9, 0.9, 0.9],
     [0.2, 0.3, 0.4]]


@pytest.fixture(scope="module")
def tiny() -> LearningCurveDatabase:
    curves = np.array([[np.repeat(np.array(P1)[:, None], 3, axis=1),
                        np.repeat(np.array(P2)[:, None], 3, axis=1), np.array(T)]])
    configs = tuple({"id": i} for i in range(6))
    return LearningCurveDatabase("tiny", ("P1", "P2", "T"), configs, configs, curves, (),
                                 "hyperrec")


def tiny_task(budget: int, train_tasks=("P1", "P2")) -> ReplayTask:
    return ReplayTask("tiny", tuple(train_tasks), "T", 0, budget)


def test_tiny_zero_shot_picks_the_best_average_prior_rank_lowest_index_on_ties(tiny):
    assert baselines.prior_order(tiny, tiny_task(4), "x").tolist() == [1, 2, 3, 5, 4, 0]
    run = baselines.zero_shot(tiny, tiny_task(4))
    assert run == baselines.BaselineRun([1, 1, 1, 1], [])
    assert run.configs_touched == 0


def test_tiny_top3_round_robin_drops_finished_configs_and_pads(tiny):
    run = baselines.top_k_round_robin(tiny, tiny_task(10), k=3)
    # Epoch 1 of 1, 2, 3; epoch 2 of each; epoch 3 of each (each then leaves the rotation).
    assert run.trained == [1, 2, 3, 1, 2, 3, 1, 2, 3]
    # Values seen: .5 .3 .5(tie: keep 1) .4 .7(-> 2) .5 .6 .7(tie: keep 2) .8(-> 3); then padded.
    assert run.recommended == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert run.configs_touched == 3


def test_tiny_transfer_successive_halving_rungs(tiny):
    run = baselines.transfer_successive_halving(tiny, tiny_task(20), n=6)
    # Rung 1: 1 2 3 5 4 0 one epoch each (values .5 .3 .5 .2 .9 .1); the best 6 // 3 = 2 at
    # epoch 1 are 4 (.9) and 1 (.5, before 3 by order); rung 3 = the last epoch: 4 then 1.
    assert run.trained == [1, 2, 3, 5, 4, 0, 4, 4, 1, 1]
    assert run.recommended == [1] * 4 + [4] * 16
    survivor = baselines.transfer_successive_halving(tiny, tiny_task(20), n=3)
    # 1 2 3 at epoch 1 (.5 .3 .5): 1 survives alone and is trained to its last epoch.
    assert survivor.trained == [1, 2, 3, 1, 1]
    assert survivor.recommended == [1] * 20


def test_transfer_baselines_without_prior_tasks_raise(tiny):
    task = tiny_task(5, train_tasks=())
    for call in (lambda: baselines.zero_shot(tiny, task),
                 lambda: baselines.top_k_round_robin(tiny, task, 3),
                 lambda: baselines.transfer_successive_halving(tiny, task, 9)):
        with pytest.raises(ValueError, match="needs prior tasks.*train_tasks is empty"):
            call()
    # The baselines without transfer do not need them.
    assert len(baselines.one_epoch_screening(tiny, task, np.random.default_rng(0)).recommended) == 5


def test_top_k_round_robin_on_hyperrec_and_lcbench(hyperrec, lcbench):
    for db, k in ((hyperrec, 3), (lcbench, 5)):
        task = resolve_task(db, pair=0, budget=100)
        order = prior_order(db, task)
        run = baselines.top_k_round_robin(db, task, k)
        # Query i trains order[i mod k] at its next epoch (k * n_epochs > 100: none finishes).
        assert run.trained[:2 * k] == order[:k] * 2
        assert run.trained == [order[i % k] for i in range(100)]
        assert run.recommended == best_so_far(db.task_curves(task.test_task), run.trained, 100)
        assert run.configs_touched == k


def test_transfer_successive_halving_9_on_hyperrec_follows_the_rungs(hyperrec):
    task = resolve_task(hyperrec, pair=1, seed_profile=1, budget=100)
    curves = hyperrec.task_curves(task.test_task, 1)
    order = prior_order(hyperrec, task)[:9]
    run = baselines.transfer_successive_halving(hyperrec, task, 9)
    third = sorted(order, key=lambda c: -curves[c, 0])[:3]  # stable: ties keep the order
    survivor = sorted(third, key=lambda c: -curves[c, 2])[0]
    # 9 configs x 1 epoch, 3 configs to 3 epochs, then the survivor to its last epoch (75).
    assert run.trained == order + [c for c in third for _ in range(2)] + [survivor] * 72
    epochs = Counter(run.trained)
    assert sorted(epochs.values()) == [1] * 6 + [3, 3, 75]
    assert epochs[survivor] == 75 and len(run.trained) == 87
    assert run.recommended == best_so_far(curves, run.trained, 100)
    assert run.configs_touched == 9


def test_transfer_successive_halving_27_on_lcbench_stops_at_the_budget(lcbench):
    task = resolve_task(lcbench, pair=2, budget=100)
    run = baselines.transfer_successive_halving(lcbench, task, 27)
    # 27 x 1 + 9 x 2 + 3 x 6 = 63 queries, then the survivor trains epochs 10..46.
    assert sorted(Counter(run.trained).values()) == [1] * 18 + [3] * 6 + [9] * 2 + [46]
    assert run.trained[:27] == prior_order(lcbench, task)[:27]
    assert len(run.trained) == 100
    assert run.recommended == best_so_far(lcbench.task_curves(task.test_task), run.trained, 100)


def test_random_successive_halving_stops_when_its_survivor_reaches_its_rung(hyperrec):
    task = resolve_task(hyperrec, pair=0, budget=100)
    run = baselines.successive_halving(hyperrec, task, np.random.default_rng(3))
    assert run.trained[:27] == np.random.default_rng(3).choice(100, 27, replace=False).tolist()
    # 27 x 1 epoch, 9 to 3, 3 to 9, 1 to 27: 81 queries, then the recommendation is kept.
    assert sorted(Counter(run.trained).values()) == [1] * 18 + [3] * 6 + [9] * 2 + [27]
    assert len(run.trained) == 81
    assert run.recommended == best_so_far(hyperrec.task_curves("CIFAR100"), run.trained, 100)


def test_one_epoch_screening_trains_each_config_once_in_random_order(lcbench):
    task = resolve_task(lcbench, pair=3, budget=60)
    run = baselines.one_epoch_screening(lcbench, task, np.random.default_rng(5))
    assert run.trained == np.random.default_rng(5).permutation(100)[:60].tolist()
    first_epoch = lcbench.task_curves("phoneme")[:, 0]
    for query in (1, 30, 60):
        seen = run.trained[:query]
        assert run.recommended[query - 1] == seen[int(np.argmax(first_epoch[seen]))]


def test_weighted_round_robin_gives_the_prior_favourite_the_most_epochs(hyperrec):
    task = resolve_task(hyperrec, pair=0, budget=30)
    order = prior_order(hyperrec, task)[:4]
    run = baselines.top_k_round_robin(hyperrec, task, 4, decay=1.0)
    counts = Counter(run.trained)
    # shares 1 : 1/2 : 1/3 : 1/4 of 30 epochs (12/25 of them to the first): 14.4, 7.2, 4.8, 3.6
    assert [counts[c] for c in order] == [14, 7, 5, 4]
    # deficits share * (trained + 1) - epochs: query 3 owes .48 to place 2, .44 to place 0
    assert run.trained[:4] == [order[0], order[1], order[2], order[0]]
    assert run.recommended == best_so_far(hyperrec.task_curves(task.test_task), run.trained, 30)
    equal = baselines.top_k_round_robin(hyperrec, task, 4, decay=0.0)
    assert equal.trained == [order[i % 4] for i in range(30)]


@pytest.mark.parametrize("method", ["top3", "top4-weighted", "transfer-sh", "screening",
                                    "successive-halving"])
def test_baselines_run_on_k_slots_through_the_coordinator(hyperrec, method):
    task = resolve_task(hyperrec, pair=1, budget=40)
    one = baselines.BY_NAME[method](hyperrec, task, np.random.default_rng(2))
    four = baselines.BY_NAME[method](hyperrec, task, np.random.default_rng(2), 4)
    assert len(four.recommended) == 40 and len(four.trained) == len(one.trained)
    # the same configurations, the budget spent; which epochs fit in it depends on the slots
    # (4 slots train a rung's configurations, or 4 leaders, side by side at their own speeds)
    assert set(four.trained) == set(one.trained) and four.trained != one.trained
    if method == "transfer-sh":  # its rungs end within the budget: the same epochs each
        assert Counter(four.trained) == Counter(one.trained)
    assert four.recommended == best_so_far(hyperrec.task_curves(task.test_task), four.trained, 40)


def test_the_greedy_portfolio_by_hand():
    # 2 tasks x 4 configurations, higher is better. Ranks (1 = best): task 0 [1 2 3 4],
    # task 1 [4 1 3 2]: means [2.5 1.5 3 3] -> config 1. Capped at config 1's ranks (2, 1):
    # [1 2 2 2], [1 1 1 1]: means [1 1.5 1.5 1.5] -> config 0. Then every rank is capped at 1:
    # the rest are ranked afresh from their scores, [2 3] of task 0 and [3 2] of task 1 ->
    # ranks [1 2], [2 1], means equal: the lower index, 2, then 3.
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.1, 0.9, 0.5, 0.6]])
    assert baselines.greedy_portfolio(scores) == [1, 0, 2, 3]
    # an unobserved cell takes no part; a configuration nobody observed is never picked
    sparse = np.array([[0.9, np.nan, 0.5, np.nan], [np.nan, 0.8, 0.1, np.nan]])
    assert baselines.greedy_portfolio(sparse) == [0, 1, 2]


def test_the_portfolio_picks_what_syne_tunes_zero_shot_transfer_picks(hyperrec, lcbench):
    """Recorded with syne-tune 0.13.0 (the last release where ``ZeroShotTransfer`` works) in a
    throwaway environment: its first 20 picks on 6 cases of both databases."""
    from pathlib import Path
    import json

    from at2_tune.bench import protocols

    recorded = json.loads((Path(__file__).parent / "data" / "zero_shot_transfer_picks.json")
                          .read_text())["picks"]
    for key, picks in recorded.items():
        name, protocol, case_name = key.split(":")
        db = {"hyperrec": hyperrec, "lcbench": lcbench}[name]
        family = "subsets" if protocol.startswith("subsets") else protocol
        case = next(c for c in protocols.cases(db, family, prior_sizes=(2,), draws=1)
                    if c.name == case_name and c.protocol == protocol)
        task = resolve_task(db, train_tasks=case.train_tasks, test_task=case.test_task)
        assert baselines.greedy_portfolio(baselines.prior_best_values(db, task))[:20] == picks


def test_the_portfolio_trains_its_picks_one_after_another_to_the_last_epoch(lcbench):
    task = resolve_task(lcbench, pair=1, budget=100)
    run = baselines.portfolio(lcbench, task)
    picks = baselines.greedy_portfolio(baselines.prior_best_values(lcbench, task))
    epochs = lcbench.n_epochs
    assert run.trained == [picks[0]] * epochs + [picks[1]] * (100 - epochs)
    assert run.recommended == best_so_far(lcbench.task_curves(task.test_task), run.trained, 100)
