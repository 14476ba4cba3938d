#!/usr/bin/env bash
# Continue a trained model with a second cosine cycle, starting from its best checkpoint, and
# export the result if it beats the shipped file (export records the new figures).
# Usage: scripts/train_more.sh MODEL SCALE STEPS [PATCH] [LR] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1; scale=$2; steps=$3; patch=${4:-32}; lr=${5:-2e-4}; threads=${6:-0}
py=.venv/bin/python
src="runs/${model}_x${scale}"
n=2; while [ -e "${src}_more$n" ] && [ -e "${src}_more$n/record.json" ]; do n=$((n + 1)); done
out="${src}_more$n"
init="$src/best.pt"; [ "$n" -gt 2 ] && init="${src}_more$((n - 1))/best.pt"
$py -m fmen_gui.training train --model "$model" --scale "$scale" --steps "$steps" --patch "$patch" --lr "$lr" \
    --warmup 100 --threads "$threads" --init "$init" --out "$out"
$py -m fmen_gui.training export --model "$model" --scale "$scale" --run "$out" --only-if-better
