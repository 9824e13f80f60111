"""Aggregation of replay runs: normalized regret, standard errors, ranks across methods, paired
differences, and the summary tables of the replay benchmark.

A *run* is one method with one seed on one *case* (a test task, its seed profile and its prior
tasks, within a protocol). :func:`summarize` takes runs as dicts with the keys ``database``,
``protocol``, ``case``, ``method``, ``seed``, ``ranks`` and ``regrets`` (one entry per query:
the recommendation's rank, 0 = best, and its normalized regret), ``configs_touched`` and,
optionally, ``timing`` and ``peak_rss_mb``. It first averages the seeds of a method within a
case, then takes means and standard errors over cases.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

CHECKPOINTS = (10, 25, 50, 100)
AT2_METHODS = ("at2", "at2-no-transfer", "reference")
"""Methods that run the AT2 model; the others are the baselines AT2 is compared with."""


HELD_METRICS = ("held_regret", "held_rank")
"""The held model's metrics: the normalized regret and the rank among the configurations'
final values of the best value observed (run documents hold them per query as
``held_regrets`` and ``held_ranks``)."""


def checkpoints_for(budget: int) -> tuple[int, ...]:
    """The checkpoints (numbers of queries) reported for ``budget``: those of
    :data:`CHECKPOINTS` within it, or the budget alone if it is below them all."""
    return tuple(q for q in CHECKPOINTS if q <= budget) or (budget,)


def normalized_regret(final_values: Sequence[float], config: int | Sequence[int]):
    """``(best - value) / (best - worst)`` of the final values of ``config`` (one index or
    several): 0 for the best configuration, 1 for the worst, 0 when all are equal."""
    final = np.asarray(final_values, dtype=float)
    spread = final.max() - final.min()
    regret = (final.max() - final[np.asarray(config)]) / spread if spread > 0 else \
        np.zeros(np.shape(config))
    return float(regret) if np.ndim(regret) == 0 else regret


def held_values(curves: np.ndarray, trained: Sequence[int]) -> np.ndarray:
    """The best value observed after each query, i.e. the value of the model a user holds
    (``ResultGrid.get_best_result``): ``curves`` ``(C, E)`` of the task, ``trained`` the
    configuration each query trained, its n-th appearance training its n-th epoch."""
    epochs: dict[int, int] = {}
    values = []
    for config in trained:
        epochs[config] = epochs.get(config, 0) + 1
        values.append(float(curves[config, epochs[config] - 1]))
    return np.maximum.accumulate(np.asarray(values, dtype=float)) if values else np.zeros(0)


def held_curve(values: Sequence[float], budget: int, nothing: float) -> np.ndarray:
    """``(budget,)`` the best value observed after each epoch of the budget: the running maximum
    of ``values`` (in the order observed), carried on once they end (a run that spent less);
    ``nothing`` throughout when no value was observed (a run that trained nothing)."""
    held = np.maximum.accumulate(np.asarray(values, dtype=float)) if len(values) else \
        np.array([float(nothing)])
    return np.concatenate([held, np.full(budget - held.size, held[-1])])


def held_regrets(final_values: Sequence[float], held: Sequence[float]) -> np.ndarray:
    """``(best - held) / (best - worst)`` of each held value against the task's final values
    (best over epochs of every configuration): 0 when the held model is as good as the best
    configuration trained to its end, 0 when all are equal."""
    final = np.asarray(final_values, dtype=float)
    spread = final.max() - final.min()
    held = np.asarray(held, dtype=float)
    return (final.max() - held) / spread if spread > 0 else np.zeros(held.shape)


def held_ranks(final_values: Sequence[float], held: Sequence[float]) -> np.ndarray:
    """The number of configurations whose final value is strictly better than each held
    value (0: the held model is at least as good as every configuration trained to its end)."""
    final = np.asarray(final_values, dtype=float)
    return (final[None, :] > np.asarray(held, dtype=float)[:, None]).sum(axis=1)


def standard_error(values: Iterable[float]) -> float | None:
    """Standard error of the mean: sample standard deviation (ddof=1) / sqrt(n); ``None``
    with fewer than two values."""
    array = np.asarray(list(values), dtype=float)
    if array.size < 2:
        return None
    return float(array.std(ddof=1) / math.sqrt(array.size))


def format_mean_se(values: Iterable[float], digits: int = 3, sign: bool = False) -> str:
    """``"mean ± se"`` of ``values`` (:func:`standard_error`), with ``digits`` decimals and a
    leading ``+`` on positive means when ``sign`` (a paired difference); the mean alone with
    fewer than two values."""
    array = np.asarray(list(values), dtype=float)
    return mean_se_cell(float(array.mean()), standard_error(array), digits, sign)


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``, lowest value first, tied values sharing their average rank
    (the project's one tie-averaged rank: the prior's task statistics read it too)."""
    array = np.asarray(values, dtype=float)
    ranks = np.empty(array.size)
    ranks[np.argsort(array, kind="stable")] = np.arange(1, array.size + 1)
    unique, inverse = np.unique(array, return_inverse=True)
    if unique.size < array.size:  # the ties: each gets the mean of their ranks
        ranks = (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]
    return ranks


