#!/usr/bin/env bash
# Train the judge model into models/judge (see RECIPE.md) with the demo recipe's runner (Debian's
# OpenBLAS from a cache folder, no system change). One thread: on a shared 2-core machine two BLAS
# threads spin-wait for each other, and a step took 25x longer (19 s against 0.75 s, measured
# under load); niced, so it yields to interactive work.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ -f "$HERE/pool.jsonl" ] || "$HERE/make_pool.sh"
STEER_TRAIN_SCRIPT=$HERE/train.py STEER_TRAIN_THREADS=1 STEER_TRAIN_NICE=5 exec "$HERE/../demo/train.sh" --pool "$HERE/pool.jsonl" "$@"
