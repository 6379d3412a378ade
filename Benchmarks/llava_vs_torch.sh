#!/usr/bin/env bash
# LLaVA-1.5-shaped model (CLIP ViT-L/14-336 + SmolLM2-360M LM, random weights) on SwiftVLM vs PyTorch, same
# thread count, same prompt recipe (BOS + 576 image tokens + PROMPT text tokens), plus this machine's memory
# bandwidth (STREAM-like triad, Benchmarks/stream_triad.c). One JSON line per run, each preceded by the load.
#
#   Benchmarks/llava_vs_torch.sh [THREADS=2] [PROMPT=64] [TOKENS=32]
# Needs: swift build -c release --product vlm; /root/vlmpy/bin/python (torch, transformers); gcc.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}; PROMPT=${2:-64}; TOKENS=${3:-32}
PY=${PY:-/root/vlmpy/bin/python}
DIR=${LLAVA_BENCH_DIR:-/tmp/llava-vitl336-smollm2-360m}
[ -f "$DIR/model.safetensors" ] || "$PY" Benchmarks/make_llava_bench.py --out "$DIR"
gcc -O3 -march=native -pthread Benchmarks/stream_triad.c -o /tmp/stream_triad
load() { echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)  $(date -u +%H:%M:%S)"; }
load; /tmp/stream_triad "$THREADS"
for storage in f32 bf16; do
  dtype=$([ $storage = f32 ] && echo float32 || echo bfloat16)
  load; .build/release/vlm bench-llm --model "$DIR" --prompt "$PROMPT" --tokens "$TOKENS" --threads "$THREADS" --storage $storage --format json
  load; "$PY" Benchmarks/bench_torch_llm.py --model "$DIR" --prompt "$PROMPT" --tokens "$TOKENS" --threads "$THREADS" --dtype $dtype 2>/dev/null
done
load; /tmp/stream_triad "$THREADS"
