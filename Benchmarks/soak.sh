#!/usr/bin/env bash
# Soak test of `vlm serve` (issue 15, part 4): Benchmarks/soak.py drives a server holding the embedded
# scenes-clip model with an index and the tiny LLaVA fixture as chat model for MINUTES (default 10) with a mix of
# embeddings, search, index add/delete, streamed chat with hang-ups and malformed requests; then the same under
# an address-space limit (prlimit --as, default 2 GiB) with a pixel budget that fits in it, where the server must
# refuse work (503) instead of dying. Results (CSV, summary.json/md, soak.svg) go to OUT (default /tmp/vlm-soak).
#   Benchmarks/soak.sh                      # both runs, 10 minutes each
#   MINUTES=2 RUNS=plain Benchmarks/soak.sh # a short check
# Needs ~/vlmpy (Pillow) or PYTHON=...; the release binary (swift build -c release --product vlm) or VLM=...
set -euo pipefail
cd "$(dirname "$0")/.."
VLM="${VLM:-.build/release/vlm}"
PYTHON="${PYTHON:-$HOME/vlmpy/bin/python}"
MINUTES="${MINUTES:-10}"
OUT="${OUT:-/tmp/vlm-soak}"
LIMIT="${LIMIT:-2147483648}"
RUNS="${RUNS:-plain limited}"
status=0
for run in $RUNS; do
  case "$run" in
    plain)
      "$PYTHON" Benchmarks/soak.py --vlm "$VLM" --minutes "$MINUTES" --out "$OUT/plain" --port 18431 || status=1 ;;
    limited)
      # 2 GiB of address space (virtual: thread stacks and malloc arenas count; MALLOC_ARENA_MAX keeps the
      # latter few), 12 clients, a third of the requests 25-megapixel images (the --max-image-pixels limit): with
      # the default pixel budget (100 M pixels in flight) the excess must be refused with 503.
      MALLOC_ARENA_MAX=2 "$PYTHON" Benchmarks/soak.py --vlm "$VLM" --minutes "$MINUTES" --out "$OUT/limited" --port 18432 \
        --mem-limit "$LIMIT" --workers 12 --big-side 5000 --big-weight 50 || status=1 ;;
  esac
done
exit $status
