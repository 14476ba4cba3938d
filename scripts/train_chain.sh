#!/usr/bin/env bash
# Train one model at ×2, then ×4 and ×3 starting from the ×2 body, exporting each to weights/.
# Usage: scripts/train_chain.sh MODEL STEPS_X2 STEPS_X34 [THREADS]
# Resumable: re-running continues every run from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1; steps2=$2; steps34=$3; threads=${4:-0}
py=.venv/bin/python
$py -m fmen_gui.training train --model "$model" --scale 2 --steps "$steps2" --threads "$threads"
$py -m fmen_gui.training export --model "$model" --scale 2 --run "runs/${model}_x2"
for s in 4 3; do
  $py -m fmen_gui.training train --model "$model" --scale $s --steps "$steps34" --patch 32 --lr 3e-4 \
      --warmup 100 --threads "$threads" --init "runs/${model}_x2/best.pt"
  $py -m fmen_gui.training export --model "$model" --scale $s --run "runs/${model}_x$s"
done