def rank_across_methods(per_case: Mapping[str, Mapping[Any, float]]) -> dict[str, float]:
    """Mean over cases of each method's rank among the methods (1 = best, ties averaged).

    ``per_case`` maps each method to its value (lower is better) per case; only the cases that
    every method has are used.
    """
    methods = list(per_case)
    cases = set.intersection(*(set(per_case[m]) for m in methods)) if methods else set()
    if not cases:
        return {}
    table = np.array([average_ranks([per_case[m][c] for m in methods]) for c in sorted(cases)])
    return {m: float(v) for m, v in zip(methods, table.mean(axis=0))}


def paired_difference(first: Mapping[Any, float], second: Mapping[Any, float]
                      ) -> tuple[float | None, float | None, int]:
    """Mean of ``first - second`` over the cases both have, its standard error and the number
    of those cases (``None, None, 0`` without a common case)."""
    cases = sorted(set(first) & set(second))
    differences = [first[c] - second[c] for c in cases]
    if not differences:
        return None, None, 0
    return float(np.mean(differences)), standard_error(differences), len(differences)


def _case_means(runs: list[dict], checkpoints: Sequence[int]) -> dict[str, dict[Any, float]]:
    """Per metric (``rank@q``, ``regret@q``, ``touched``): the seed average per case."""
    by_case: dict[Any, list[dict]] = defaultdict(list)
    for run in runs:
        by_case[run["case"]].append(run)
    means: dict[str, dict[Any, float]] = defaultdict(dict)
    for case, mine in by_case.items():
        for q in checkpoints:
            means[f"rank@{q}"][case] = float(np.mean([r["ranks"][q - 1] for r in mine]))
            means[f"regret@{q}"][case] = float(np.mean([r["regrets"][q - 1] for r in mine]))
            if all("held_regrets" in r for r in mine):
                for metric in HELD_METRICS:
                    means[f"{metric}@{q}"][case] = float(np.mean([r[f"{metric}s"][q - 1]
                                                                  for r in mine]))
        means["touched"][case] = float(np.mean([r["configs_touched"] for r in mine]))
    return means


def _timing(runs: list[dict]) -> dict[str, float]:
    timed = [r for r in runs if (r.get("timing") or {}).get("offline_fit_s") is not None]
    if not timed:
        return {}
    return {"offline_fit_s": float(np.median([r["timing"]["offline_fit_s"] for r in timed])),
            "query_s": float(np.median([r["timing"]["query_s_median"] for r in timed])),
            "total_s": float(np.median([r["timing"]["total_s"] for r in timed])),
            "peak_rss_mb": float(max(r.get("peak_rss_mb") or 0.0 for r in timed))}


