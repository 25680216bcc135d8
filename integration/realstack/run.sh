#!/usr/bin/env bash
# The real-stack tier on its own: install (setup.sh), start the stack
# (up.sh), run the Go suite tagged `realstack` against it, and always stop
# the stack (down.sh). On failure, prints the tails of the PostgreSQL,
# Kafka, Kafka Connect and Apicurio Registry logs. Logs stay in integration/.logs/realstack/.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$RS_ROOT"
t0=$(date +%s)
"$RS_DIR/setup.sh"
t1=$(date +%s)

show_logs() {
  local n=${CDCSYNC_REALSTACK_LOG_LINES:-80}
  for f in "$RS_LOGS/postgresql.log" "$RS_LOGS/kafka.log" "$RS_LOGS/connect.log" "$RS_LOGS/registry.log" "$RS_LOGS/kafka-secure.log" \
    "$RS_LOGS/cluster-node1.log" "$RS_LOGS/cluster-node2.log" "$RS_LOGS/cluster-node3.log" "$RS_LOGS/cluster-connect.log"; do
    [ -f "$f" ] || continue
    printf '\n----- last %s lines of %s -----\n' "$n" "$f"
    tail -n "$n" "$f"
  done
  printf '\n(full logs in %s)\n' "$RS_LOGS"
}
cleanup() { "$RS_DIR/down-cluster.sh" || true; "$RS_DIR/down.sh" || true; }
trap cleanup EXIT

if ! "$RS_DIR/up.sh"; then show_logs; exit 1; fi
# The secured broker (SASL_SSL, mTLS, StandardAuthorizer) of the
# TestRealStackSecure* tests: a Kafka of its own, next to the stack.
if ! "$RS_DIR/up-secure.sh"; then show_logs; exit 1; fi
# The three-node KRaft cluster of the TestRealStackCluster* fault tests,
# with its own Connect worker; it uses the stack's PostgreSQL.
if ! "$RS_DIR/up-cluster.sh"; then show_logs; exit 1; fi
timeout=20m
[ "${CDCSYNC_REALSTACK_CLUSTER_FULL:-}" = 1 ] && timeout=45m
t2=$(date +%s)
set +e
# Two tests at a time, each in its own process (integration/run-parallel.sh);
# the secured broker's tests share one principal's ACLs, so they run
# together. CDCSYNC_REALSTACK_JOBS=1 runs them one after another.
CDCSYNC_REALSTACK_STATE=$RS_STATE CDCSYNC_REALSTACK_SECURE_STATE=$RS_CACHE/secure.env CDCSYNC_REALSTACK_CLUSTER_STATE=$RS_CACHE/cluster.env \
  CDCSYNC_ITEST_TOGETHER='TestRealStackSecure.*' CDCSYNC_ITEST_VERBOSE=1 \
  "$RS_ROOT/integration/run-parallel.sh" "${CDCSYNC_REALSTACK_JOBS:-2}" -tags realstack -- \
  -test.timeout "$timeout" -test.run 'RealStack' "$@" \
  2>&1 | tee "$RS_LOGS/go-test.log"
rc=${PIPESTATUS[0]}
set -e
t3=$(date +%s)
if [ "$rc" != 0 ]; then show_logs; fi
log "setup $((t1-t0))s, stack up $((t2-t1))s, tests $((t3-t2))s, total $((t3-t0))s (before shutdown)"
exit "$rc"
