"""How well AT2's model reaches configurations that no tuning history trained.

    python -m experiments.history_generalization --database lcbench --prior-sizes 2,4,8
    python -m experiments.history_generalization --database lcbench --protocol hidden-half

For every case of the histories protocol (``at2_tune.bench.histories``: random prior tasks, each
cut to a 25-trial ASHA history), AT2 (default settings, the whole grid as candidates) follows its
default policy on the new task. Before the first query and after 10 and 25, the model's
prediction of each configuration's best value over all epochs (``CurvePosterior.best_value``, a
normal) is scored on the configurations no history trained, against their true best values on
the new task: mean predictive log-likelihood, coverage of the central 90% interval (0.90 is
calibrated) and Spearman correlation. ``--protocol hidden-half`` scores the held-out
configurations protocol the same way (``experiments.held_out_configs``: every other task's full
curves as the prior, a seeded half of the grid hidden from all of them).

Next to it, a k-nearest-neighbour predictor in the encoded space (``space.encode``, Euclidean):
an untrained configuration's prediction is the mean of the model's predictions at its ``k``
nearest history-trained configurations, with the variance their mean variance plus their spread
(``--neighbours``, default 5). Both read the same posterior at trained configurations, so the
difference is what the GP's kernel over hyperparameters adds across configurations.

And a quantile gradient-boosting model (scikit-learn, :func:`boosting_prediction`) over the same
features, pooled over the prior tasks: fitted on the histories' best values (with the share of
the epochs each trial trained as a feature), mapped to the new task's scale by the same output
transform as the model's posterior, so that after 10 and 25 observations it differs from the
model only in how it reaches across configurations (it is not refitted on the new task).

Prints a Markdown table (mean ± standard error over cases) and writes ``OUT/generalization.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from at2_tune import evaluation

AFTER = (0, 10, 25)
PREDICTORS = ("model", "knn", "boosting")
Z90 = 1.6448536269514722


def knn_prediction(encoded: np.ndarray, trained: np.ndarray, mean: np.ndarray,
                   std: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` at every configuration from the ``k`` nearest ``trained`` ones.

    Args:
        encoded: ``(C, d)`` encoded configurations.
        trained: ``(C,)`` bool, configurations whose prediction is used.
        mean, std: ``(C,)`` the model's prediction at every configuration.
    """
    sources = np.flatnonzero(trained)
    distance = np.linalg.norm(encoded[:, None, :] - encoded[None, sources, :], axis=2)
    nearest = sources[np.argsort(distance, axis=1, kind="stable")[:, :k]]  # (C, k)
    knn_mean = mean[nearest].mean(axis=1)
    knn_var = (std[nearest] ** 2).mean(axis=1) + mean[nearest].var(axis=1)
    return knn_mean, np.sqrt(knn_var)


QUANTILES = (0.05, 0.5, 0.95)
MIN_STD_SHARE = 0.05
"""The boosting predictor's smallest std, as a share of its targets' standard deviation."""