def summarize(runs: Iterable[Mapping[str, Any]],
              checkpoints: Sequence[int] | None = CHECKPOINTS,
              compare: str = "at2") -> dict[str, Any]:
    """``{database: {protocol: {method: {...}}}}`` of means and standard errors over cases.

    A method's entry holds ``cases``, ``seeds`` (most seeds in a case), ``runs``, and per
    checkpoint ``q`` (``None``: each group's budget alone, for runs made with the budget known up
    front): ``rank@q``, ``rank_se@q``, ``regret@q``, ``regret_se@q``, the held model's
    ``held_regret@q``, ``held_rank@q`` and their ``_se`` when the runs hold them, and
    ``method_rank@q`` (mean rank among the methods, 1 = best), then ``touched`` (configurations
    trained) and the timing of AT2 runs (medians of ``offline_fit_s``, ``query_s``,
    ``total_s``; the largest ``peak_rss_mb``). The ``compare`` method's entry also holds
    ``vs_best_baseline``: per checkpoint, the baseline (a method not in :data:`AT2_METHODS`)
    with the lowest mean rank there, and the mean paired difference ``compare - baseline`` over
    cases of the rank and of the normalized regret, with standard errors.
    """
    groups: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[run["database"], run["protocol"]][run["method"]].append(dict(run))
    summary: dict[str, Any] = {}
    for (database, protocol), by_method in groups.items():
        qs = checkpoints if checkpoints is not None else \
            (min(r["budget"] for rs in by_method.values() for r in rs),)  # judged at its end
        means = {m: _case_means(r, qs) for m, r in by_method.items()}
        method_ranks = {q: rank_across_methods({m: means[m][f"rank@{q}"] for m in by_method})
                        for q in qs}
        entries = {}
        for method, method_runs in by_method.items():
            seeds_per_case: dict[Any, int] = defaultdict(int)
            for run in method_runs:
                seeds_per_case[run["case"]] += 1
            entry: dict[str, Any] = {"cases": len(seeds_per_case),
                                     "seeds": max(seeds_per_case.values()),
                                     "runs": len(method_runs)}
            for q in qs:
                for metric in ("rank", "regret", *HELD_METRICS):
                    if f"{metric}@{q}" not in means[method]:
                        continue
                    values = list(means[method][f"{metric}@{q}"].values())
                    entry[f"{metric}@{q}"] = float(np.mean(values))
                    entry[f"{metric}_se@{q}"] = standard_error(values)
                entry[f"method_rank@{q}"] = method_ranks[q].get(method)
            entry["touched"] = float(np.mean(list(means[method]["touched"].values())))
            entry.update(_timing(method_runs))
            entries[method] = entry
        if compare in entries:
            entries[compare]["vs_best_baseline"] = _versus_best_baseline(
                means, entries, compare, qs)
        summary.setdefault(database, {})[protocol] = entries
    return summary


def _versus_best_baseline(means: dict, entries: dict, compare: str,
                          checkpoints: Sequence[int]) -> dict[str, Any]:
    baselines = [m for m in entries if m not in AT2_METHODS]
    comparison = {}
    for q in checkpoints:
        if not baselines:
            break
        best = min(baselines, key=lambda m: (entries[m][f"rank@{q}"], baselines.index(m)))
        row: dict[str, Any] = {"baseline": best}
        for metric in ("rank", "regret"):
            mean, se, n = paired_difference(means[compare][f"{metric}@{q}"],
                                            means[best][f"{metric}@{q}"])
            row[f"{metric}_diff"], row[f"{metric}_diff_se"], row["cases"] = mean, se, n
        held = [m for m in baselines if f"held_regret@{q}" in entries[m]]
        if f"held_regret@{q}" in entries[compare] and held:
            best_held = min(held, key=lambda m: (entries[m][f"held_regret@{q}"], held.index(m)))
            mean, se, _ = paired_difference(means[compare][f"held_regret@{q}"],
                                            means[best_held][f"held_regret@{q}"])
            row.update(held_baseline=best_held, held_regret_diff=mean, held_regret_diff_se=se)
        comparison[f"@{q}"] = row
    return comparison


def _checkpoints_of(entries: Mapping[str, Mapping[str, Any]]) -> list[int]:
    first = next(iter(entries.values()))
    return sorted(int(k.split("@")[1]) for k in first if k.startswith("rank@"))


