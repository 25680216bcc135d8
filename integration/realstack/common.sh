# Shared paths for the real-stack scripts. Sourced, not run.
# shellcheck shell=bash
RS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RS_ROOT=$(cd "$RS_DIR/../.." && pwd)
RS_CACHE=${CDCSYNC_REALSTACK_CACHE:-$RS_ROOT/integration/.cache/realstack}
RS_LOGS=${CDCSYNC_REALSTACK_LOGS:-$RS_ROOT/integration/.logs/realstack}
RS_STATE=$RS_CACHE/state.env          # written by up.sh, read by the tests and down.sh
RS_KAFKA_LIBS=$RS_CACHE/kafka-libs
RS_PLUGINS=$RS_CACHE/plugins
RS_APICURIO=$RS_CACHE/apicurio                 # registry: apicurio-mem-1-runner.jar + lib/
RS_APICURIO_PLUGINS=$RS_CACHE/plugins-apicurio # Connect plugin folder apicurio-converter/
RS_PG_VERSION=${CDCSYNC_PG_VERSION:-}

log() { printf '[realstack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pg_bin prints the directory of the newest installed PostgreSQL server.
pg_bin() {
  local d
  if [ -n "$RS_PG_VERSION" ]; then d=/usr/lib/postgresql/$RS_PG_VERSION/bin; else
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1); fi
  [ -x "$d/postgres" ] || return 1
  echo "$d"
}

# free_port prints a loopback TCP port nobody listens on.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# alive PID: the process exists and is not a zombie.
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
