"""AT2's decisions on the prior grid without the GP: the engine's queries in seconds.

    python -m experiments.policy_replica --database lcbench --set 'residual_kernel="prior"'
    python -m experiments.policy_replica --set 'acquisition="expected_improvement"'

With prior tasks and only the prior grid's configurations as candidates (the replay protocol), AT2's
posterior does not depend on the GP: with ``transfer_mean="prior_average"`` the mean is the prior
tasks' average curve mapped onto the new task's scale (with ``"prior_quantile"`` their Gaussian
copula average), each observed curve corrected by its own residuals, and with
``transfer_std="prior_spread"`` the std is the prior tasks' spread, which the residual correction
narrows. :func:`replay` computes the engine's decisions from the same pieces (``OutputTransform``,
``mean_over_tasks`` or ``copula_average``, ``spread``, ``residual.correct_observed``, the
acquisition classes) with no offline fit: about a minute for all 89 leave-one-task-out cases instead
of an hour of fits, for trying policy variants. The leaders ignore the std, so they are replicated
with either ``transfer_std``; the acquisitions that use it (UCB, expected improvement, Thompson
sampling) only with ``"prior_spread"``. ``tests/experiments/test_policy_replica.py`` checks that
queries and recommendations equal the engine's; confirm a finding with
``experiments.replay_benchmark`` before relying on it.

Prints, per database and protocol (``--protocol loo``, the default; ``pairs``; ``subsets``, random
priors of each of ``--prior-sizes`` tasks, ``experiments.protocols``), the rank of the
recommendation after 10/25/50/100 queries (mean ± standard error over the cases) next to the
model-free transfer baselines, and the paired difference with the best of them; ``--out
FILE.json`` keeps the per-case ranks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from at2_tune import evaluation
from at2_tune.baselines import BY_NAME
from at2_tune.core import residual, spread
from at2_tune.core.acquisition import (Acquisition, BestFutureEI, BestFutureUCB, CurvePosterior,
                                       CurveThompson, LeadersRoundRobin, NextEpochUCB,
                                       RandomHorizonPI)
from at2_tune.core.prior import PriorData, copula_average, mean_over_tasks
from at2_tune.core.settings import AT2Settings
from at2_tune.core.transform import OutputTransform
from at2_tune.errors import AT2Error
from experiments import protocols

BASELINES = ("zero-shot", "top3", "top5", "top4-weighted")
STD_ACQUISITIONS = ("next_epoch", "best_future", "expected_improvement", "thompson", "mf_pi")
"""Acquisitions that use the posterior std: replicated only with ``transfer_std="prior_spread"``
(then the std of a grid configuration does not come from the GP either)."""
REQUIRED = {"transfer_mean": ("prior_average", "prior_quantile"),
            "transfer_weights": ("uniform",),
            "calibrate": (False,)}
"""Settings under which the engine's decisions on the grid do not depend on the GP."""


def check_settings(settings: AT2Settings) -> None:
    """Raise ``ValueError`` naming a setting whose decisions would need the GP."""
    for name, allowed in REQUIRED.items():
        if getattr(settings, name) not in allowed:
            raise ValueError(f"AT2Settings.{name}={getattr(settings, name)!r}: the replica only "
                             f"reproduces {name} in {allowed} (the GP takes part otherwise); run "
                             "experiments.replay_benchmark for this setting")
    if settings.acquisition in STD_ACQUISITIONS and settings.transfer_std != "prior_spread":
        raise ValueError(f"AT2Settings.acquisition={settings.acquisition!r} uses the posterior "
                         f"std, which with transfer_std={settings.transfer_std!r} is the GP's: "
                         "the replica reproduces it with transfer_std='prior_spread'; run "
                         "experiments.replay_benchmark for this setting")


