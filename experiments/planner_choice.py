"""The budget planner's choice, measured alone: minutes where the replay benchmark takes hours.

    python -m experiments.planner_choice --database lcbench --protocol histories --prior-sizes 8 \
        --budget 10,25,50,100 --concurrency 1 --without halving --out results/choice-lcbench

For every case of the protocol (the replay benchmark's cases: ``loo``, ``subsets`` or
``histories``, whose priors are the same histories, ``at2_tune.bench.histories``, drawn with the
same ``--history-*`` options)
and every budget, each schedule of the planner's family (``planner.FAMILY``)

* is scored as the planner scores it: replayed on each prior task in turn, the other prior
  tasks its prior (``planner.schedule_regrets``), and
* is replayed on the new task's own curves over the prior's order (``planner.replay_schedule``),
  its held model's normalized regret (the best value observed) recorded.

The plan is the planner's choice on the prior's scores (``planner.ranked``) and its held
regret the new task's regret of that schedule. That is the held regret of the replay
benchmark's AT2 run (the default policy, ``planned``) on the same case (tested on LCBench
cases), except where a plan ends under the budget: AT2 then hands the rest to ``leaders``,
which can only raise the value held. Because every schedule's scores are kept, another family
(``--without KIND,...``: the family without those kinds, ``round_robin``, ``in_turn``,
``halving``, ``weighted``, ``portfolio``) is measured on the same replays.

Prints, per budget: the plan's held regret (mean ± standard error over cases), the best fixed
schedule of the family chosen after the fact, the plan minus it (paired), and per ``--without``
family its held regret minus the whole family's (paired). Writes ``OUT.npz`` (the scores, the
wall times and the new tasks' regrets, ``(cases, budgets, schedules, prior tasks)`` and
``(cases, budgets, schedules)``; NaN pads prior tasks that could not be replayed) and
``OUT.md``. Single-threaded; run with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from at2_tune import evaluation
from at2_tune.bench import protocols
from at2_tune.bench.histories import (HistoryOptions, draw_histories, history_curves,
                                      history_seed)
from at2_tune.core.planner import FAMILY, ranked, rankings, replay_schedule, schedule_regrets
from at2_tune.core.prior import best_values
from at2_tune.errors import AT2Error

KINDS = tuple(dict.fromkeys(s.kind for s in FAMILY))
"""The schedule kinds of the planner's family, in its order (what ``--without`` names)."""


