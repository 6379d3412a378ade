#!/usr/bin/env bash
# Training-step throughput, SwiftVLM vs PyTorch, back to back on the same preset / batch / threads.
# Usage: Benchmarks/train_vs_torch.sh [PYTHON] (default /root/vlmpy/bin/python: torch + transformers).
# Environment: CONFIG (tiny), BATCH (64), TOKENS (12), THREADS (2), BENCH_SECONDS (15).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-/root/vlmpy/bin/python}
CONFIG=${CONFIG:-tiny} BATCH=${BATCH:-64} TOKENS=${TOKENS:-12} THREADS=${THREADS:-2} SECONDS_=${BENCH_SECONDS:-15}
swift build -c release --product vlm >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
.build/release/vlm bench-train --config "$CONFIG" --batch "$BATCH" --tokens "$TOKENS" --threads "$THREADS" --seconds "$SECONDS_" --format json
"$PY" Benchmarks/bench_torch_train.py --config "$CONFIG" --batch "$BATCH" --tokens "$TOKENS" --threads "$THREADS" --seconds "$SECONDS_"
.build/release/vlm bench-train --config "$CONFIG" --batch "$BATCH" --tokens "$TOKENS" --threads "$THREADS" --seconds "$SECONDS_" --format json