def boosting_prediction(prior_encoded: np.ndarray, prior_curves: np.ndarray,
                        encoded: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of every configuration's best value from quantile gradient boosting
    (scikit-learn), pooled over the prior tasks, on the prior's scale.

    One row per (prior task, configuration it trained): the features are the configuration's
    encoding and the share of the epochs the task trained it for, the target its best value
    over those epochs (a cut curve's best so far). Three models fit the 5%, 50% and 95%
    quantiles (at least 5 rows per leaf); a configuration is predicted as trained to its last
    epoch (share 1), as a normal with the median as mean and the 90% interval's width /
    (2 * 1.645) as std, at least :data:`MIN_STD_SHARE` of the targets' spread (with two
    histories of 25 trials the 5% and 95% models can meet, and a zero width would score as a
    certainty).

    Args:
        prior_encoded: ``(C, d)`` the prior's configurations, encoded.
        prior_curves: ``(T, C, E)`` the prior tasks' curves (NaN where not trained).
        encoded: ``(n, d)`` the configurations to predict, encoded.
    """
    from sklearn.ensemble import GradientBoostingRegressor

    observed = ~np.isnan(prior_curves)
    n_epochs = prior_curves.shape[2]
    tasks, configs = np.nonzero(observed.any(axis=2))
    depth = observed[tasks, configs].sum(axis=1) / n_epochs
    best = np.nanmax(prior_curves[tasks, configs], axis=1)
    features = np.column_stack([prior_encoded[configs], depth])
    query = np.column_stack([encoded, np.ones(len(encoded))])
    low, median, high = (
        GradientBoostingRegressor(loss="quantile", alpha=q, n_estimators=200, max_depth=3,
                                  learning_rate=0.05, min_samples_leaf=5, random_state=seed)
        .fit(features, best).predict(query) for q in QUANTILES)
    std = np.maximum((high - low) / (2 * Z90), MIN_STD_SHARE * best.std())
    return median, std


def encode_one_hot(space, configs) -> np.ndarray:
    """``(n, d)``: the numeric encodings (in [0, 1]) and a one-hot block per categorical."""
    numeric, categorical = space.encode_many(configs)
    blocks = [np.asarray(numeric, dtype=float)]
    categorical = np.asarray(categorical, dtype=np.int64).reshape(len(configs), -1)
    for column, choices in enumerate(space.categorical_choices):
        blocks.append(np.eye(len(choices))[categorical[:, column]])
    return np.concatenate(blocks, axis=1)


def scores(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Log-likelihood, 90% coverage and Spearman correlation of normals ``(mean, std)``."""
    std = np.maximum(std, 1e-9)
    z = (truth - mean) / std
    return {"loglik": float(np.mean(-0.5 * z ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi))),
            "coverage90": float(np.mean(np.abs(z) <= Z90)),
            "spearman": float(np.corrcoef(evaluation.average_ranks(mean),
                                          evaluation.average_ranks(truth))[0, 1])}


def case_prior(db, job) -> tuple[Any, np.ndarray]:
    """The prior of a case and ``(n_configs,)`` bool, the grid configurations it trained: a
    histories case's histories (``at2_tune.bench.histories``), or for the hidden-half protocol
    (a ``loo`` job) the other tasks' full curves with a seeded half of the grid hidden
    (``experiments.held_out_configs``)."""
    if job.protocol == "loo":
        from experiments.held_out_configs import hidden_configs, masked_prior

        hidden = hidden_configs(db.n_configs, db.task_index(job.test_task))
        return masked_prior(db, job.train_tasks, job.seed_profile, hidden), ~hidden
    from at2_tune.bench.histories import case_history

    with tempfile.TemporaryDirectory() as scratch:
        history = case_history(db, job, Path(scratch) / "history")
    trained = np.zeros(db.n_configs, dtype=bool)
    trained[history.columns_on(db.configs)[1]] = True
    return history, trained


def slot_contest(mean: np.ndarray, std: np.ndarray, favourite: int, untrained: np.ndarray,
                 finals: np.ndarray) -> dict[str, float]:
    """Would a configuration no prior task trained earn a slot before the prior's favourite
    (issue 38 item 3)? Each untrained configuration's probability of a higher best value than
    the favourite under the posterior's normals ``(mean, std)`` ``(C,)``, the largest of them,
    and the true ranks (0 = best of ``finals``, the new task's best values) of the favourite
    and of the untrained configuration with that probability."""
    from scipy.stats import norm

    rows = np.flatnonzero(untrained)
    chance = norm.cdf((mean[rows] - mean[favourite]) / np.hypot(std[rows], std[favourite]))
    pick = int(rows[int(np.argmax(chance))])

    def rank(config: int) -> int:
        return int((finals > finals[config]).sum())

    return {"p_max": float(chance.max()), "favourite_rank": rank(favourite),
            "pick_rank": rank(pick)}


