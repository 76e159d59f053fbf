#!/usr/bin/env bash
# A steering study on a Slurm cluster whose nodes share the output folder: one job trains, an array of
# 8 tasks generates (task k takes the generate items i with i mod 8 = k), one job judges. Submit all three
# at once: generate and judge wait (poll the shared folder) for the items the earlier stage has not finished.
#
#   sbatch --job-name=train                 examples/experiment-slurm.sh train
#   sbatch --job-name=generate --array=0-7  examples/experiment-slurm.sh generate
#   sbatch --job-name=judge                 examples/experiment-slurm.sh judge
#
# A task that is killed (pre-emption, time limit, a node lost) is simply submitted again: finished items are
# skipped, its lock is taken over once stale (a dead pid on the same node at once; on another node when the
# heartbeat is older than locks.stale_seconds) and a half-done item resumes from its .partial file.
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --output=logs/%x-%A_%a.out
set -euo pipefail
STAGE=${1:?usage: experiment-slurm.sh train|generate|judge}
EXPERIMENT=${EXPERIMENT:-examples/demo-experiment.yaml}
SHARD="0/1"
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then SHARD="${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}"; fi
exec out/steer/steer experiment run "$EXPERIMENT" --stage "$STAGE" --shard "$SHARD"
