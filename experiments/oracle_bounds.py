"""How low can the rank of a recommendation get? Bounds that no policy on the same data beats.

    python -m experiments.oracle_bounds --protocol loo --out results/oracle_bounds

Two kinds of oracle, per database and protocol (mean ± standard error over cases; rank 0 = best
of the configurations, as in the replay benchmark):

- ``top-k oracle``: the best test-task configuration among the prior's ``k`` best by average
  rank (the configurations :func:`at2_tune.bench.baselines.top_k_round_robin` trains). A policy that
  only trains those ``k`` cannot recommend better than this even if it saw their whole curves;
  with a budget of 100 epochs and 75 (HyperRec) or 50 (LCBench) epochs per curve, it sees fewer
  than two whole curves.
- ``other-seed oracle`` (databases with two seed profiles): the best configuration of the test
  task under the *other* seed profile, i.e. complete knowledge of every curve of the same task
  up to training noise. Its rank measures how much of a task's ranking is noise.

And references that are not bounds (a policy may beat them through the prior) but tell how much
early epochs say about a configuration's best value: ``first-e epochs``, the best value seen
when the first ``e`` epochs of *every* configuration are known (``100 e`` epochs of training),
and ``top-10, first-e epochs``, the same among the prior's 10 best (``10 e`` epochs). A budget
of ``B`` epochs buys less than either once ``e > B / 10``.

Writes ``OUT/oracle_bounds.json`` and ``OUT/oracle_bounds.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from at2_tune import evaluation

TOP_K = (1, 3, 5, 10)
PREFIX_EPOCHS = (10, 25, 50)
PREFIX_TOP_K = 10


def case_bounds(db, train_tasks, test_task: str, seed_profile: int) -> dict[str, float]:
    """``{"top-k oracle": rank, ..., "other-seed oracle": rank}`` of one case (rank 0 = best)."""
    order = _prior_order(db, train_tasks, seed_profile)
    ranks = db.ranks(test_task, seed_profile)
    bounds = {f"top-{k} oracle": float(ranks[order[:k]].min()) for k in TOP_K}
    if db.n_seeds == 2:
        other = db.final_values(test_task, 1 - seed_profile)
        bounds["other-seed oracle"] = float(ranks[int(np.argmax(other))])
    return bounds


def prefix_references(db, train_tasks, test_task: str, seed_profile: int) -> dict[str, float]:
    """``{"first-e epochs": rank, "top-10, first-e epochs": rank}`` for ``e`` in
    :data:`PREFIX_EPOCHS`: the rank of the configuration with the best value within its first
    ``e`` epochs, among all configurations and among the prior's :data:`PREFIX_TOP_K` best by
    average rank (ties to the better average rank)."""
    order = _prior_order(db, train_tasks, seed_profile)
    curves, ranks = db.task_curves(test_task, seed_profile), db.ranks(test_task, seed_profile)
    references = {}
    for epochs in PREFIX_EPOCHS:
        seen = curves[:, :epochs].max(axis=1)
        top = order[:PREFIX_TOP_K]
        references[f"first-{epochs} epochs"] = float(ranks[int(np.argmax(seen))])
        references[f"top-{PREFIX_TOP_K}, first-{epochs} epochs"] = float(
            ranks[top[int(np.argmax(seen[top]))]])
    return references


def _prior_order(db, train_tasks, seed_profile: int) -> np.ndarray:
    """Configurations in the prior's order on ``train_tasks`` (the package's one order,
    ``PriorData.order_of``), best first."""
    from at2_tune.core.prior import PriorData

    prior = PriorData.from_database(db, train_tasks, seed_profile)
    return np.array(prior.order_of(db.configs), dtype=np.int64)


def cases(db, protocol: str) -> list[tuple[tuple[str, ...], str, int]]:
    """(prior tasks, test task, seed profile) of every case of ``protocol``."""
    if protocol == "pairs":
        tasks = [(db.pair(i).train_tasks, db.pair(i).test_task) for i in range(len(db.pairs))]
    else:
        tasks = [(tuple(db.tasks_excluding([test])), test) for test in db.tasks]
    return [(train, test, p) for train, test in tasks for p in range(db.n_seeds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", action="append", choices=["hyperrec", "lcbench"],
                        help="repeatable (default: both)")
    parser.add_argument("--protocol", action="append", choices=["pairs", "loo"],
                        help="repeatable (default: both)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("results/oracle_bounds"))
    args = parser.parse_args(argv)
    from at2_tune.databases import load_database

    bound_keys = [f"top-{k} oracle" for k in TOP_K] + ["other-seed oracle"]
    reference_keys = [f"{who}first-{e} epochs" for who in ("", f"top-{PREFIX_TOP_K}, ")
                      for e in PREFIX_EPOCHS]
    summary: dict[str, dict[str, dict[str, list[float | None]]]] = {}
    bound_lines, reference_lines = _table_head(bound_keys), _table_head(reference_keys)
    for name in args.database or ["hyperrec", "lcbench"]:
        db = load_database(name, args.data_dir)
        for protocol in args.protocol or ["pairs", "loo"]:
            per_case = [{**case_bounds(db, *case), **prefix_references(db, *case)}
                        for case in cases(db, protocol)]
            columns = {key: [c[key] for c in per_case] for key in per_case[0]}
            summary.setdefault(name, {})[protocol] = {
                key: [float(np.mean(v)), evaluation.standard_error(v)]
                for key, v in columns.items()}
            head = f"| {name} | {protocol} | {len(per_case)} | "
            bound_lines.append(head + _cells(columns, bound_keys))
            reference_lines.append(head + _cells(columns, reference_keys))
    caption = "References (not bounds): the best value seen within the first e epochs"
    table = "\n".join(bound_lines) + f"\n\n{caption}\n\n" + "\n".join(reference_lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "oracle_bounds.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.out / "oracle_bounds.md").write_text(table)
    print(table, end="")
    return 0


def _table_head(keys: list[str]) -> list[str]:
    return ["| database | protocol | cases | " + " | ".join(keys) + " |",
            "|" + " --- |" * (3 + len(keys))]


def _cells(columns: dict[str, list[float]], keys: list[str]) -> str:
    """Mean ± standard error of each key's column ("–" where the key is absent), a table row's
    tail."""
    cells = [f"{np.mean(columns[k]):.2f} ± {evaluation.standard_error(columns[k]):.2f}"
             if k in columns else "–" for k in keys]
    return " | ".join(cells) + " |"


if __name__ == "__main__":
    sys.exit(main())