def case_generalization(db, job, neighbours: int) -> dict[str, Any]:
    """``{n_observations: {"model": scores, "knn": scores, "boosting": scores}}`` for one
    case (:func:`case_prior`)."""
    from at2_tune.core.coordinator import Coordinator
    from at2_tune.core.engine import AT2Engine
    from at2_tune.core.simulation import simulate
    from search_spaces import get_space

    space = get_space(db.space_name)
    prior, trained = case_prior(db, job)
    engine = AT2Engine(space, prior, seed=0, candidates=list(db.configs))
    engine.condition()
    untrained = ~trained
    encoded = encode_one_hot(space, list(db.configs))
    curves = db.task_curves(job.test_task, job.seed_profile)
    truth = engine.surrogate.transform.warp(curves.max(axis=1))
    result: dict[str, Any] = {"untrained": int(untrained.sum())}
    if not untrained.any():  # the histories covered the grid: nothing to generalize to
        return result
    boosted = boosting_prediction(encode_one_hot(space, list(engine.prior.configs)),
                                  engine.prior.curves, encoded)  # the prior on the model's scale
    transform = engine.surrogate.transform

    ours, theirs = prior.columns_on(list(db.configs))
    favourite = int(dict(zip(ours.tolist(), theirs.tolist()))[
        prior.order_of(list(prior.configs))[0]])  # the prior's favourite, as a grid column

    def evaluate(observed: int) -> None:
        if observed in AFTER:
            # every candidate's posterior, also where the policy would not read it now
            engine.posterior_source.condition(engine.evidence())
            mean, std = engine.posterior_source.posterior().best_value()
            if observed == 0:
                result["slot"] = slot_contest(mean, std, favourite, untrained,
                                              curves.max(axis=1))
            knn_mean, knn_std = knn_prediction(encoded, trained, mean, std, neighbours)
            # boosting on the prior's scale, mapped to the new task's as the model's posterior
            boost_mean = transform.mean_from_model(boosted[0])
            boost_std = np.abs(transform.std_from_model(boosted[1]))
            result[observed] = {
                "model": scores(mean[untrained], std[untrained], truth[untrained]),
                "knn": scores(knn_mean[untrained], knn_std[untrained], truth[untrained]),
                "boosting": scores(boost_mean[untrained], boost_std[untrained],
                                   truth[untrained])}

    evaluate(0)
    # one slot, no budget: the engine's own order, one epoch at a time
    coordinator = Coordinator(engine, max_concurrent=1)
    simulate(coordinator, curves, 1, on_observation=lambda row, _: evaluate(
        len(coordinator.trace)), max_observations=max(AFTER))
    return result


