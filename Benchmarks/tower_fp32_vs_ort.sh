#!/usr/bin/env bash
# Issue 13 part 8, the fp32 line: our exact image tower against ONNX Runtime fp32 (Benchmarks/bench_torch_clip.py
# --engine ort), the two alternating round by round so the VM's drift (its memory moves between ~50 and ~80 GB/s from
# minute to minute) hits both alike. Random weights, same configuration, batch and threads.
#   PYTHON=~/vlmpy/bin/python Benchmarks/tower_fp32_vs_ort.sh [config l14|b32|b16] [rounds] [batches "1 8"] [seconds]
# `VLM_BIN` runs a prebuilt binary instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-l14}
ROUNDS=${2:-3}
BATCHES=${3:-"1 8"}
SECONDS_EACH=${4:-5}
PYTHON=${PYTHON:-python3}
if [ -z "${VLM_BIN:-}" ]; then swift build -c release --product vlm >&2; fi
V=${VLM_BIN:-.build/release/vlm}
ROW='import json, sys; r = json.load(sys.stdin); print(r["engine"][:48] + "\t" + format(r["image_per_s"], ".2f"))'
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; config $CONFIG, 2 threads; $(date -u)"
for round in $(seq "$ROUNDS"); do
  for B in $BATCHES; do
    printf "round %s batch %-2s " "$round" "$B"
    "$V" bench --config "$CONFIG" --batch "$B" --threads 2 --seconds "$SECONDS_EACH" --precision fp32 --format json | $PYTHON -c "$ROW"
    printf "round %s batch %-2s " "$round" "$B"
    $PYTHON Benchmarks/bench_torch_clip.py --config "$CONFIG" --batch "$B" --threads 2 --seconds "$SECONDS_EACH" --engine ort 2>/dev/null |
      tail -1 | $PYTHON -c "$ROW"
  done
done
echo "done $(date -u)"
