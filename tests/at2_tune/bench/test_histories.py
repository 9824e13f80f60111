"""Tuning histories cut from a database, checked against Ray's own ASHA bracket and by hand."""

import numpy as np
import pytest

from at2_tune.bench.histories import (HistoryOptions, asha_rungs, asha_stops, draw_configs,
                                      history_database, load_history_prior,
                                      write_history)
from at2_tune.errors import AT2Error


def _rays_stops(curves: np.ndarray) -> list[int]:
    """The epochs Ray's ``ASHAScheduler`` bracket lets each trial train, trials one after
    another (its ``_Bracket`` with grace period 1, reduction factor 3, max_t = epochs)."""
    from ray.tune.schedulers.async_hyperband import _Bracket

    class Trial:
        def __init__(self, trial_id):
            self.trial_id = trial_id

    n_trials, n_epochs = curves.shape
    bracket = _Bracket(min_t=1, max_t=n_epochs, reduction_factor=3, s=0)
    stops = []
    for index in range(n_trials):
        trial = Trial(str(index))
        for epoch in range(1, n_epochs + 1):
            if epoch >= n_epochs:  # ASHAScheduler stops a trial at max_t before the bracket
                stops.append(epoch)
                break
            if bracket.on_result(trial, epoch, float(curves[index, epoch - 1])) == "STOP":
                stops.append(epoch)
                break
    return stops


def test_asha_rungs_are_rays():
    assert asha_rungs(75) == [1, 3, 9, 27] and asha_rungs(52) == [1, 3, 9, 27]
    assert asha_rungs(8) == [1, 3] and asha_rungs(9) == [1, 3, 9]


@pytest.mark.parametrize("seed", range(5))
def test_asha_stops_are_those_of_rays_bracket(seed, lcbench):
    rng = np.random.default_rng(seed)
    curves = lcbench.task_curves(lcbench.tasks[seed])[rng.choice(lcbench.n_configs, 25, replace=False)]
    stops = asha_stops(curves)
    assert stops.tolist() == _rays_stops(curves)
    assert stops[0] == lcbench.n_epochs  # the first trial has nobody to lose to
    assert set(stops.tolist()) <= {1, 3, 9, 27, lcbench.n_epochs}
    assert (stops == 1).sum() >= 8  # most stop early, as in a real history


def test_asha_stops_by_hand():
    # rung 1: 0.5 recorded; 0.2 < its 67th percentile (0.5): stops at 1; 0.6 goes on; at rung 3
    # 0.6 (trial 0) is recorded, trial 2's 0.55 < 0.6 stops at 3
    curves = np.array([[0.5, 0.55, 0.6, 0.62, 0.63],
                       [0.2, 0.3, 0.4, 0.5, 0.6],
                       [0.6, 0.58, 0.55, 0.9, 0.95]])
    assert asha_stops(curves).tolist() == [5, 1, 3]


def test_draws_are_disjoint_without_overlap_and_explain_what_does_not_fit():
    rng = np.random.default_rng(0)
    drawn = draw_configs(100, 4, HistoryOptions(configs=25, overlap="none"), rng)
    assert sorted(np.concatenate(drawn).tolist()) == list(range(100))
    independent = draw_configs(100, 4, HistoryOptions(configs=25), np.random.default_rng(0))
    assert all(len(set(d.tolist())) == 25 for d in independent)
    assert len(set(np.concatenate(independent).tolist())) < 100  # tasks share some
    with pytest.raises(AT2Error, match=r"needs 25 x 5 tasks = 125 distinct configurations, "
                                       r"but the grid has 100"):
        draw_configs(100, 5, HistoryOptions(configs=25, overlap="none"), rng)
    with pytest.raises(AT2Error, match="--history-scheduler 'hyperband' is not one of asha"):
        HistoryOptions(scheduler="hyperband")


def test_a_history_round_trips_through_the_prior_import_loader(lcbench, tmp_path):
    tasks, options = lcbench.tasks[1:4], HistoryOptions(configs=10, overlap="none")
    written = history_database(lcbench, tasks, 0, options, seed=[0, 1])
    folder = write_history(lcbench, tasks, 0, options, [0, 1], tmp_path / "history")
    prior = load_history_prior(folder)
    assert prior.tasks == tuple(tasks) and prior.n_configs == 30  # disjoint: 3 x 10
    np.testing.assert_array_equal(prior.curves, written.curves)
    from search_spaces import config_key

    grid = {config_key(c): i for i, c in enumerate(lcbench.configs)}
    for t, task in enumerate(tasks):
        trained = np.flatnonzero(~np.isnan(prior.curves[t]).all(axis=1))
        assert len(trained) == 10
        full = lcbench.task_curves(task)
        for column in trained:  # a prefix of the true curve, cut where ASHA stopped it
            epochs = int((~np.isnan(prior.curves[t, column])).sum())
            assert np.isnan(prior.curves[t, column, epochs:]).all()
            np.testing.assert_array_equal(prior.curves[t, column, :epochs],
                                          full[grid[config_key(prior.configs[column])], :epochs])
    assert not prior.fully_observed and (prior.observed.sum(axis=2) < lcbench.n_epochs).any()


def test_the_order_of_a_history_ranks_best_values_over_the_tasks_that_trained_them(lcbench):
    from at2_tune.core.prior import PriorData

    configs = lcbench.configs[:4]
    nan = np.nan
    curves = np.array([[[0.1, 0.2, 0.3], [0.5, nan, nan], [0.2, 0.4, nan], [nan] * 3],
                       [[nan, nan, nan], [0.1, 0.9, 0.8], [0.3, 0.5, 0.6], [nan] * 3]])
    prior = PriorData(("a", "b"), configs, curves)
    # best values: task a [0.3, 0.5, 0.4, -] -> ranks (better / (seen - 1)) [1, 0, 0.5, -];
    # task b [-, 0.9, 0.6, -] -> [-, 0, 1, -]; means [1, 0, 0.75]; config 3 never trained
    grid = [lcbench.configs[5], *reversed(configs)]  # another grid: its indices are returned
    assert prior.best_values_on(grid)[:, 2].tolist() == [0.4, 0.6]
    assert np.isnan(prior.best_values_on(grid)[:, [0, 1]]).all()
    assert prior.order_of(grid) == [3, 2, 4]
    ours, theirs = prior.columns_on(grid)  # the prior's columns 0-3 sit at 4, 3, 2, 1
    assert ours.tolist() == [0, 1, 2, 3] and theirs.tolist() == [4, 3, 2, 1]
    ours, theirs = prior.columns_on(grid[:3])  # columns 0 and 1 are off this grid
    assert ours.tolist() == [2, 3] and theirs.tolist() == [2, 1]


def test_decision_sources_by_hand(lcbench):
    from at2_tune.bench.histories import decision_sources
    from at2_tune.core.prior import PriorData

    nan = np.nan
    # grid configs 5 and 7 in the history: 5 observed for 2 epochs, 7 for 1 (of 3)
    curves = np.array([[[0.1, 0.2, nan], [0.3, nan, nan]]])
    history = PriorData(("a",), (lcbench.configs[5], lcbench.configs[7]), curves)
    shares = decision_sources(history, lcbench.configs,
                              [(5, 1), (5, 2), (5, 3), (7, 2), (9, 1), (7, 1)])
    assert shares == {"observed_cell": 3 / 6, "beyond_history": 2 / 6, "new_config": 1 / 6}
