#!/usr/bin/env bash
# Prints the folder that holds Debian's OpenBLAS (libblas.so.3), fetching the package into a cache
# folder on first use (apt-get download + dpkg -x: no system change). Debian's python3-torch links
# the reference BLAS, several times slower than OpenBLAS; a process started with this folder first on
# its LD_LIBRARY_PATH runs torch on OpenBLAS instead, the kind of BLAS a pip install of torch brings.
set -euo pipefail
CACHE=${STEER_CACHE:-$HOME/.cache/steerengine}/openblas
LIB=$CACHE/root/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ ! -f "$LIB/libblas.so.3" ]; then
  mkdir -p "$CACHE"
  (cd "$CACHE" && apt-get download libopenblas0-pthread >/dev/null && dpkg -x libopenblas0-pthread_*.deb root)
fi
echo "$LIB"
