"""Scale check: the offline fit on every other HyperRec task (26 tasks, ~195k points).

    python -m experiments.offline_scale --test-task CIFAR100

Prints the fit time, the peak resident memory and the cache file the fit was saved to, and the
zero-shot rank of the recommendation on the test task.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from at2_tune.core.engine import AT2Engine
from at2_tune.core.offline_cache import FitCache
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.databases import load_database
from search_spaces import get_space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="hyperrec", choices=["hyperrec", "lcbench"])
    parser.add_argument("--test-task", default="CIFAR100")
    parser.add_argument("--seed-profile", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    db = load_database(args.database, args.data_dir)
    tasks = db.tasks_excluding([args.test_task])
    prior = PriorData.from_database(db, tasks, args.seed_profile)
    engine = AT2Engine(get_space(db.space_name), prior, AT2Settings(), seed=args.seed)
    started = time.perf_counter()
    reused = FitCache().load_or_fit(engine)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine.condition()
    recommended = engine.recommend()
    print(f"{'prior tasks':<28}{len(tasks)}")
    print(f"{'training points':<28}{prior.curves.size}")
    print(f"{'offline fit':<28}{'reused from cache' if reused else 'fitted'} in {seconds:.1f} s")
    print(f"{'peak RSS':<28}{peak_mb:.0f} MB")
    print(f"{'zero-shot recommendation':<28}config {recommended}, rank "
          f"{db.rank(args.test_task, recommended, args.seed_profile)} on {args.test_task}")
    print(f"{'cache':<28}{FitCache().path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
