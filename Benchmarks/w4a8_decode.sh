#!/usr/bin/env bash
# int4 decode: W4A8 (int8 activation blocks x 4-bit codes, vpdpbusd) against the weight-only fp32 GEMV
# (VLM_W4A8=none), SmolLM2-1.7B and -360M with random weights, 128-token prompt, 32 tokens, 2 threads, in one run,
# with PyTorch bf16 on 1.7B as the peer (Benchmarks/bench_torch_llm.py; PYTHON defaults to ~/vlmpy/bin/python).
# `vlm bench-llm` prints the CPU, the kernels and the decode roofline from the measured read bandwidth.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$HOME/vlmpy/bin/python}
swift build -c release --product vlm >&2
V=.build/release/vlm
date -u
for round in 1 2; do
  for cfg in smollm2-1.7b smollm2-360m; do
    echo "== round $round $cfg int4 W4A8"; "$V" bench-llm --config $cfg --prompt 128 --tokens 32 --threads 2 --storage int4 | tail -4
    echo "== round $round $cfg int4 weight-only"; VLM_W4A8=none "$V" bench-llm --config $cfg --prompt 128 --tokens 32 --threads 2 --storage int4 | tail -4
  done
  [ "$round" = 1 ] && { echo "== smollm2-1.7b PyTorch bf16"; "$PYTHON" Benchmarks/bench_torch_llm.py --config smollm2-1.7b --prompt 128 --tokens 32 --threads 2 --dtype bfloat16 | tail -3; }
done
date -u
