#!/usr/bin/env bash
# The main job, run by `make demo` inside the project's virtual environment.
set -euo pipefail
at2-tune data verify
at2-tune data info hyperrec
at2-tune space hyperrec --sample 3 --seed 0
