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

# free_port prints a loopback TCP port nobody listens on, below the
# kernel's ephemeral range: a port in that range can be taken by any
# outgoing connection between this check and the server's bind (a CI run
# lost the secured broker's controller port 45716 that way).
free_port() {
  local p lo=32768
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
  for _ in $(seq 1 200); do
    p=$(( 10000 + RANDOM % (lo - 10000) ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# alive PID: the process exists and is not a zombie.
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }

# kafka_node_props PORT CONTROLLER_PORT LOG_DIR prints the server.properties
# of a one-node KRaft cluster (broker and controller, PLAINTEXT on
# loopback, internal topics with one replica); callers append their own.
kafka_node_props() {
  cat <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$2
listeners=PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=PLAINTEXT://127.0.0.1:$1
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$3
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
CONF
}

# kafka_log4j2 LEVEL prints a log4j2.properties that logs to stdout.
kafka_log4j2() {
  cat <<CONF
status = error
rootLogger.level = $1
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
CONF
}
