#!/usr/bin/env bash
# Faults for one node of the cluster of up-cluster.sh, by its PID:
#   cluster-node.sh kill N       SIGKILL node N (no shutdown, no flush)
#   cluster-node.sh start N      start node N again (same data, ports); waits until it serves
#   cluster-node.sh restart N S  SIGKILL node N, wait S seconds (default 15), start it
#   cluster-node.sh stop N       SIGSTOP node N (alive but silent: slow, not dead)
#   cluster-node.sh cont N       SIGCONT node N
#   cluster-node.sh pid N        print node N's PID
#   cluster-node.sh controller   print the node.id of the active KRaft controller (the quorum leader)
# N is 1, 2 or 3 (the node.id). The state file keeps the PID of a restarted
# node; the tests call this script.
set -euo pipefail
. "$(dirname "$0")/common.sh"
CL_STATE=${CDCSYNC_REALSTACK_CLUSTER_STATE:-$RS_CACHE/cluster.env}
[ -f "$CL_STATE" ] || die "cluster not up (no $CL_STATE): run up-cluster.sh"
# shellcheck disable=SC1090
. "$CL_STATE"
cmd=${1:-} n=${2:-}
if [ "$cmd" = controller ]; then
  # Ask each live controller in turn (DescribeQuorum, kafka-tools).
  for m in 1 2 3; do
    eval "cport=\$CL_NODE${m}_CTRL_PORT"
    leader=$(java -cp "$RS_KAFKA_LIBS/*" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j.configuration=file:/dev/null \
      org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-controller "127.0.0.1:$cport" describe --status 2>/dev/null \
      | awk '$1 == "LeaderId:" {print $2}') || true
    [ -n "$leader" ] && [ "$leader" != -1 ] && { echo "$leader"; exit 0; }
  done
  die "no controller answered DescribeQuorum"
fi
case "$n" in 1|2|3) ;; *) die "usage: cluster-node.sh kill|start|restart|stop|cont|pid N(1-3) [seconds]" ;; esac
eval "pid=\${CL_NODE${n}_PID:-} nlog=\$CL_NODE${n}_LOG"
ours() { alive "$pid" && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = java ]; }
do_kill() {
  ours || { log "node $n is not running"; return 0; }
  kill -KILL "$pid"
  for _ in $(seq 1 40); do alive "$pid" || break; sleep 0.25; done
  log "node $n killed (pid $pid)"
}
# set_pid records node N's PID. Two nodes may start at once (two brokers
# down): the state file is rewritten under a lock, or one PID is lost and
# a later start runs a second process on the same log.dirs.
set_pid() {
  ( flock 9; sed -i "s/^CL_NODE${n}_PID=.*/CL_NODE${n}_PID=$1/" "$CL_STATE" ) 9>"$CL_STATE.lock"
}
do_start() {
  ours && { log "node $n already running (pid $pid)"; return 0; }
  # A node process the state file does not name (never expected): adopt
  # it rather than start a second one on the same data.
  local other
  other=$(pgrep -f -- "kafka.Kafka $CL_DATA/node$n/server.properties" | head -1 || true)
  if [ -n "$other" ]; then
    pid=$other; set_pid "$pid"; log "node $n already running (pid $pid, adopted)"; return 0
  fi
  local mark
  mark=$(wc -l <"$nlog")
  "$CL_DATA/node$n/start.sh" &
  pid=$!
  set_pid "$pid"
  for i in $(seq 1 480); do
    alive "$pid" || die "node $n exited at start (see $nlog)"
    # Not grep -q: it would exit at the match, tail would die of SIGPIPE,
    # and pipefail would make the pipeline fail on a large log.
    if tail -n "+$((mark + 1))" "$nlog" | grep "Kafka Server started" >/dev/null; then break; fi
    [ "$i" = 480 ] && die "node $n not serving in 240s (see $nlog)"
    sleep 0.5
  done
  log "node $n started (pid $pid)"
}
case "$cmd" in
  kill) do_kill ;;
  start) do_start ;;
  restart) do_kill; sleep "${3:-15}"; do_start ;;
  stop) if ours; then kill -STOP "$pid"; log "node $n stopped with SIGSTOP (pid $pid)"; else log "node $n is not running"; fi ;;
  cont) if ours; then kill -CONT "$pid"; log "node $n continued (pid $pid)"; else log "node $n is not running"; fi ;;
  pid) echo "$pid" ;;
  *) die "usage: cluster-node.sh kill|start|restart|stop|cont|pid N [seconds]" ;;
esac
