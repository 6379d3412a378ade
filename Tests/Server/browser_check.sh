#!/usr/bin/env bash
# Headless-browser check of the web page at `/`: starts `vlm serve` on the tiny fixture, lets Chromium load
# the page with a query in the URL (the page runs it on load), then checks
#   1. the rendered DOM has result cards for a text query and for an image (the page's JS talked to the API
#      and drew the grid), and
#   2. the screenshot exists and is not blank (many distinct colours, not one flat fill);
# then the same in search mode: `vlm index add` over the fixture photos, `vlm serve --index --root`, a text
# and an image query whose result cards show the indexed images (served by /v1/index/{id}/image), and a
# second screenshot (<out>-search.png).
# Skips cleanly (exit 0) when Chromium is not installed, so CI without a browser passes.
#
# Usage: [VLM=path/to/vlm] Tests/Server/browser_check.sh [--out screenshot.png] [--port N] [--model DIR]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${TMPDIR:-/tmp}/vlm-browser-check.png"
PORT=18438
MODEL="$ROOT/Tests/Fixtures/clip/tiny-a"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

CHROMIUM=""
for name in chromium chromium-browser google-chrome-stable google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then CHROMIUM="$(command -v "$name")"; break; fi
done
if [[ -z "$CHROMIUM" ]]; then
  echo "SKIP: no Chromium found (apt-get install chromium to run this check)"
  exit 0
fi

cd "$ROOT"
VLM="${VLM:-}"  # set VLM=path/to/vlm to test a particular build
for config in release debug; do
  [[ -n "$VLM" ]] && break
  candidate="$(swift build -c "$config" --show-bin-path)/vlm"
  if [[ -x "$candidate" ]]; then VLM="$candidate"; break; fi
done
if [[ -z "$VLM" ]]; then
  swift build --product vlm >&2
  VLM="$(swift build --show-bin-path)/vlm"
fi

# shellcheck source=../../Benchmarks/serve_helpers.sh
source "$ROOT/Benchmarks/serve_helpers.sh"
start_server "$PORT" --model "$MODEL"

LABELS="a%20cat,a%20dog,an%20astronaut,a%20cup%20of%20coffee,a%20car,a%20mountain"
URL="http://127.0.0.1:$PORT/?q=a%20photo%20of%20a%20cat&labels=$LABELS"
# --virtual-time-budget lets the page's fetches finish before the DOM dump / screenshot is taken.
FLAGS=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --no-first-run
       --user-data-dir="$WORK/profile" --virtual-time-budget=10000)

# check_dom URL WHAT PATTERN: the rendered page must contain result cards and PATTERN.
check_dom() {
  timeout 60 "$CHROMIUM" "${FLAGS[@]}" --dump-dom "$1" >"$WORK/dom.html" 2>"$WORK/chromium-dom.log" || true
  local cards
  cards=$(grep -o 'class="card"' "$WORK/dom.html" | wc -l || true)
  if [[ "$cards" -lt 1 ]] || ! grep -q "$3" "$WORK/dom.html"; then
    echo "FAIL: $2: the page drew no results" >&2
    grep -o '<span id="status"[^<]*</span>' "$WORK/dom.html" >&2 || tail -20 "$WORK/chromium-dom.log" >&2
    exit 1
  fi
  echo "$2: $cards result cards"
}
check_dom "$URL" "text query vs labels" "cosine"
# The image path (classification), with the image passed in the URL as a data URL instead of a drop.
IMAGE_URL="data:image/jpeg;base64,$(base64 -w0 "$ROOT/Tests/Fixtures/clip/images/chelsea.jpg" | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')"
check_dom "http://127.0.0.1:$PORT/?labels=$LABELS&image=$IMAGE_URL" "image classification" "p = "

# check_png FILE: the screenshot must be a real rendering, not a blank page.
check_png() {
if command -v python3 >/dev/null 2>&1; then
  python3 - "$1" <<'PY'
# Decodes the PNG (8-bit RGB/RGBA, non-interlaced, as Chromium writes it) with the standard library only and
# requires a non-blank image: several distinct colours and a real share of non-background pixels.
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        assert depth == 8 and ctype in (2, 6) and interlace == 0, f"unexpected PNG format {depth} {ctype} {interlace}"
        bpp = 3 if ctype == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
colours, counts = set(), {}
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    for x in range(0, w, 4):
        px = bytes(line[x * bpp:x * bpp + 3])
        colours.add(px)
        counts[px] = counts.get(px, 0) + 1
total = sum(counts.values())
background = max(counts.values()) / total
print(f"screenshot {w}x{h}: {len(colours)} distinct colours, background covers {background:.0%}")
if len(colours) < 16 or background > 0.97:
    sys.exit("FAIL: screenshot looks blank")
PY
else
  echo "python3 not found: checked only that the screenshot exists ($(stat -c %s "$1") bytes)"
fi
}

rm -f "$OUT"
timeout 60 "$CHROMIUM" "${FLAGS[@]}" --window-size=1280,900 --screenshot="$OUT" "$URL" >/dev/null 2>"$WORK/chromium-shot.log" || true
if [[ ! -s "$OUT" ]]; then
  echo "FAIL: no screenshot at $OUT" >&2
  tail -20 "$WORK/chromium-shot.log" >&2
  exit 1
fi

check_png "$OUT"
echo "OK: screenshot at $OUT"

# Search mode: an index over the fixture photos, served with --root so the result cards show the images.
stop_server
mkdir -p "$WORK/photos"
cp "$ROOT"/Tests/Fixtures/clip/images/*.jpg "$ROOT"/Tests/Fixtures/clip/images/*.png "$WORK/photos/"
"$VLM" index add "$WORK/photos" --index "$WORK/index.sqlite" --model "$MODEL" --quiet >/dev/null
start_server "$PORT" --model "$MODEL" --index "$WORK/index.sqlite" --root "$WORK/photos"
SEARCH_URL="http://127.0.0.1:$PORT/?q=a%20photo%20of%20a%20cat"
check_dom "$SEARCH_URL" "search mode, text query" 'src="/v1/index/[0-9]*/image"'
check_dom "http://127.0.0.1:$PORT/?image=$IMAGE_URL" "search mode, image query" 'src="/v1/index/[0-9]*/image"'
SEARCH_OUT="${OUT%.png}-search.png"
rm -f "$SEARCH_OUT"
timeout 60 "$CHROMIUM" "${FLAGS[@]}" --window-size=1280,900 --screenshot="$SEARCH_OUT" "$SEARCH_URL" >/dev/null 2>"$WORK/chromium-shot.log" || true
if [[ ! -s "$SEARCH_OUT" ]]; then
  echo "FAIL: no screenshot at $SEARCH_OUT" >&2
  tail -20 "$WORK/chromium-shot.log" >&2
  exit 1
fi
check_png "$SEARCH_OUT"
echo "OK: search-mode screenshot at $SEARCH_OUT"
