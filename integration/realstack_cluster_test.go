//go:build realstack

package integration

// Broker faults on a real three-node KRaft cluster (issue 18), started by
// integration/realstack/up-cluster.sh: Debezium (a Connect worker bound to
// the cluster) streams changes of a PostgreSQL table (the shared
// PostgreSQL of up.sh) into the cluster; two `cdcsync run` workers carry
// them into a sink topic; a fault hits the cluster mid-stream
// (cluster-node.sh). Afterwards every committed change must be in the
// sink, in per-key order, with nothing in the DLQ; under exactly_once a
// read_committed reader sees each once. The figures of each run (lost,
// duplicated, DLQ, rebalances, breaker-open and catch-up seconds) are
// logged as a "fault figures" line; docs/faults.md holds the table.
//
// CI runs the short form: the leader SIGKILL under both guarantees, a
// 30 s stream. CDCSYNC_REALSTACK_CLUSTER_FULL=1 runs all four faults
// under both guarantees with a 60 s stream (docs/faults.md).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/topology"
)

// clusterFull runs every fault; otherwise only the leader SIGKILL.
var clusterFull = os.Getenv("CDCSYNC_REALSTACK_CLUSTER_FULL") == "1"

// clusterStack is the shared stack's PostgreSQL with the cluster's
// brokers and Connect worker.
type clusterStack struct {
	*stack
	statePath string
	kv        map[string]string
}

func loadCluster(t *testing.T) *clusterStack {
	t.Helper()
	s := loadStack(t) // PostgreSQL of the shared stack
	path := os.Getenv("CDCSYNC_REALSTACK_CLUSTER_STATE")
	if path == "" {
		path = filepath.Join(".cache", "realstack", "cluster.env")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cluster not up (%v): run integration/realstack/up-cluster.sh (run.sh does)", err)
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	if kv["CL_BROKERS"] == "" || kv["CL_CONNECT_PORT"] == "" {
		t.Fatalf("%s: incomplete cluster state file:\n%s", path, data)
	}
	cs := *s
	cs.brokers = strings.Split(kv["CL_BROKERS"], ",")
	cs.KafkaPort = kv["CL_NODE1_PORT"]
	cs.ConnectPort = kv["CL_CONNECT_PORT"]
	cs.connectURL = "http://127.0.0.1:" + cs.ConnectPort
	return &clusterStack{stack: &cs, statePath: path, kv: kv}
}

// endOffsets sums the end offsets of topic's partitions, returning what
// goes wrong instead of failing: right after a leader election a broker
// answers OFFSET_NOT_AVAILABLE until the new leader's high-water mark has
// caught up.
func (c *clusterStack) endOffsets(topic string) (int64, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	cl, err := sarama.NewClient(c.brokers, cfg)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	parts, err := cl.Partitions(topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range parts {
		off, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("%s/%d: %w", topic, p, err)
		}
		n += off
	}
	return n, nil
}

// node runs realstack/cluster-node.sh and returns its output.
func (c *clusterStack) node(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join("realstack", "cluster-node.sh"), args...)
	cmd.Env = append(os.Environ(), "CDCSYNC_REALSTACK_CLUSTER_STATE="+c.statePath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cluster-node.sh %v: %v: %s", args, err, stderr.String())
	}
	t.Logf("cluster-node.sh %v: %s", args, strings.TrimSpace(stderr.String()+string(out)))
	return strings.TrimSpace(string(out))
}

// nodeBG runs cluster-node.sh in the background; the returned channel
// gets its error.
func (c *clusterStack) nodeBG(t *testing.T, args ...string) <-chan error {
	done := make(chan error, 1)
	go func() {
		cmd := exec.Command(filepath.Join("realstack", "cluster-node.sh"), args...)
		cmd.Env = append(os.Environ(), "CDCSYNC_REALSTACK_CLUSTER_STATE="+c.statePath)
		out, err := cmd.CombinedOutput()
		t.Logf("cluster-node.sh %v: %s", args, strings.TrimSpace(string(out)))
		done <- err
	}()
	return done
}

