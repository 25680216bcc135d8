package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/embedded"
)

// breakerCounts reads a worker's cdcsync_breaker_* series of one
// topology and dependency.
type breakerCounts struct {
	state                  float64
	open, halfOpen, closed float64
	probes                 float64
}

func readBreaker(t *testing.T, wk *worker, topology, dep string) breakerCounts {
	t.Helper()
	mfs, err := wk.w.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var c breakerCounts
	match := func(m *dto.Metric) (string, bool) {
		var top, d, to string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "topology":
				top = l.GetValue()
			case "dependency":
				d = l.GetValue()
			case "to":
				to = l.GetValue()
			}
		}
		return to, top == topology && d == dep
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			to, ok := match(m)
			if !ok {
				continue
			}
			switch mf.GetName() {
			case "cdcsync_breaker_state":
				c.state = m.GetGauge().GetValue()
			case "cdcsync_breaker_probes_total":
				c.probes = m.GetCounter().GetValue()
			case "cdcsync_breaker_transitions_total":
				switch to {
				case "open":
					c.open = m.GetCounter().GetValue()
				case "half_open":
					c.halfOpen = m.GetCounter().GetValue()
				case "closed":
					c.closed = m.GetCounter().GetValue()
				}
			}
		}
	}
	return c
}

// checkBreakerCycled asserts that a breaker went OPEN -> HALF_OPEN ->
// CLOSED and let exactly one probe through per half-open period.
func checkBreakerCycled(t *testing.T, name string, c breakerCounts) {
	t.Helper()
	if c.open == 0 || c.halfOpen == 0 || c.closed == 0 {
		t.Errorf("%s: breaker transitions open %v, half_open %v, closed %v: want each at least once", name, c.open, c.halfOpen, c.closed)
	}
	if c.probes != c.halfOpen {
		t.Errorf("%s: %v probes in %v half-open periods, want exactly one each", name, c.probes, c.halfOpen)
	}
	// Every open period ended in one half-open period.
	if c.halfOpen != c.open {
		t.Errorf("%s: %v open periods but %v half-open periods", name, c.open, c.halfOpen)
	}
	if c.state != 0 {
		t.Errorf("%s: breaker state %v at the end, want 0 (closed)", name, c.state)
	}
}

