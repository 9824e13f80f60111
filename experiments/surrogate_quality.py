"""Surrogate quality: how well AT2 predicts every configuration's final value on the new task.

    python -m experiments.surrogate_quality --database hyperrec --protocol pairs --fit-cache DIR

A policy is only as good as its model. For every case (test task and seed profile), AT2 runs its
default policy; after 0, 5, 10 and 25 observations a model's prediction of each configuration's
best value over all epochs (``CurvePosterior.best_value``, a normal per configuration) is
compared with the true best value of all 100 configurations: mean predictive log-likelihood,
coverage of the central 90% interval (0.90 is calibrated), and the Spearman correlation of
predicted and true values. The model is the one the policy decides on (``--model engine``: the
transfer posterior, whose std is the prior tasks' spread of observed values) or the multi-task
GP conditioned on the same observations and residual-corrected (``--model gp``: its latent std
plus its noise).
Prints a Markdown table (mean ± standard error over cases) and writes ``OUT/quality.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from at2_tune import evaluation

AFTER = (0, 5, 10, 25)
Z90 = 1.6448536269514722


MODELS = ("engine", "gp")


def case_quality(db, train_tasks, test_task, seed_profile, seed, settings, fit_cache,
                 model: str = "engine"):
    """``{n_observations: {"loglik", "coverage90", "spearman"}}`` for one case, of the engine's
    posterior or of the GP's (``model``, one of :data:`MODELS`)."""
    from at2_tune.core.coordinator import Coordinator
    from at2_tune.core.engine import AT2Engine
    from at2_tune.core.models import GPCurveModel, ResidualCorrected
    from at2_tune.core.offline_cache import FitCache, prepare_engine
    from at2_tune.core.prior import PriorData
    from at2_tune.core.simulation import simulate
    from search_spaces import get_space

    prior = PriorData.from_database(db, train_tasks, seed_profile)
    engine = AT2Engine(get_space(db.space_name), prior, settings, seed=seed)
    prepare_engine(engine, FitCache.coerce(fit_cache))
    gp = None
    if model == "gp":
        engine.fit_offline()
        gp = ResidualCorrected(GPCurveModel(engine.surrogate), engine.surrogate,
                               engine.settings.policy.residual_min_epochs)
    curves = db.task_curves(test_task, seed_profile)
    truth = db.final_values(test_task, seed_profile)
    out = {}

    def evaluate(observed: int) -> None:
        if observed in AFTER:
            if gp is not None:
                gp.condition(engine.evidence())
            posterior = engine.posterior() if gp is None else gp.posterior()
            mean, std = posterior.best_value()
            truth_warped = engine.surrogate.transform.warp(truth)
            scale = engine.surrogate.transform.target.scale
            noise = float(engine.surrogate.likelihood.noise.detach()) * scale ** 2 \
                if _latent_std(engine, gp) else 0.0
            total_std = np.sqrt(std ** 2 + noise)
            z = (truth_warped - mean) / total_std
            out[observed] = {
                "loglik": float(np.mean(-0.5 * z ** 2 - np.log(total_std) - 0.5 * np.log(2 * np.pi))),
                "coverage90": float(np.mean(np.abs(z) <= Z90)),
                "spearman": float(np.corrcoef(evaluation.average_ranks(mean),
                                              evaluation.average_ranks(truth_warped))[0, 1])}

    evaluate(0)
    # one slot, no budget: the engine's own order, one epoch at a time
    coordinator = Coordinator(engine, max_concurrent=1)
    simulate(coordinator, curves, 1, on_observation=lambda row, _: evaluate(
        len(coordinator.trace)), max_observations=max(AFTER))
    return out


def _latent_std(engine, gp) -> bool:
    """Whether the posterior std is the GP's latent one (then the GP's noise is added); the
    prior tasks' spread in the transfer posterior is already that of observed values."""
    return gp is not None or engine.policy.decides_on == "gp"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="hyperrec", choices=["hyperrec", "lcbench"])
    parser.add_argument("--protocol", default="pairs", choices=["pairs", "loo"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit-cache", default=None, metavar="DIR")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--model", default="engine", choices=MODELS,
                        help="engine: the posterior the policy decides on; gp: the GP's")
    parser.add_argument("--out", type=Path, default=Path("results/surrogate_quality"))
    args = parser.parse_args(argv)
    import torch

    from at2_tune.core.settings import AT2Settings
    from at2_tune.databases import load_database

    torch.set_num_threads(1)
    db = load_database(args.database, args.data_dir)
    try:
        settings = AT2Settings().with_assignments(args.set)
    except ValueError as exc:
        parser.error(f"--set: {exc}")
    profiles = range(db.curves.shape[0])
    if args.protocol == "pairs":
        cases = [(db.pair(i).train_tasks, db.pair(i).test_task, p)
                 for i in range(len(db.pairs)) for p in profiles]
    else:
        cases = [(db.tasks_excluding([test]), test, p) for test in db.tasks for p in profiles]
    results = []
    for train, test, profile in cases:
        quality = case_quality(db, train, test, profile, args.seed, settings, args.fit_cache,
                               args.model)
        results.append({"test_task": test, "seed_profile": profile, "quality": quality})
        print(f"{test} profile {profile}: " + ", ".join(
            f"{n}: ll {q['loglik']:.2f} cov {q['coverage90']:.2f} rho {q['spearman']:.2f}"
            for n, q in quality.items()), file=sys.stderr, flush=True)
    lines = [f"## {db.name} {args.protocol}, {args.model} model: prediction of every configuration's best value "
             f"({len(cases)} cases)", "",
             "| observations | log-likelihood | 90% coverage | Spearman |", "| --- | --- | --- | --- |"]
    for n in AFTER:
        cells = []
        for metric in ("loglik", "coverage90", "spearman"):
            values = [r["quality"][n][metric] for r in results]
            cells.append(f"{np.mean(values):.2f} ± {evaluation.standard_error(values):.2f}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"quality_{db.name}_{args.protocol}_{args.model}"
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1))
    (args.out / f"{name}.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
