#!/usr/bin/env bash
# Resident memory of `vlm serve` with each model alone and with both in one process: the two-model server
# should cost the sum of the single-model servers minus one process baseline (the weights are the bulk), plus a
# bounded overhead. Each server answers one text and one image embedding request per model first, so working
# buffers are allocated. Prints a table (kB) for Benchmarks/RESULTS.md.
#
#   VLM=.build/release/vlm Benchmarks/serve_memory.sh /tmp/sb/siglip-b16-224 /tmp/sb/clip-b32
set -euo pipefail
cd "$(dirname "$0")/.."
VLM="${VLM:-.build/release/vlm}"
A="$1"
B="$2"
PORT="${PORT:-18093}"
source Benchmarks/serve_helpers.sh

IMAGE="data:image/jpeg;base64,$(base64 -w0 Tests/Fixtures/clip/images/chelsea.jpg)"
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status"; }
warm() {
  for id in "$@"; do
    curl -fsS "http://127.0.0.1:$PORT/v1/embeddings" -H 'content-type: application/json' \
      -d "{\"model\": \"$id\", \"input\": [\"a photo of a cat\", {\"image\": \"$IMAGE\"}]}" >/dev/null
  done
}
weights_kb() { du -bcL "$1"/*.safetensors | tail -1 | awk '{printf "%d", $1 / 1024}'; }

idA=$(basename "$A"); idB=$(basename "$B")
start_server "$PORT" --model "$A"; warm "$idA"; rA=$(rss_kb); hA=$(hwm_kb); stop_server
start_server "$PORT" --model "$B"; warm "$idB"; rB=$(rss_kb); hB=$(hwm_kb); stop_server
start_server "$PORT" --model "$A" --model "$B"; warm "$idA" "$idB"; rAB=$(rss_kb); hAB=$(hwm_kb); stop_server
wA=$(weights_kb "$A"); wB=$(weights_kb "$B")
echo "| server | weights on disk (kB) | RSS after warm-up (kB) | peak RSS (kB) |"
echo "|---|---|---|---|"
echo "| $idA alone | $wA | $rA | $hA |"
echo "| $idB alone | $wB | $rB | $hB |"
echo "| both | $((wA + wB)) | $rAB | $hAB |"
echo
echo "two-model RSS - (sum of single-model RSS): $((rAB - rA - rB)) kB (one process baseline fewer: negative by about that baseline)"
echo "two-model RSS - weights: $((rAB - wA - wB)) kB overhead"
