#!/usr/bin/env bash
# Side-by-side CLIP encoder throughput: SwiftVLM (`vlm bench`) vs PyTorch (transformers CLIPModel, fp32),
# same configuration, batch and threads, random weights, one run after the other on this machine.
#   PYTHON=~/vlmpy/bin/python Benchmarks/clip_vs_torch.sh [config] [threads] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-b32}
THREADS=${2:-2}
SECONDS_EACH=${3:-10}
PYTHON=${PYTHON:-python3}
swift build -c release --product vlm >/dev/null
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; config $CONFIG, $THREADS threads"
printf "%-6s %-34s %12s %12s %14s\n" batch engine "images/s" "texts/s" "texts/s(pad77)"
for BATCH in 1 8; do
  ours=$(.build/release/vlm bench --config "$CONFIG" --batch "$BATCH" --threads "$THREADS" --seconds "$SECONDS_EACH" --format json)
  theirs=$($PYTHON Benchmarks/bench_torch_clip.py --config "$CONFIG" --batch "$BATCH" --threads "$THREADS" --seconds "$SECONDS_EACH" 2>/dev/null | tail -1)
  $PYTHON - "$BATCH" "$ours" "$theirs" <<'PY'
import json, sys
b, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{b:<6} {'swiftvlm fp32 (' + ours['isa'] + ')':<34} {ours['image_per_s']:12.2f} {ours['text_per_s']:12.2f} {'-':>14}")
print(f"{b:<6} {theirs['engine'][:34]:<34} {theirs['image_per_s']:12.2f} {theirs['text_per_s_padded_longest']:12.2f} {theirs['text_per_s']:14.2f}")
print(f"{b:<6} {'ratio (swiftvlm / pytorch)':<34} {ours['image_per_s'] / theirs['image_per_s']:11.2f}x {ours['text_per_s'] / theirs['text_per_s_padded_longest']:11.2f}x {ours['text_per_s'] / theirs['text_per_s']:13.2f}x")
PY
done
