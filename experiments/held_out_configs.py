"""Transfer to configurations no prior task trained: half of the grid hidden from the prior.

    python -m experiments.held_out_configs --database lcbench --jobs 2 --out results/held_out

A team's past experiments rarely ran the configurations it samples today. This protocol takes
every leave-one-task-out case, hides a seeded random half of the configurations from every
prior task (their cells are unobserved, NaN) and tunes all of them on the new task, so the best
configuration is new to the prior in about half of the cases. Model-free transfer ranks what
the prior saw: ``top4-weighted`` trains the observed half's four best by average prior rank
(``at2_tune.bench.baselines.top_k_round_robin``), and ``top4-weighted-nn`` also ranks a hidden
configuration, at the average prior rank of its nearest observed one
(``search_spaces.nearest``; ties to the observed one). AT2 (default settings) predicts a hidden
configuration's curve with its GP (the hyperparameter kernel) and an observed one's with the
prior average, as it does in live tuning; ``at2-observed`` is AT2 restricted to the observed
half (what it does without the GP's reach, ``--methods`` to include it), and ``at2-replica``
the same decisions without any fit (AT2 with the observed half as its whole prior grid, where
the transfer posterior needs no GP: the default policy trains a hidden configuration only once
fewer than ``leaders`` observed ones are open, which 100 queries never reach, so it decides as
``at2-observed``; seconds for all cases, for trying policy settings with ``--set``).

Prints, per database, the rank of the recommendation among all configurations after
10/25/50/100 queries (mean ± standard error over cases), the paired difference of AT2 with the
best baseline, the share of cases whose best configuration is hidden and of AT2's final
recommendations that are hidden. Each run (one method on one case) is one JSON file under
``OUT/runs`` (``at2_tune.bench.harness``, as the other benchmarks); runs already there are
skipped, so a run can be resumed; ``OUT/summary.md`` holds the tables. With ``--fit-cache DIR``
the offline fits are saved there, and a rerun with other policy settings (``--set leaders=3``)
reuses them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from at2_tune import evaluation
from at2_tune.bench import harness
from at2_tune.bench.harness import Job

METHODS = ("at2", "top4-weighted", "top4-weighted-nn")
OPTIONAL = ("at2-observed", "at2-replica")
HIDDEN_SHARE = 0.5


def hidden_configs(n_configs: int, case_seed: int, share: float = HIDDEN_SHARE) -> np.ndarray:
    """bool ``(n_configs,)``: the ``round(share * n_configs)`` configurations hidden from the
    prior in the case seeded ``case_seed`` (a seeded random choice)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"hidden share {share} must be strictly between 0 and 1 (some "
                         "configurations observed by the prior, some new)")
    hidden = np.zeros(n_configs, dtype=bool)
    count = int(round(share * n_configs))
    hidden[np.random.default_rng([case_seed, 2026]).permutation(n_configs)[:count]] = True
    return hidden


def masked_prior(db, train_tasks, seed_profile: int, hidden: np.ndarray):
    """The prior tasks' curves with every ``hidden`` configuration unobserved (NaN)."""
    from at2_tune.core.prior import PriorData

    full = PriorData.from_database(db, train_tasks, seed_profile)
    curves = full.curves.copy()
    curves[:, hidden, :] = np.nan
    return PriorData(full.tasks, full.configs, curves, f"{full.source}, {hidden.sum()} hidden")


def observed_order(db, train_tasks, seed_profile: int, hidden: np.ndarray) -> np.ndarray:
    """The observed configurations in the prior's order over the masked prior (the package's
    one order, ``PriorData.order_of``), best first."""
    prior = masked_prior(db, train_tasks, seed_profile, hidden)
    return np.array(prior.order_of(db.configs), dtype=np.int64)


def nearest_order(db, space, train_tasks, seed_profile: int, hidden: np.ndarray) -> np.ndarray:
    """Every configuration ranked by the average prior rank of its nearest observed
    configuration (itself when observed), best first; a hidden configuration right after its
    neighbour (ties: lower index)."""
    from search_spaces.nearest import NearestConfig

    order = observed_order(db, train_tasks, seed_profile, hidden)
    place = np.empty(db.n_configs)
    place[order] = np.arange(order.size)
    snap = NearestConfig(space, [db.configs[i] for i in order])
    for config in np.flatnonzero(hidden):
        place[config] = snap.index(db.configs[config]) + 0.5
    return np.argsort(place, kind="stable")


