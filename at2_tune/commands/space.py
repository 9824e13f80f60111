"""``at2-tune space NAME``: show a search space and sample configurations from it."""

from __future__ import annotations

import argparse
import json

import numpy as np


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("space", help="describe a search space and sample from it",
                                   description=__doc__)
    parser.add_argument("name", nargs="?", default="hyperrec", choices=["hyperrec", "lcbench"])
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="also print N sampled configurations (JSON lines)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from search_spaces import get_space

    space = get_space(args.name)
    print(space.describe())
    rng = np.random.default_rng(args.seed)
    for _ in range(args.sample):
        config = space.sample(rng)
        numeric, categorical = space.encode(config)
        print(json.dumps(config))
        print(f"  encoded: numeric {np.round(numeric, 3).tolist()} categorical "
              f"{categorical.tolist()}")
    return 0
