#!/usr/bin/env bash
# The main job, run by `make demo` inside the project's virtual environment: verify the
# databases, then tune CIFAR100 by replaying HyperRec through Ray Tune with 2 trials at a time:
# AT2 (AT2Searcher + AT2Scheduler, prior: the paper's pair 0) next to the prior's top-3
# configurations in turn (top3) and Ray Tune's ASHA with random search (asha), on the same
# budget. Prints the table and draws the recommendation's rank and regret of each method.
set -euo pipefail
out="${AT2_DEMO_OUT:-results/demo}"
at2-tune data verify
at2-tune bench --database hyperrec --pairs 0 --seed-profiles 0 --methods at2,top3,asha \
  --budget "${AT2_DEMO_BUDGET:-50}" --repeats 1 --concurrency 2 --seconds-per-epoch 0.2 \
  --out "$out"
echo "plots: $out/plots/tasks_rank.png, $out/plots/tasks_regret.png (and regret.png, average_rank.png)"
