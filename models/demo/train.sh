#!/usr/bin/env bash
# Retrain the demo model into models/demo (see RECIPE.md), on Debian's OpenBLAS for this run only
# (tests/oracle/openblas.sh fetches it; the reference BLAS python3-torch links is ~5x slower here).
set -euo pipefail
cd "$(dirname "$0")"
LIB=$(../../tests/oracle/openblas.sh)
# STEER_TRAIN_SCRIPT / STEER_TRAIN_THREADS / STEER_TRAIN_NICE let another recipe (models/judge) reuse this runner.
THREADS=${STEER_TRAIN_THREADS:-2}
export LD_LIBRARY_PATH=$LIB OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
exec ${STEER_TRAIN_NICE:+nice -n $STEER_TRAIN_NICE} /usr/bin/python3 "${STEER_TRAIN_SCRIPT:-train.py}" "$@"
