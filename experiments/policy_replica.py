"""AT2's default decisions on the prior grid without the GP: the engine's queries in seconds.

    python -m experiments.policy_replica --database lcbench --set 'residual_kernel="prior"'

With prior tasks and only the prior grid's configurations as candidates (the replay protocol),
the default policy does not depend on the GP: the leaders acquisition ranks configurations by the
peak of the posterior *mean*, and with ``transfer_mean="prior_average"`` that mean is the prior
tasks' average curve mapped onto the new task's scale, each observed curve corrected by its own
residuals; the GP gives only standard deviations, which the leaders ignore. :func:`replay`
computes exactly those decisions from the same pieces the engine uses (``OutputTransform``,
``mean_over_tasks``, ``residual.correct_observed``, ``LeadersRoundRobin``) with no offline fit:
about a minute for all 89 leave-one-task-out cases instead of an hour of fits, for trying policy
variants. ``tests/experiments/test_policy_replica.py`` checks that its queries and recommendations
equal the engine's; confirm a finding with ``experiments.replay_benchmark`` before relying on it.

Prints, per database, the rank of the recommendation after 10/25/50/100 queries (mean ±
standard error over the leave-one-task-out cases) next to the model-free transfer baselines, and
the paired difference with the best of them; ``--out FILE.json`` keeps the per-case ranks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from at2_tune import evaluation
from at2_tune.baselines import BY_NAME
from at2_tune.core import residual
from at2_tune.core.acquisition import CurvePosterior, LeadersRoundRobin
from at2_tune.core.prior import PriorData, mean_over_tasks
from at2_tune.core.settings import AT2Settings
from at2_tune.core.transform import OutputTransform

BASELINES = ("zero-shot", "top3", "top5", "top4-weighted")
REQUIRED = {"acquisition": ("auto", "leaders"), "transfer_mean": ("prior_average",),
            "transfer_weights": ("uniform",), "recommend_from": ("best_observed",),
            "calibrate": (False,)}
"""Settings under which the engine's decisions on the grid do not depend on the GP."""


def check_settings(settings: AT2Settings) -> None:
    """Raise ``ValueError`` naming a setting whose decisions would need the GP."""
    for name, allowed in REQUIRED.items():
        if getattr(settings, name) not in allowed:
            raise ValueError(f"AT2Settings.{name}={getattr(settings, name)!r}: the replica only "
                             f"reproduces {name} in {allowed} (the GP takes part otherwise); run "
                             "experiments.replay_benchmark for this setting")


def replay(prior: PriorData, curves: np.ndarray, settings: AT2Settings,
           budget: int) -> tuple[list[int], list[int]]:
    """The default policy's queries on a new task whose ``curves`` (``(C, E)``, the prior grid's
    configurations) are revealed an epoch per query; returns (trained configuration per query,
    recommendation after each query)."""
    check_settings(settings)
    if prior.n_tasks == 0:
        raise ValueError("the replica needs prior tasks (without them the GP decides)")
    transform = OutputTransform(prior, settings.standardize_prior, settings.scale_target,
                                settings.output_warp)
    model_prior = transform.prior
    average, count = mean_over_tasks(model_prior.curves, model_prior.observed)
    kernel = residual.residual_kernel(settings.residual_kernel, model_prior.curves,
                                      model_prior.observed)
    n_configs, n_epochs = curves.shape
    trained = np.zeros(n_configs, dtype=np.int64)
    configs: list[int] = []
    epochs: list[int] = []
    recommended: list[int] = []
    best = (-np.inf, 0)
    for _ in range(budget):
        open_ = np.flatnonzero(trained < n_epochs)
        if open_.size == 0:
            break
        posterior = _posterior(transform, average, count, configs, epochs, curves, settings,
                               kernel)
        rule = LeadersRoundRobin(tuple(range(n_configs)), trained, settings.leaders,
                                 settings.leaders_decay)
        scores = rule(posterior, open_, trained[open_] + 1)
        config = int(open_[int(np.argmax(scores))])  # ties: lower index, as the engine
        value = float(curves[config, trained[config]])
        trained[config] += 1
        configs.append(config)
        epochs.append(int(trained[config]))
        if value > best[0]:
            best = (value, config)
        recommended.append(best[1])
    return configs, recommended


