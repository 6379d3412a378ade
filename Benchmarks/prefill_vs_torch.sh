#!/usr/bin/env bash
# Prefill of SmolLM2-360M and -1.7B (random weights, 128-token prompt, 2 threads): SwiftVLM bf16 and int8 against
# PyTorch bf16 (Benchmarks/bench_torch_llm.py: logits of the last position only, as generate() prefills and as our
# prefill computes them), rounds alternating engines so the VM's drift hits both; each figure is the median of 5
# prefills. Usage: Benchmarks/prefill_vs_torch.sh [ROUNDS] [CONFIGS]; PYTHON defaults to ~/vlmpy/bin/python.
# `VLM_BIN` runs a prebuilt binary instead of building. `vlm bench-llm` prints the CPU and the kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$HOME/vlmpy/bin/python}
ROUNDS=${1:-3}
CONFIGS=${2:-"smollm2-360m smollm2-1.7b"}
if [ -z "${VLM_BIN:-}" ]; then swift build -c release --product vlm >&2; fi
V=${VLM_BIN:-.build/release/vlm}
date -u
"$V" bench-llm --config smollm2-360m --prompt 16 --tokens 1 --threads 2 --storage bf16 | head -1
for cfg in $CONFIGS; do
  for round in $(seq "$ROUNDS"); do
    for s in bf16 int8; do
      printf '%s round %s swiftvlm %-5s ' "$cfg" "$round" "$s"
      "$V" bench-llm --config "$cfg" --prompt 128 --tokens 1 --threads 2 --storage "$s" --prefill-runs 5 | grep prefill:
    done
    printf '%s round %s pytorch bf16  ' "$cfg" "$round"
    "$PYTHON" Benchmarks/bench_torch_llm.py --config "$cfg" --prompt 128 --tokens 1 --threads 2 --dtype bfloat16 \
      --prefill-runs 5 2>/dev/null | "$PYTHON" -c 'import json,sys; print("prefill: %8.1f tokens/s" % json.load(sys.stdin)["prefill_tokens_per_s"])'
  done
done
date -u
