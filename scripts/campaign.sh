#!/usr/bin/env bash
# Start the training campaign in the background on idle CPU (see fmen_gui/training/campaign.py).
# Usage: scripts/campaign.sh [HOURS] [THREADS] [CAMPAIGN OPTIONS...]
#   (default 2.5 hours, torch's default threads; e.g. --only fmen-s_x4_photo --chunk-minutes 90)
# It resumes runs/<model>_x<scale> (or starts from checkpoints/ on a fresh machine), stops
# itself cleanly before the deadline, and exports weights that beat the shipped ones on the
# held-out validation slice. Stop it early with `kill -TERM $(cat runs/campaign.pid)`: it saves
# and exports first. Its log is runs/campaign.log.
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-2.5}; threads=${2:-0}; shift $(( $# < 2 ? $# : 2 ))
mkdir -p runs
if [ -f runs/campaign.pid ] && kill -0 "$(cat runs/campaign.pid)" 2>/dev/null; then
  echo "campaign already running (pid $(cat runs/campaign.pid)); log: runs/campaign.log" >&2
  exit 1
fi
# setsid: its own session, so that the end of the shell that started it (which may signal its
# whole process group) does not stop it.
nohup setsid nice -n 10 .venv/bin/python -m fmen_gui.training campaign --hours "$hours" --threads "$threads" "$@" \
  >>runs/campaign.log 2>&1 </dev/null &
echo $! >runs/campaign.pid
echo "campaign started (pid $!, ${hours} h); log: runs/campaign.log"
