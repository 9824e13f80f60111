"""Acquisitions and policies against hand-made posteriors (no model, no data release)."""

import numpy as np
import pytest

from at2_tune.core import acquisition as acq
from at2_tune.core.policies import (BestObserved, BudgetedFreezeThaw, LeadersRoundRobin,
                                    Situation, fits_beside_better)
from at2_tune.core.policy_registry import POLICIES, build_policy
from at2_tune.core.posterior import CurvePosterior
from at2_tune.core.settings import PolicySettings
from at2_tune.errors import AT2Error

# 3 candidates x 4 epochs
MEAN = np.array([[0.1, 0.3, 0.5, 0.6],
                 [0.2, 0.4, 0.45, 0.4],
                 [0.0, 0.1, 0.2, 0.3]])
STD = np.array([[0.1, 0.1, 0.2, 0.3],
                [0.05, 0.05, 0.05, 0.05],
                [0.5, 0.5, 0.5, 0.5]])
POSTERIOR = CurvePosterior(MEAN, STD)


def situation(trained, open_=None, failed=(), prior_trained=None):
    """A :class:`Situation` of candidates with ``trained`` epochs out of 4."""
    trained = np.asarray(trained)
    n = trained.size
    open_ = np.array([c for c in range(n) if c not in failed and trained[c] < 4]
                     if open_ is None else open_, dtype=np.int64)
    eligible = np.array([c for c in range(n) if c not in failed], dtype=np.int64)
    prior_trained = np.ones(n, bool) if prior_trained is None else np.asarray(prior_trained)
    return Situation(open_, trained[open_] + 1, eligible, trained, prior_trained)


def test_next_epoch_ucb_reads_the_next_epoch_only():
    score = acq.NextEpochUCB(beta=2.0)(POSTERIOR, np.array([0, 1, 2]), np.array([1, 3, 4]))
    np.testing.assert_allclose(score, [0.1 + 0.2, 0.45 + 0.1, 0.3 + 1.0])


def test_expected_improvement_by_hand():
    # N(0.5, 0.1^2) over 0.5: 0.1 * pdf(0); over 0.7: 0.1 * (-2 cdf(-2) + pdf(2)); std 0: the gap
    ei = acq.expected_improvement(np.array([0.5, 0.5, 0.9, 0.3]), np.array([0.1, 0.1, 0.0, 0.0]),
                                  0.5)
    np.testing.assert_allclose(ei, [0.1 * 0.3989422804, 0.1 * 0.3989422804, 0.4, 0.0])
    above = acq.expected_improvement(np.array([0.5]), np.array([0.1]), 0.7)
    np.testing.assert_allclose(above, 0.1 * (-2 * 0.0227501319 + 0.0539909665), rtol=1e-8)


def test_improvement_per_epoch_is_the_best_rate_within_the_epochs_left():
    # candidate 0 from epoch 1: EI over 0.5 of epochs 1..4 is (0, 0, 0, 0.1 + 0.3 * EI_z) ...
    incumbent = 0.5
    ei = acq.expected_improvement(MEAN, STD, incumbent)
    score = acq.ImprovementPerEpoch(incumbent, epochs_left=4)(POSTERIOR, np.array([0, 1, 2]),
                                                              np.array([1, 3, 2]))
    expected = [max(ei[0, j] / (j + 1) for j in range(4)),
                max(ei[1, 2] / 1, ei[1, 3] / 2),
                max(ei[2, j] / j for j in range(1, 4))]
    np.testing.assert_allclose(score, expected)
    # with one epoch left only the next epoch counts: candidate 0's epoch 1 (EI ~ 0)
    short = acq.ImprovementPerEpoch(incumbent, epochs_left=1)(POSTERIOR, np.array([0, 1, 2]),
                                                              np.array([1, 3, 2]))
    np.testing.assert_allclose(short, [ei[0, 0], ei[1, 2], ei[2, 1]])
    assert np.argmax(score) == 2 and np.argmax(short) == 2