def run_at2(db, space, prior, curves: np.ndarray, candidates: np.ndarray, budget: int,
            seed: int = 0, settings=None, fit_cache=None) -> tuple[list[int], float, float]:
    """AT2 over ``candidates`` (configuration indices); returns the recommended configuration
    after each query (``budget`` entries), the seconds of the offline fit (or of loading it
    from ``fit_cache``, a folder) and the first conditioning, and the median seconds per
    query."""
    from at2_tune.core.coordinator import Coordinator
    from at2_tune.core.engine import AT2Engine
    from at2_tune.core.offline_cache import FitCache, prepare_engine
    from at2_tune.core.simulation import simulate

    engine = AT2Engine(space, prior, settings, seed=seed,
                       candidates=[db.configs[i] for i in candidates])
    started = time.perf_counter()
    prepare_engine(engine, FitCache.coerce(fit_cache))
    fit_seconds = time.perf_counter() - started
    recommended, seconds = [], []
    last = [time.perf_counter()]

    def record(row, sim_time: float) -> None:
        recommended.append(int(candidates[row.recommended]))
        seconds.append(time.perf_counter() - last[0])
        last[0] = time.perf_counter()

    # one slot, no budget: the engine's own order, one epoch at a time
    coordinator = Coordinator(engine, max_concurrent=1, track_recommendations=True)
    simulate(coordinator, curves[np.asarray(candidates)], 1, seed=seed, on_observation=record,
             max_observations=budget)
    recommended += recommended[-1:] * (budget - len(recommended))
    return recommended, fit_seconds, float(np.median(seconds))


def replica_on_observed(db, train_tasks, seed_profile: int, hidden: np.ndarray,
                        curves: np.ndarray, budget: int, settings) -> list[int]:
    """AT2's recommendations over the observed configurations with them as the whole prior
    grid (the GP takes no part: no fit): what ``at2-observed`` recommends."""
    from at2_tune.core.prior import PriorData
    from search_spaces import get_space

    observed = np.flatnonzero(~hidden)
    full = PriorData.from_database(db, train_tasks, seed_profile)
    prior = PriorData(full.tasks, tuple(full.configs[i] for i in observed),
                      full.curves[:, observed], f"{full.source}, observed half")
    recommended, _, _ = run_at2(db, get_space(db.space_name), prior, curves, observed, budget,
                                settings=settings)
    return recommended


def run_case(database: str, test_task: str, seed_profile: int, methods, budget: int,
             data_dir: str | None, settings_json: dict | None = None,
             threads: int = 1, fit_cache: str | None = None) -> dict[str, Any]:
    """One leave-one-task-out case: every method's ranks at the checkpoints and its trace."""
    import torch

    from at2_tune.bench.baselines import top_k_round_robin
    from at2_tune.core.settings import AT2Settings
    from at2_tune.databases import load_database
    from at2_tune.simulator import resolve_task
    from search_spaces import get_space

    torch.set_num_threads(threads)
    db = load_database(database, data_dir)
    space = get_space(db.space_name)
    settings = AT2Settings.from_json(settings_json) if settings_json else AT2Settings()
    task = resolve_task(db, train_tasks=db.tasks_excluding([test_task]), test_task=test_task,
                        seed_profile=seed_profile, budget=budget)
    hidden = hidden_configs(db.n_configs, db.task_index(test_task))
    curves, ranks = db.task_curves(test_task, seed_profile), db.ranks(test_task, seed_profile)
    result: dict[str, Any] = {"database": database, "test_task": test_task,
                              "seed_profile": seed_profile, "budget": budget,
                              "hidden": np.flatnonzero(hidden).tolist(),
                              "best_hidden": bool(hidden[int(np.argmin(ranks))]),
                              "recommended": {}, "seconds": {}}
    for method in methods:
        if method == "top4-weighted":
            order = observed_order(db, task.train_tasks, seed_profile, hidden)
            recommended = top_k_round_robin(db, task, 4, 0.5, order).recommended
        elif method == "top4-weighted-nn":
            order = nearest_order(db, space, task.train_tasks, seed_profile, hidden)
            recommended = top_k_round_robin(db, task, 4, 0.5, order).recommended
        elif method == "at2-replica":
            recommended = replica_on_observed(db, task.train_tasks, seed_profile, hidden,
                                              curves, budget, settings)
        else:
            prior = masked_prior(db, task.train_tasks, seed_profile, hidden)
            candidates = np.arange(db.n_configs) if method == "at2" else np.flatnonzero(~hidden)
            recommended, fit_seconds, query_seconds = run_at2(db, space, prior, curves,
                                                              candidates, budget, 0, settings,
                                                              fit_cache)
            result["seconds"][method] = {"fit": fit_seconds, "median_query": query_seconds}
        result["recommended"][method] = recommended
    result["ranks"] = {m: [int(ranks[r[q - 1]]) for q in evaluation.checkpoints_for(budget)]
                       for m, r in result["recommended"].items()}
    return result