def mean_se_cell(mean: float | None, se: float | None, digits: int, sign: bool = False) -> str:
    """A table cell ``"mean ± se"`` (``digits`` decimals, ``+`` on a positive mean when
    ``sign``); the mean alone when ``se`` is ``None``, ``–`` when ``mean`` is."""
    if mean is None:
        return "–"
    text = f"{mean:{'+' if sign else ''}.{digits}f}"
    return text if se is None else f"{text} ± {se:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def render_markdown(summary: Mapping[str, Any]) -> str:
    """The Markdown report of :func:`summarize`'s output: per database and protocol, a rank
    table, a normalized-regret table, AT2's paired differences and AT2's timing."""
    parts = []
    for database, protocols in summary.items():
        for protocol, entries in protocols.items():
            qs = _checkpoints_of(entries)
            at = [f"@{q}" for q in qs]
            cases = max(e["cases"] for e in entries.values())
            plural = "" if cases == 1 else "s"
            parts.append(f"## {database}, {protocol} protocol ({cases} case{plural})")
            parts.append("")
            held = [m for m, e in entries.items() if f"held_regret@{qs[-1]}" in e]
            if held:
                parts.append("The model held (the best value observed): normalized regret and "
                             "rank among the configurations' final values, mean ± standard "
                             "error over cases.")
                parts.append("")
                parts += _table(
                    ["method", *(f"held regret {a}" for a in at), *(f"held rank {a}" for a in at)],
                    ([m, *(mean_se_cell(entries[m][f"held_regret@{q}"],
                                    entries[m][f"held_regret_se@{q}"], 3) for q in qs),
                      *(mean_se_cell(entries[m][f"held_rank@{q}"], entries[m][f"held_rank_se@{q}"], 1)
                        for q in qs)] for m in held))
                parts.append("")
            parts.append("Rank of the recommendation (0 = best), mean ± standard error over "
                         "cases; method rank = mean rank among these methods per case (1 = best).")
            parts.append("")
            parts += _table(
                ["method", "cases", "seeds", *at, "configs touched", "method rank " + "/".join(at)],
                ([m, str(e["cases"]), str(e["seeds"]),
                  *(mean_se_cell(e[f"rank@{q}"], e[f"rank_se@{q}"], 1) for q in qs),
                  f"{e['touched']:.1f}",
                  " / ".join(mean_se_cell(e[f"method_rank@{q}"], None, 2) for q in qs)]
                 for m, e in entries.items()))
            parts.append("")
            parts.append("Normalized regret (best - recommended) / (best - worst) of the final "
                         "values, mean ± standard error over cases.")
            parts.append("")
            parts += _table(["method", *at],
                            ([m, *(mean_se_cell(e[f"regret@{q}"], e[f"regret_se@{q}"], 3) for q in qs)]
                             for m, e in entries.items()))
            parts += _paired_lines(entries, qs)
            parts += _timing_lines(entries)
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _paired_lines(entries: Mapping[str, Mapping[str, Any]], qs: Sequence[int]) -> list[str]:
    versus = next(((m, e["vs_best_baseline"]) for m, e in entries.items()
                   if e.get("vs_best_baseline")), None)
    if versus is None:
        return []
    method, rows = versus
    cells = [rows.get(f"@{q}") for q in qs]
    return ["", f"Paired difference {method} - best baseline (lowest mean rank at that "
                "checkpoint), mean ± standard error over cases (negative: AT2 is better).", "",
            *_table([f"{method} - best baseline", *(f"@{q}" for q in qs)], [
                ["best baseline", *(c["baseline"] if c else "–" for c in cells)],
                ["cases", *(str(c["cases"]) if c else "–" for c in cells)],
                ["rank difference",
                 *(mean_se_cell(c["rank_diff"], c["rank_diff_se"], 1) if c else "–" for c in cells)],
                ["regret difference",
                 *(mean_se_cell(c["regret_diff"], c["regret_diff_se"], 3) if c else "–"
                   for c in cells)],
                *([["best baseline by held regret",
                    *(c.get("held_baseline", "–") if c else "–" for c in cells)],
                   ["held regret difference",
                    *(mean_se_cell(c["held_regret_diff"], c["held_regret_diff_se"], 3)
                      if c and "held_regret_diff" in c else "–" for c in cells)]]
                  if any(c and "held_baseline" in c for c in cells) else [])])]