def test_improvement_per_epoch_of_each_horizon_by_hand():
    incumbent = 0.5
    ei = acq.expected_improvement(MEAN, STD, incumbent)
    acquisition = acq.ImprovementPerEpoch(incumbent, epochs_left=4)
    candidates, next_epochs = np.array([0, 1, 2]), np.array([1, 3, 2])
    per_epoch = acquisition.per_epoch(POSTERIOR, candidates, next_epochs)
    # row: h = 1..4 more epochs; candidate 1 from epoch 3 has 2 epochs left, candidate 2 three
    np.testing.assert_allclose(per_epoch[0], ei[0] / np.arange(1, 5))
    np.testing.assert_allclose(per_epoch[1], [ei[1, 2], ei[1, 3] / 2, -np.inf, -np.inf])
    np.testing.assert_allclose(per_epoch[2], [ei[2, 1], ei[2, 2] / 2, ei[2, 3] / 3, -np.inf])
    np.testing.assert_allclose(acquisition(POSTERIOR, candidates, next_epochs),
                               per_epoch.max(axis=1))


def test_fits_beside_better_keeps_the_epochs_a_better_candidate_is_worth():
    inf = np.inf
    per_epoch = np.array([[1.0, 2.0, 3.0, 2.5, 1.5, 1.0],  # score 3 at h = 3; >= 2 up to h = 4
                          [2.0, 1.0, 0.5, -inf, -inf, -inf],  # score 2 at h = 1
                          [0.1, 0.5, 1.5, 1.4, 1.3, 1.2],  # score 1.5 at h = 3
                          [1.0, 0.2, 0.1, 0.1, 0.1, 0.1]])  # score 1 at h = 1
    # the first claims 4 epochs (not only its 3), the second 1: the third's 3 do not fit in
    # 7 beside those 5, the fourth's 1 does
    np.testing.assert_array_equal(fits_beside_better(per_epoch, 7), [True, True, False, True])
    np.testing.assert_array_equal(fits_beside_better(per_epoch, 8), [True, True, True, False])
    np.testing.assert_array_equal(fits_beside_better(per_epoch, 4), [True, False, False, False])
    # the first is kept even beyond the budget
    np.testing.assert_array_equal(fits_beside_better(np.array([[0.0, 0.0, 5.0], [4.0, 0.0, 0.0]]),
                                                     2), [True, False])


def _freeze_thaw_case():
    """20 epochs. Candidate 0, trained 5 (best observed 0.62), jumps to 1.0 at its last epoch:
    its rate is best over 15 more epochs. Candidate 1 (fresh) is flat at 0.55 +- 0.1: best
    after 1 epoch. Candidate 2 (fresh) jumps from 0.5 to 0.8 at epoch 12: best after 12."""
    mean = np.full((3, 20), 0.6)
    mean[0, -1] = 1.0
    mean[1] = 0.55
    mean[2, :11], mean[2, 11:] = 0.5, 0.8
    std = np.full((3, 20), 0.01)
    std[1] = 0.1
    trained = np.array([5, 0, 0])
    return CurvePosterior(mean, std), Situation(np.arange(3), trained + 1, np.arange(3),
                                                trained, np.zeros(3, bool), 0.62)


@pytest.mark.parametrize("budget, slots, order", [
    (45, 4, [0, 2, 1]),  # every plan fits: 15 + 12 + 1 epochs
    (25, 4, [0, 1]),  # 20 epochs left: candidate 2's 12 do not fit beside candidate 0's 15
    (25, 1, [0, 2, 1]),  # one slot: the order is the scores' alone
])
def test_no_prior_policy_fills_a_slot_only_with_epochs_the_budget_has_left(budget, slots, order):
    posterior, case = _freeze_thaw_case()
    acquisition = acq.ImprovementPerEpoch(0.62, epochs_left=20)
    horizons = acquisition.per_epoch(posterior, case.open, case.next_epochs).argmax(axis=1) + 1
    np.testing.assert_array_equal(horizons, [15, 1, 12])
    policy = BudgetedFreezeThaw(seed=0)
    policy.plan(np.empty((0, 3, 20)), [None] * 3, budget, slots)
    assert policy.order(posterior, case) == order


def test_the_best_value_is_the_peak_of_the_mean_curve_and_select_picks_cells():
    mean, std = POSTERIOR.best_value()
    np.testing.assert_allclose(mean, [0.6, 0.45, 0.3])
    np.testing.assert_allclose(std, [0.3, 0.05, 0.5])
    part = POSTERIOR.select([2, 0], [1, 4])
    np.testing.assert_array_equal(part.mean, [[0.0, 0.3], [0.1, 0.6]])
    np.testing.assert_array_equal(part.std, [[0.5, 0.5], [0.1, 0.3]])


