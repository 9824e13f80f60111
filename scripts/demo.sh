#!/usr/bin/env bash
# The main job, run by `make demo` inside the project's virtual environment: verify the
# databases, then tune CIFAR100 by replaying HyperRec through Ray Tune (AT2Searcher +
# AT2Scheduler, prior: the paper's pair 0), and print a table and write a plot.
set -euo pipefail
out="${AT2_DEMO_OUT:-results/demo}"
at2-tune data verify
at2-tune replay --backend ray --database hyperrec --pair 0 --budget "${AT2_DEMO_BUDGET:-50}" --out "$out"
python -m experiments.plot_replay "$out"