def summarize(cases: list[dict[str, Any]], methods) -> str:
    """Markdown: rank per method and checkpoint, AT2's paired difference with the best
    baseline, the hidden shares."""
    budget = cases[0]["budget"]
    checkpoints = evaluation.checkpoints_for(budget)

    def cell(values) -> str:
        se = evaluation.standard_error(values)
        return f"{np.mean(values):.2f}" + ("" if se is None else f" ± {se:.2f}")

    ranks = {m: np.array([c["ranks"][m] for c in cases], dtype=float) for m in methods}
    lines = ["| method | " + " | ".join(f"@{q}" for q in checkpoints) + " |",
             "|" + " --- |" * (len(checkpoints) + 1)]
    lines += [f"| {m} | " + " | ".join(cell(r[:, i]) for i in range(len(checkpoints))) + " |"
              for m, r in ranks.items()]
    baselines = [m for m in methods if not m.startswith("at2")]
    for at2 in [m for m in ("at2", "at2-replica") if m in ranks] if baselines else []:
        best = [min(baselines, key=lambda m: ranks[m][:, i].mean())
                for i in range(len(checkpoints))]
        lines.append(f"| {at2} - best baseline | " + " | ".join(
            f"{cell(ranks[at2][:, i] - ranks[b][:, i])} ({b})" for i, b in enumerate(best))
            + " |")
    best_hidden = np.mean([c["best_hidden"] for c in cases])
    lines.append(f"\n{len(cases)} cases; the best configuration is hidden in {best_hidden:.0%}.")
    if "at2" in ranks:
        picks = [c["recommended"]["at2"][-1] in set(c["hidden"]) for c in cases]
        fits = [c["seconds"]["at2"]["fit"] for c in cases]
        queries = [c["seconds"]["at2"]["median_query"] for c in cases]
        lines.append(f"AT2's final recommendation is hidden in {np.mean(picks):.0%}; offline fit "
                     f"median {np.median(fits):.0f} s, query median {np.median(queries):.2f} s.")
    return "\n".join(lines) + "\n"


def run_job(job: Job, data_dir: str | None = None, fit_cache: str | None = None,
            threads: int = 1) -> dict[str, Any]:
    """One method on one case (the harness's unit of work): :func:`run_case`'s document."""
    from at2_tune.core.settings import AT2Settings

    settings = AT2Settings().with_assignments(f"{name}={json.dumps(value)}"
                                              for name, value in job.overrides.items())
    case = run_case(job.database, job.test_task, job.seed_profile, [job.method], job.budget,
                    data_dir, settings.to_json(), threads, fit_cache)
    return {"key": job.key, **case}


def merged_cases(documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The run documents of one method each, merged into one case document per test task and
    seed profile (every method's recommendations, ranks and seconds), by database."""
    cases: dict[tuple, dict[str, Any]] = {}
    for document in documents:
        key = (document["database"], document["test_task"], document["seed_profile"])
        case = cases.setdefault(key, {**document, "recommended": {}, "ranks": {},
                                      "seconds": {}})
        for part in ("recommended", "ranks", "seconds"):
            case[part].update(document[part])
    by_database: dict[str, list[dict[str, Any]]] = {}
    for (database, _, _), case in cases.items():
        by_database.setdefault(database, []).append(case)
    return by_database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", action="append", choices=("hyperrec", "lcbench"))
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated among {', '.join(METHODS + OPTIONAL)}")
    parser.add_argument("--seed-profiles", default="0",
                        help="HyperRec seed profiles, comma-separated (LCBench has one)")
    parser.add_argument("--tasks", type=int, help="only the first N test tasks (a quick look)")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--fit-cache", metavar="DIR",
                        help="reuse offline fits saved in DIR (and save new ones there): runs "
                             "that differ only in policy settings share one fit")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path("results/held_out_configs"))
    args = parser.parse_args(argv)
    from at2_tune.core.settings import AT2Settings
    from at2_tune.databases import load_database

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS + OPTIONAL))
    if unknown or not methods:
        parser.error(f"--methods: {unknown or 'nothing'} not among {', '.join(METHODS + OPTIONAL)}")
    try:
        AT2Settings().with_assignments(args.set)
    except ValueError as exc:
        parser.error(f"--set: {exc}")
    if args.jobs < 1 or args.budget < 1:
        parser.error("--jobs and --budget must be at least 1")
    overrides = {name.strip(): json.loads(value)  # as given: the run keys hash them
                 for name, _, value in (item.partition("=") for item in args.set)}
    profiles = [int(p) for p in args.seed_profiles.split(",")]
    jobs = []
    for name in args.database or ("hyperrec", "lcbench"):
        db = load_database(name, args.data_dir)
        for test_task in db.tasks[: args.tasks]:
            for profile in profiles if db.n_seeds > 1 else [0]:
                jobs += [Job(name, "held-out-configs", f"{test_task}@sp{profile}", test_task,
                             profile, tuple(db.tasks_excluding([test_task])), method, 0,
                             args.budget, overrides=overrides if method.startswith("at2")
                             else {}) for method in methods]
    runs_dir = args.out / "runs"
    harness.run_missing(jobs, run_job, runs_dir, args.jobs, description="held-out runs",
                        data_dir=args.data_dir, fit_cache=args.fit_cache,
                        threads=max(1, 2 // args.jobs))
    sections = []
    for name, cases in merged_cases(harness.load_documents(jobs, runs_dir)).items():
        usable = [c for c in cases if all(m in c["ranks"] for m in methods)]
        if len(usable) < len(cases):
            print(f"{name}: {len(cases) - len(usable)} cases miss a method's run (it failed); "
                  "see the errors above", flush=True)
        if usable:
            sections.append(f"## {name}, half of the configurations hidden from the prior, "
                            f"rank ({len(usable)} cases)\n\n{summarize(usable, methods)}")
    (args.out / "summary.md").write_text("\n".join(sections))
    print("\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
