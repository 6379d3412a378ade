#!/usr/bin/env bash
# `vlm serve` search latency and image ingest rate with each index backend (issue 14 part 5), same model, same
# vectors, same run:
#   1. ingest: `vlm index add` of N synthetic scene images into a SQLite index and into a Milvus collection
#      (images/s; the encoder should bound both);
#   2. search: an index of the synthetic vectors of `index_bench.py gen` (default 100k x 512) written under the
#      model's identity (`vlm index bench-fill`) into SQLite and into Milvus, then `vlm serve --index ...` under
#      wrk (POST /v1/search, text queries, top 10) at the given connection counts: requests/s, p50/p99; on the
#      SQLite server also POST /v1/embeddings of the same texts (the text encoder alone: what search is bound by).
# Exits non-zero if any request failed.
#
# Usage: Benchmarks/serve_search_backends.sh --model DIR [--data DIR] [--n N] [--milvus milvus://host:port/coll]
#            [--connections "8 32"] [--duration S] [--ingest-images N] [--port P] [--no-build] [--vlm PATH]
#            [--skip-ingest] [--no-fill --sqlite PATH]
# --no-fill: serve an index already filled by `vlm index bench-fill` (--sqlite PATH and the --milvus collection).
# --vlm: the `vlm` binary to measure (default: this tree's release build), e.g. to compare two builds in one run.
# The model must embed 512-d (the vectors of index_bench.py), e.g. a ViT-B/32 CLIP with random weights:
#   ~/vlmpy/bin/python Benchmarks/bench_torch_clip.py --config b32 --save /tmp/vlm-clip-b32
#   ~/vlmpy/bin/python Benchmarks/index_bench.py gen --out /tmp/vlm-milvus-bench --sizes 100000 --kind clustered
# and a Milvus (Scripts/milvus-server.sh start).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL=""
DATA=/tmp/vlm-milvus-bench
N=100000
MILVUS=milvus://127.0.0.1:19530/vlm_serve_bench
CONNECTIONS="8 32"
DURATION=20
INGEST=200
PORT=18447
BUILD=1
VLM=""
INGEST_STEP=1
FILL=1
SQLITE=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --n) N="$2"; shift 2 ;;
    --milvus) MILVUS="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --ingest-images) INGEST="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --vlm) VLM="$2"; BUILD=0; shift 2 ;;
    --skip-ingest) INGEST_STEP=0; shift ;;
    --no-fill) FILL=0; shift ;;
    --sqlite) SQLITE="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -n "$MODEL" ]] || { echo "--model DIR is required (see --help)" >&2; exit 2; }
[[ $FILL -eq 0 || -f "$DATA/base_$N.npy" ]] || { echo "no $DATA/base_$N.npy (see --help)" >&2; exit 2; }
[[ $FILL -eq 1 || -n "$SQLITE" ]] || { echo "--no-fill needs --sqlite PATH" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not found (Debian package 'wrk')" >&2; exit 2; }

cd "$ROOT"
if [[ $BUILD -eq 1 ]]; then swift build -c release --product vlm >&2; fi
[[ -n "$VLM" ]] || VLM="$(swift build -c release --show-bin-path)/vlm"
# shellcheck source=serve_helpers.sh
source "$ROOT/Benchmarks/serve_helpers.sh"

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
seconds() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'; }

# 1. Ingest of images through each backend.
if [[ $INGEST_STEP -eq 1 ]]; then
"$VLM" scenes generate --count "$INGEST" --seed 11 --out "$WORK/scenes" --image-format jpeg >/dev/null
INGEST_MILVUS="${MILVUS}_ingest"
printf '\ningest of %s scene images (vlm index add, batch 32)\n%-8s %10s %10s\n' "$INGEST" backend seconds "images/s"
for backend in sqlite milvus; do
  loc="$WORK/ingest.sqlite"; [[ $backend == milvus ]] && loc="$INGEST_MILVUS"
  start=$(date +%s.%N)
  "$VLM" index add "$WORK/scenes" --index "$loc" --model "$MODEL" --rebuild --quiet >/dev/null
  s=$(seconds "$start")
  printf '%-8s %10s %10.1f\n' "$backend" "$s" "$(awk -v n="$INGEST" -v s="$s" 'BEGIN { print n / s }')"
done
"$VLM" index remove --index "$INGEST_MILVUS" "$WORK/scenes" >/dev/null  # leave the collection empty
fi

# 2. Search through `vlm serve` over N vectors.
echo
if [[ $FILL -eq 1 ]]; then
  SQLITE="$WORK/search.sqlite"
  "$VLM" index bench-fill --index "$SQLITE" --model "$MODEL" --data "$DATA" --n "$N" | tail -1
  "$VLM" index bench-fill --index "$MILVUS" --model "$MODEL" --data "$DATA" --n "$N" | tail -1
fi

FAILED=0
# One wrk run: prints a row (label, connections, req/s, p50, p99, max, errors).
measure() {
  local label="$1" script="$2" c="$3"
  sleep 1
  out="$(wrk -t2 -c"$c" -d"${DURATION}s" --timeout 10s -s "$ROOT/Benchmarks/wrk/$script" "http://127.0.0.1:$PORT")"
  line="$(grep '^WRK_RESULT' <<<"$out" || true)"
  if [[ -z "$line" ]]; then echo "$out" >&2; FAILED=1; return; fi
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  errors=$(( $(get non2xx) + $(get socket_errors) ))
  [[ $errors -eq 0 ]] || FAILED=1
  # No answer at all (wrk counts no timeout for a request that never completes): the server stalled.
  [[ $(get requests) -gt 0 ]] || { errors="stalled"; FAILED=1; }
  printf '%-14s %5s %10s %10s %10s %10s %8s\n' "$label" "$c" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$(get max_ms)" "$errors"
}
printf '\nvlm serve POST /v1/search over %s vectors, %s s per run (and, on the SQLite server, POST /v1/embeddings of\n' "$N" "$DURATION"
printf 'the same texts: the encoder alone)\n%-14s %5s %10s %10s %10s %10s %8s\n' backend conns "req/s" "p50 ms" "p99 ms" "max ms" errors
for backend in sqlite milvus; do
  loc="$SQLITE"; [[ $backend == milvus ]] && loc="$MILVUS"
  start_server "$PORT" --model "$MODEL" --index "$loc"
  VLM_MODEL_ID="$(curl -fsS "http://127.0.0.1:$PORT/v1/models" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
  export VLM_MODEL_ID
  wrk -t1 -c1 -d2s -s "$ROOT/Benchmarks/wrk/search.lua" "http://127.0.0.1:$PORT" >/dev/null
  for c in $CONNECTIONS; do
    measure "$backend" search.lua "$c"
    [[ $backend == sqlite ]] && measure "embeddings" embed_text.lua "$c"
  done
  curl -fsS "http://127.0.0.1:$PORT/healthz" | grep -o '"strategy":"[^"]*"' | head -1
  stop_server
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $FAILED -ne 0 ]]; then echo "FAILED: some requests returned errors" >&2; exit 1; fi
