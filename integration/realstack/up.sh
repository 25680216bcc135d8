#!/usr/bin/env bash
# Starts the real stack on loopback ports, each on a free port of its own:
#   - a PostgreSQL cluster in a temporary folder (wal_level=logical);
#   - Apache Kafka, one KRaft node (broker + controller), java -cp;
#   - Apicurio Registry 2.4.2 (in-memory), for the Debezium-Avro test;
#   - Kafka Connect (distributed worker) with Debezium and the Apicurio
#     Avro converter on its plugin.path.
# Waits until each is ready and writes PIDs, ports and paths to
# integration/.cache/realstack/state.env. If a complete stack from an
# earlier run is still up it is reused; a partial one is stopped first.
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ -f "$RS_CACHE/jars.stamp" ] && [ -f "$RS_CACHE/apicurio.stamp" ] || die "run setup.sh first"

if [ -f "$RS_STATE" ]; then
  # shellcheck disable=SC1090
  . "$RS_STATE"
  if alive "${PG_PID:-}" && alive "${KAFKA_PID:-}" && alive "${CONNECT_PID:-}" && alive "${REGISTRY_PID:-}"; then
    log "stack already up (kafka 127.0.0.1:$KAFKA_PORT, connect 127.0.0.1:$CONNECT_PORT, postgres 127.0.0.1:$PG_PORT, registry 127.0.0.1:$REGISTRY_PORT)"
    exit 0
  fi
  log "partial stack from an earlier run: stopping it"
  "$RS_DIR/down.sh"
fi

PG_BIN=$(pg_bin)
DATA=$(mktemp -d /tmp/cdcsync-realstack.XXXXXX)
chmod 755 "$DATA"
mkdir -p "$RS_LOGS"
PG_LOG=$RS_LOGS/postgresql.log KAFKA_LOG=$RS_LOGS/kafka.log CONNECT_LOG=$RS_LOGS/connect.log REGISTRY_LOG=$RS_LOGS/registry.log
: >"$PG_LOG"; : >"$KAFKA_LOG"; : >"$CONNECT_LOG"; : >"$REGISTRY_LOG"
PG_PORT=$(free_port); KAFKA_PORT=$(free_port); CONTROLLER_PORT=$(free_port); CONNECT_PORT=$(free_port)
while [ "$KAFKA_PORT" = "$PG_PORT" ] || [ "$CONTROLLER_PORT" = "$KAFKA_PORT" ] || [ "$CONTROLLER_PORT" = "$PG_PORT" ] \
   || [ "$CONNECT_PORT" = "$KAFKA_PORT" ] || [ "$CONNECT_PORT" = "$CONTROLLER_PORT" ] || [ "$CONNECT_PORT" = "$PG_PORT" ]; do
  CONTROLLER_PORT=$(free_port); CONNECT_PORT=$(free_port)
done
REGISTRY_PORT=$(free_port)
while [ "$REGISTRY_PORT" = "$PG_PORT" ] || [ "$REGISTRY_PORT" = "$KAFKA_PORT" ] || [ "$REGISTRY_PORT" = "$CONTROLLER_PORT" ] \
   || [ "$REGISTRY_PORT" = "$CONNECT_PORT" ]; do
  REGISTRY_PORT=$(free_port)
done

write_state() {
  cat >"$RS_STATE" <<STATE
RS_DATA=$DATA
PG_BIN=$PG_BIN
PG_PORT=$PG_PORT
PG_PID=${PG_PID:-}
PG_USER=cdcsync
KAFKA_PORT=$KAFKA_PORT
KAFKA_CONTROLLER_PORT=$CONTROLLER_PORT
KAFKA_PID=${KAFKA_PID:-}
CONNECT_PORT=$CONNECT_PORT
CONNECT_PID=${CONNECT_PID:-}
PG_LOG=$PG_LOG
KAFKA_LOG=$KAFKA_LOG
CONNECT_LOG=$CONNECT_LOG
REGISTRY_PORT=$REGISTRY_PORT
REGISTRY_PID=${REGISTRY_PID:-}
REGISTRY_LOG=$REGISTRY_LOG
STATE
}
write_state
fail() { log "error: $*"; "$RS_DIR/down.sh" || true; exit 1; }

# --- PostgreSQL ----------------------------------------------------------------
# The server refuses to run as root: run it as the postgres user the Debian
# package creates (or as whoever we are when that is not root).
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
mkdir -p "$DATA/pg"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DATA/pg" "$PG_LOG"; fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$DATA/pg/data" -U cdcsync --auth=trust -E UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1 \
  || fail "initdb failed (see $PG_LOG)"
cat >>"$DATA/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DATA/pg'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
CONF
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DATA/pg/data" -l "$PG_LOG" -w -t 60 start >/dev/null 2>&1 </dev/null \
  || fail "PostgreSQL did not start (see $PG_LOG)"
PG_PID=$(head -1 "$DATA/pg/data/postmaster.pid")
write_state
log "postgresql up: 127.0.0.1:$PG_PORT pid $PG_PID"