// leaderCounts counts the partitions of topics each broker leads.
func (c *clusterStack) leaderCounts(t *testing.T, topics ...string) map[int32]int {
	t.Helper()
	cl := newClient(t, c.brokers)
	if err := cl.RefreshMetadata(topics...); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	n := map[int32]int{}
	for _, topic := range topics {
		parts, err := cl.Partitions(topic)
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		for _, p := range parts {
			if b, err := cl.Leader(topic, p); err == nil {
				n[b.ID()]++
			}
		}
	}
	return n
}

// allUp waits until every node runs and every partition of topics has
// its three replicas in sync, so each fault starts from a healthy cluster.
func (c *clusterStack) allUp(t *testing.T, topics ...string) {
	t.Helper()
	for _, n := range []string{"1", "2", "3"} {
		c.node(t, "cont", n)
		c.node(t, "start", n)
	}
	eventually(t, 120*time.Second, "every replica in sync", func() string {
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V2_8_0_0
		cfg.Metadata.AllowAutoTopicCreation = false
		cl, err := sarama.NewClient(c.brokers, cfg)
		if err != nil {
			return err.Error()
		}
		defer cl.Close()
		admin, err := sarama.NewClusterAdminFromClient(cl)
		if err != nil {
			return err.Error()
		}
		md, err := admin.DescribeTopics(topics)
		if err != nil {
			return err.Error()
		}
		for _, tm := range md {
			if tm.Err != sarama.ErrNoError {
				return fmt.Sprintf("%s: %v", tm.Name, tm.Err)
			}
			for _, p := range tm.Partitions {
				if len(p.Isr) < 3 {
					return fmt.Sprintf("%s/%d: ISR %v", tm.Name, p.ID, p.Isr)
				}
			}
		}
		return ""
	})
}

// changeStream updates rows of one table at a steady rate, one
// transaction per tick, and counts per key the updates PostgreSQL
// committed.
type changeStream struct {
	mu        sync.Mutex
	committed map[int64]int64 // key → committed updates (seq of its last change)
	total     int
	errs      int
}

// run returns when stop closes; a statement in flight then completes, so
// committed is exact.
func (cs *changeStream) run(stop <-chan struct{}, t *testing.T, conn *pgx.Conn, table string, keys, rate int) {
	const tick = 50 * time.Millisecond
	batch := rate * int(tick) / int(time.Second)
	if batch < 1 {
		batch = 1
	}
	next := int64(1)
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		ids := make([]int64, batch)
		for i := range ids {
			ids[i] = next
			if next++; next > int64(keys) {
				next = 1
			}
		}
		_, err := conn.Exec(context.Background(), "UPDATE "+table+" SET seq = seq + 1 WHERE id = ANY($1)", ids)
		if err != nil {
			cs.mu.Lock()
			cs.errs++
			cs.mu.Unlock()
			t.Logf("update: %v", err)
			continue
		}
		cs.mu.Lock()
		for _, id := range ids {
			cs.committed[id]++
		}
		cs.total += len(ids)
		cs.mu.Unlock()
	}
}

// sampler polls both workers every 250 ms: the producer breaker's
// state and the summed lag.
type sampler struct {
	mu         sync.Mutex
	openSince  time.Time
	openTotal  time.Duration // time any worker's producer breaker was not closed
	firstOpen  time.Time
	lastClosed time.Time
	lags       []lagSample
}

// lagSample is the lag summed over both workers at one moment; ok is
// false when a worker did not answer.
type lagSample struct {
	at  time.Time
	lag float64
	ok  bool
}

func (sm *sampler) run(ctx context.Context, ws []*proc, topo string) {
	tk := time.NewTicker(250 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		now := time.Now()
		var open bool
		var lag float64
		var lagOK = true
		for _, w := range ws {
			if v, err := w.metric("cdcsync_breaker_state", `topology="`+topo+`"`, `dependency="producer"`); err == nil && v > 0 {
				open = true
			}
			v, err := w.metric("cdcsync_lag_records", `topology="`+topo+`"`)
			if err != nil && !strings.Contains(err.Error(), "not found") {
				lagOK = false
			}
			lag += v
		}
		sm.mu.Lock()
		switch {
		case open && sm.openSince.IsZero():
			sm.openSince = now
			if sm.firstOpen.IsZero() {
				sm.firstOpen = now
			}
		case !open && !sm.openSince.IsZero():
			sm.openTotal += now.Sub(sm.openSince)
			sm.openSince = time.Time{}
			sm.lastClosed = now
		}
		sm.lags = append(sm.lags, lagSample{at: now, lag: lag, ok: lagOK})
		sm.mu.Unlock()
	}
}

