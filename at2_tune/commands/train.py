"""``at2-tune train``: train one HyperRec configuration without Ray (see ``trainers.cli``)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from trainers.cli import add_train_parser, run_train

    add_train_parser(subparsers).set_defaults(run=run_train)
