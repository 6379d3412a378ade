#!/usr/bin/env bash
# Issue 13 part 8: CLIP image-tower throughput in every precision against PyTorch (fp32, bf16 autocast) and ONNX
# Runtime (fp32, dynamic int8), one engine after the other in the same run, same configuration, batch and threads,
# random weights. The CPU and its features are printed first: figures only compare within one run.
#   PYTHON=~/vlmpy/bin/python Benchmarks/precision_vs_peers.sh [config b32|b16|l14] [threads] [seconds] [batches "1 8"]
# The Python side needs torch, transformers, onnx and onnxruntime (pip install onnxruntime onnx onnxscript).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-b32}
THREADS=${2:-2}
SECONDS_EACH=${3:-10}
BATCHES=${4:-"1 8"}
PYTHON=${PYTHON:-python3}
swift build -c release --product vlm >/dev/null
VLM=.build/release/vlm
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, flags: $(grep -m1 -o -w -E 'avx512_bf16|avx512_vnni|avx_vnni|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "config $CONFIG, $THREADS threads, $SECONDS_EACH s per engine, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %-78s %10s\n" batch engine "images/s"
# One JSON result -> "engine<TAB>images/s".
ROW='import json, sys; r = json.load(sys.stdin); print(r["engine"][:78] + "\t" + format(r["image_per_s"], ".2f"))'
for BATCH in $BATCHES; do
  run_ours() {  # precision, env
    env $2 $VLM bench --config "$CONFIG" --batch "$BATCH" --threads "$THREADS" --seconds "$SECONDS_EACH" --precision "$1" --format json |
      $PYTHON -c "$ROW"
  }
  run_peer() {
    $PYTHON Benchmarks/bench_torch_clip.py --config "$CONFIG" --batch "$BATCH" --threads "$THREADS" --seconds "$SECONDS_EACH" --engine "$1" 2>/dev/null |
      tail -1 | $PYTHON -c "$ROW"
  }
  {
    run_ours fp32 ""
    run_peer torch
    run_peer ort
    run_ours bf16 ""
    run_peer torch-bf16
    run_ours int8 ""
    run_ours int8 VLM_INT8_COMPUTE=mlp
    run_peer ort-int8
  } | while IFS=$'\t' read -r engine rate; do printf "%-6s %-78s %10s\n" "$BATCH" "$engine" "$rate"; done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
