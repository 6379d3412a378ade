#!/usr/bin/env bash
# Re-trains SwiftVLM's embedded default model (Models/scenes-clip) exactly as its model card describes, then
# evaluates it on fresh test / held-out scenes. Usage: Benchmarks/train_scenes_clip.sh [RUN_DIR] [EXPORT_DIR]
# (defaults: /tmp/scenes-clip-run and /tmp/scenes-clip; pass Models/scenes-clip as EXPORT_DIR to replace the
# committed model).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-/tmp/scenes-clip-run}
EXPORT=${2:-/tmp/scenes-clip}
swift build -c release --product vlm
VLM=.build/release/vlm
STEPS=${STEPS:-9000}
time "$VLM" train clip --scenes 600000 --scenes-seed 0 --scenes-single-fraction 0.4 --config tiny --steps "$STEPS" --batch 64 --lr 1e-3 --wd 0.1 \
    --augment --hard-negatives --contrast-groups 8 --seed 0 --save-every 1000 --out "$RUN" --export "$EXPORT"
"$VLM" eval --model "$EXPORT" --scenes --splits test,heldout --seed 1 --single 500 --multi 1000 --output "$RUN/eval.json"