def case_prior(db, case: protocols.Case, seed_profile: int,
               history: HistoryOptions | None = None, draw_seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """The prior curves ``(T, C', E)`` the planner reads for ``case`` and the grid configuration
    of each of their ``C'`` columns: the prior tasks' grid (``C' = C``), or their histories
    (the configurations some history trained, NaN where no trial ran) when ``history`` is
    given, drawn as the replay benchmark draws them."""
    if history is None:
        curves = np.stack([db.task_curves(t, seed_profile) for t in case.train_tasks])
        return curves, np.arange(db.n_configs)
    seed = history_seed(db.name, case.test_task, case.train_tasks, seed_profile, history,
                        draw_seed)
    return history_curves(db, draw_histories(db, case.train_tasks, seed_profile, history, seed),
                          seed_profile)


def case_replays(db, case: protocols.Case, seed_profile: int, budgets, concurrency: int,
                 history: HistoryOptions | None = None, draw_seed: int = 0):
    """For each budget: every schedule's regrets and wall times on the prior tasks
    ``(S, T')`` and its held model's normalized regret on the new task ``(S,)``."""
    prior, columns = case_prior(db, case, seed_profile, history, draw_seed)
    curves = db.task_curves(case.test_task, seed_profile)
    finals = curves.max(axis=1)
    orders = {name: [int(columns[c]) for c in order]
              for name, order in rankings(best_values(prior)).items()}
    out = []
    for budget in budgets:
        scores, walls = schedule_regrets(prior, budget, concurrency)
        held = [replay_schedule(s, curves, orders[s.ranking_name], budget, concurrency)[0]
                for s in FAMILY]
        out.append((scores, walls, evaluation.held_regrets(finals, held)))
    return out


def chosen(scores: np.ndarray, walls: np.ndarray, kept: list[int]) -> int:
    """The planner's choice (an index of ``FAMILY``) among the schedules ``kept``, from one
    case's scores and wall times ``(S, T)`` (NaN columns: prior tasks not replayed)."""
    columns = ~np.isnan(scores[0])
    order = ranked(scores[kept][:, columns], walls[kept][:, columns], [FAMILY[i] for i in kept])
    return kept[order[0]]


def family_without(kinds) -> list[int]:
    """Indices of the ``FAMILY`` schedules whose kind is not in ``kinds``."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise AT2Error(f"--without {','.join(unknown)}: not a schedule kind; choose from "
                       f"{', '.join(KINDS)}")
    kept = [i for i, s in enumerate(FAMILY) if s.kind not in set(kinds)]
    if not kept:
        raise AT2Error(f"--without {','.join(kinds)} leaves no schedule; leave a kind in")
    return kept


def plan_regrets(scores: np.ndarray, walls: np.ndarray, regrets: np.ndarray,
                 kept: list[int]) -> np.ndarray:
    """``(cases, budgets)`` the new task's held regret of the plan chosen among ``kept``."""
    n_cases, n_budgets = regrets.shape[:2]
    return np.array([[regrets[c, b, chosen(scores[c, b], walls[c, b], kept)]
                      for b in range(n_budgets)] for c in range(n_cases)])


def _paired(values: np.ndarray) -> str:
    """A paired difference's mean ± standard error, signed."""
    return evaluation.format_mean_se(values, sign=True)


def table(regrets: np.ndarray, scores: np.ndarray, walls: np.ndarray, budgets,
          without: list[list[str]]) -> str:
    """The markdown table of the module docstring."""
    whole = plan_regrets(scores, walls, regrets, list(range(len(FAMILY))))
    fixed = regrets.mean(axis=0)  # (budgets, schedules)
    best = fixed.argmin(axis=1)
    head = "| | " + " | ".join(f"B={b}" for b in budgets) + " | mean over B |"
    lines = [head, "|" + " --- |" * (len(budgets) + 2)]
    n = len(regrets)
    lines.append("| plan | " + " | ".join(evaluation.format_mean_se(whole[:, b])
                                          for b in range(len(budgets)))
                 + f" | {whole.mean():.3f} |")
    lines.append("| best fixed schedule | " + " | ".join(
        f"{fixed[b, s]:.3f} ({FAMILY[s].label})" for b, s in enumerate(best))
        + f" | {fixed.mean(axis=0).min():.3f} ({FAMILY[int(fixed.mean(axis=0).argmin())].label}) |")
    lines.append("| plan − best fixed (paired) | " + " | ".join(
        _paired(whole[:, b] - regrets[:, b, s]) for b, s in enumerate(best)) + " | |")
    for kinds in without:
        other = plan_regrets(scores, walls, regrets, family_without(kinds))
        lines.append(f"| plan without {','.join(kinds)} − plan (paired) | " + " | ".join(
            _paired(other[:, b] - whole[:, b]) for b in range(len(budgets)))
            + f" | {other.mean():.3f} ({_paired(other.mean(axis=1) - whole.mean(axis=1))}) |")
    return "\n".join(lines) + f"\n\n{n} cases.\n"


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=("hyperrec", "lcbench"), required=True)
    parser.add_argument("--protocol", choices=("loo", "subsets", "histories"), default="loo")
    parser.add_argument("--prior-sizes", default="8", help="subsets and histories (K,...)")
    parser.add_argument("--history-configs", type=int, default=HistoryOptions.configs,
                        help="histories: trials per prior task")
    parser.add_argument("--history-overlap", default=HistoryOptions.overlap,
                        choices=("independent", "none"))
    parser.add_argument("--history-scheduler", default=HistoryOptions.scheduler,
                        choices=("asha", "fifo"))
    parser.add_argument("--tasks", default=None, help="new tasks (NAME,...; default: all)")
    parser.add_argument("--seed-profiles", default="0")
    parser.add_argument("--budget", default="10,25,50,100", help="B,...")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--without", action="append", default=[],
                        help=f"KIND,... left out of the family ({', '.join(KINDS)}); repeatable")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True, help="path stem: OUT.npz and OUT.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from at2_tune.databases import load_database

    args = _parse(argv)
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    budgets, without = ints(args.budget), [w.split(",") for w in args.without]
    for kinds in without:
        family_without(kinds)  # a bad kind fails before the replays
    db = load_database(args.database, args.data_dir)
    history = HistoryOptions(args.history_configs, args.history_overlap,
                             args.history_scheduler) if args.protocol == "histories" else None
    tasks = None if args.tasks is None else args.tasks.split(",")
    cases = [c for size in ints(args.prior_sizes) for c in protocols.cases(
        db, args.protocol, tasks=tasks, prior_sizes=(size,), draws=1)] \
        if args.protocol != "loo" else protocols.cases(db, "loo", tasks=tasks)
    names, rows = [], []
    for profile in (p for p in ints(args.seed_profiles) if p < db.n_seeds):
        for case in cases:
            rows.append(case_replays(db, case, profile, budgets, args.concurrency, history))
            names.append(f"{case.protocol}/{case.name}@{profile}")
    if not rows:
        raise AT2Error(f"no case: --tasks {args.tasks} and --seed-profiles {args.seed_profiles} "
                       f"name none of {args.database}'s")
    width = max(s.shape[1] for row in rows for s, _, _ in row)

    def padded(index: int) -> np.ndarray:
        out = np.full((len(rows), len(budgets), len(FAMILY), width), np.nan)
        for c, row in enumerate(rows):
            for b, parts in enumerate(row):
                out[c, b, :, :parts[index].shape[1]] = parts[index]
        return out

    scores, walls = padded(0), padded(1)
    regrets = np.array([[parts[2] for parts in row] for row in rows])
    text = (f"**{args.database}, {args.protocol}"
            f"{'' if args.protocol == 'loo' else ' ' + args.prior_sizes}, "
            f"{args.concurrency} slot(s)**: held regret of the planner's choice\n\n"
            + table(regrets, scores, walls, budgets, without))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out.with_suffix(".npz"), scores=scores, walls=walls, regrets=regrets,
             cases=np.array(names), budgets=np.array(budgets),
             family=np.array([s.label for s in FAMILY]))
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
