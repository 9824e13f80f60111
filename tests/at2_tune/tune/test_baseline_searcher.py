"""The transfer baselines as live Ray Tune searchers (TransferBaselineSearcher + AT2Scheduler):
through real Tune runs on the replay trainable they train exactly what the in-process baselines
of ``at2-tune bench`` train."""

import numpy as np
import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from at2_tune.bench import baselines  # noqa: E402
from at2_tune.core.prior import PriorData  # noqa: E402
from at2_tune.errors import AT2Error  # noqa: E402
from at2_tune.simulator import resolve_task  # noqa: E402
from at2_tune.tune import AT2Scheduler  # noqa: E402
from at2_tune.tune.baseline_searcher import TransferBaselineSearcher, baseline_policy  # noqa: E402
from search_spaces import HYPERREC_SPACE  # noqa: E402
from trainers.curve_trainable import make_replay_trainable  # noqa: E402

BUDGET = 10


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _live(hyperrec, release_dir, tmp_path, baseline: str):
    """A Tune run of ``baseline`` on pair 0's test task."""
    task = resolve_task(hyperrec, pair=0, budget=BUDGET)
    prior = PriorData.from_database(hyperrec, task.train_tasks, task.seed_profile)
    searcher = TransferBaselineSearcher(baseline, space=HYPERREC_SPACE, prior=prior,
                                        candidates=list(hyperrec.configs),
                                        budget_epochs=BUDGET, track_recommendations=True)
    trainable = make_replay_trainable(hyperrec.name, task.test_task, task.seed_profile, 0.0,
                                      "val_acc", str(release_dir))
    tune.run(trainable, search_alg=searcher, scheduler=AT2Scheduler(searcher),
             metric="val_acc", mode="max", num_samples=100, max_concurrent_trials=1,
             reuse_actors=True, storage_path=str(tmp_path), verbose=0)
    return task, prior, searcher


@pytest.mark.integration
@pytest.mark.parametrize("baseline", ["top3", "portfolio"])
def test_live_baseline_trains_what_the_replayed_baseline_trains(
        hyperrec, release_dir, tmp_path, local_ray, baseline):
    task, prior, searcher = _live(hyperrec, release_dir, tmp_path, baseline)
    # the bench's own baselines on the same prior, with their default orders and scores
    replayed = baselines.top_k_round_robin(hyperrec, task, 3) if baseline == "top3" \
        else baselines.portfolio(hyperrec, task)
    trace = searcher.coordinator.trace
    assert [row.candidate for row in trace] == replayed.trained[:BUDGET]
    assert [row.recommended for row in trace] == replayed.recommended[:len(trace)]
    curves = hyperrec.task_curves(task.test_task, task.seed_profile)
    assert [row.value for row in trace] == pytest.approx(
        [curves[row.candidate, row.epoch - 1] for row in trace])
    recommendation = searcher.recommendation()
    assert recommendation["config"] == hyperrec.configs[replayed.recommended[BUDGET - 1]]
    assert recommendation["value"] == pytest.approx(max(
        row.value for row in trace if row.candidate == replayed.recommended[BUDGET - 1]))
    assert searcher.offline_fit_outcome == "no model"


def test_the_policies_order_the_prior_as_the_bench_does(two_task_prior, hyperrec):
    configs = list(two_task_prior.configs)
    top3 = baseline_policy("top3", two_task_prior, configs)
    best = two_task_prior.curves.max(axis=2)  # full grid: each task's best value
    assert top3.k == 3 and top3.decay == 0.0
    ranks = [(row[None, :] > row[:, None]).sum(axis=1) for row in best]  # strictly better
    expected = np.argsort(np.mean(ranks, axis=0), kind="stable")
    assert list(top3.ranking) == expected.tolist()
    assert best.mean(axis=0)[top3.ranking[0]] >= np.median(best.mean(axis=0))
    task = resolve_task(hyperrec, pair=0, budget=BUDGET)  # the bench's order on its prior
    prior = PriorData.from_database(hyperrec, task.train_tasks, task.seed_profile)
    assert baseline_policy("top3", prior, list(hyperrec.configs)).ranking == \
        baselines.prior_order(hyperrec, task, "top3").tolist()
    zero_shot = baseline_policy("portfolio", two_task_prior, configs)
    assert list(zero_shot.ranking) == baselines.greedy_portfolio(best)
    assert sorted(zero_shot.ranking) == list(range(len(configs)))


def test_a_baseline_without_a_prior_is_a_clear_error():
    with pytest.raises(AT2Error, match="needs a prior"):
        TransferBaselineSearcher("top3", prior=None)
    with pytest.raises(AT2Error, match="unknown transfer baseline 'top4'.*top3, portfolio"):
        TransferBaselineSearcher("top4")
