#!/usr/bin/env bash
# A real Milvus for the Milvus tests: the PyPI package `milvus` (embedded Milvus 2.3 standalone, "Milvus Lite"
# server), in a venv outside the repo, data under a temp folder.
#
#   Scripts/milvus-server.sh start     # creates the venv if missing, starts in the background, waits for the port
#   Scripts/milvus-server.sh stop      # stops it (the data directory stays until `clean`)
#   Scripts/milvus-server.sh restart   # stop + start on the same data (tests of restarts use this)
#   Scripts/milvus-server.sh clean     # stop and delete the data directory
#   Scripts/milvus-server.sh status
# Then: export VLM_TEST_MILVUS=127.0.0.1:19530 && swift test --filter VLMMilvusTests
#
# Environment: MILVUS_VENV (default ~/milvus-venv), MILVUS_DATA (default ${TMPDIR:-/tmp}/vlm-milvus),
# MILVUS_PORT (default 19530), MILVUS_VERSION (default 2.3.5).
set -euo pipefail
VENV="${MILVUS_VENV:-$HOME/milvus-venv}"
DATA="${MILVUS_DATA:-${TMPDIR:-/tmp}/vlm-milvus}"
PORT="${MILVUS_PORT:-19530}"
VERSION="${MILVUS_VERSION:-2.3.5}"
PIDFILE="$DATA/server.pid"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

install() {
  if [ ! -x "$VENV/bin/milvus-server" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "milvus==$VERSION"
  fi
}

start() {
  install
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then echo "milvus already running (pid $(cat "$PIDFILE"))"; return; fi
  if port_open; then echo "port $PORT is already in use by another process" >&2; exit 1; fi
  mkdir -p "$DATA"
  # setsid: its own process group, so `stop` ends the wrapper and the server binary together.
  # The wrapper test-binds every port first without SO_REUSEADDR, which fails for a minute after a restart
  # (connections in TIME_WAIT) and then silently moves the proxy to another port: bind as the server will
  # (Go listeners use SO_REUSEADDR), so a restart keeps its port.
  setsid "$VENV/bin/python" -c '
import socket, sys, milvus
def try_bind_port(self, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port)); s.listen(); return s
    except OSError:
        s.close(); return None
milvus.MilvusServerConfig.try_bind_port = try_bind_port
sys.argv = ["milvus-server"] + sys.argv[1:]
milvus.main()
' --data "$DATA" --proxy-port "$PORT" > "$DATA/server.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 180); do
    # The banner comes once the wrapper has seen the server up (the port alone may be its own test bind).
    if grep -q "Welcome to use Milvus" "$DATA/server.log" 2>/dev/null && port_open; then echo "milvus $VERSION listening on 127.0.0.1:$PORT (data $DATA, pid $(cat "$PIDFILE"))"; return; fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then echo "milvus exited; log:" >&2; tail -n 30 "$DATA/server.log" >&2; exit 1; fi
    sleep 1
  done
  echo "milvus did not open port $PORT within 180 s; log: $DATA/server.log" >&2
  exit 1
}

stop() {
  [ -f "$PIDFILE" ] || { echo "milvus not running"; return; }
  local pid; pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  for _ in $(seq 1 40); do port_open || break; sleep 0.5; done
  rm -f "$PIDFILE"
  echo "milvus stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  clean) stop; rm -rf "$DATA" ;;
  status) if port_open; then echo "listening on $PORT"; else echo "not listening"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|restart|clean|status" >&2; exit 2 ;;
esac
