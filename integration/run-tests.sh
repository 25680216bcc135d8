#!/usr/bin/env bash
# The whole test suite, as the README gives it: hygiene, unit, fuzz seed
# corpora, the kfake tier (with the race detector on the concurrent
# packages), then the real-stack tier. It installs what it needs itself
# (Go modules now; the real-stack tier fetches its Debian packages and
# Maven jars in integration/realstack/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "go modules"
go mod download
go mod verify >/dev/null

step "gofmt, go vet, go mod tidy"
unformatted=$(gofmt -l . | grep -v '^integration/.cache/' || true)
if [ -n "$unformatted" ]; then
  echo "not gofmt-clean:"; echo "$unformatted"; exit 1
fi
go vet ./...
cp go.mod /tmp/cdcsync-go.mod.bak; cp go.sum /tmp/cdcsync-go.sum.bak
go mod tidy
if ! cmp -s go.mod /tmp/cdcsync-go.mod.bak || ! cmp -s go.sum /tmp/cdcsync-go.sum.bak; then
  echo "go mod tidy changes go.mod/go.sum:"; git --no-pager diff -- go.mod go.sum || true
  cp /tmp/cdcsync-go.mod.bak go.mod; cp /tmp/cdcsync-go.sum.bak go.sum
  exit 1
fi

step "PostgreSQL server for the pgapply tests (Debian package, when missing)"
# processor/apply/pgapply's tests run a throwaway cluster (pgtest); under
# CI=true a missing server fails them instead of skipping.
if [ -z "${CDCSYNC_PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "need root to apt-get install postgresql (or set CDCSYNC_PG_BIN)"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

step "unit tests and fuzz seed corpora, race detector on"
go test -race -count=1 -timeout 15m $(go list ./... | grep -v /integration)

step "kfake tier at full size (100k and 200k events, worker processes, chaos)"
go test -count=1 -timeout 20m ./integration/

step "kfake tier, in-process workers under the race detector (-short sizes)"
go test -race -short -count=1 -timeout 15m \
  -run 'TestKfake(NormalRun|Rebalance|BrokerOutage|ExactlyOnceRebalance|PoisonRecords|Authority|AvroRegistryDown)$' ./integration/

if [ -x integration/realstack/run.sh ] && [ "${CDCSYNC_SKIP_REALSTACK:-}" != "1" ]; then
  step "real-stack tier: Apache Kafka (KRaft), Kafka Connect + Debezium, PostgreSQL"
  integration/realstack/run.sh
fi
