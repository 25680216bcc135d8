#!/usr/bin/env bash
# Starts the three-node cluster of the TestRealStackCluster* fault tests,
# apart from the shared stack of up.sh (its own ports, data folder and
# state file, so faults never touch the broker other tests use):
#   - three KRaft nodes, each a combined broker and controller (a static
#     3-voter quorum), java -cp from the jars setup.sh fetched, -Xmx512m;
#     default.replication.factor=3, min.insync.replicas=2,
#     unclean.leader.election.enable=false, auto.create.topics.enable=false,
#     internal topics (offsets, transactions) with RF 3 and min ISR 2;
#   - a Kafka Connect worker bound to the cluster (its own group id and
#     config/offset/status topics with RF 3) with the Debezium plugins, so
#     Debezium feeds the cluster from the shared PostgreSQL of up.sh.
# Writes PIDs, ports and paths to integration/.cache/realstack/cluster.env
# (CDCSYNC_REALSTACK_CLUSTER_STATE overrides), which cluster-node.sh,
# down-cluster.sh and the tests read. Reuses a cluster that is still up.
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ -f "$RS_CACHE/jars.stamp" ] || die "run setup.sh first"
CL_STATE=${CDCSYNC_REALSTACK_CLUSTER_STATE:-$RS_CACHE/cluster.env}

if [ -f "$CL_STATE" ]; then
  # shellcheck disable=SC1090
  . "$CL_STATE"
  if alive "${CL_NODE1_PID:-}" && alive "${CL_NODE2_PID:-}" && alive "${CL_NODE3_PID:-}" && alive "${CL_CONNECT_PID:-}"; then
    log "cluster already up (brokers $CL_BROKERS, connect 127.0.0.1:$CL_CONNECT_PORT)"; exit 0
  fi
  log "partial cluster from an earlier run: stopping it"
  "$RS_DIR/down-cluster.sh"
fi

