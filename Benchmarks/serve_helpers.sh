# Shared by Benchmarks/server_load.sh and Tests/Server/browser_check.sh (source it; needs bash and curl).
# start_server PORT ARGS...: runs `$VLM serve --host 127.0.0.1 --port PORT ARGS...` in the background, logging to
# $WORK/server.log, waits up to 30 s for /healthz, and stops the server (TERM, then KILL) and removes $WORK on exit.
# stop_server: stops it now (e.g. to start another configuration).

WORK="$(mktemp -d)"
SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

start_server() {
  local port="$1"
  shift
  "$VLM" serve --host 127.0.0.1 --port "$port" "$@" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not come up" >&2
  cat "$WORK/server.log" >&2
  exit 1
}
