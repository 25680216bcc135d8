package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/processor/route"
	"github.com/cdcsync/cdcsync/topology"
)

// gauges returns the series of a gauge family in a worker's registry,
// keyed by their labels other than topology ("topic/partition").
func gauges(t *testing.T, w *worker, name string) map[string]float64 {
	t.Helper()
	fams, err := w.w.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var topic, part string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "topic":
					topic = l.GetValue()
				case "partition":
					part = l.GetValue()
				}
			}
			out[topic+"/"+part] = m.GetGauge().GetValue()
		}
	}
	return out
}

// within polls cond every 100ms until it returns "" or timeout
// passes, then fails with its last answer.
func within(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Regression (issue 10): the lag gauges lied. They were sampled at offsets
// divisible by 256 only, so a drained partition kept lag_records 99 and a
// frozen lag_seconds; a partition moved to another worker kept its series
// on the old one (the sum over workers was wrong); and a stuck partition's
// lag_seconds froze instead of growing, so no "consumer stuck" alert
// could fire. Now: drained -> every series 0 within 2 s; moved -> only the
// new owner exports it; stalled (the sink refuses produce) -> lag_seconds
// grows.
func TestKfakeLagTellsTheTruth(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "lag", src.Topic(), "sync.lag"))
	w := makeWorkload(src, 200, 3000, 0.05, 21) // 3000 records: most partitions end at an offset not divisible by 256

	w1 := startWorker(t, brokers, "w1", plan)
	produce(t, brokers, w.Records)
	waitProcessed(t, brokers, 2*time.Minute, plan)

	// Drained: every lag_records series is 0 within 2 s.
	within(t, 2*time.Second, func() string {
		lag, age := gauges(t, w1, "cdcsync_lag_records"), gauges(t, w1, "cdcsync_lag_seconds")
		if len(lag) != 4 {
			return fmt.Sprintf("w1 exports lag_records for %d partitions, want 4: %v", len(lag), lag)
		}
		for k, v := range lag {
			if v != 0 || age[k] != 0 {
				return fmt.Sprintf("drained partition %s: lag_records %v, lag_seconds %v; want 0 and 0", k, v, age[k])
			}
		}
		return ""
	})

	// Moved: a second worker takes some partitions; the old worker no
	// longer exports them, and no partition is exported twice.
	w2 := startWorker(t, brokers, "w2", plan)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := st.Kafka.WaitGroupStable(ctx, string(plan.Group()), 2); err != nil {
		t.Fatalf("the group did not settle with 2 members: %v", err)
	}
	within(t, 10*time.Second, func() string {
		l1, l2 := gauges(t, w1, "cdcsync_lag_records"), gauges(t, w2, "cdcsync_lag_records")
		if len(l1) == 0 || len(l2) == 0 || len(l1)+len(l2) != 4 {
			return fmt.Sprintf("series after the move: w1 %v, w2 %v; want the 4 partitions split between them", l1, l2)
		}
		for k := range l1 {
			if _, ok := l2[k]; ok {
				return fmt.Sprintf("partition %s exported by both workers: w1 %v, w2 %v", k, l1, l2)
			}
		}
		for k, v := range l2 {
			if v != 0 || l1[k] != 0 {
				return fmt.Sprintf("caught-up partition %s shows lag %v", k, v)
			}
		}
		return ""
	})

	// Stalled: the broker refuses every produce to the sink topic. The
	// new records are consumed but never done, and their lag_seconds
	// grows with the wall clock.
	var stalled atomic.Bool
	var refused atomic.Int64
	st.Kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		st.Kafka.KeepControl()
		if !stalled.Load() {
			return nil, nil, false
		}
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == "sync.lag" {
				refused.Add(1)
				return nil, errors.New("sink unavailable"), true
			}
		}
		return nil, nil, false
	})
	stalled.Store(true)
	more := makeWorkload(src, 200, 400, 0, 22)
	produce(t, brokers, more.Records)
	ages := func() map[string]float64 {
		out := gauges(t, w1, "cdcsync_lag_seconds")
		for k, v := range gauges(t, w2, "cdcsync_lag_seconds") {
			out[k] = v
		}
		return out
	}
	var first map[string]float64
	within(t, 10*time.Second, func() string {
		first = ages()
		for _, v := range first {
			if v > 0 {
				return ""
			}
		}
		return fmt.Sprintf("no partition shows a lag_seconds above 0 while the sink refuses produce: %v", first)
	})
	time.Sleep(3 * time.Second)
	later := ages()
	grew := 0
	for k, v := range first {
		if v > 0 && later[k] >= v+2 {
			grew++
		}
	}
	if grew == 0 {
		t.Errorf("lag_seconds did not grow by the 3 s the partitions were stuck: before %v, after %v", first, later)
	}
	if refused.Load() == 0 {
		t.Fatal("no produce to the sink was refused: the stall tested nothing")
	}
	t.Logf("stalled lag_seconds: %v, 3 s later %v (%d refused produce requests)", first, later, refused.Load())
	stalled.Store(false)
	waitProcessed(t, brokers, 2*time.Minute, plan)
	within(t, 5*time.Second, func() string {
		for _, wk := range []*worker{w1, w2} {
			for k, v := range gauges(t, wk, "cdcsync_lag_records") {
				if v != 0 {
					return fmt.Sprintf("after the stall ended and the topic drained, %s still shows lag %v", k, v)
				}
			}
		}
		return ""
	})
}

