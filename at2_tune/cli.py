"""The ``at2-tune`` command line: one program, one subcommand per job.

Errors the user can fix (bad input, missing or corrupt files) are printed as one line without
a traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from typing import Sequence

# linear_operator (under gpytorch) decorates a function with torch.jit.script at import, which
# PyTorch 2.14 deprecates with a FutureWarning; a user of the command should see only ours.
JIT_WARNING = "`torch.jit.script` is deprecated"
RAY_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"
"""Ray's notice at every start that token authentication is on (its default); the warning it
prints when authentication is *off* is kept."""
RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


class _DropNotice(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


_TOKEN_NOTICE_FILTER = _DropNotice(RAY_TOKEN_NOTICE)


def quiet_notices() -> None:
    """Hide the two notices every command printed at start that are not the user's business
    (the deprecation warning of a dependency, Ray's token-authentication default)."""
    warnings.filterwarnings("ignore", message=JIT_WARNING, category=FutureWarning)
    logger = logging.getLogger(RAY_AUTH_LOGGER)
    if _TOKEN_NOTICE_FILTER not in logger.filters:
        logger.addFilter(_TOKEN_NOTICE_FILTER)


quiet_notices()

from at2_tune.commands import (bench, compare, data, prior, replay, space, train,  # noqa: E402
                               tune)
from at2_tune.errors import USER_ERRORS  # noqa: E402

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
    except KeyboardInterrupt:
        print("at2-tune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
