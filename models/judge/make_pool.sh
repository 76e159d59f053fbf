#!/usr/bin/env bash
# Sampled demo-model answers for the judge's training (pool.jsonl, ~12k answers, not committed):
# `steer demo` mood sweeps at seeds 100-107, 4 prompts x 32 samples x 12 multipliers each, from
# well-formed (multiplier 0) to broken (±8, 10). The acceptance sweep uses seed 1: other samples.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STEER=${STEER:-$HERE/../../out/steer/steer}
[ -x "$STEER" ] || { echo "make_pool.sh: $STEER not found; run ./build.sh first (or set STEER)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for seed in 100 101 102 103 104 105 106 107; do
  "$STEER" demo --samples 32 --seed $seed --multipliers=-8,-6,-4,-2,-1,0,1,2,4,6,8,10 \
    --answers "$TMP/pool_$seed.jsonl" --plot "$TMP/sweep.png" --json > /dev/null
done
cat "$TMP"/pool_*.jsonl > "$HERE/pool.jsonl.tmp"
mv "$HERE/pool.jsonl.tmp" "$HERE/pool.jsonl"
echo "wrote $(wc -l < "$HERE/pool.jsonl") answers to $HERE/pool.jsonl"
