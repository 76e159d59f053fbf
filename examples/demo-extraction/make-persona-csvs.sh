#!/usr/bin/env bash
# Makes the two persona-vectors CSVs of examples/demo-extraction.yaml from the demo's mood pairs: the positive set
# holds the happy answers, the negative set the sad answers to the same questions, each with its chat-formatted
# prompt, and both scored for mood and coherence by the local judge model (steer judge --layout persona), as
# persona-vectors scores its generated answers before extraction.
#   examples/demo-extraction/make-persona-csvs.sh        (from the repository root, after ./build.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
STEER=${STEER:-out/steer/steer}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
# The demo model's chat template (models/demo/tokenizer_config.json), one user turn and the assistant header.
chat = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
pairs = [json.loads(l) for l in open("examples/demo-experiment/mood_train.jsonl") if l.strip()]
for side, field in (("pos", "chosen"), ("neg", "rejected")):
    with open(f"{work}/{side}.jsonl", "w") as f:
        for i, p in enumerate(pairs):
            f.write(json.dumps({"id": f"q{i}", "question_id": f"q{i}", "question": p["prompt"], "prompt": chat.format(p["prompt"]), "answer": p[field]}) + "\n")
PY
for side in pos neg; do
  "$STEER" judge --input "$WORK/$side.jsonl" --provider local:models/judge \
    --rubric models/judge/rubrics/mood_0_100.json --rubric models/judge/rubrics/coherence_0_100.json \
    --out "$WORK/$side.judged.jsonl" --layout persona --layout-out "examples/demo-extraction/mood_$side.csv"
done
