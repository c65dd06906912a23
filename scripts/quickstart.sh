#!/usr/bin/env bash
# README command 1: install what is missing, build, and train FM on a local cluster (1 scheduler,
# 2 servers, 2 workers as separate processes) on Criteo-format data generated on the spot.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
FMPS=build/launch/fmps
DATA=${DATA_DIR:-/tmp/fmps-quickstart}
mkdir -p "$DATA"
[ -s "$DATA/train.txt" ] || $FMPS gen --rows=1000000 --seed=1 > "$DATA/train.txt"
[ -s "$DATA/test.txt" ] || $FMPS gen --rows=100000 --seed=2 > "$DATA/test.txt"
exec $FMPS train --data="$DATA/train.txt" --test="$DATA/test.txt" --format=criteo --model=fm --k=8 \
  --num_servers=2 --num_workers=2 --epochs=1 --model_dir="$DATA/model"
