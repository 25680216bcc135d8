#!/usr/bin/env bash
# Stops the secured broker of up-secure.sh by the PID in its state file and
# removes its temporary folder (certificates, password, data). Safe to run
# when nothing is up.
set -uo pipefail
. "$(dirname "$0")/common.sh"
SEC_STATE=${CDCSYNC_REALSTACK_SECURE_STATE:-$RS_CACHE/secure.env}
[ -f "$SEC_STATE" ] || exit 0
# shellcheck disable=SC1090
. "$SEC_STATE"
if alive "${SEC_PID:-}" && [ "$(ps -o comm= -p "$SEC_PID" 2>/dev/null)" = java ]; then
  kill -TERM "$SEC_PID" 2>/dev/null
  for _ in $(seq 1 60); do alive "$SEC_PID" || break; sleep 0.25; done
  alive "$SEC_PID" && kill -KILL "$SEC_PID" 2>/dev/null
  log "secured kafka stopped (pid $SEC_PID)"
fi
case "${SEC_DATA:-}" in /tmp/cdcsync-realstack-secure.*) rm -rf "$SEC_DATA" ;; esac
rm -f "$SEC_STATE"
