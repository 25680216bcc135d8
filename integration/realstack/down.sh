#!/usr/bin/env bash
# Stops what up.sh started, by the PIDs in its state file, and removes its
# temporary data folder. Safe to run when nothing is up.
set -uo pipefail
. "$(dirname "$0")/common.sh"
"$RS_DIR/down-secure.sh" || true
"$RS_DIR/down-cluster.sh" || true
[ -f "$RS_STATE" ] || { log "nothing to stop"; exit 0; }
# shellcheck disable=SC1090
. "$RS_STATE"

stop() { # name pid
  local name=$1 pid=${2:-}
  alive "$pid" || return 0
  # Only stop the process if it is still ours: a java or postgres process.
  case "$(ps -o comm= -p "$pid" 2>/dev/null)" in
    java|postgres|postmaster) ;;
    *) log "pid $pid is no longer $name; leaving it alone"; return 0 ;;
  esac
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 60); do alive "$pid" || { log "$name stopped (pid $pid)"; return 0; }; sleep 0.25; done
  log "$name did not stop in 15s: SIGKILL pid $pid"
  kill -KILL "$pid" 2>/dev/null
  for _ in $(seq 1 20); do alive "$pid" || return 0; sleep 0.25; done
}
stop "kafka connect" "${CONNECT_PID:-}"
stop "kafka" "${KAFKA_PID:-}"
stop "apicurio registry" "${REGISTRY_PID:-}"
# SIGTERM to the postmaster is PostgreSQL's "smart" shutdown; SIGINT is
# "fast", which ends open replication connections too.
if alive "${PG_PID:-}"; then kill -INT "$PG_PID" 2>/dev/null; fi
stop "postgresql" "${PG_PID:-}"
case "${RS_DATA:-}" in /tmp/cdcsync-realstack.*) rm -rf "$RS_DATA" ;; esac
rm -f "$RS_STATE"
