#!/usr/bin/env bash
# Decode of SmolLM2-1.7B and -360M (random weights, 128-token prompt, 32 tokens, 2 threads) in bf16, int8 and int4
# against the memory-bandwidth roofline `vlm bench-llm` measures around each run (and its median and fastest step,
# which hypervisor steal on a shared host does not move), with PyTorch bf16 decode as the
# peer (Benchmarks/bench_torch_llm.py), two rounds in one run. This VM's bandwidth moves between ~50 and ~80 GB/s from
# minute to minute: read each row's roofline with the sweep it names. PYTHON defaults to ~/vlmpy/bin/python; VLM_BIN
# to a fresh release build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$HOME/vlmpy/bin/python}
if [ -z "${VLM_BIN:-}" ]; then swift build -c release --product vlm >&2; VLM_BIN=.build/release/vlm; fi
grep -m1 "model name" /proc/cpuinfo; grep -m1 "cpu family" /proc/cpuinfo; date -u
for round in 1 2; do
  for cfg in smollm2-1.7b smollm2-360m; do
    for st in bf16 int8 int4; do
      echo "== round $round $cfg $st"
      "$VLM_BIN" bench-llm --config $cfg --prompt 128 --tokens 32 --threads 2 --storage $st | grep -A2 'decode:'
    done
    if [ "$round" = 1 ]; then
      echo "== $cfg PyTorch bf16"
      "$PYTHON" Benchmarks/bench_torch_llm.py --config $cfg --prompt 128 --tokens 32 --threads 2 --dtype bfloat16 2>/dev/null | tail -1
    fi
  done
done
date -u