def test_owed_epochs_by_hand():
    # shares 2/3 and 1/3 of (3 trained + 1): owed 8/3 - 2 and 4/3 - 1
    np.testing.assert_allclose(acq.owed_epochs([2.0, 1.0], [2, 1]), [2 / 3, 1 / 3])
    np.testing.assert_allclose(acq.owed_epochs([1.0, 0.0, 1.0], [1, 5, 0]), [-0.0, -5.0, 1.0])


def test_rotation_order_by_hand():
    # plain round robin: the least trained first, ties by place
    assert acq.rotation_order([0, 1, 2], [1, 1, 0], 0.0).tolist() == [2, 0, 1]
    assert acq.rotation_order([0, 1, 2], [1, 1, 1], 0.0).tolist() == [0, 1, 2]
    # decay 1: shares 1 : 1/2 (normalized 2/3, 1/3); after 2 + 1 epochs place 0 is owed
    # 2/3 * 3 - 2 = 0, place 1 1/3 * 3 - 0 = 1: place 1 first
    assert acq.rotation_order([0, 1], [2, 0], 1.0).tolist() == [1, 0]
    # places need not be contiguous (members that left the rotation): places 0 and 2
    # (shares 1 : 1/3) after 3 + 0 epochs: owed 3/4 * 4 - 3 = 0 and 1/4 * 4 - 0 = 1
    assert acq.rotation_order([0, 2], [3, 0], 1.0).tolist() == [1, 0]


def test_leaders_train_the_least_trained_of_the_top_k_first():
    # predicted best values: 0.6, 0.45, 0.3 (see MEAN); a 4th candidate predicted 0.5
    posterior = CurvePosterior(np.vstack([MEAN, [0.1, 0.2, 0.3, 0.5]]),
                               np.vstack([STD, np.full(4, 0.1)]))
    rule = LeadersRoundRobin(k=2, decay=0.0)
    # leaders are 0 (0.6) and 3 (0.5); 3 has fewer epochs, so it goes first; then by place
    assert rule.order(posterior, situation([2, 0, 0, 1])) == [3, 0, 1, 2]
    # same epochs: the more promising leader first
    assert rule.order(posterior, situation([1, 0, 0, 1])) == [0, 3, 1, 2]


def test_leaders_shares_decay_with_their_place():
    posterior = CurvePosterior(np.vstack([MEAN, [0.1, 0.2, 0.3, 0.5]]),
                               np.vstack([STD, np.full(4, 0.1)]))
    rule = LeadersRoundRobin(k=2, decay=1.0)  # shares 2/3 (candidate 0) and 1/3 (candidate 3)
    # after 2 and 1 epochs, (2 + 1 + 1) * 2/3 - 2 = 0.67 vs 4/3 - 1 = 0.33: the first leader
    assert rule.order(posterior, situation([2, 0, 0, 1])) == [0, 3, 1, 2]
    # after 3 and 1, 5 * 2/3 - 3 = 0.33 vs 5/3 - 1 = 0.67: the second
    assert rule.order(posterior, situation([3, 0, 0, 1])) == [3, 0, 1, 2]


def test_a_leader_trained_to_its_last_epoch_keeps_its_place_but_is_not_ordered():
    rule = LeadersRoundRobin(k=2, decay=0.0)
    # candidate 0 (best) finished: it stays a leader, so only candidate 1 trains among leaders
    assert rule.order(POSTERIOR, situation([4, 1, 0])) == [1, 2]


def test_leaders_are_taken_among_candidates_that_did_not_fail():
    rule = LeadersRoundRobin(k=1, decay=0.0)
    assert rule.order(POSTERIOR, situation([0, 0, 0], failed=(0,))) == [1, 2]


def test_candidates_the_prior_never_trained_wait_until_fewer_than_k_trained_ones_are_open():
    rule = LeadersRoundRobin(k=1, decay=0.0)
    # candidate 0 is the best predicted, but no prior task trained it: 1 and 2 lead
    assert rule.order(POSTERIOR, situation([0, 0, 0], prior_trained=[False, True, True])) == \
        [1, 2, 0]
    # once the trained ones are finished, candidate 0 contends (and leads)
    assert rule.order(POSTERIOR, situation([0, 4, 4], prior_trained=[False, True, True])) == [0]


