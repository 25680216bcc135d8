#!/usr/bin/env bash
# Installs what the real-stack tier needs, idempotently:
#   - Debian packages: postgresql (server), kcat;
#   - Apache Kafka (broker + Connect) jars and the Debezium PostgreSQL
#     connector, from Maven Central, into integration/.cache/realstack/;
#   - Apicurio Registry (built from Maven Central, see apicurio/) and its
#     Kafka Connect Avro converter, into the same cache.
# A second run with warm caches does nothing and takes about a second.
set -euo pipefail
. "$(dirname "$0")/common.sh"
mkdir -p "$RS_CACHE" "$RS_LOGS"

# --- Debian packages -------------------------------------------------------
need=()
pg_bin >/dev/null || need+=(postgresql)
command -v kcat >/dev/null || need+=(kcat)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need root to install: ${need[*]}"
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$RS_LOGS/apt-update.log" 2>&1 || { cat "$RS_LOGS/apt-update.log"; die "apt-get update failed"; }
  apt-get install -y -qq --no-install-recommends "${need[@]}" >"$RS_LOGS/apt-install.log" 2>&1 \
    || { tail -50 "$RS_LOGS/apt-install.log"; die "apt-get install failed"; }
fi
pg_bin >/dev/null || die "no PostgreSQL server under /usr/lib/postgresql"

# --- Maven jars --------------------------------------------------------------
# Maven's own repository (~/.m2) is the download cache, so a fresh clone on
# the same machine copies instead of downloading. The stamp holds a hash of
# the poms: changing a version refetches.
stamp=$(cat "$RS_DIR/pom-kafka.xml" "$RS_DIR/pom-debezium.xml" | sha256sum | cut -c1-16)
if [ "$(cat "$RS_CACHE/jars.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "fetching Kafka and Debezium jars with Maven (first run: a minute or two)"
  rm -rf "$RS_KAFKA_LIBS.tmp" "$RS_PLUGINS.tmp"
  mvn -B -q -f "$RS_DIR/pom-kafka.xml" dependency:copy-dependencies \
      -DoutputDirectory="$RS_KAFKA_LIBS.tmp" -DincludeScope=runtime >"$RS_LOGS/mvn-kafka.log" 2>&1 \
    || { tail -40 "$RS_LOGS/mvn-kafka.log"; die "maven (kafka) failed"; }
  # Kafka's own jars come from the Connect runtime, not the plugin.
  mvn -B -q -f "$RS_DIR/pom-debezium.xml" dependency:copy-dependencies \
      -DoutputDirectory="$RS_PLUGINS.tmp/debezium-connector-postgres" -DincludeScope=runtime \
      -DexcludeGroupIds=org.apache.kafka >"$RS_LOGS/mvn-debezium.log" 2>&1 \
    || { tail -40 "$RS_LOGS/mvn-debezium.log"; die "maven (debezium) failed"; }
  rm -rf "$RS_KAFKA_LIBS" "$RS_PLUGINS"
  mv "$RS_KAFKA_LIBS.tmp" "$RS_KAFKA_LIBS"
  mv "$RS_PLUGINS.tmp" "$RS_PLUGINS"
  echo "$stamp" >"$RS_CACHE/jars.stamp"
fi
# --- Apicurio Registry + its Connect converter (the Avro test) ---------------
# The registry server is built with the Quarkus Maven plugin from the files in
# apicurio/ (copied to a build folder in the cache, so nothing is written
# beside them); the converter is a Connect plugin folder of its own, outside
# $RS_PLUGINS, which the Kafka/Debezium step above replaces as a whole.
# Both from Maven Central only (apicurio/settings.xml). Own stamp.
ap_stamp=$(cat "$RS_DIR/apicurio/pom.xml" "$RS_DIR/apicurio/pom-converter.xml" "$RS_DIR/apicurio/settings.xml" \
  "$RS_DIR/apicurio/application.properties" | sha256sum | cut -c1-16)
if [ "$(cat "$RS_CACHE/apicurio.stamp" 2>/dev/null)" != "$ap_stamp" ]; then
  log "building Apicurio Registry 2.4.2 and fetching its Avro converter with Maven (first run: about a minute)"
  b=$RS_CACHE/apicurio-build
  rm -rf "$b" "$RS_APICURIO.tmp" "$RS_APICURIO_PLUGINS.tmp"
  mkdir -p "$b/src/main/resources"
  cp "$RS_DIR/apicurio/pom.xml" "$b/pom.xml"
  cp "$RS_DIR/apicurio/application.properties" "$b/src/main/resources/application.properties"
  mvn -B -q -s "$RS_DIR/apicurio/settings.xml" -f "$b/pom.xml" package -DskipTests >"$RS_LOGS/mvn-apicurio.log" 2>&1 \
    || { tail -40 "$RS_LOGS/mvn-apicurio.log"; die "maven (apicurio registry) failed"; }
  mkdir -p "$RS_APICURIO.tmp"
  mv "$b/target/apicurio-mem-1-runner.jar" "$b/target/lib" "$RS_APICURIO.tmp/"
  mvn -B -q -s "$RS_DIR/apicurio/settings.xml" -f "$RS_DIR/apicurio/pom-converter.xml" dependency:copy-dependencies \
      -DoutputDirectory="$RS_APICURIO_PLUGINS.tmp/apicurio-converter" -DincludeScope=runtime \
      -DexcludeGroupIds=org.apache.kafka >"$RS_LOGS/mvn-apicurio-converter.log" 2>&1 \
    || { tail -40 "$RS_LOGS/mvn-apicurio-converter.log"; die "maven (apicurio converter) failed"; }
  rm -rf "$b" "$RS_APICURIO" "$RS_APICURIO_PLUGINS"
  mv "$RS_APICURIO.tmp" "$RS_APICURIO"
  mv "$RS_APICURIO_PLUGINS.tmp" "$RS_APICURIO_PLUGINS"
  echo "$ap_stamp" >"$RS_CACHE/apicurio.stamp"
fi
log "ready: $(ls "$RS_KAFKA_LIBS" | wc -l) Kafka jars, $(ls "$RS_PLUGINS/debezium-connector-postgres" | wc -l) Debezium jars, Apicurio Registry ($(ls "$RS_APICURIO/lib" | wc -l) jars) + converter ($(ls "$RS_APICURIO_PLUGINS/apicurio-converter" | wc -l) jars), PostgreSQL $(basename "$(dirname "$(pg_bin)")"), $(kcat -V 2>&1 | head -1)"
