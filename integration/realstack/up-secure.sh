#!/usr/bin/env bash
# Starts the secured broker of the real-stack tier: its own single-node
# KRaft Kafka (java -cp, the jars setup.sh fetched), apart from the shared
# stack of up.sh, with
#   - a SASL_SSL listener, SCRAM-SHA-512 (user cdcsync, a random password);
#   - an SSL listener that requires a client certificate (mTLS);
#   - a PLAINTEXT listener for setup whose ANONYMOUS principal is a super user
#     (tests create topics, ACLs and Debezium-shaped records through it);
#   - the KRaft StandardAuthorizer, allow.everyone.if.no.acl.found=false,
#     auto.create.topics.enable=false.
# A throwaway CA and the broker and client certificates are made with
# openssl in a temporary folder. Ports, paths and the password go to
# integration/.cache/realstack/secure.env, which the TestRealStackSecure*
# tests read and down-secure.sh uses. Reuses a broker that is still up.
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ -f "$RS_CACHE/jars.stamp" ] || die "run setup.sh first"
SEC_STATE=${CDCSYNC_REALSTACK_SECURE_STATE:-$RS_CACHE/secure.env}

if [ -f "$SEC_STATE" ]; then
  # shellcheck disable=SC1090
  . "$SEC_STATE"
  if alive "${SEC_PID:-}"; then log "secured broker already up (sasl_ssl 127.0.0.1:$SEC_SASL_PORT)"; exit 0; fi
  "$RS_DIR/down-secure.sh"
fi

DATA=$(mktemp -d /tmp/cdcsync-realstack-secure.XXXXXX)
mkdir -p "$RS_LOGS" "$DATA/pki" "$DATA/logs"
SEC_LOG=$RS_LOGS/kafka-secure.log
: >"$SEC_LOG"
ports=()
while [ ${#ports[@]} -lt 4 ]; do
  p=$(free_port)
  case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
SASL_PORT=${ports[0]} SSL_PORT=${ports[1]} ADMIN_PORT=${ports[2]} CTRL_PORT=${ports[3]}
PASSWORD=$(openssl rand -hex 16)
printf '%s' "$PASSWORD" >"$DATA/pki/password"
chmod 600 "$DATA/pki/password"

write_state() {
  cat >"$SEC_STATE" <<STATE
SEC_DATA=$DATA
SEC_PID=${SEC_PID:-}
SEC_SASL_PORT=$SASL_PORT
SEC_SSL_PORT=$SSL_PORT
SEC_ADMIN_PORT=$ADMIN_PORT
SEC_CA=$DATA/pki/ca.pem
SEC_CLIENT_CERT=$DATA/pki/client.pem
SEC_CLIENT_KEY=$DATA/pki/client.key
SEC_MTLS_PRINCIPAL=User:cdcsync-mtls
SEC_USER=cdcsync
SEC_PASSWORD_FILE=$DATA/pki/password
SEC_LOG=$SEC_LOG
STATE
}
write_state
fail() { log "error: $*"; "$RS_DIR/down-secure.sh" || true; exit 1; }

# --- throwaway PKI ------------------------------------------------------------
(
  cd "$DATA/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cdcsync test CA" -keyout ca.key -out ca.pem
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >broker.ext
  openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile broker.ext -out broker.crt
  openssl req -newkey rsa:2048 -nodes -subj "/CN=cdcsync-mtls" -keyout client.key -out client.csr
  printf 'extendedKeyUsage=clientAuth\n' >client.ext
  openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext -out client.pem
  # Kafka reads a PEM keystore: an unencrypted PKCS#8 key, then the chain.
  openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.p8
  cat broker.p8 broker.crt ca.pem >broker-keystore.pem
) >>"$SEC_LOG" 2>&1 || fail "openssl failed (see $SEC_LOG)"

# --- Kafka --------------------------------------------------------------------
cat >"$DATA/log4j.properties" <<'CONF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.authorizer.logger=INFO
CONF
cat >"$DATA/log4j2.properties" <<'CONF'
status = error
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = info
CONF
cat >"$DATA/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CTRL_PORT
listeners=SASL_SSL://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT,PLAINTEXT://127.0.0.1:$ADMIN_PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT,PLAINTEXT://127.0.0.1:$ADMIN_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$DATA/pki/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$DATA/pki/ca.pem
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]*).*\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS
auto.create.topics.enable=false
log.dirs=$DATA/logs
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=2
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=2
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
CONF
JAVA_OPTS=(-Xms128m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$DATA/log4j.properties" "-Dlog4j2.configurationFile=$DATA/log4j2.properties")
CP="$RS_KAFKA_LIBS/*"
cluster_id=$(java -cp "$CP" "${JAVA_OPTS[@]}" kafka.tools.StorageTool random-uuid 2>>"$SEC_LOG" | tail -1)
# The SCRAM user is created with the storage, so it exists at first start.
java -cp "$CP" "${JAVA_OPTS[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$DATA/server.properties" \
  --add-scram "SCRAM-SHA-512=[name=cdcsync,password=$PASSWORD]" >>"$SEC_LOG" 2>&1 </dev/null \
  || fail "kafka storage format failed (see $SEC_LOG)"
setsid java -cp "$CP" "${JAVA_OPTS[@]}" kafka.Kafka "$DATA/server.properties" >>"$SEC_LOG" 2>&1 </dev/null &
SEC_PID=$!
write_state
for i in $(seq 1 120); do
  alive "$SEC_PID" || fail "secured kafka exited (see $SEC_LOG)"
  grep -q "Kafka Server started" "$SEC_LOG" && break
  [ "$i" = 120 ] && fail "secured kafka not ready in 60s (see $SEC_LOG)"
  sleep 0.5
done
log "secured kafka up: sasl_ssl 127.0.0.1:$SASL_PORT, ssl (mTLS) 127.0.0.1:$SSL_PORT, plaintext super user 127.0.0.1:$ADMIN_PORT, pid $SEC_PID"
