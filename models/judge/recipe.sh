#!/usr/bin/env bash
# The judge model's whole recipe (RECIPE.md), written into models/judge: the base judge, 900 steps from models/demo's
# weights, then three stages of 400 steps, each from the one before, on answers that also break the sentence rules
# (--rule-damage) with every full stop of the answer trained to say whether its sentence is well formed
# (--sentence-loss). The intermediate models go to a temporary folder.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$HERE/train.sh" --out "$WORK/stage0"
STAGE=(--steps 400 --lr 1e-3 --rule-damage --sentence-loss 1)
"$HERE/train.sh" "${STAGE[@]}" --seed 4321 --init "$WORK/stage0" --out "$WORK/stage1"
"$HERE/train.sh" "${STAGE[@]}" --seed 4322 --init "$WORK/stage1" --out "$WORK/stage2"
"$HERE/train.sh" "${STAGE[@]}" --seed 4323 --init "$WORK/stage2" --out "$HERE"
