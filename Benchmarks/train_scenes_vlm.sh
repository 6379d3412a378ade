#!/usr/bin/env bash
# Re-trains SwiftVLM's embedded generative default (Models/scenes-vlm) exactly as its model card describes, then
# evaluates it on fresh test / held-out scenes. Usage: Benchmarks/train_scenes_vlm.sh [RUN_DIR] [EXPORT_DIR]
# (defaults: /tmp/scenes-vlm-run and /tmp/scenes-vlm; pass Models/scenes-vlm as EXPORT_DIR to replace the
# committed model). Needs the contrastive default Models/scenes-clip, whose vision tower it starts from and trains at
# a tenth of the learning rate in stage 1 (--vision-lr-scale 0.1: with the tower frozen, "what colour is the X?"
# stayed at 53%) and half of it in stage 2.
#
# Two stages (Benchmarks/RESULTS.md, sessions 13-20):
# 1. 4,800 steps on every kind of turn: the colour / shape lookup ("what colour is the star?") forms around step 3000.
# 2. 7,000 steps from stage 1's fp16 export with a position row per image token added after the projector
#    (--image-positions sincos, amplitude 24: rows of norm ~190, the scale of the projector's outputs) and a third of
#    the turns on "where is the ...?", at half the rate: boxes go from 4% to 90%+ IoU >= 0.5 while the lookup holds.
#    --locate-by any also asks "where is the star?" / "where is the red object?" (the lookups the colour and shape
#    questions start with): shape +5, colour +3 points; the tower at half the rate (--vision-lr-scale 0.5) another
#    +4 on colour (session 20). 2,400 steps reached the box target from one stage-1 model and not from another (83%
#    and 56%); 4,800 steps reached 87-95% from the one that fell short. Counting a shape needs every object's shape
#    right and lagged (85%): half of the other turns on "how many ...?" (--count-share 0.5) and 7,000 steps bring it
#    to 90-91% and boxes to 92-95%, at 1.5 points of colour (session 21). Colour and shape turns at three times
#    the other kinds' weight and relations at half (--kind-weights; each was ~4% of the turns) win those points
#    back: colour 93.7 -> 94.4%, shape 87.6 -> 89.8% (400 scenes: 91.8 -> 93.2, 89.7 -> 91.8), count unchanged
#    (session 22). Patch labels on the projector's rows (--patch-labels 1 --patch-labels-at projector: every image
#    token an object covers is classified as the object's shape word by the decoder's own tied head, a second loss
#    beside the answers') give the decoder a key to find "the star" with from its first layer: colour 94.4 -> 95.2%,
#    shape 89.8 -> 90.5%, count 90.6 -> 92.6% (400 scenes: 93.2 -> 95.8, 91.8 -> 92.8, 90.8 -> 92.3) (session 25).
#    Positions present from step 0 (in the tower or after the projector), or a third of the turns on boxes from
#    step 0, kept the lookup from forming in every run tried.
# STAGE1=DIR skips stage 1 and continues that export (e.g. a copy of the committed stage-1 model).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-/tmp/scenes-vlm-run}
EXPORT=${2:-/tmp/scenes-vlm}
THREADS=${THREADS:-2}
swift build -c release --product vlm
VLM=.build/release/vlm
COMMON=(--scenes 300000 --scenes-seed 0 --config tiny --batch 32 --turns 4 --vision-from Models/scenes-clip
        --vision-feature-layers=-2,-1 --vision-feature-strategy full --threads "$THREADS" --quiet)
STAGE1=${STAGE1:-}
if [ -z "$STAGE1" ]; then
    STAGE1="$RUN/stage1-export"
    time "$VLM" train vlm "${COMMON[@]}" --steps 4800 --lr 2e-3 --vision-lr-scale 0.1 --seed 0 --save-every 1200 --out "$RUN/stage1" --export "$STAGE1"
fi
time "$VLM" train vlm "${COMMON[@]}" --steps 7000 --lr 1e-3 --vision-lr-scale 0.5 --seed 1 --init-from "$STAGE1" \
    --image-positions sincos --image-position-amplitude 24 --locate-share 0.35 --locate-by any --count-share 0.5 \
    --kind-weights colour=3,shape=3,relation=0.5 --patch-labels 1 --patch-labels-at projector --save-every 1200 \
    --out "$RUN/stage2" --export "$EXPORT"
cp "$RUN/stage2/training_log.json" "$RUN/stage2/loss_curve.svg" "$EXPORT/"
"$VLM" eval --generative --scenes --splits test,heldout --seed 1 --count 100 --model "$EXPORT" --format json > "$EXPORT/eval.json"
"$VLM" eval --generative --scenes --splits test,heldout --seed 1 --count 100 --model "$EXPORT"