// baseline is the highest summed lag sampled in [from, to): what the
// workers lag behind a steady stream when nothing is wrong (records
// fetched but not yet acknowledged, or not yet committed under
// exactly_once).
func (sm *sampler) baseline(from, to time.Time) float64 {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	var b float64
	for _, s := range sm.lags {
		if s.ok && !s.at.Before(from) && s.at.Before(to) && s.lag > b {
			b = s.lag
		}
	}
	return b
}

// trace prints the summed lag once a second, for the log.
func (sm *sampler) trace(from time.Time) string {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	var b strings.Builder
	last := -1
	for _, s := range sm.lags {
		sec := int(s.at.Sub(from).Seconds())
		if sec == last {
			continue
		}
		last = sec
		if s.ok {
			fmt.Fprintf(&b, " %ds:%.0f", sec, s.lag)
		} else {
			fmt.Fprintf(&b, " %ds:?", sec)
		}
	}
	return b.String()
}

// fault is one broker fault: do runs it mid-stream and returns how long
// the cluster was impaired and when it recovered.
type fault struct {
	name string
	full bool // only with CDCSYNC_REALSTACK_CLUSTER_FULL=1
	do   func(t *testing.T, c *clusterStack, topics []string) (impaired time.Duration, recovered time.Time)
}

var clusterFaults = []fault{
	{name: "LeaderKill", do: func(t *testing.T, c *clusterStack, topics []string) (time.Duration, time.Time) {
		// The broker leading the most source, sink and ledger partitions.
		counts := c.leaderCounts(t, topics...)
		var victim int32
		for id, n := range counts {
			if victim == 0 || n > counts[victim] || n == counts[victim] && id < victim {
				victim = id
			}
		}
		t.Logf("leaders per broker %v: SIGKILL node %d, restart 15 s later", counts, victim)
		start := time.Now()
		c.node(t, "restart", strconv.Itoa(int(victim)), "15")
		return time.Since(start), time.Now()
	}},
	{name: "ControllerKill", full: true, do: func(t *testing.T, c *clusterStack, topics []string) (time.Duration, time.Time) {
		ctrl := c.node(t, "controller")
		t.Logf("active KRaft controller: node %s: SIGKILL, restart 15 s later", ctrl)
		start := time.Now()
		c.node(t, "restart", ctrl, "15")
		return time.Since(start), time.Now()
	}},
	{name: "BrokerStop", full: true, do: func(t *testing.T, c *clusterStack, topics []string) (time.Duration, time.Time) {
		counts := c.leaderCounts(t, topics...)
		var victim int32
		for id, n := range counts {
			if victim == 0 || n > counts[victim] || n == counts[victim] && id < victim {
				victim = id
			}
		}
		t.Logf("leaders per broker %v: SIGSTOP node %d for 30 s", counts, victim)
		start := time.Now()
		c.node(t, "stop", strconv.Itoa(int(victim)))
		time.Sleep(30 * time.Second)
		c.node(t, "cont", strconv.Itoa(int(victim)))
		return time.Since(start), time.Now()
	}},
	{name: "TwoBrokersDown", full: true, do: func(t *testing.T, c *clusterStack, topics []string) (time.Duration, time.Time) {
		// The two nodes that are not the controller: one node is left, a
		// minority of the quorum and of every ISR (min.insync.replicas=2).
		ctrl := c.node(t, "controller")
		var down []string
		for _, n := range []string{"1", "2", "3"} {
			if n != ctrl {
				down = append(down, n)
			}
		}
		t.Logf("SIGKILL nodes %v at once, restart both 20 s later", down)
		start := time.Now()
		a, b := c.nodeBG(t, "kill", down[0]), c.nodeBG(t, "kill", down[1])
		if err := <-a; err != nil {
			t.Fatal(err)
		}
		if err := <-b; err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Second)
		a, b = c.nodeBG(t, "start", down[0]), c.nodeBG(t, "start", down[1])
		if err := <-a; err != nil {
			t.Fatal(err)
		}
		if err := <-b; err != nil {
			t.Fatal(err)
		}
		return time.Since(start), time.Now()
	}},
}