def _cell(values, spec: str = ".2f") -> str:
    error = evaluation.standard_error(values)
    return f"{np.mean(values):{spec}}" + ("" if error is None else f" ± {error:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="lcbench", choices=["hyperrec", "lcbench"])
    parser.add_argument("--protocol", default="histories", choices=["histories", "hidden-half"],
                        help="histories: priors of ASHA histories (--prior-sizes); hidden-half: "
                             "leave-one-task-out with a seeded half of the grid hidden from every "
                             "prior task (the held-out-configurations protocol)")
    parser.add_argument("--prior-sizes", default="2,4,8",
                        help="16 histories of 25 trials cover nearly every configuration of a "
                             "100-configuration grid: nothing is left to generalize to")
    parser.add_argument("--tasks", default=None, metavar="NAME,...")
    parser.add_argument("--history-configs", type=int, default=25)
    parser.add_argument("--history-overlap", default="independent",
                        choices=["independent", "none"],
                        help="none: disjoint histories, no two share a configuration")
    parser.add_argument("--neighbours", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("results/history_generalization"))
    args = parser.parse_args(argv)
    import torch

    from at2_tune.bench.runs import plan
    from at2_tune.databases import load_database

    torch.set_num_threads(1)
    db = load_database(args.database, args.data_dir)
    history = {"configs": args.history_configs, "overlap": args.history_overlap,
               "scheduler": "asha", "draw_seed": 0}
    tasks = args.tasks.split(",") if args.tasks else None
    if args.protocol == "hidden-half":
        jobs = plan(db, "loo", ["at2"], budget=100, repeats=1, concurrency=1, tasks=tasks,
                    seed_profiles=[0])
    else:
        jobs = plan(db, "histories", ["at2"], budget=100, repeats=1, concurrency=1, tasks=tasks,
                    seed_profiles=[0], history=history,
                    prior_sizes=[int(s) for s in args.prior_sizes.split(",")])
    results = []
    for job in jobs:
        case = case_generalization(db, job, args.neighbours)
        results.append({"protocol": job.protocol, "case": job.case, **{str(k): v for k, v in
                                                                         case.items()}})
        if not case["untrained"]:
            continue
        print(f"{job.protocol} {job.case}: " + ", ".join(
            f"{n}: ll {case[n]['model']['loglik']:.2f} vs knn {case[n]['knn']['loglik']:.2f}"
            f" vs boosting {case[n]['boosting']['loglik']:.2f}"
            for n in AFTER), file=sys.stderr, flush=True)
    title = "half of the grid hidden from every prior task (leave-one-task-out): the hidden " \
        "configurations" if args.protocol == "hidden-half" else \
        f"histories ({args.history_configs} trials, ASHA): configurations no history trained"
    lines = [f"## {db.name} {title}, their best value", "",
             "| prior | queries | cases | model log-lik | kNN log-lik | boosting log-lik | "
             "model 90% cov | kNN 90% cov | boosting 90% cov | model Spearman | kNN Spearman | "
             "boosting Spearman | model - kNN log-lik, paired | model - boosting log-lik, "
             "paired |",
             "|" + " --- |" * 14]
    protocols = sorted({r["protocol"] for r in results},
                       key=lambda p: int(p.split("-")[1]) if "-" in p else 0)  # histories-N, loo
    for protocol in protocols:
        rows = [r for r in results if r["protocol"] == protocol and r["untrained"]]
        if not rows:
            lines.append(f"| {protocol} | - | 0 | every configuration trained by some history "
                         "|" + " |" * 10)
            continue
        for n in AFTER:
            cells = []
            for metric in ("loglik", "coverage90", "spearman"):
                for predictor in PREDICTORS:
                    values = [r[str(n)][predictor][metric] for r in rows]
                    cells.append(_cell(values))
            for other in PREDICTORS[1:]:
                paired = [r[str(n)]["model"]["loglik"] - r[str(n)][other]["loglik"]
                          for r in rows]
                cells.append(f"{_cell(paired, '+.2f')} (median {np.median(paired):+.2f})")
            lines.append(f"| {protocol} | {n} | {len(rows)} | " + " | ".join(cells) + " |")
    lines += ["", "Would a configuration no prior task trained earn a slot before the prior's "
              "favourite (before the first query)? The largest posterior probability that an "
              "untrained configuration's best value beats the favourite's, and the true ranks "
              "(0 = best) of the favourite and of that configuration:", "",
              "| prior | cases | largest probability | cases above 0.5 / 0.9 | favourite's rank | "
              "its rank | it beats the favourite |", "|" + " --- |" * 7]
    for protocol in protocols:
        slots = [r["slot"] for r in results if r["protocol"] == protocol and "slot" in r]
        if slots:
            chance = np.array([x["p_max"] for x in slots])
            beats = np.mean([x["pick_rank"] < x["favourite_rank"] for x in slots])
            lines.append(
                f"| {protocol} | {len(slots)} | {_cell(chance)} | {np.mean(chance > 0.5):.0%} / "
                f"{np.mean(chance > 0.9):.0%} | {_cell([x['favourite_rank'] for x in slots], '.1f')}"
                f" | {_cell([x['pick_rank'] for x in slots], '.1f')} | {beats:.0%} |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"generalization_{db.name}" + ("_hidden_half" if args.protocol == "hidden-half"
                                          else "")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    (args.out / f"{stem}.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