def _timing_lines(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    timed = {m: e for m, e in entries.items() if "offline_fit_s" in e}
    if not timed:
        return []
    return ["", "Timing of the AT2 runs (medians over runs; peak RSS of the worker process, "
                "largest over runs).", "",
            *_table(["method", "runs", "offline fit s", "per-query s", "total s", "peak RSS MB"],
                    ([m, str(e["runs"]), f"{e['offline_fit_s']:.1f}", f"{e['query_s']:.2f}",
                      f"{e['total_s']:.1f}", f"{e['peak_rss_mb']:.0f}"]
                     for m, e in timed.items()))]


def budget_table(runs: Iterable[Mapping[str, Any]], compare: str = "at2") -> str:
    """Markdown: per database, protocol and slots, each method's held regret at every budget
    (runs made with the budget known up front, one run per budget), mean ± standard error over
    cases, and its mean over the budgets; then ``compare`` minus the best baseline chosen after
    the fact at each budget (the lowest mean held regret there), paired over cases."""
    groups: dict[tuple, dict[str, dict[int, list[dict]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        if "held_regrets" in run:
            key = (run["database"], run["protocol"], run.get("concurrency", 1))
            groups[key][run["method"]][run["budget"]].append(dict(run))
    parts = []
    for (database, protocol, slots), by_method in groups.items():
        budgets = sorted({b for per in by_method.values() for b in per})
        cases = {m: {b: _held_per_case(per[b], b) for b in budgets if b in per}
                 for m, per in by_method.items()}
        full = [m for m in cases if set(cases[m]) == set(budgets)]
        parts += [f"## {database}, {protocol}, {slots} slot(s): held regret by budget", "",
                  "Normalized regret of the model held (the best value observed), one run per "
                  "budget, mean ± standard error over cases; the last column is the mean over "
                  "the budgets (mean of each case's mean).", ""]
        rows = []
        for method in cases:
            cells = [mean_se_cell(float(np.mean(list(cases[method][b].values()))),
                              standard_error(cases[method][b].values()), 3)
                     if b in cases[method] else "–" for b in budgets]
            overall = _over_budgets(cases[method], budgets) if method in full else None
            rows.append([method, *cells, mean_se_cell(*overall, 3) if overall else "–"])
        parts += _table(["method", *(f"B={b}" for b in budgets), "mean over B"], rows)
        baselines = [m for m in full if m not in AT2_METHODS]
        if compare in full and baselines:
            best = [min(baselines, key=lambda m: (np.mean(list(cases[m][b].values())),
                                                  baselines.index(m))) for b in budgets]
            diffs = [paired_difference(cases[compare][b], cases[m][b])
                     for b, m in zip(budgets, best)]
            parts += ["", f"{compare} - best baseline at each budget (paired over cases; "
                          "negative: AT2 is better).", "",
                      *_table(["", *(f"B={b}" for b in budgets)], [
                          ["best baseline", *best],
                          ["held regret difference", *(mean_se_cell(d[0], d[1], 3) for d in diffs)]])]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _held_per_case(runs: list[dict], budget: int) -> dict[Any, float]:
    """The seed average per case of the held regret at the end of ``budget``."""
    by_case: dict[Any, list[float]] = defaultdict(list)
    for run in runs:
        by_case[run["case"]].append(run["held_regrets"][budget - 1])
    return {case: float(np.mean(values)) for case, values in by_case.items()}


def _over_budgets(per_budget: Mapping[int, Mapping[Any, float]], budgets: Sequence[int]
                  ) -> tuple[float, float | None]:
    """Mean over cases of each case's mean held regret over ``budgets``, with its s.e."""
    cases = set.intersection(*(set(per_budget[b]) for b in budgets))
    values = [float(np.mean([per_budget[b][c] for b in budgets])) for c in sorted(cases)]
    return float(np.mean(values)), standard_error(values)