def replay(prior: PriorData, curves: np.ndarray, settings: AT2Settings, budget: int,
           seed: int = 0) -> tuple[list[int], list[int]]:
    """The engine's queries on a new task whose ``curves`` (``(C, E)``, the prior grid's
    configurations) are revealed an epoch per query; returns (trained configuration per query,
    recommendation after each query). ``seed`` is the engine's (Thompson sampling's draws)."""
    check_settings(settings)
    if prior.n_tasks == 0:
        raise ValueError("the replica needs prior tasks (without them the GP decides)")
    model = _TransferModel(prior, settings)
    n_configs, n_epochs = curves.shape
    trained = np.zeros(n_configs, dtype=np.int64)
    configs: list[int] = []
    epochs: list[int] = []
    recommended: list[int] = []
    best = (-np.inf, 0)
    posterior = model.posterior(configs, epochs, curves)
    for _ in range(budget):
        open_ = np.flatnonzero(trained < n_epochs)
        if open_.size == 0:
            break
        rule = _acquisition(settings, posterior, trained, seed, len(configs),
                            bounded=model.transform.warp_name == "log_error")
        scores = rule(posterior, open_, trained[open_] + 1)
        config = int(open_[int(np.argmax(scores))])  # ties: lower index, as the engine
        value = float(curves[config, trained[config]])
        trained[config] += 1
        configs.append(config)
        epochs.append(int(trained[config]))
        posterior = model.posterior(configs, epochs, curves)
        if value > best[0]:
            best = (value, config)
        recommended.append(best[1] if settings.recommend_from == "best_observed" else
                           _best_predicted(posterior, _recommendable(settings, trained)))
    return configs, recommended


class _TransferModel:
    """The engine's posterior on the grid from the prior alone: the prior average (or copula
    average, ``transfer_mean="prior_quantile"``) mapped onto the new task,
    ``transfer_std="prior_spread"``'s std (ones otherwise: unused), and the residual
    correction."""

    def __init__(self, prior: PriorData, settings: AT2Settings) -> None:
        self.settings = settings
        self.transform = OutputTransform(prior, settings.standardize_prior, settings.scale_target,
                                         settings.output_warp)
        model_prior = self.transform.prior
        combine = copula_average if settings.transfer_mean == "prior_quantile" \
            else mean_over_tasks
        self.average, self.count = combine(model_prior.curves, model_prior.observed)
        self.kernel = residual.residual_kernel(settings.residual_kernel, model_prior.curves,
                                               model_prior.observed)
        self.spread = None
        if settings.transfer_std == "prior_spread":
            self.spread = spread.spread_error_scale(model_prior.curves, model_prior.observed) * \
                spread.spread_over_tasks(model_prior.curves, model_prior.observed)

    def posterior(self, configs: list[int], epochs: list[int],
                  curves: np.ndarray) -> CurvePosterior:
        """Conditioned on the observations ``curves[configs[i], epochs[i] - 1]`` (1-based)."""
        configs_, epochs_ = np.asarray(configs, dtype=np.int64), np.asarray(epochs, dtype=np.int64)
        values = curves[configs_, epochs_ - 1] if configs else np.zeros(0)
        self.transform.fit_target(configs_, epochs_, values)
        fallback = np.zeros_like(self.average)  # a cell no prior task observed: not in databases
        mean = self.transform.mean_from_model(np.where(self.count > 0, self.average, fallback))
        std = np.ones_like(mean) if self.spread is None else \
            np.abs(self.transform.std_from_model(self.spread))
        posterior = CurvePosterior(mean, std)
        if not self.settings.residual_correction or not configs:
            return posterior
        return residual.correct_observed(posterior, configs_, epochs_,
                                         self.transform.warp(values), self.kernel,
                                         self.settings.residual_min_epochs)


