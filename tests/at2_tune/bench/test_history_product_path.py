"""The histories protocol's product path: the histories as a user's Tune experiments, imported
with `at2-tune prior import`, tuned with AT2Searcher(prior=DIR) through tune.Tuner; the same
prior and the same decisions as the in-process protocol."""

import numpy as np
import pytest

from at2_tune import cli
from at2_tune.bench.histories import (HistoryOptions, draw_histories, history_database,
                                      write_tune_experiments)
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings, ModelSettings
from at2_tune.simulator import resolve_task, run_replay

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """Tune would start Ray itself and leave it running for the next module: start and stop it
    here, as the other Ray test modules do."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()

TINY = AT2Settings(ModelSettings(n_inducing=32, offline_epochs=1, offline_max_steps=30,
                                 hidden_dim=8, feature_dim=4))


def test_imported_histories_tune_through_ray_as_in_process(lcbench, release_dir, tmp_path):
    from ray import tune

    from at2_tune import AT2Scheduler, AT2Searcher
    from at2_tune.databases.user import load_user_database
    from trainers.curve_trainable import make_replay_trainable

    train, test = lcbench.tasks[1:3], lcbench.tasks[0]
    options, seed = HistoryOptions(configs=8), [0, 11]
    histories = draw_histories(lcbench, train, 0, options, seed)
    experiments = write_tune_experiments(lcbench, histories, 0, tmp_path / "tune")
    database = tmp_path / "prior"
    assert cli.main(["prior", "import", *map(str, experiments), "--metric", "val_acc",
                     "--mode", "max", "--space", "lcbench", "--task", ",".join(train),
                     "--out", str(database)]) == 0
    imported = PriorData.from_user_database(load_user_database(database))
    in_process = PriorData.from_user_database(history_database(lcbench, train, 0, options, seed))
    assert imported.configs == in_process.configs and imported.tasks == in_process.tasks
    np.testing.assert_array_equal(imported.curves, in_process.curves)
    assert (imported.observed.sum(axis=2) < lcbench.n_epochs).any()  # ASHA stopped some

    task = resolve_task(lcbench, train_tasks=train, test_task=test, budget=10)
    expected = run_replay(lcbench, task, seed=0, settings=TINY, prior=in_process)["trace"]
    searcher = AT2Searcher(prior=str(database), candidates=list(lcbench.configs),
                           max_epochs=lcbench.n_epochs, budget_epochs=10, fit_cache=None,
                           seed=0, settings=TINY)
    trainable = make_replay_trainable(lcbench.name, test, 0, 0.0, "val_acc", str(release_dir))
    tune.Tuner(trainable, tune_config=tune.TuneConfig(
        search_alg=searcher, scheduler=AT2Scheduler(searcher), metric="val_acc", mode="max",
        num_samples=lcbench.n_configs, max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "run"), verbose=0)).fit()
    decisions = [(row.candidate, row.epoch) for row in searcher.coordinator.trace]
    assert decisions == [(row["config_id"], row["epoch"]) for row in expected]
    assert len({c for c, _ in decisions}) >= 2