// TestRealStackClusterFaults runs each fault under at_least_once and
// exactly_once, one run after the other (the machine has 2 cores).
func TestRealStackClusterFaults(t *testing.T) {
	c := loadCluster(t)
	stream := 30 * time.Second
	if clusterFull {
		stream = 60 * time.Second
	}
	rate := 2000
	if v, err := strconv.Atoi(os.Getenv("CDCSYNC_REALSTACK_CLUSTER_RATE")); err == nil && v > 0 {
		rate = v
	}
	for _, f := range clusterFaults {
		for _, g := range []string{"at_least_once", "exactly_once"} {
			t.Run(f.name+"/"+g, func(t *testing.T) {
				if f.full && !clusterFull {
					t.Skip("full form only: CDCSYNC_REALSTACK_CLUSTER_FULL=1 (docs/faults.md)")
				}
				runClusterFault(t, c, f, g, stream, rate)
			})
		}
	}
}

func runClusterFault(t *testing.T, c *clusterStack, f fault, guarantee string, stream time.Duration, rate int) {
	run := runID()
	g := map[string]string{"at_least_once": "alo", "exactly_once": "eos"}[guarantee]
	name := strings.ToLower(fmt.Sprintf("cl%s%s%s", g, f.name[:4], run))
	db, prefix, table := name, name, "items"
	topic, sink := prefix+".public."+table, "sync."+name+".items"
	const keys = 1000

	c.psql(t, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { _, _ = c.psqlErr("postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	c.psql(t, db, fmt.Sprintf(`
CREATE TABLE %s (id bigint PRIMARY KEY, seq bigint NOT NULL, pad text NOT NULL);
INSERT INTO %[1]s SELECT g, 0, repeat('x', 64) FROM generate_series(1, %d) g;`, table, keys))

	dir, plans := writeTopologies(t, fmt.Sprintf(`name: %s
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-json}
sink: {topic: %s, key: [id]}
guarantee: %s
`, name, topic, sink, guarantee))
	plan := plans[0]
	c.connector(t, name, db, prefix, map[string]string{
		"topic.creation.default.partitions":         "6",
		"topic.creation.default.replication.factor": "3",
	})
	workers := startWorkers(t, c.stack, dir, name+"-w1", name+"-w2")
	eventually(t, 120*time.Second, "the snapshot in the sink", func() string {
		if n := c.hwm(t, sink); n < keys {
			return fmt.Sprintf("%d/%d sink records", n, keys)
		}
		return ""
	})
	watched := []string{topic, sink, string(plan.LedgerTopic())}
	c.allUp(t, watched...)
	waitAll(t, c.stack, plans)
	rebalances0 := sumMetric(t, workers, "cdcsync_rebalances_total")
	opens0 := sumMetric(t, workers, "cdcsync_breaker_transitions_total", `dependency="producer"`, `to="open"`)

	conn, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://%s@127.0.0.1:%s/%s?sslmode=disable", c.PGUser, c.PGPort, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := &changeStream{committed: map[int64]int64{}}
	sm := &sampler{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sm.run(ctx, workers, name) }()
	stop, streamDone := make(chan struct{}), make(chan struct{})
	streamStart := time.Now()
	go func() { defer close(streamDone); cs.run(stop, t, conn, table, keys, rate) }()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-streamDone
	}()

	// The fault starts a third into the stream; the stream runs on for
	// its full length (longer when the fault outlasts it).
	time.Sleep(stream / 3)
	faultAt := time.Now()
	impaired, recovered := f.do(t, c, watched)
	catchUpC := make(chan time.Duration, 1)
	go func() { catchUpC <- catchUpTime(ctx, c.brokers, string(plan.Group()), topic, recovered) }()
	time.Sleep(time.Until(streamStart.Add(stream)))
	close(stop)
	<-streamDone
	cs.mu.Lock()
	total := cs.total
	cs.mu.Unlock()
	stream = time.Since(streamStart).Round(time.Second)
	t.Logf("stream: %d changes committed in %v (%d failed statements); fault impaired the cluster for %.1fs",
		total, stream, cs.errs, impaired.Seconds())

	// Every committed change reaches the sink.
	want := keys + total
	eventually(t, 240*time.Second, "every committed change in the sink", func() string {
		n, err := c.endOffsets(sink)
		if err != nil {
			return err.Error() // OFFSET_NOT_AVAILABLE right after an election: ask again
		}
		if n < int64(want) {
			return fmt.Sprintf("%d/%d sink records", n, want)
		}
		return ""
	})
	if err := waitProcessedErr(c.stack, plans, 120*time.Second); err != nil {
		t.Errorf("lag not 0 after the stream: %v", err)
	}
	// Drained: every change in the sink and committed offsets at the end,
	// end to end (Debezium's own backlog from the fault included).
	drain := time.Since(recovered)
	cancel()
	wg.Wait()

	var msgs []*sarama.ConsumerMessage
	if guarantee == "exactly_once" {
		msgs = readCommitted(t, c.brokers, sink)
	} else {
		msgs = readAll(t, c.brokers, sink)
	}
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].Partition != msgs[j].Partition {
			return msgs[i].Partition < msgs[j].Partition
		}
		return msgs[i].Offset < msgs[j].Offset
	})
	lost, dups, disorder := checkSeqs(t, msgs, cs.committed, keys)
	dlq := c.hwm(t, string(plan.DLQTopic()))
	rebalances := sumMetric(t, workers, "cdcsync_rebalances_total") - rebalances0
	opens := sumMetric(t, workers, "cdcsync_breaker_transitions_total", `dependency="producer"`, `to="open"`) - opens0
	sm.mu.Lock()
	open := sm.openTotal
	if !sm.openSince.IsZero() {
		open += time.Since(sm.openSince)
	}
	sm.mu.Unlock()
	catchUp := <-catchUpC
	ok := catchUp >= 0
	base := sm.baseline(streamStart.Add(2*time.Second), faultAt)
	t.Logf("lag summed over the workers, seconds from the stream's start (fault at %.0fs, recovered at %.0fs, steady-state baseline %.0f):%s",
		faultAt.Sub(streamStart).Seconds(), recovered.Sub(streamStart).Seconds(), base, sm.trace(streamStart))
	catchUpText := fmt.Sprintf("%.1f", catchUp.Seconds())
	if !ok {
		catchUpText = "n/a"
	}
	t.Logf("fault figures: | %s | %s | %d | %d | %d | %.0f | %.0f | %.1f | %s | %.1f | changes %d in %v, fault %.1fs",
		f.name, guarantee, lost, dups, dlq, rebalances, opens, open.Seconds(), catchUpText, drain.Seconds(), total, stream, impaired.Seconds())

	t.Logf("worker warnings and errors during the run: %s", logSummary(workers))

	if lost > 0 {
		t.Errorf("%d committed changes are not in the sink", lost)
	}
	if disorder > 0 {
		t.Errorf("%d records break per-key order", disorder)
	}
	if dlq > 0 {
		t.Errorf("%d records in the DLQ %s: a broker fault is transient and must never reach the DLQ", dlq, plan.DLQTopic())
	}
	switch guarantee {
	case "exactly_once":
		if dups > 0 {
			t.Errorf("%d changes appear more than once to a read_committed reader", dups)
		}
	default:
		// docs/guarantees.md: only records whose output was acknowledged
		// but whose ledger entry was not yet written can repeat: at most
		// max_in_flight (4096) per source partition.
		if limit := 4096 * 6; dups > limit {
			t.Errorf("%d duplicates, more than the documented window of %d", dups, limit)
		}
	}
	if open > impaired+2*time.Second {
		t.Errorf("the producer breaker was open %.1fs, longer than the fault (%.1fs)", open.Seconds(), impaired.Seconds())
	}
	if !ok {
		t.Errorf("the group's committed offsets never reached the source's end offsets of the recovery")
	}
}

// logSummary counts the workers' warn and error log lines by message and
// the error's first words, for the fault's log.
func logSummary(ws []*proc) string {
	n := map[string]int{}
	for _, w := range ws {
		for _, line := range strings.Split(w.log.String(), "\n") {
			var l struct{ Level, Msg, Error string }
			if json.Unmarshal([]byte(line), &l) != nil || l.Level != "warn" && l.Level != "error" {
				continue
			}
			e := l.Error
			if i := strings.LastIndex(e, ": "); i >= 0 {
				e = e[i+2:] // the root cause
			}
			n[l.Level+" "+l.Msg+" ("+e+")"]++
		}
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %4d× %s", n[k], k)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// catchUpTime is the time from recovered until the group's committed
// offsets reach the source topic's end offsets as they were at
// recovered: lag 0 against what Debezium had written by then. -1 when
// ctx ends first.
func catchUpTime(ctx context.Context, brokers []string, group, topic string, recovered time.Time) time.Duration {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	var cl sarama.Client
	var admin sarama.ClusterAdmin
	var end map[int32]int64
	for ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		if cl == nil {
			var err error
			if cl, err = sarama.NewClient(brokers, cfg); err != nil {
				cl = nil
				continue
			}
			defer cl.Close()
			if admin, err = sarama.NewClusterAdminFromClient(cl); err != nil {
				return -1
			}
		}
		if end == nil {
			parts, err := cl.Partitions(topic)
			if err != nil {
				continue
			}
			e := map[int32]int64{}
			for _, p := range parts {
				off, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
				if err != nil {
					break
				}
				e[p] = off
			}
			if len(e) != len(parts) {
				continue
			}
			end = e
		}
		parts := make([]int32, 0, len(end))
		for p := range end {
			parts = append(parts, p)
		}
		res, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
		if err != nil || res.Err != sarama.ErrNoError {
			continue
		}
		done := true
		for p, off := range end {
			b := res.GetBlock(topic, p)
			if b == nil || b.Err != sarama.ErrNoError || b.Offset < off {
				done = false
			}
		}
		if done {
			return time.Since(recovered)
		}
	}
	return -1
}

// waitProcessedErr is waitAll returning the error.
func waitProcessedErr(s *stack, plans []*topology.Plan, timeout time.Duration) error {
	return demo.WaitProcessed(context.Background(), s.brokers, plans, timeout)
}

// checkSeqs checks the sink against the committed changes: each key's
// seq values 0 (the snapshot) to its committed count must each appear
// (lost counts those that do not); dups counts extra copies; disorder
// counts records whose seq is new and not the next one of its key (a
// repeated older seq is a duplicate, allowed under at_least_once, not
// disorder).
func checkSeqs(t *testing.T, msgs []*sarama.ConsumerMessage, committed map[int64]int64, keys int) (lost, dups, disorder int) {
	t.Helper()
	type ks struct {
		key string
		seq int64
	}
	seen := map[ks]int{}
	next := map[string]int64{} // per key, the next seq expected
	for _, m := range msgs {
		r := decodeSink(t, m)
		var id, seq int64
		if err := json.Unmarshal(r.Key["id"], &id); err != nil {
			t.Fatalf("sink record %d/%d without key id: %s", m.Partition, m.Offset, m.Value)
		}
		if err := json.Unmarshal(r.Fields["seq"], &seq); err != nil {
			t.Fatalf("sink record %d/%d without seq: %s", m.Partition, m.Offset, m.Value)
		}
		k := strconv.FormatInt(id, 10)
		seen[ks{k, seq}]++
		if seen[ks{k, seq}] > 1 {
			dups++
			continue
		}
		if seq != next[k] {
			disorder++
			if disorder <= 5 {
				t.Errorf("key %s: seq %d at %d/%d, want %d next", k, seq, m.Partition, m.Offset, next[k])
			}
		}
		if seq >= next[k] {
			next[k] = seq + 1
		}
	}
	for id := int64(1); id <= int64(keys); id++ {
		k := strconv.FormatInt(id, 10)
		for s := int64(0); s <= committed[id]; s++ {
			if seen[ks{k, s}] == 0 {
				lost++
				if lost <= 5 {
					t.Errorf("key %s: change seq %d is not in the sink", k, s)
				}
			}
		}
	}
	return lost, dups, disorder
}
