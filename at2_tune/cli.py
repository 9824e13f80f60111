"""The ``at2-tune`` command line: one program, one subcommand per job.

Errors the user can fix (bad input, missing or corrupt files) are printed as one line without
a traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
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


def run() -> None:
    """The console script (and ``python -m at2_tune.cli``): :func:`main`, then exit with its
    status. An interrupted command (130, 143) has stopped its work and written what it keeps;
    it then exits at once, without the interpreter's teardown: after a Ray run cut short there,
    a thread of Ray's left running could crash it (SIGSEGV, seen once in about 40 interrupted
    benches) and turn the interrupt's status into a crash's."""
    status = main()
    if status in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    run()
