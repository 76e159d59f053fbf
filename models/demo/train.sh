#!/usr/bin/env bash
# Retrain the demo model into models/demo (see RECIPE.md), on Debian's OpenBLAS for this run only
# (tests/oracle/openblas.sh fetches it; the reference BLAS python3-torch links is ~5x slower here).
set -euo pipefail
cd "$(dirname "$0")"
LIB=$(../../tests/oracle/openblas.sh)
export LD_LIBRARY_PATH=$LIB OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2
exec /usr/bin/python3 train.py "$@"
