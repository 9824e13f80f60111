"""``at2-tune compare``: live ``at2-tune tune`` runs of one dataset side by side.

Reads the ``--out`` folders of several runs (methods and seeds), prints a table per method
(mean ± standard error over its runs) of the best validation top-1 after 25, 50 and 100% of the
epoch budget, the recommended trial's test top-1, the time to the first trial and the wall
time, and writes ``OUT/compare.csv``, ``OUT/compare-runs.csv`` (one row per run) and
``OUT/compare.png`` (best validation top-1 so far against the epochs spent, a line per method
and seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare at2-tune tune runs of one dataset (table and plot)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="the --out folder of an at2-tune tune run")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder of compare.csv, compare-runs.csv and compare.png")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from at2_tune.live.compare import TABLE_FILE, compare

    done = compare(args.runs, args.out)
    print(done["markdown"])
    print(f"table: {args.out / TABLE_FILE}")
    if done["plot"] is not None:
        print(f"plot: {done['plot']}")
    return 0
