#!/usr/bin/env bash
# cdcsync bench against a real Apache Kafka broker on this machine:
#   integration/realstack/bench.sh [cdcsync bench flags]
# Starts one KRaft node (broker + controller) from the jars setup.sh
# downloads, with the JVM's full JIT (the test stack's up.sh starts Kafka
# with C1 only, for a fast start), in a temporary folder; runs
# `cdcsync bench --brokers ... --broker-pid ...` with the flags given, so
# the broker's CPU time per side and its peak RSS are reported; stops the
# broker and removes its data at exit. Every round produces the workload
# into a new topic of the same broker, so the JIT warms up over the rounds.
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ -d "$RS_KAFKA_LIBS" ] || "$RS_DIR/setup.sh"
DATA=$(mktemp -d /tmp/cdcsync-kafka-bench.XXXXXX)
PID=
cleanup() {
  if [ -n "$PID" ] && alive "$PID"; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 60); do alive "$PID" || break; sleep 0.25; done
    alive "$PID" && kill -KILL "$PID" 2>/dev/null || true
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT
PORT=$(free_port) CPORT=$(free_port)
kafka_node_props "$PORT" "$CPORT" "$DATA/logs" >"$DATA/server.properties"
kafka_log4j2 warn >"$DATA/log4j2.properties"
OPTS=(-Xms1g -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true "-Dlog4j2.configurationFile=$DATA/log4j2.properties")
CP="$RS_KAFKA_LIBS/*"
id=$(java -cp "$CP" "${OPTS[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
java -cp "$CP" "${OPTS[@]}" kafka.tools.StorageTool format -t "$id" -c "$DATA/server.properties" >"$DATA/format.log" 2>&1 \
  || die "kafka storage format failed: $(tail -5 "$DATA/format.log")"
setsid java -cp "$CP" "${OPTS[@]}" kafka.Kafka "$DATA/server.properties" >"$DATA/kafka.log" 2>&1 </dev/null &
PID=$!
for i in $(seq 1 120); do
  alive "$PID" || die "kafka exited: $(tail -5 "$DATA/kafka.log")"
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  [ "$i" = 120 ] && die "kafka not serving in 60 s"
  sleep 0.5
done
log "kafka $(basename "$(ls "$RS_KAFKA_LIBS"/kafka_*.jar | head -1)" .jar) on 127.0.0.1:$PORT, pid $PID"
cd "$RS_ROOT"
go run ./cmd/cdcsync bench --brokers "127.0.0.1:$PORT" --broker-pid "$PID" "$@"
