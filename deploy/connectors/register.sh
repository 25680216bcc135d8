#!/bin/sh
# Registers every connector in this directory with Kafka Connect, then
# waits until each one runs and has written to its topics. Run once by the
# connect-register service of docker-compose.yml; safe to run again.
#
# A file NAME.json holds the configuration of the connector NAME, as
# Connect's REST API takes it in PUT /connectors/NAME/config. PUT creates
# or updates, so registering twice changes nothing.
#
# The workers start after this script succeeds. They would also wait for
# missing source topics on their own (the topics appear when a connector's
# initial snapshot writes its first records), but starting them once the
# connectors run keeps their logs free of "waiting for Debezium" lines and
# makes a broken connector fail here, visibly, instead.
set -eu
CONNECT=${CONNECT_URL:-http://connect:8083}
DIR=$(dirname "$0")

echo "waiting for Kafka Connect at $CONNECT"
until curl -fsS "$CONNECT/connectors" >/dev/null 2>&1; do sleep 2; done
until curl -fsS "$CONNECT/connector-plugins" | grep -q 'io.debezium.connector.postgresql.PostgresConnector'; do sleep 2; done

for f in "$DIR"/*.json; do
  name=$(basename "$f" .json)
  echo "registering $name"
  curl -fsS -X PUT -H 'Content-Type: application/json' --data @"$f" "$CONNECT/connectors/$name/config" >/dev/null
done

for f in "$DIR"/*.json; do
  name=$(basename "$f" .json)
  printf 'waiting for %s to run' "$name"
  tries=0
  while :; do
    status=$(curl -fsS "$CONNECT/connectors/$name/status" || true)
    case "$status" in *'"state":"FAILED"'*)
      echo; echo "$name failed:"; echo "$status"; exit 1 ;;
    esac
    # Running: the connector and at least one task, every state RUNNING.
    states=$(printf '%s' "$status" | grep -o '"state":"[A-Z]*"' | sort -u)
    if [ "$states" = '"state":"RUNNING"' ] && printf '%s' "$status" | grep -q '"tasks":\[{'; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -gt 90 ]; then
      echo; echo "$name is not running after 3 minutes:"; curl -sS "$CONNECT/connectors/$name/status"; echo
      exit 1
    fi
    printf '.'; sleep 2
  done
  until curl -fsS "$CONNECT/connectors/$name/topics" | grep -q '\.public\.contacts'; do
    tries=$((tries + 1))
    if [ "$tries" -gt 90 ]; then
      echo; echo "$name has not written to any topic yet"; exit 1
    fi
    printf '.'; sleep 2
  done
  echo " ok: $(curl -fsS "$CONNECT/connectors/$name/topics")"
done
echo "all connectors running"