def _acquisition(settings, posterior, trained, seed, n_observations, bounded) -> Acquisition:
    """The acquisition the engine would build (``AT2Engine.acquisition``)."""
    name = "leaders" if settings.acquisition == "auto" else settings.acquisition
    if name == "next_epoch":
        return NextEpochUCB(settings.beta)
    if name == "best_future":
        return BestFutureUCB(settings.beta)
    if name == "thompson":
        draws = np.random.default_rng([seed, n_observations]).standard_normal(len(trained))
        return CurveThompson(draws)
    if name == "leaders":
        return LeadersRoundRobin(tuple(range(len(trained))), trained, settings.leaders,
                                 settings.leaders_decay)
    incumbent = float(posterior.mean[_recommendable(settings, trained)].max())
    if name == "mf_pi":
        return RandomHorizonPI.draw(np.random.default_rng([seed, n_observations]), posterior,
                                    incumbent, bounded=bounded)
    return BestFutureEI(incumbent)


def _recommendable(settings, trained) -> np.ndarray:
    observed = np.flatnonzero(trained > 0)
    if settings.recommend_from in ("observed", "best_observed") and observed.size:
        return observed
    return np.arange(len(trained))


def _best_predicted(posterior, candidates) -> int:
    return int(candidates[int(np.argmax(posterior.mean[candidates].max(axis=1)))])


def loo_ranks(db, settings: AT2Settings, budget: int = 100) -> dict[str, np.ndarray]:
    """:func:`case_ranks` of every leave-one-task-out case."""
    return case_ranks(db, settings, protocols.cases(db, "loo"), budget)


def case_ranks(db, settings: AT2Settings, cases: list[protocols.Case],
               budget: int = 100) -> dict[str, np.ndarray]:
    """Ranks at :data:`evaluation.CHECKPOINTS` for the replica and :data:`BASELINES` on every
    case and seed profile: ``{method: (n_cases * n_profiles, n_checkpoints)}``."""
    from at2_tune.replay import resolve_task

    checkpoints = evaluation.checkpoints_for(budget)
    out: dict[str, list[list[int]]] = {m: [] for m in ("replica",) + BASELINES}
    for case in cases:
        test_task = case.test_task
        for profile in range(db.n_seeds):
            task = resolve_task(db, train_tasks=case.train_tasks, test_task=test_task,
                                seed_profile=profile, budget=budget)
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
    parser.add_argument("--protocol", action="append", choices=protocols.PROTOCOLS,
                        help="repeatable (default: loo)")
    parser.add_argument("--prior-sizes", default=",".join(map(str, protocols.PRIOR_SIZES)),
                        metavar="K,...", help="prior tasks per case (subsets protocol)")
    parser.add_argument("--draws", type=int, default=protocols.DRAWS,
                        help="random priors of each size per test task (subsets protocol)")
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
    results: dict[str, dict] = {}
    for name in args.database or ("hyperrec", "lcbench"):
        db = load_database(name, args.data_dir)
        for protocol in args.protocol or ["loo"]:
            try:
                sizes = [int(k) for k in args.prior_sizes.split(",") if k.strip()]
                by_protocol = _grouped(protocols.cases(db, protocol, prior_sizes=sizes,
                                                       draws=args.draws))
            except (AT2Error, ValueError) as exc:
                parser.error(f"--prior-sizes / --draws: {exc}")
            for label, cases in by_protocol.items():
                ranks = case_ranks(db, settings, cases, args.budget)
                print(f"## {name}, {label} ({len(ranks['replica'])} cases), rank\n")
                print(table(ranks, evaluation.checkpoints_for(args.budget)) + "\n")
                results.setdefault(name, {})[label] = {m: v.tolist() for m, v in ranks.items()}
    if args.out:
        args.out.write_text(json.dumps({"settings": settings.to_json(), "ranks": results}))
    return 0


def _grouped(cases: list[protocols.Case]) -> dict[str, list[protocols.Case]]:
    """``cases`` by protocol label (``subsets-K`` apart for each size), in order."""
    grouped: dict[str, list[protocols.Case]] = {}
    for case in cases:
        grouped.setdefault(case.protocol, []).append(case)
    return grouped


if __name__ == "__main__":
    sys.exit(main())
