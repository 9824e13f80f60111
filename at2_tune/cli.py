"""The ``at2-tune`` command line: one program, one subcommand per job.

Errors the user can fix (bad input, missing or corrupt files) are printed as one line without
a traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from at2_tune.notices import quiet_notices

quiet_notices()

from at2_tune.commands import (bench, compare, data, prior, replay, space, train,  # noqa: E402
                               tune)
from at2_tune.errors import USER_ERRORS, Terminated  # noqa: E402

_COMMANDS = (data, space, replay, bench, train, tune, compare, prior)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="at2-tune",
        description="AT2 transfer + multi-fidelity hyperparameter tuning for Ray Tune.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as exc:
        print(f"at2-tune: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("at2-tune: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("at2-tune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