// startHTTPWorker is startWorker with the health and metrics server on a
// free local port.
func startHTTPWorker(t *testing.T, brokers []string, name string, plans ...*topology.Plan) (*worker, string) {
	t.Helper()
	cfg := processor.DefaultConfig()
	cfg.Brokers = brokers
	cfg.ClientID = name
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.Heartbeat = 500 * time.Millisecond
	w, err := processor.New(cfg, plans, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { _ = wk.stop() })
	var addr string
	within(t, 10*time.Second, func() string {
		if addr = w.HTTPAddr(); addr == "" {
			return "the HTTP server did not start"
		}
		return ""
	})
	return wk, "http://" + addr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Regression (issue 10): /healthz answered 200 after a topology had
// stopped fatally, so an orchestrator never restarted the worker; /readyz
// said only "not ready", not which topology or why. Now /healthz is 503
// and names the stopped topology and its error, /readyz names each
// topology that is not ready with the reason, and the healthy topology
// keeps running and is not named.
func TestKfakeHealthzAfterFatalStop(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	good := mustPlan(t, fmt.Sprintf(contactsTopology, "health-good", src.Topic(), "sync.health"))
	bad := mustPlan(t, fmt.Sprintf(contactsTopology, "health-bad", src.Topic(), "sync.health-bad"))
	// This one waits for a source topic Debezium has not created yet: not
	// ready, but healthy.
	waiting := mustPlan(t, fmt.Sprintf(contactsTopology, "health-wait", "crm.public.missing", "sync.health-wait"))
	// The bad topology's ledger has the wrong partition count: a fatal
	// stop at start.
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(string(bad.LedgerTopic()), &sarama.TopicDetail{NumPartitions: 5, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	w := makeWorkload(src, 50, 300, 0, 23)
	produce(t, brokers, w.Records)
	wk, base := startHTTPWorker(t, brokers, "w1", good, bad, waiting)

	within(t, 30*time.Second, func() string {
		code, body := get(t, base+"/healthz")
		if code != http.StatusServiceUnavailable {
			return fmt.Sprintf("/healthz %d %q, want 503 once health-bad stopped", code, body)
		}
		for _, want := range []string{"topology health-bad stopped", string(bad.LedgerTopic())} {
			if !strings.Contains(body, want) {
				return fmt.Sprintf("/healthz body %q does not say %q", body, want)
			}
		}
		if strings.Contains(body, "health-good") || strings.Contains(body, "health-wait") {
			return fmt.Sprintf("/healthz names a healthy topology: %q", body)
		}
		return ""
	})
	waitProcessed(t, brokers, time.Minute, good)
	within(t, 10*time.Second, func() string {
		code, body := get(t, base+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "topology health-bad not ready: stopped") {
			return fmt.Sprintf("/readyz %d %q, want 503 naming health-bad and why", code, body)
		}
		if !strings.Contains(body, "topology health-wait not ready: preparing failed, retrying") || !strings.Contains(body, "matches no existing topic yet") {
			return fmt.Sprintf("/readyz %q does not say that health-wait waits for its source topic", body)
		}
		if strings.Contains(body, "health-good") {
			return fmt.Sprintf("/readyz names the consuming topology health-good: %q", body)
		}
		return ""
	})
	if err := wk.w.Health(); !errors.Is(err, ledger.ErrPartitionMismatch) {
		t.Errorf("Health() = %v, want the ledger mismatch", err)
	}
	if err := wk.stop(); !errors.Is(err, ledger.ErrPartitionMismatch) {
		t.Errorf("Run returned %v, want the stopped topology's ledger mismatch", err)
	}
}

// produceTransactional writes records in transactions of size n, as
// Debezium with exactly-once source support does: every commit marker
// takes an offset that no consumer is given.
func produceTransactional(t *testing.T, brokers []string, recs []demo.Record, n int) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "source-" + t.Name()
	cfg.Producer.Partitioner = route.NewJavaPartitioner
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < len(recs); i += n {
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		var msgs []*sarama.ProducerMessage
		for _, r := range recs[i:min(i+n, len(recs))] {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value)})
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
		if err := p.CommitTxn(); err != nil {
			t.Fatal(err)
		}
	}
}

