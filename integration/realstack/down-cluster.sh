#!/usr/bin/env bash
# Stops what up-cluster.sh started (Connect, then the three nodes), by the
# PIDs in its state file, and removes its data folder. A node stopped with
# SIGSTOP is continued first so SIGTERM can end it. Safe when nothing is up.
set -uo pipefail
. "$(dirname "$0")/common.sh"
CL_STATE=${CDCSYNC_REALSTACK_CLUSTER_STATE:-$RS_CACHE/cluster.env}
[ -f "$CL_STATE" ] || exit 0
# shellcheck disable=SC1090
. "$CL_STATE"
stop() { # name pid
  local name=$1 pid=${2:-}
  alive "$pid" || return 0
  [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = java ] || { log "pid $pid is no longer $name; leaving it alone"; return 0; }
  kill -CONT "$pid" 2>/dev/null
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 60); do alive "$pid" || { log "$name stopped (pid $pid)"; return 0; }; sleep 0.25; done
  log "$name did not stop in 15s: SIGKILL pid $pid"
  kill -KILL "$pid" 2>/dev/null
  for _ in $(seq 1 20); do alive "$pid" || return 0; sleep 0.25; done
}
stop "cluster kafka connect" "${CL_CONNECT_PID:-}"
# All three at once: a controller quorum that loses its majority mid-way
# makes the last nodes wait for it before they exit.
for n in 1 2 3; do eval "pid=\${CL_NODE${n}_PID:-}"; stop "cluster node $n" "$pid" & done
wait
case "${CL_DATA:-}" in /tmp/cdcsync-realstack-cluster.*) rm -rf "$CL_DATA" ;; esac
rm -f "$CL_STATE" "$CL_STATE.lock"
