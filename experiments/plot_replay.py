"""Plot and tabulate a replay run: rank and regret of the recommendation per query.

    python -m experiments.plot_replay results/demo      # reads results/demo/results.json

Writes ``replay.png`` next to the results and prints a table every ``--every`` queries.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def table(results: dict, every: int) -> str:
    rows = results["trace"]
    lines = [f"AT2 on {results['test_task']} ({results['database']}), prior: "
             f"{', '.join(results['train_tasks']) or 'none'}",
             f"{'query':>6}{'config':>8}{'epoch':>7}{'value':>9}{'recommended':>13}{'rank':>6}"
             f"{'regret':>9}"]
    for row in rows:
        if row["query"] % every == 0 or row["query"] in (1, len(rows)):
            lines.append(f"{row['query']:>6}{row['config_id']:>8}{row['epoch']:>7}"
                         f"{row['value']:>9.4f}{row['recommended_config_id']:>13}{row['rank']:>6}"
                         f"{row['regret']:>9.4f}")
    touched = len({row["config_id"] for row in rows})
    lines.append(f"{len(rows)} queries (epochs) over {touched} configurations; final rank "
                 f"{rows[-1]['rank']} of 100 (0 = best), regret {rows[-1]['regret']:.4f}")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["trace"]
    queries = [r["query"] for r in rows]
    figure, (rank_axis, regret_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    rank_axis.step(queries, [r["rank"] for r in rows], where="post")
    rank_axis.set(xlabel="queries (epochs of training)", ylabel="rank of recommendation (0 = best)",
                  title=f"{results['test_task']}: rank")
    regret_axis.step(queries, [r["regret"] for r in rows], where="post", color="tab:red")
    regret_axis.set(xlabel="queries (epochs of training)", ylabel="regret (validation accuracy)",
                    title=f"{results['test_task']}: regret")
    for axis in (rank_axis, regret_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args(argv)
    results = json.loads((args.run_dir / "results.json").read_text())
    print(table(results, args.every))
    plot(results, args.run_dir / "replay.png")
    print(f"plot: {args.run_dir / 'replay.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
