#!/usr/bin/env bash
# Load test of `vlm serve` on loopback with wrk: text and image embedding requests (and, with --search-images N,
# text queries to POST /v1/search over an index of N synthetic scenes) at several connection counts, each for a
# bounded time. Prints requests/s, p50/p99 latency, errors (non-2xx + socket errors; must be
# 0) and the server's peak RSS (VmHWM), plus `vlm bench` batch throughput for comparison. Exits non-zero if
# any request failed.
#
# Usage: Benchmarks/server_load.sh [--model DIR] [--duration SECONDS] [--connections "8 32"] [--port N]
#                                  [--max-batch N] [--max-wait-ms N] [--image FILE] [--no-build] [--wrk-threads N]
#                                  [--search-images N]
# Defaults: the tiny test checkpoint (Tests/Fixtures/clip/tiny-a), 15 s, 8 and 32 connections, port 18437.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODEL="$ROOT/Tests/Fixtures/clip/tiny-a"
IMAGE="$ROOT/Tests/Fixtures/clip/images/astronaut.jpg"
DURATION=15
CONNECTIONS="8 32"
PORT=18437
MAX_BATCH=16
MAX_WAIT_MS=5
BUILD=1
WRK_THREADS=2
SEARCH_IMAGES=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --max-batch) MAX_BATCH="$2"; shift 2 ;;
    --max-wait-ms) MAX_WAIT_MS="$2"; shift 2 ;;
    --image) IMAGE="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --wrk-threads) WRK_THREADS="$2"; shift 2 ;;
    --search-images) SEARCH_IMAGES="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

if ! command -v wrk >/dev/null 2>&1; then
  echo "wrk not found; installing (Debian package 'wrk')" >&2
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else sudo apt-get install -y -qq wrk >/dev/null; fi
fi

cd "$ROOT"
if [[ $BUILD -eq 1 ]]; then
  echo "building release vlm..." >&2
  swift build -c release --product vlm >&2
fi
VLM="$(swift build -c release --show-bin-path)/vlm"
[[ -x "$VLM" ]] || { echo "no release vlm at $VLM (drop --no-build)" >&2; exit 1; }

# shellcheck source=serve_helpers.sh
source "$ROOT/Benchmarks/serve_helpers.sh"
SCRIPTS="embed_text embed_image"
INDEX_ARGS=()
if [[ $SEARCH_IMAGES -gt 0 ]]; then
  echo "indexing $SEARCH_IMAGES synthetic scenes..." >&2
  "$VLM" scenes generate --count "$SEARCH_IMAGES" --seed 7 --out "$WORK/scenes" --image-format jpeg >/dev/null
  start=$(date +%s.%N)
  "$VLM" index add "$WORK/scenes" --index "$WORK/index.sqlite" --model "$MODEL" --batch "$MAX_BATCH" --quiet >&2
  echo "indexed in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s" >&2
  INDEX_ARGS=(--index "$WORK/index.sqlite" --root "$WORK/scenes")
  SCRIPTS="$SCRIPTS search"
fi
start_server "$PORT" --model "$MODEL" --max-batch "$MAX_BATCH" --max-wait-ms "$MAX_WAIT_MS" "${INDEX_ARGS[@]}"
MODEL_ID="$(curl -fsS "http://127.0.0.1:$PORT/v1/models" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
export VLM_MODEL_ID="$MODEL_ID"

# Image request body: one image as a data URL.
MIME="image/jpeg"; [[ "$IMAGE" == *.png ]] && MIME="image/png"
printf '{"model":"%s","input":[{"type":"image_url","image_url":{"url":"data:%s;base64,%s"}}]}' \
  "$MODEL_ID" "$MIME" "$(base64 -w0 "$IMAGE")" >"$WORK/image.json"
export VLM_WRK_BODY="$WORK/image.json"

# Warm up (first calls allocate scratch buffers), then check each request kind works at all.
for script in $SCRIPTS; do
  wrk -t1 -c1 -d1s -s "$ROOT/Benchmarks/wrk/$script.lua" "http://127.0.0.1:$PORT" >/dev/null
done

hwm() { awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status"; }
FAILED=0
printf '\nvlm serve load test: model %s (%s), %s s per run, max batch %s, max wait %s ms, %s cores\n' \
  "$MODEL_ID" "$MODEL" "$DURATION" "$MAX_BATCH" "$MAX_WAIT_MS" "$(nproc)"
printf '%-6s %5s %10s %10s %10s %10s %8s %12s\n' kind conns "req/s" "p50 ms" "p99 ms" "max ms" errors "peak RSS MB"
for script in $SCRIPTS; do
  for c in $CONNECTIONS; do
    # Let the encoder drain what the previous run left queued or in flight (an image batch of a base-size
    # model takes most of a second), so it does not show up in this run's tail latency.
    for _ in $(seq 1 100); do
      curl -fsS "http://127.0.0.1:$PORT/healthz" | grep -q '"text":0' && curl -fsS "http://127.0.0.1:$PORT/healthz" | grep -q '"image":0' && break
      sleep 0.1
    done
    sleep 1
    out="$(wrk -t"$WRK_THREADS" -c"$c" -d"${DURATION}s" --timeout 10s -s "$ROOT/Benchmarks/wrk/$script.lua" "http://127.0.0.1:$PORT")"
    line="$(grep '^WRK_RESULT' <<<"$out" || true)"
    if [[ -z "$line" ]]; then echo "$out" >&2; FAILED=1; continue; fi
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    errors=$(( $(get non2xx) + $(get socket_errors) ))
    [[ $errors -eq 0 ]] || FAILED=1
    kind="${script#embed_}"
    printf '%-6s %5s %10s %10s %10s %10s %8s %12.1f\n' "$kind" "$c" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" \
      "$(get max_ms)" "$errors" "$(awk -v k="$(hwm)" 'BEGIN { print k / 1024 }')"
  done
done

echo
echo "server batches (from /metrics):"
curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -E '^vlm_batch_size_(sum|count)|^vlm_encoded_items_total|^vlm_queue_rejected' || true
echo
echo "encoder alone (vlm bench, batch $MAX_BATCH, 3 s):"
"$VLM" bench --model "$MODEL" --batch "$MAX_BATCH" --seconds 3 || true

if [[ $FAILED -ne 0 ]]; then echo "FAILED: some requests returned errors" >&2; exit 1; fi
