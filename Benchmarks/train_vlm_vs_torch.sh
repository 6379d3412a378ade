#!/usr/bin/env bash
# Generative (LLaVA) training-step throughput, SwiftVLM vs PyTorch, back to back (ours, PyTorch, ours) on the same
# checkpoint / batch / scored tokens / threads, vision tower frozen (the embedded model's recipe) and trained.
# Usage: Benchmarks/train_vlm_vs_torch.sh [PYTHON] (default /root/vlmpy/bin/python: torch + transformers).
# Environment: MODEL (Models/scenes-vlm), BATCH (32), TOKENS (110), ANSWER (24), THREADS (2), BENCH_SECONDS (15),
# COMPUTE (fp32; bf16: ours with bf16 products, next to PyTorch fp32 and PyTorch bf16 autocast).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-/root/vlmpy/bin/python}
MODEL=${MODEL:-Models/scenes-vlm} BATCH=${BATCH:-32} TOKENS=${TOKENS:-110} ANSWER=${ANSWER:-24} THREADS=${THREADS:-2} SECONDS_=${BENCH_SECONDS:-15}
swift build -c release --product vlm >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
COMPUTE=${COMPUTE:-fp32}
for FREEZE in --freeze-vision ""; do
    ARGS=(--model "$MODEL" --batch "$BATCH" --tokens "$TOKENS" --answer "$ANSWER" --threads "$THREADS" --seconds "$SECONDS_" $FREEZE)
    .build/release/vlm bench-train-vlm "${ARGS[@]}" --compute "$COMPUTE" --format json
    "$PY" Benchmarks/bench_torch_train_vlm.py "${ARGS[@]}"
    if [ "$COMPUTE" = bf16 ]; then "$PY" Benchmarks/bench_torch_train_vlm.py "${ARGS[@]}" --autocast bf16; fi
    .build/release/vlm bench-train-vlm "${ARGS[@]}" --compute "$COMPUTE" --format json
done
