"""``at2-tune data fetch|verify|info``: manage the learning-curve databases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from at2_tune import paths
from at2_tune.databases import DATABASES, fetch, get_spec, load_database, locate, verify_file
from at2_tune.errors import AT2Error


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="fetch, verify or describe the databases",
                                   description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, run, text in (("fetch", _run_fetch, "download the public release (checksummed)"),
                            ("verify", _run_verify, "check every file's SHA-256 and safe loading"),
                            ("info", _run_info, "print tasks, configs, epochs, seeds and pairs")):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("database", nargs="?", choices=sorted(DATABASES),
                            help="one database (default: all)")
        action.add_argument("--data-dir", type=Path, default=None,
                            help=f"folder holding the release (default: ${paths.DATA_DIR_ENV}, "
                                 "then the user cache)")
        action.set_defaults(run=run)


def _selected(args: argparse.Namespace) -> list[str]:
    return [args.database] if args.database else sorted(DATABASES)


def _run_fetch(args: argparse.Namespace) -> int:
    for name in _selected(args):
        spec = get_spec(name)
        dest = args.data_dir or paths.cached_data_dir()
        for path in fetch(spec, dest):
            print(f"ok    {path}")
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    failures = 0
    for name in _selected(args):
        spec = get_spec(name)
        location = locate(spec, args.data_dir)
        data_dir = location.data_dir if location else paths.cached_data_dir()
        files_ok = True
        for release_file in spec.files:
            try:
                path = verify_file(data_dir, release_file)
                print(f"ok    {path}  sha256 {release_file.sha256[:16]}…")
            except AT2Error as exc:
                files_ok = False
                failures += 1
                print(f"FAIL  {exc}")
        if files_ok:
            try:
                db = load_database(name, data_dir, download=False)
                print(f"ok    {name}: loads safely, {_shape(db)}")
            except AT2Error as exc:
                failures += 1
                print(f"FAIL  {name}: {exc}")
    if failures:
        print(f"{failures} problem(s) found", file=sys.stderr)
    return 1 if failures else 0


def _shape(db) -> str:
    return (f"{db.n_tasks} tasks x {db.n_configs} configs x {db.n_epochs} epochs x "
            f"{db.n_seeds} seed profile(s)")


def _run_info(args: argparse.Namespace) -> int:
    for name in _selected(args):
        db = load_database(name, args.data_dir)
        print(f"{name}: {_shape(db)}; search space {db.space_name!r}")
        print("pairs (train tasks -> test task):")
        for index, pair in enumerate(db.pairs):
            print(f"  {index}: {', '.join(pair.train_tasks)} -> {pair.test_task}")
        print(f"{'task':<42}{'best final':>11}{'median':>9}{'best config':>13}")
        for task in db.tasks:
            final = db.final_values(task, seed=0)
            print(f"{task:<42}{final.max():>11.4f}{np.median(final):>9.4f}"
                  f"{int(final.argmax()):>13d}")
        print()
    return 0