// countJoins counts JoinGroup requests from now on: a rebalance makes
// every member join again, so an unchanged count means an unchanged group
// generation.
func countJoins(st *embedded.Stack) *atomic.Int64 {
	var n atomic.Int64
	st.Kafka.ControlKey(int16(kmsg.JoinGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		st.Kafka.KeepControl()
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

var avroEmail = regexp.MustCompile(`c(\d+)-(\d+)@example\.com`)

// TestKfakeRegistryOutageBreaker: three workers run an Avro topology; the
// registry answers 503 for 10 s while records of a writer schema they have
// not fetched yet flow. Before the breaker, every failure restarted the
// session: a rebalance for every worker and a ledger restore each time.
// Now the registry breaker opens, the partitions pause and one probe per
// half-open period finds the registry back: no rebalance, no DLQ, nothing
// lost, per-key order kept.
func TestKfakeRegistryOutageBreaker(t *testing.T) {
	n := 50_000
	if testing.Short() {
		n = 6_000
	}
	registryOutage(t, "at_least_once", n)
}

// The same under exactly_once: a record that fails in the stages is held,
// the open transaction commits up to it, and no transaction aborts.
func TestKfakeRegistryOutageBreakerExactlyOnce(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 4_000
	}
	registryOutage(t, "exactly_once", n)
}

func registryOutage(t *testing.T, guarantee string, n int) {
	st, err := embedded.Start(embedded.Options{Topics: []string{avroTopic}, Partitions: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	w := newAvroWriter(t, st.Registry)
	name := "reg-outage-" + strings.ReplaceAll(guarantee, "_", "-")
	sink := "sync." + name
	plan := mustPlan(t, fmt.Sprintf(avroTopology, name, sink)+
		"errors: {breaker: {failures: 5, open: 1s}}\nguarantee: "+guarantee+"\n")
	var down atomic.Bool
	var refused atomic.Int64
	st.Registry.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !down.Load() {
			return false
		}
		refused.Add(1)
		rw.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	const keys = 500
	var first, second []demo.Record
	for i := range n {
		r := w.record(t, int64(i%keys), int64(5000+i), i >= n/2)
		if i < n/2 {
			first = append(first, r)
		} else {
			second = append(second, r)
		}
	}
	var wks []*worker
	for i := range 3 {
		wks = append(wks, startAvroWorker(t, st, fmt.Sprintf("w%d", i+1), plan))
	}
	produce(t, st.Brokers(), first)
	waitProcessed(t, st.Brokers(), 2*time.Minute, plan)
	waitAssigned(t, wks, plan.Name())

	// Sessions may restart while the group forms (a Setup cut short by
	// the next join); only restarts from here on count.
	before := restartsOf(wks, plan.Name())
	joins := countJoins(st)
	down.Store(true)
	produce(t, st.Brokers(), second) // v2: every worker must fetch its schema
	time.Sleep(10 * time.Second)
	down.Store(false)
	waitProcessed(t, st.Brokers(), 3*time.Minute, plan)
	if j := joins.Load(); j != 0 {
		t.Errorf("%d JoinGroup requests during and after the outage: the group rebalanced", j)
	}
	for i, wk := range wks {
		s := wk.w.Stats(plan.Name())
		if s.Restarts != before[i] || s.DLQ != 0 || s.TxnAborts != 0 {
			t.Errorf("worker %d: %d session restarts, %d DLQ records, %d aborted transactions", i+1, s.Restarts-before[i], s.DLQ, s.TxnAborts)
		}
		c := readBreaker(t, wk, plan.Name(), "registry")
		t.Logf("worker %d registry breaker: %+v", i+1, c)
		checkBreakerCycled(t, fmt.Sprintf("worker %d", i+1), c)
	}
	for _, wk := range wks {
		if err := wk.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if refused.Load() == 0 {
		t.Fatal("the outage refused no request: the test did not test anything")
	}
	read := readAll
	if guarantee == "exactly_once" {
		read = readCommitted // commit markers keep the last offset below the high-water mark
	}
	if d := read(t, st.Brokers(), string(plan.DLQTopic())); len(d) != 0 {
		t.Errorf("DLQ topic holds %d records", len(d))
	}
	msgs := read(t, st.Brokers(), sink)
	ids, _ := checkAvroMsgs(t, msgs)
	if len(ids) != n {
		t.Errorf("%d distinct events in the sink, want %d: changes were lost", len(ids), n)
	}
	// Per-key order: a key's changes reach its sink partition in source
	// order (nothing was re-sent, so strictly increasing).
	last := map[string]int{}
	for _, m := range msgs {
		sm := avroEmail.FindSubmatch(m.Value)
		if sm == nil {
			t.Fatalf("sink record %d/%d without the email", m.Partition, m.Offset)
		}
		key, lsn := string(sm[1]), atoi(t, string(sm[2]))
		if lsn <= last[key] {
			t.Errorf("key %s: change %d after %d: per-key order broken (partition %d offset %d)", key, lsn, last[key], m.Partition, m.Offset)
		}
		last[key] = lsn
	}
	t.Logf("registry refused %d requests; %d events", refused.Load(), n)
}

// TestKfakeProduceOutageBreaker: the broker refuses every produce request
// to the sink and ledger topics for 8 s (UNKNOWN_SERVER_ERROR), while the
// consumers' fetches and heartbeats go on. sarama returns that error at
// once (a retriable code such as NOT_ENOUGH_REPLICAS is retried by sarama
// itself for about 13 s, which would hide an 8 s outage from cdcsync);
// classify calls it transient. Before the breaker the session
// restarted (a rebalance for every worker). Now the producer breaker
// opens, the partitions pause, the records that failed are sent again in
// offset order when a probe passes: no rebalance, no DLQ, nothing lost.
func TestKfakeProduceOutageBreaker(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "prod-outage", src.Topic(), "sync.prod-outage"))
	wl := makeWorkload(src, 300, 30_000, 0.05, 9)
	half := len(wl.Records) / 2

	var down atomic.Bool
	var refused atomic.Int64
	st.Kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		st.Kafka.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		pr := req.(*kmsg.ProduceRequest)
		for _, tp := range pr.Topics {
			if tp.Topic == src.Topic() {
				return nil, nil, false // the test's own source records
			}
		}
		refused.Add(1)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = -1 // UNKNOWN_SERVER_ERROR
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})

	wks := []*worker{startWorker(t, brokers, "w1", plan), startWorker(t, brokers, "w2", plan)}
	produce(t, brokers, wl.Records[:half])
	waitProcessed(t, brokers, 2*time.Minute, plan)
	waitAssigned(t, wks, plan.Name())

	before := restartsOf(wks, plan.Name())
	joins := countJoins(st)
	down.Store(true)
	produce(t, brokers, wl.Records[half:])
	time.Sleep(8 * time.Second)
	down.Store(false)
	waitProcessed(t, brokers, 3*time.Minute, plan)
	if j := joins.Load(); j != 0 {
		t.Errorf("%d JoinGroup requests during and after the outage: the group rebalanced", j)
	}
	opened := 0
	for i, wk := range wks {
		s := wk.w.Stats(plan.Name())
		if s.Restarts != before[i] || s.DLQ != 0 {
			t.Errorf("worker %d: %d session restarts, %d DLQ records", i+1, s.Restarts-before[i], s.DLQ)
		}
		c := readBreaker(t, wk, plan.Name(), "producer")
		t.Logf("worker %d producer breaker: %+v", i+1, c)
		if c.open > 0 {
			opened++
			checkBreakerCycled(t, fmt.Sprintf("worker %d", i+1), c)
		}
	}
	for _, wk := range wks {
		if err := wk.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if refused.Load() == 0 {
		t.Fatal("the outage refused no produce request: the test did not test anything")
	}
	if opened == 0 {
		t.Error("no producer breaker opened during an 8 s produce outage")
	}
	if d := readAll(t, brokers, string(plan.DLQTopic())); len(d) != 0 {
		t.Errorf("DLQ topic holds %d records", len(d))
	}
	checkAtLeastOnceOrder(t, readAll(t, brokers, "sync.prod-outage"), wl)
	t.Logf("refused %d produce requests", refused.Load())
}

// checkAtLeastOnceOrder asserts that the sink holds every unique change of
// w, and that the last copy of each change is in per-key order: records
// sent again after a failure may repeat changes (at_least_once), but a
// consumer applying the sink in order ends at each key's latest change and
// never applies an older change after the last copy of a newer one.
func checkAtLeastOnceOrder(t *testing.T, msgs []*sarama.ConsumerMessage, w *workload) {
	t.Helper()
	type pos struct{ key, n int }
	var seq []pos
	seen := map[string]bool{}
	for _, m := range msgs {
		r := decodeSink(t, m)
		seen[r.ID] = true
		var phone string
		if err := json.Unmarshal(r.Fields["phone"], &phone); err != nil {
			t.Fatalf("sink record without phone: %s", m.Value)
		}
		parts := strings.Split(phone, "-")
		if len(parts) != 3 {
			t.Fatalf("unexpected phone %q", phone)
		}
		seq = append(seq, pos{atoi(t, parts[1]), atoi(t, parts[2])})
	}
	if len(seen) != w.Unique {
		t.Errorf("sink holds %d distinct events, want %d: changes were lost", len(seen), w.Unique)
	}
	lastAt := map[pos]int{}
	for i, p := range seq {
		lastAt[p] = i
	}
	final := map[int]int{}
	for i, p := range seq {
		if lastAt[p] != i {
			continue
		}
		if p.n <= final[p.key] {
			t.Errorf("key %d: the last copy of change %d comes after the last copy of change %d", p.key, p.n, final[p.key])
		}
		final[p.key] = p.n
	}
	for key, n := range w.PerKey {
		if final[int(key)] != n {
			t.Errorf("key %d: last change in the sink is %d, want %d", key, final[int(key)], n)
			break
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func restartsOf(wks []*worker, topology string) []int64 {
	var n []int64
	for _, wk := range wks {
		n = append(n, wk.w.Stats(topology).Restarts)
	}
	return n
}

// waitAssigned waits until every worker is ready (its partitions assigned
// and restored), so the join counting starts on a stable group.
func waitAssigned(t *testing.T, wks []*worker, topology string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ready := true
		for _, wk := range wks {
			ready = ready && wk.w.Ready()
		}
		if ready {
			time.Sleep(time.Second) // a join still in progress shows up here
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("workers of %s never all ready", topology)
}

// TestKfakeRegistryNeverBack: the registry stays down. The breaker keeps
// the partitions paused and probes, and errors.retry.max_elapsed (3 s
// here) turns the outage into a fatal stop of the topology, with nothing
// sent to the DLQ.
func TestKfakeRegistryNeverBack(t *testing.T) {
	st := avroStack(t)
	w := newAvroWriter(t, st.Registry)
	plan := mustPlan(t, fmt.Sprintf(avroTopology, "reg-gone", "sync.reg-gone")+
		"errors: {breaker: {failures: 2, open: 500ms}, retry: {max_elapsed: 3s}}\n")
	var down atomic.Bool
	st.Registry.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !down.Load() {
			return false
		}
		rw.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	var first, second []demo.Record
	for i := range 200 {
		r := w.record(t, int64(i%20), int64(5000+i), i >= 100)
		if i < 100 {
			first = append(first, r)
		} else {
			second = append(second, r)
		}
	}
	wk := startAvroWorker(t, st, "w1", plan)
	produce(t, st.Brokers(), first)
	waitProcessed(t, st.Brokers(), time.Minute, plan)
	down.Store(true)
	start := time.Now()
	produce(t, st.Brokers(), second) // v2: its schema cannot be fetched
	err, stopped := wk.wait(time.Minute)
	if !stopped {
		t.Fatal("the topology kept retrying past errors.retry.max_elapsed")
	}
	if err == nil || !strings.Contains(err.Error(), "max_elapsed") {
		t.Fatalf("Run = %v, want the max_elapsed failure", err)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("stopped after %v, before errors.retry.max_elapsed (3s)", took)
	}
	s := wk.w.Stats(plan.Name())
	if s.DLQ != 0 {
		t.Errorf("%d records went to the DLQ", s.DLQ)
	}
	if c := readBreaker(t, wk, plan.Name(), "registry"); c.open == 0 {
		t.Errorf("the registry breaker never opened: %+v", c)
	}
	ids, _ := checkAvroSink(t, st.Brokers(), "sync.reg-gone")
	if len(ids) != 100 {
		t.Errorf("%d events in the sink, want the 100 of the first schema", len(ids))
	}
}