// Regression (issue 10): on a source written in transactions, the last
// delivered offset is never the high-water mark minus one (the commit
// marker takes the last offset), so a lag computed as "high-water mark
// minus the last delivered offset minus one" never reached 0 on a drained
// partition. Under exactly_once (read_committed) the drained partitions
// show lag 0 within 2 s.
func TestKfakeLagZeroAfterTransactionMarkers(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(eosTopology, "lag-markers", src.Topic(), "sync.lag-markers"))
	w := makeWorkload(src, 50, 400, 0, 24)
	wk := startWorker(t, brokers, "w1", plan)
	produceTransactional(t, brokers, w.Records, 37)
	within(t, time.Minute, func() string {
		if s := wk.w.Stats(plan.Name()); s.Completed < int64(len(w.Records)) {
			return fmt.Sprintf("%d of %d records committed", s.Completed, len(w.Records))
		}
		return ""
	})
	within(t, 2*time.Second, func() string {
		lag, age := gauges(t, wk, "cdcsync_lag_records"), gauges(t, wk, "cdcsync_lag_seconds")
		if len(lag) != 2 {
			return fmt.Sprintf("lag_records for %d partitions, want 2: %v", len(lag), lag)
		}
		for k, v := range lag {
			if v != 0 || age[k] != 0 {
				return fmt.Sprintf("drained partition %s: lag_records %v, lag_seconds %v; want 0 and 0", k, v, age[k])
			}
		}
		return ""
	})
}

// Regression (issue 10): when the soft shutdown overran shutdown_timeout,
// Worker.Run returned its timeout error while the pipeline kept running
// (still flushing, still a member of its group), and nothing waited for
// the HTTP server. Now Run reports the timeout only after every pipeline
// has stopped: when it returns, the group has no member and the HTTP
// server no longer answers.
func TestKfakeRunWaitsForPipelinesAfterShutdownTimeout(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	// exactly_once: at shutdown the claim commits its open transaction,
	// and the commit waits for the sink writes the broker refuses.
	plan := mustPlan(t, fmt.Sprintf(eosTopology, "overrun", src.Topic(), "sync.overrun"))

	cfg := processor.DefaultConfig()
	cfg.Brokers = brokers
	cfg.ClientID = "w1"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.Heartbeat = 500 * time.Millisecond
	cfg.ShutdownTimeout = 200 * time.Millisecond
	w, err := processor.New(cfg, []*topology.Plan{plan}, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	// The sink refuses every produce: records stay in flight, and the
	// commit at shutdown retries them for far longer than
	// shutdown_timeout + 5 s.
	var stalled atomic.Bool
	st.Kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		st.Kafka.KeepControl()
		if !stalled.Load() {
			return nil, nil, false
		}
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == "sync.overrun" {
				return nil, errors.New("sink unavailable"), true
			}
		}
		return nil, nil, false
	})
	stalled.Store(true)
	produce(t, brokers, makeWorkload(src, 20, 50, 0, 25).Records)
	within(t, 30*time.Second, func() string {
		if w.Stats(plan.Name()).In == 0 || !w.Ready() {
			return "no record consumed yet"
		}
		return ""
	})
	base := "http://" + w.HTTPAddr()
	cancel()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return within 2 minutes")
	}
	if runErr == nil || !strings.Contains(runErr.Error(), "soft shutdown timed out") {
		t.Errorf("Run = %v, want the soft shutdown timeout reported", runErr)
	}
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := admin.DescribeConsumerGroups([]string{string(plan.Group())})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if len(g.Members) != 0 {
			t.Errorf("Run returned while the pipeline was still a member of %s: %d member(s)", g.GroupId, len(g.Members))
		}
	}
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("the HTTP server still answers after Run returned")
	}
}
