#!/usr/bin/env bash
# The whole test suite, as the README gives it: hygiene, unit, fuzz seed
# corpora, the kfake tier (with the race detector on the concurrent
# packages), the browser tier (the web console in headless Chromium),
# then the real-stack tier. It installs what it needs itself
# (Go modules now; Debian's chromium for the browser tier; the real-stack tier fetches its Debian packages and
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
go vet -tags browser ./integration/
cp go.mod /tmp/cdcsync-go.mod.bak; cp go.sum /tmp/cdcsync-go.sum.bak
go mod tidy
if ! cmp -s go.mod /tmp/cdcsync-go.mod.bak || ! cmp -s go.sum /tmp/cdcsync-go.sum.bak; then
  echo "go mod tidy changes go.mod/go.sum:"; git --no-pager diff -- go.mod go.sum || true
  cp /tmp/cdcsync-go.mod.bak go.mod; cp /tmp/cdcsync-go.sum.bak go.sum
  exit 1
fi

step "alert rules and dashboard: promtool (Debian's prometheus package)"
if ! command -v promtool >/dev/null; then
  # Only promtool is needed. The package's service is not started here:
  # policy-rc.d forbids it, and no init system runs in CI containers.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    installed=1
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || installed=
    [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
    if [ -z "$installed" ]; then
      [ "${CI:-}" = "true" ] && { echo "cannot install promtool (apt-get install prometheus)"; exit 1; }
      echo "cannot install promtool; skipping the promtool checks (they are required under CI=true)"
    fi
  elif [ "${CI:-}" = "true" ]; then
    echo "promtool is missing and cannot be installed (needs root and apt-get)"; exit 1
  else
    echo "promtool is missing (apt-get install prometheus); skipping the promtool checks (they are required under CI=true)"
  fi
fi
if command -v promtool >/dev/null; then
  promtool check rules deploy/prometheus/alerts.yml
  promtool test rules deploy/prometheus/alerts_test.yml
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
go run ./cmd/cdcsync topology test deploy/topologies internal/demo/topologies

step "kfake tier at full size (100k and 200k events, worker processes, chaos), 3 tests at a time"
# Each test in a process of its own (integration/run-parallel.sh): the
# tier mostly waits on outages and timeouts, so three at a time take a
# third of the time on two cores.
integration/run-parallel.sh 3 -- -test.timeout 20m

step "kfake tier, in-process workers under the race detector (-short sizes), 2 at a time"
integration/run-parallel.sh 2 -race -- -test.short -test.timeout 15m \
  -test.run 'TestKfake(NormalRun|Rebalance|BrokerOutage|ExactlyOnceRebalance|PoisonRecords|Authority|AvroRegistryDown)$'

step "browser tier: the web console in headless Chromium (chromedp)"
# Debian's chromium, installed here when missing. In CI (CI=true) a
# browser that cannot be installed fails the run; elsewhere it is reported
# loudly, never skipped in silence.
chromium_bin() { command -v chromium || command -v chromium-browser || true; }
if [ -z "$(chromium_bin)" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
    echo "apt-get could not install chromium" >&2
fi
if [ -n "$(chromium_bin)" ]; then
  go test -tags browser -count=1 -timeout 5m -run 'TestBrowser' ./integration/
elif [ "${CI:-}" = "true" ]; then
  echo "FAIL: chromium is not installed and could not be installed; the browser tests cannot run" >&2
  exit 1
else
  echo "WARNING: the browser tests DID NOT RUN: no chromium (as root: apt-get install -y chromium)" >&2
fi

if [ -x integration/realstack/run.sh ] && [ "${CDCSYNC_SKIP_REALSTACK:-}" != "1" ]; then
  step "real-stack tier: Apache Kafka (KRaft), Kafka Connect + Debezium, PostgreSQL"
  integration/realstack/run.sh
fi
