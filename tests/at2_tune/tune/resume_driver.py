"""Driver process of the resume test: a replay tuning run through ``tune.Tuner``.

    python resume_driver.py fresh|restore STORAGE DATA_DIR BUDGET OUT_JSON

Not a test module: the test starts it in a subprocess, kills it mid-way and restores it.
"""

import glob
import json
import os
import sys

os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0.5")

import ray  # noqa: E402
import torch  # noqa: E402
from ray import tune  # noqa: E402

from at2_tune.core.prior import PriorData  # noqa: E402
from at2_tune.core.settings import AT2Settings  # noqa: E402
from at2_tune.databases import load_database  # noqa: E402
from at2_tune.tune import AT2Scheduler, AT2Searcher  # noqa: E402
from trainers.replay import make_replay_trainable  # noqa: E402

SETTINGS = AT2Settings(n_inducing=32, offline_epochs=1, online_steps=2, hidden_dim=8, feature_dim=4)


def main(mode: str, storage: str, data_dir: str, budget: int, out: str) -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    trainable = make_replay_trainable("hyperrec", "CIFAR100", seconds_per_epoch=0.3,
                                      data_dir=data_dir)
    if mode == "fresh":
        db = load_database("hyperrec", data_dir)
        prior = PriorData.from_database(db, ["CIFAR10", "SUN397SUB1"])
        searcher = AT2Searcher(prior=prior, settings=SETTINGS, budget_epochs=budget,
                               fit_cache=False)
        tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=AT2Scheduler(searcher), metric="val_acc", mode="max",
            num_samples=100, max_concurrent_trials=1, reuse_actors=True),
            run_config=tune.RunConfig(name="resume", storage_path=storage, verbose=0))
    else:
        tuner = tune.Tuner.restore(os.path.join(storage, "resume"), trainable=trainable,
                                   resume_unfinished=True)
    results = tuner.fit()
    # the searcher's final state as Tune saved it; like Searcher.restore_from_dir, take the
    # file of the latest session (names end with the session's start time)
    latest = max(glob.glob(os.path.join(storage, "resume", "searcher-state-*.pkl")))
    coordinator = torch.load(latest, weights_only=True)["coordinator"]
    with open(out, "w") as handle:
        json.dump({"trace": [row[1:3] for row in coordinator["trace"]],
                   "epochs_observed": coordinator["epochs_observed"],
                   "errors": len(results.errors)}, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
