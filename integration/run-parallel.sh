#!/usr/bin/env bash
# run-parallel.sh JOBS [go test build flags...] -- [test binary flags...]
#
# Runs every top-level Test of the integration package in a process of its
# own, JOBS at a time, the longest first. Most of the kfake tier waits
# (outages, session timeouts, breaker delays) rather than computes: run one
# after another it kept a 2-core machine at a load average below 1 for
# 12 minutes. Separate processes keep the tests apart (metrics registries,
# environment, the sync.Once that builds the cdcsync binary), which
# t.Parallel inside one process would not.
#
#   integration/run-parallel.sh 3 -- -test.timeout 15m
#   integration/run-parallel.sh 2 -race -- -test.short -test.run 'TestKfake(NormalRun|Rebalance)$'
#
# Each test's result lines are printed when it ends (its whole output with
# CDCSYNC_ITEST_VERBOSE=1, and always when it failed);
# the run ends with every test's duration, the slowest first, and fails when
# any test failed. CDCSYNC_TEST_BINARY points the tests at one cdcsync binary
# built here, instead of a build per process.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$1; shift
build=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do build+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
run=("$@")

work=$(mktemp -d /tmp/cdcsync-itest-XXXXXX)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/integration.test" "${build[@]}" ./integration/
go build -o "$work/cdcsync" ./cmd/cdcsync

# The -test.run (or -run) pattern, the last one given, selects the tests.
pattern='.*'
rest=()
for ((i = 0; i < ${#run[@]}; i++)); do
  case "${run[i]}" in
    -test.run | -run) pattern=${run[i+1]}; i=$((i+1)) ;;
    -test.run=* | -run=*) pattern=${run[i]#*=} ;;
    *) rest+=("${run[i]}") ;;
  esac
done
mapfile -t listed < <(cd integration && "$work/integration.test" -test.list "$pattern" | grep '^Test')
[ ${#listed[@]} -gt 0 ] || { echo "run-parallel.sh: no test matches $pattern" >&2; exit 1; }

# Known long tests go first so that the last minutes are not one long test
# running alone (the order of the rest is the package's). Re-order when the
# durations printed at the end change.
first=(TestRealStackClusterFaults TestRealStackTwoSystems TestRealStackExactlyOnceChaos TestRealStackOutbox
  TestKfakeSagaChaos TestKfakeIngressStripe TestKfakeExactlyOnceChaos TestKfakeRegistryOutageBreaker
  TestKfakeRegistryOutageBreakerExactlyOnce TestKfakeAPIPauseResumeExactlyOnce TestKfakeOffsetReset
  TestKfakeTruncateUnderBacklog TestKfakeRunWaitsForPipelinesAfterShutdownTimeout
  TestKfakeLedgerResnapshotReturnsToEarlierState TestKfakeAvroRegistryDown TestKfakeAPIPauseResume
  TestKfakeBrokerOutage TestKfakeFencedPartitionRejoins TestKfakeProduceOutageBreaker)
order=()
for t in "${first[@]}"; do
  for l in "${listed[@]}"; do [ "$l" = "$t" ] && order+=("$t"); done
done
for l in "${listed[@]}"; do
  case " ${first[*]} " in *" $l "*) ;; *) order+=("$l") ;; esac
done

# Tests that share something they change (the secured broker's ACLs of one
# principal) run together, one after another in one process:
# CDCSYNC_ITEST_TOGETHER is an extended regular expression of their names.
if [ -n "${CDCSYNC_ITEST_TOGETHER:-}" ]; then
  units=() together=()
  for t in "${order[@]}"; do
    if [[ $t =~ ^(${CDCSYNC_ITEST_TOGETHER})$ ]]; then
      [ ${#together[@]} = 0 ] && units+=("@together")
      together+=("$t")
    else
      units+=("$t")
    fi
  done
  joined=$(IFS='|'; echo "${together[*]}")
  order=()
  for u in "${units[@]}"; do order+=("${u/#@together/$joined}"); done
fi

export WORK=$work
one() {
  local t=$1 start end rc
  start=$EPOCHREALTIME
  set +e
  (cd integration && CDCSYNC_TEST_BINARY="$WORK/cdcsync" "$WORK/integration.test" \
    -test.run "^(${t})\$" -test.count=1 -test.v "${@:2}" >"$WORK/$t.log" 2>&1)
  rc=$?
  set -e
  end=$EPOCHREALTIME
  awk -v t="$t" -v s="$start" -v e="$end" -v rc="$rc" 'BEGIN {printf "%s %.1f %s\n", t, e - s, rc}' >>"$WORK/results"
  # One write per test, so outputs of tests ending together do not interleave.
  if [ "$rc" = 0 ]; then
    if [ "${CDCSYNC_ITEST_VERBOSE:-}" = 1 ]; then
      grep -v '^=== \(RUN\|PAUSE\|CONT\)' "$WORK/$t.log" >"$WORK/$t.out" || true
    else
      grep -E '^ *--- ' "$WORK/$t.log" >"$WORK/$t.out" || true
    fi
  else
    { printf '\n##### %s FAILED (exit %s), its whole output:\n' "$t" "$rc"; cat "$WORK/$t.log"; } >"$WORK/$t.out"
  fi
  cat "$WORK/$t.out"
}
export -f one
printf '%s\n' "${order[@]}" | xargs -P "$jobs" -I{} bash -c 'one "$@"' _ {} "${rest[@]}"

echo
echo "durations (s), slowest first, $jobs at a time:"
sort -k2 -rn "$work/results" | awk '{printf "  %7.1f  %s%s\n", $2, $1, ($3 == 0 ? "" : "  FAILED")}'
failed=$(awk '$3 != 0 {print $1}' "$work/results")
ran=$(wc -l <"$work/results")
if [ "$ran" != "${#order[@]}" ]; then
  echo "FAIL: $ran of ${#order[@]} tests reported a result" >&2; exit 1
fi
if [ -n "$failed" ]; then
  echo "FAIL:" $failed >&2; exit 1
fi
echo "ok: ${#order[@]} tests"