# --- Kafka (KRaft) -------------------------------------------------------------
mkdir -p "$DATA/kafka/logs"
cat >"$DATA/kafka/log4j.properties" <<'CONF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.reflections=ERROR
log4j.logger.org.eclipse.jetty=WARN
log4j.logger.kafka.log.LogCleaner=WARN
CONF
kafka_log4j2 info >"$DATA/kafka/log4j2.properties"
{
  kafka_node_props "$KAFKA_PORT" "$CONTROLLER_PORT" "$DATA/kafka/logs"
  cat <<CONF
auto.create.topics.enable=true
log.cleaner.backoff.ms=1000
log.flush.interval.messages=1000000
CONF
} >"$DATA/kafka/server.properties"
JAVA_OPTS=(-Xms256m -Xmx768m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$DATA/kafka/log4j.properties"
  "-Dlog4j2.configurationFile=$DATA/kafka/log4j2.properties")
CP="$RS_KAFKA_LIBS/*"
cluster_id=$(java -cp "$CP" "${JAVA_OPTS[@]}" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -1)
java -cp "$CP" "${JAVA_OPTS[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$DATA/kafka/server.properties" \
  >>"$KAFKA_LOG" 2>&1 </dev/null || fail "kafka storage format failed (see $KAFKA_LOG)"
setsid java -cp "$CP" "${JAVA_OPTS[@]}" kafka.Kafka "$DATA/kafka/server.properties" >>"$KAFKA_LOG" 2>&1 </dev/null &
KAFKA_PID=$!
write_state
for i in $(seq 1 120); do
  alive "$KAFKA_PID" || fail "kafka exited (see $KAFKA_LOG)"
  grep -q "Kafka Server started\|\[KafkaRaftServer nodeId=1\] Kafka Server started" "$KAFKA_LOG" && break
  [ "$i" = 120 ] && fail "kafka not ready in 60s (see $KAFKA_LOG)"
  sleep 0.5
done
log "kafka up: 127.0.0.1:$KAFKA_PORT pid $KAFKA_PID"

# --- Apicurio Registry (in-memory H2) --------------------------------------------
# Started before Connect, which only needs it once an Avro connector runs.
# Connect's converter talks to /apis/registry/v2; cdcsync reads the same
# schemas through the Confluent-compatible API, /apis/ccompat/v7.
mkdir -p "$DATA/registry"
(cd "$DATA/registry" && exec setsid java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" -jar "$RS_APICURIO/apicurio-mem-1-runner.jar" \
  >>"$REGISTRY_LOG" 2>&1 </dev/null) &
REGISTRY_PID=$!
write_state
for i in $(seq 1 120); do
  alive "$REGISTRY_PID" || fail "apicurio registry exited (see $REGISTRY_LOG)"
  curl -fsS "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" >/dev/null 2>&1 && break
  [ "$i" = 120 ] && fail "apicurio registry not ready in 60s (see $REGISTRY_LOG)"
  sleep 0.5
done
log "apicurio registry up: http://127.0.0.1:$REGISTRY_PORT pid $REGISTRY_PID"

# --- Kafka Connect (distributed) -----------------------------------------------
mkdir -p "$DATA/connect"
cat >"$DATA/connect/worker.properties" <<CONF
bootstrap.servers=127.0.0.1:$KAFKA_PORT
group.id=cdcsync-realstack-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
config.storage.topic=connect-configs
offset.storage.topic=connect-offsets
status.storage.topic=connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
plugin.path=$RS_PLUGINS,$RS_APICURIO_PLUGINS
plugin.discovery=only_scan
scheduled.rebalance.max.delay.ms=1000
CONF
setsid java -cp "$CP" "${JAVA_OPTS[@]}" org.apache.kafka.connect.cli.ConnectDistributed "$DATA/connect/worker.properties" \
  >>"$CONNECT_LOG" 2>&1 </dev/null &
CONNECT_PID=$!
write_state
for i in $(seq 1 240); do
  alive "$CONNECT_PID" || fail "kafka connect exited (see $CONNECT_LOG)"
  if curl -fsS "http://127.0.0.1:$CONNECT_PORT/connector-plugins" 2>/dev/null | grep -q PostgresConnector; then
    # (/connector-plugins lists connectors only; the converter is checked below.)
    # The REST server answers before the worker has joined its group;
    # listing connectors goes through the herder and so waits for that.
    curl -fsS "http://127.0.0.1:$CONNECT_PORT/connectors" >/dev/null 2>&1 && break
  fi
  [ "$i" = 240 ] && fail "kafka connect not ready in 120s (see $CONNECT_LOG)"
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$CONNECT_PORT/connector-plugins?connectorsOnly=false" 2>/dev/null \
  | grep -q io.apicurio.registry.utils.converter.AvroConverter || fail "kafka connect did not load the Apicurio AvroConverter (see $CONNECT_LOG)"
log "kafka connect up: http://127.0.0.1:$CONNECT_PORT pid $CONNECT_PID (Debezium PostgresConnector and Apicurio AvroConverter loaded)"
