#!/usr/bin/env bash
# API conformance: runs schemathesis (PyPI) against a live `vlm serve` on loopback, driven by the server's own
# /openapi.json. The server has every route group: an embedding model (Tests/Fixtures/clip/tiny-a) with an index
# on a temporary SQLite file and a --root holding two fixture photos, a chat model
# (Tests/Fixtures/llava/llava-chat), and --api-key (schemathesis sends the token). Checks: not_a_server_error
# (no 5xx), status_code_conformance, content_type_conformance, response_schema_conformance. Exits non-zero on
# any failure, or when the server died during the run.
#
#   Scripts/schemathesis.sh                    # release build, 100 examples per operation
#   MAX_EXAMPLES=300 SEED=7 Scripts/schemathesis.sh
#   CONFIG=debug Scripts/schemathesis.sh       # skip the release build (uses the debug vlm)
#
# schemathesis runs inside the temporary folder (its cache goes there, not into the repo); it is installed into a venv outside the repo ($ST_VENV, default ~/schemathesis-venv) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
ST_VENV="${ST_VENV:-$HOME/schemathesis-venv}"
MAX_EXAMPLES="${MAX_EXAMPLES:-100}"
SEED="${SEED:-1}"
CONFIG="${CONFIG:-release}"

if [[ ! -x "$ST_VENV/bin/st" ]]; then
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install -q schemathesis
fi
swift build -c "$CONFIG" --product vlm
VLM="$(swift build -c "$CONFIG" --show-bin-path)/vlm"

# shellcheck source=../Benchmarks/serve_helpers.sh
source "$REPO/Benchmarks/serve_helpers.sh"   # start_server / stop_server, $WORK removed on exit
mkdir -p "$WORK/photos"
cp Tests/Fixtures/clip/images/chelsea.jpg Tests/Fixtures/clip/images/coffee.png "$WORK/photos/"
PORT="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
KEY="st-key-$RANDOM$RANDOM"
BASE="http://127.0.0.1:$PORT"
start_server "$PORT" --model Tests/Fixtures/clip/tiny-a --model Tests/Fixtures/llava/llava-chat \
  --index "$WORK/index.sqlite" --root "$WORK/photos" --api-key "$KEY"
# Entries to search, serve and delete.
curl -fsS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"paths": ["."]}' "$BASE/v1/index" >/dev/null

set +e
(cd "$WORK" && "$ST_VENV/bin/st" run "$BASE/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  -H "Authorization: Bearer $KEY" --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 \
  --request-timeout 60 --no-color --report junit --report-junit-path "$WORK/junit.xml") 2>&1 | tee "$WORK/st.log"
status=${PIPESTATUS[0]}
set -e

alive=1
kill -0 "$SERVER_PID" 2>/dev/null || alive=0
if [[ -f "$WORK/junit.xml" ]]; then
  python3 - "$WORK/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
failures = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
print(f"junit: {tests} operations tested, {failures} with failures or errors")
PY
fi
grep -E "generated|passed|failed|Test cases" "$WORK/st.log" | tail -5 || true
if [[ $alive -eq 0 ]]; then
  echo "FAIL: the server died during the run; its log:" >&2
  tail -50 "$WORK/server.log" >&2
  exit 1
fi
stop_server
if [[ $status -ne 0 ]]; then
  echo "FAIL: schemathesis exited $status (server log tail follows)" >&2
  tail -20 "$WORK/server.log" >&2
  exit "$status"
fi
echo "schemathesis: 0 failures"