def test_best_observed_recommends_the_best_value_ties_to_the_earliest_and_skips_failed():
    recommender = BestObserved()
    assert recommender.recommend(POSTERIOR, [0, 1, 2]) == 0  # nothing observed: best predicted
    for candidate, value in [(2, 0.5), (1, 0.7), (0, 0.7)]:
        recommender.observe(candidate, 1, value)
    assert recommender.recommend(POSTERIOR, [0, 1, 2]) == 1
    assert recommender.recommend(POSTERIOR, [0, 2]) == 0  # 1 failed
    with pytest.raises(AT2Error, match="every candidate failed"):
        BestObserved().recommend(POSTERIOR, [])


def test_the_registry_names_each_policy_and_its_posterior():
    settings = PolicySettings(beta=2.0)
    assert set(POLICIES) == {"planned", "leaders", "paper", "no_prior"}
    leaders, paper, no_prior = (POLICIES[name](settings, 0)
                                for name in ("leaders", "paper", "no_prior"))
    assert (leaders.decides_on, leaders.residual_correction, leaders.k) == ("transfer", True, 4)
    assert (paper.decides_on, paper.residual_correction) == ("gp", False)
    assert (no_prior.decides_on, no_prior.residual_correction) == ("new_task_gp", False)
    assert build_policy(PolicySettings(), n_prior_tasks=3).name == "planned"
    assert build_policy(PolicySettings(), n_prior_tasks=0).name == "no_prior"
    state = situation([0, 1, 3])
    # the paper: UCB of the next epoch, 0.1 + 0.2, 0.4 + 0.1, 0.3 + 1.0
    assert paper.order(POSTERIOR, state) == [2, 1, 0]
    paper.observe(1, 1, 0.9)  # the paper recommends the best predicted, whatever was observed
    assert paper.recommend(POSTERIOR, [0, 1, 2]) == 0
    no_prior.observe(1, 1, 0.9)
    assert no_prior.recommend(POSTERIOR, [0, 1, 2]) == 1


def _with_incumbent(state: Situation, incumbent: float | None) -> Situation:
    return Situation(state.open, state.next_epochs, state.eligible, state.trained,
                     state.prior_trained, incumbent)


def test_no_prior_starts_in_a_seeded_random_order_then_follows_the_improvement_per_epoch():
    state = situation([0, 0, 0, 0, 0, 0])
    first = [POLICIES["no_prior"](PolicySettings(), seed).order(None, state) for seed in (0, 0, 1)]
    assert sorted(first[0]) == list(range(6)) and first[0] == first[1] and first[0] != first[2]
    policy = POLICIES["no_prior"](PolicySettings(), 0)
    state = _with_incumbent(situation([0, 1, 3]), 0.5)
    ei = acq.expected_improvement(MEAN, STD, 0.5)
    rates = [max(ei[0, j] / (j + 1) for j in range(4)), max(ei[1, j] / j for j in (1, 2, 3)),
             ei[2, 3]]
    assert policy.order(POSTERIOR, state) == np.argsort(rates)[::-1].tolist()


def test_no_prior_with_the_budget_prefers_the_curve_that_can_improve_within_it():
    # candidate 0 is sure to beat the incumbent by 0.05 at its next epoch; candidate 1 (fresh)
    # may beat it by far, but only at its 4th epoch
    posterior = CurvePosterior(np.array([[0.50, 0.55, 0.56, 0.57], [0.1, 0.2, 0.3, 0.9]]),
                               np.array([[0.0, 0.0, 0.0, 0.0], [0.01, 0.01, 0.01, 0.3]]))
    state = _with_incumbent(situation([1, 0], open_=[0, 1]), 0.5)
    policy = POLICIES["no_prior"](PolicySettings(), 0)
    assert policy.order(posterior, state) == [1, 0]  # no budget: 0.4 / 4 beats 0.05 / 1
    policy.plan(np.zeros((0, 2, 4)), [None, None], budget=4, concurrency=1)
    assert policy.epochs_left(state) == 3  # 1 of 4 spent
    assert policy.order(posterior, state) == [0, 1]  # candidate 1 cannot reach its epoch 4
    assert policy.state_dict() == {"name": "no_prior", "planned_for": [4, 1]}
    restored = POLICIES["no_prior"](PolicySettings(), 0)
    restored.load_state_dict(policy.state_dict())
    assert restored.planned_for == (4, 1) and restored.order(posterior, state) == [0, 1]


def test_a_policy_state_of_another_policy_is_a_clear_error():
    state = POLICIES["paper"](PolicySettings(), 0).state_dict()
    with pytest.raises(AT2Error, match="policy 'paper', this engine's is 'leaders'"):
        POLICIES["leaders"](PolicySettings(), 0).load_state_dict(state)