def _posterior(transform, average, count, configs, epochs, curves, settings, kernel):
    """The engine's corrected posterior mean (std: ones, unused by the leaders)."""
    values = curves[configs, np.asarray(epochs, dtype=np.int64) - 1] if configs else np.zeros(0)
    transform.fit_target(np.asarray(configs, dtype=np.int64), np.asarray(epochs, dtype=np.int64),
                         values)
    fallback = np.zeros_like(average)  # a cell no prior task observed: not in database priors
    mean = transform.mean_from_model(np.where(count > 0, average, fallback))
    posterior = CurvePosterior(mean, np.ones_like(mean))
    if not settings.residual_correction or not configs:
        return posterior
    return residual.correct_observed(posterior, np.asarray(configs), np.asarray(epochs),
                                     transform.warp(values), kernel)


def loo_ranks(db, settings: AT2Settings, budget: int = 100) -> dict[str, np.ndarray]:
    """Ranks at :data:`evaluation.CHECKPOINTS` for the replica and :data:`BASELINES`, every
    leave-one-task-out case: ``{method: (n_cases, n_checkpoints)}``."""
    from at2_tune.replay import resolve_task

    checkpoints = evaluation.checkpoints_for(budget)
    out: dict[str, list[list[int]]] = {m: [] for m in ("replica",) + BASELINES}
    for test_task in db.tasks:
        for profile in range(db.n_seeds):
            task = resolve_task(db, train_tasks=db.tasks_excluding([test_task]),
                                test_task=test_task, seed_profile=profile, budget=budget)
            ranks = db.ranks(test_task, profile)
            prior = PriorData.from_database(db, task.train_tasks, profile)
            _, recommended = replay(prior, db.task_curves(test_task, profile), settings, budget)
            recommended += recommended[-1:] * (budget - len(recommended))
            out["replica"].append([int(ranks[recommended[q - 1]]) for q in checkpoints])
            for name in BASELINES:
                run = BY_NAME[name](db, task, np.random.default_rng(0))
                out[name].append([int(ranks[run.recommended[q - 1]]) for q in checkpoints])
    return {m: np.array(v, dtype=float) for m, v in out.items()}


def table(ranks: dict[str, np.ndarray], checkpoints) -> str:
    """Markdown: mean ± standard error per method, then replica - best baseline (paired)."""
    def cell(values):
        se = evaluation.standard_error(values)
        return f"{np.mean(values):.2f}" + ("" if se is None else f" ± {se:.2f}")

    head = "| method | " + " | ".join(f"@{q}" for q in checkpoints) + " |"
    lines = [head, "|" + " --- |" * (len(checkpoints) + 1)]
    for method, values in ranks.items():
        lines.append(f"| {method} | " + " | ".join(cell(values[:, i])
                                                  for i in range(len(checkpoints))) + " |")
    best = [min(BASELINES, key=lambda m: ranks[m][:, i].mean()) for i in range(len(checkpoints))]
    differences = [cell(ranks["replica"][:, i] - ranks[b][:, i]) for i, b in enumerate(best)]
    lines.append("| replica - best baseline | " + " | ".join(
        f"{d} ({b})" for d, b in zip(differences, best)) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from at2_tune.databases import load_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", action="append", choices=("hyperrec", "lcbench"))
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, help="write the per-case ranks here (JSON)")
    args = parser.parse_args(argv)
    try:
        settings = AT2Settings().with_assignments(args.set)
        check_settings(settings)
    except ValueError as exc:
        parser.error(f"--set: {exc}")
    results = {}
    for name in args.database or ("hyperrec", "lcbench"):
        db = load_database(name, args.data_dir)
        ranks = loo_ranks(db, settings, args.budget)
        print(f"## {name}, leave-one-task-out ({len(ranks['replica'])} cases), rank\n")
        print(table(ranks, evaluation.checkpoints_for(args.budget)) + "\n")
        results[name] = {m: v.tolist() for m, v in ranks.items()}
    if args.out:
        args.out.write_text(json.dumps({"settings": settings.to_json(), "ranks": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
