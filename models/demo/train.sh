#!/usr/bin/env bash
# Retrain the demo model into models/demo (see RECIPE.md). Debian's python3-torch links the
# reference BLAS, which is ~5x slower than OpenBLAS here; this fetches Debian's OpenBLAS package
# into a cache folder (no system change) and puts it first on the library path for this run only.
set -euo pipefail
cd "$(dirname "$0")"
CACHE=${STEER_CACHE:-$HOME/.cache/steerengine}/openblas
LIB=$CACHE/root/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ ! -f "$LIB/libblas.so.3" ]; then
  mkdir -p "$CACHE"
  (cd "$CACHE" && apt-get download libopenblas0-pthread >/dev/null && dpkg -x libopenblas0-pthread_*.deb root)
fi
# STEER_TRAIN_SCRIPT / STEER_TRAIN_THREADS let another recipe (models/judge) reuse this runner.
THREADS=${STEER_TRAIN_THREADS:-2}
export LD_LIBRARY_PATH=$LIB OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
exec ${STEER_TRAIN_NICE:+nice -n $STEER_TRAIN_NICE} /usr/bin/python3 "${STEER_TRAIN_SCRIPT:-train.py}" "$@"