DATA=$(mktemp -d /tmp/cdcsync-realstack-cluster.XXXXXX)
mkdir -p "$RS_LOGS"
ports=()
while [ ${#ports[@]} -lt 7 ]; do
  p=$(free_port)
  case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
B1=${ports[0]} B2=${ports[1]} B3=${ports[2]} C1=${ports[3]} C2=${ports[4]} C3=${ports[5]} CONNECT_PORT=${ports[6]}
BROKERS=127.0.0.1:$B1,127.0.0.1:$B2,127.0.0.1:$B3
VOTERS=1@127.0.0.1:$C1,2@127.0.0.1:$C2,3@127.0.0.1:$C3
CONNECT_LOG=$RS_LOGS/cluster-connect.log
: >"$CONNECT_LOG"

write_state() {
  cat >"$CL_STATE" <<STATE
CL_DATA=$DATA
CL_BROKERS=$BROKERS
CL_NODE1_PORT=$B1
CL_NODE2_PORT=$B2
CL_NODE3_PORT=$B3
CL_NODE1_CTRL_PORT=$C1
CL_NODE2_CTRL_PORT=$C2
CL_NODE3_CTRL_PORT=$C3
CL_NODE1_PID=${CL_NODE1_PID:-}
CL_NODE2_PID=${CL_NODE2_PID:-}
CL_NODE3_PID=${CL_NODE3_PID:-}
CL_NODE1_LOG=$RS_LOGS/cluster-node1.log
CL_NODE2_LOG=$RS_LOGS/cluster-node2.log
CL_NODE3_LOG=$RS_LOGS/cluster-node3.log
CL_CONNECT_PORT=$CONNECT_PORT
CL_CONNECT_PID=${CL_CONNECT_PID:-}
CL_CONNECT_LOG=$CONNECT_LOG
STATE
}
write_state
fail() { log "error: $*"; "$RS_DIR/down-cluster.sh" || true; exit 1; }

cat >"$DATA/log4j.properties" <<'CONF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.reflections=ERROR
log4j.logger.org.eclipse.jetty=WARN
log4j.logger.kafka.log.LogCleaner=WARN
CONF
cat >"$DATA/log4j2.properties" <<'CONF'
status = error
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
logger.reflections.name = org.reflections
logger.reflections.level = error
logger.jetty.name = org.eclipse.jetty
logger.jetty.level = warn
CONF
CP="$RS_KAFKA_LIBS/*"
JAVA_BASE=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true "-Dlog4j.configuration=file:$DATA/log4j.properties"
  "-Dlog4j2.configurationFile=$DATA/log4j2.properties")
cluster_id=$(java -cp "$CP" -Xmx128m "${JAVA_BASE[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
for n in 1 2 3; do
  eval "port=\$B$n ctrl=\$C$n"
  mkdir -p "$DATA/node$n/logs"
  cat >"$DATA/node$n/server.properties" <<CONF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$VOTERS
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/node$n/logs
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
replica.lag.time.max.ms=10000
log.flush.interval.messages=1000000
CONF
  # The command that (re)starts this node: cluster-node.sh runs it too.
  cat >"$DATA/node$n/start.sh" <<START
#!/usr/bin/env bash
exec setsid java -cp "$CP" -Xms128m -Xmx512m ${JAVA_BASE[*]} kafka.Kafka "$DATA/node$n/server.properties" >>"$RS_LOGS/cluster-node$n.log" 2>&1 </dev/null
START
  chmod +x "$DATA/node$n/start.sh"
  : >"$RS_LOGS/cluster-node$n.log"
  java -cp "$CP" -Xmx256m "${JAVA_BASE[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$DATA/node$n/server.properties" \
    >>"$RS_LOGS/cluster-node$n.log" 2>&1 </dev/null || fail "kafka storage format of node $n failed (see $RS_LOGS/cluster-node$n.log)"
done
for n in 1 2 3; do
  "$DATA/node$n/start.sh" &
  eval "CL_NODE${n}_PID=\$!"
done
write_state
for n in 1 2 3; do
  eval "pid=\$CL_NODE${n}_PID"
  for i in $(seq 1 180); do
    alive "$pid" || fail "node $n exited (see $RS_LOGS/cluster-node$n.log)"
    grep -q "Kafka Server started" "$RS_LOGS/cluster-node$n.log" && break
    [ "$i" = 180 ] && fail "node $n not ready in 90s (see $RS_LOGS/cluster-node$n.log)"
    sleep 0.5
  done
done
log "kafka cluster up: $BROKERS, pids $CL_NODE1_PID $CL_NODE2_PID $CL_NODE3_PID"

mkdir -p "$DATA/connect"
cat >"$DATA/connect/worker.properties" <<CONF
bootstrap.servers=$BROKERS
group.id=cdcsync-realstack-cluster-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
config.storage.topic=cluster-connect-configs
offset.storage.topic=cluster-connect-offsets
status.storage.topic=cluster-connect-status
config.storage.replication.factor=3
offset.storage.replication.factor=3
status.storage.replication.factor=3
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
plugin.path=$RS_PLUGINS
plugin.discovery=only_scan
scheduled.rebalance.max.delay.ms=1000
producer.acks=all
producer.enable.idempotence=true
CONF
setsid java -cp "$CP" -Xms128m -Xmx512m "${JAVA_BASE[@]}" org.apache.kafka.connect.cli.ConnectDistributed "$DATA/connect/worker.properties" \
  >>"$CONNECT_LOG" 2>&1 </dev/null &
CL_CONNECT_PID=$!
write_state
for i in $(seq 1 360); do
  alive "$CL_CONNECT_PID" || fail "kafka connect exited (see $CONNECT_LOG)"
  if curl -fsS "http://127.0.0.1:$CONNECT_PORT/connector-plugins" 2>/dev/null | grep -q PostgresConnector; then
    curl -fsS "http://127.0.0.1:$CONNECT_PORT/connectors" >/dev/null 2>&1 && break
  fi
  [ "$i" = 360 ] && fail "kafka connect not ready in 180s (see $CONNECT_LOG)"
  sleep 0.5
done
log "cluster kafka connect up: http://127.0.0.1:$CONNECT_PORT pid $CL_CONNECT_PID"
