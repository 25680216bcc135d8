package integration

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/topology"
)

// silence holds requests of one kind at a kfake cluster, as a leader that
// stopped answering does (a SIGSTOPped or cut-off broker): while it is on,
// every Fetch naming topic (or every ListOffsets, for ListOffsets) sleeps
// until it is turned off. Other requests on the same connection wait
// behind a held one, as on a real broker.
type silence struct {
	kc    *kfake.Cluster
	mu    sync.Mutex
	on    bool
	wake  chan struct{}
	held  atomic.Int64 // requests held so far
	reqs  atomic.Int64 // requests of the kind seen so far
	topic string
}

func newSilence(kc *kfake.Cluster, key kmsg.Key, topic string) *silence {
	s := &silence{kc: kc, topic: topic}
	kc.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		s.reqs.Add(1)
		if fr, ok := req.(*kmsg.FetchRequest); ok && !s.names(fr) {
			return nil, nil, false
		}
		s.mu.Lock()
		on, wake := s.on, s.wake
		s.mu.Unlock()
		if !on {
			return nil, nil, false
		}
		s.held.Add(1)
		kc.SleepControl(func() { <-wake })
		return nil, nil, false // then handled as usual
	})
	return s
}

func (s *silence) names(fr *kmsg.FetchRequest) bool {
	id := s.kc.TopicInfo(s.topic).TopicID
	for _, t := range fr.Topics {
		if t.Topic == s.topic || t.TopicID == id {
			return true
		}
	}
	return false
}

func (s *silence) start() {
	s.mu.Lock()
	s.on, s.wake = true, make(chan struct{})
	s.mu.Unlock()
}

func (s *silence) stop() {
	s.mu.Lock()
	if s.on {
		s.on = false
		close(s.wake)
	}
	s.mu.Unlock()
}

// startLagWorker is startWorker with a session timeout long enough that
// a held fetch (the group's heartbeats wait behind it on the same
// connection) does not cost the worker its membership.
func startLagWorker(t *testing.T, brokers []string, name string, plan *topology.Plan) *worker {
	t.Helper()
	cfg := processor.DefaultConfig()
	cfg.Brokers = brokers
	cfg.ClientID = name
	cfg.HTTPAddr = ""
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 30 * time.Second
	cfg.Heartbeat = time.Second
	w, err := processor.New(cfg, []*topology.Plan{plan}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).With(zap.String("worker", name)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { _ = wk.stop() })
	return wk
}

// lagOf reads partition 0's lag gauges and its status line.
func lagOf(t *testing.T, wk *worker, plan *topology.Plan, topic string) (records, seconds float64, st api.Partition) {
	t.Helper()
	key := topic + "/0"
	rec, ok := gauges(t, wk, "cdcsync_lag_records")[key]
	if !ok {
		rec = -1
	}
	sec := gauges(t, wk, "cdcsync_lag_seconds")[key]
	s, err := wk.w.Status(t.Context(), plan.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Partitions {
		if p.Topic == topic && p.Partition == 0 {
			st = p
		}
	}
	return rec, sec, st
}

// caughtUp waits until partition 0 shows lag 0 and 0.
func caughtUp(t *testing.T, wk *worker, plan *topology.Plan, topic string, timeout time.Duration) {
	t.Helper()
	within(t, timeout, func() string {
		rec, sec, st := lagOf(t, wk, plan, topic)
		if rec != 0 || sec != 0 || st.LagRecords != 0 || st.LagUnknown {
			return fmt.Sprintf("lag_records %v, lag_seconds %v, status %+v; want 0 and 0", rec, sec, st)
		}
		return ""
	})
}

// holdFetches turns s on and waits until a fetch of the source is held:
// a fetch already waiting at the broker would otherwise still deliver.
func holdFetches(t *testing.T, s *silence) {
	t.Helper()
	before := s.held.Load()
	s.start()
	within(t, 5*time.Second, func() string {
		if s.held.Load() == before {
			return "no fetch of the source held yet"
		}
		return ""
	})
}

// Regression: a claim that fetched nothing for a second was taken as
// caught up, so while its leader stopped answering fetches the worker
// exported cdcsync_lag_records 0 and cdcsync_lag_seconds 0 although
// records piled up (docs/faults.md). Now: fetches held, 40 records
// produced -> lag_records exactly 40 within 5 s and lag_seconds growing,
// never back to 0 while held; fetches and the probes both held -> the
// figure is unknown (NaN, status lag_unknown) and lag_seconds is at least
// the 3 s since the last fetch and growing; released -> 0 again.
func TestKfakeLagSilentLeader(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 1, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "lag-silent", src.Topic(), "sync.lag-silent"))
	fetches := newSilence(st.Kafka, kmsg.Fetch, src.Topic())
	probes := newSilence(st.Kafka, kmsg.ListOffsets, "")
	defer fetches.stop()
	defer probes.stop()

	wk := startLagWorker(t, brokers, "w1", plan)
	produce(t, brokers, makeWorkload(src, 20, 100, 0, 31).Records)
	waitProcessed(t, brokers, time.Minute, plan)
	caughtUp(t, wk, plan, src.Topic(), 5*time.Second)

	// Fetches held: the records are at the leader, not at the worker.
	const n = 40
	holdFetches(t, fetches)
	produce(t, brokers, makeWorkload(src, 20, n, 0, 32).Records)
	var first float64
	within(t, 5*time.Second, func() string {
		rec, sec, s := lagOf(t, wk, plan, src.Topic())
		if rec != n || sec <= 0 || s.LagRecords != n || s.LagUnknown {
			return fmt.Sprintf("fetches held after %d new records: lag_records %v, lag_seconds %v, status %+v; want %d, above 0", n, rec, sec, s, n)
		}
		first = sec
		return ""
	})
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if rec, sec, _ := lagOf(t, wk, plan, src.Topic()); rec != n || sec < first {
			t.Fatalf("while fetches are held: lag_records %v (want %d), lag_seconds %v (was %v, must not fall)", rec, n, sec, first)
		}
	}
	if _, sec, _ := lagOf(t, wk, plan, src.Topic()); sec < first+1 {
		t.Errorf("lag_seconds grew from %v to %v in 1.5 s; want it growing with the wall clock", first, sec)
	}
	fetches.stop()
	waitProcessed(t, brokers, time.Minute, plan)
	caughtUp(t, wk, plan, src.Topic(), 5*time.Second)

	// Fetches and probes held: nothing says what the partition holds.
	probed := probes.reqs.Load()
	probes.start()
	holdFetches(t, fetches)
	produce(t, brokers, makeWorkload(src, 20, n, 0, 33).Records)
	// Within lagProbeWait (3 s) of the last answer the figure stands as
	// it was; then it is unknown, and stays so while the silence lasts.
	within(t, 8*time.Second, func() string {
		rec, sec, s := lagOf(t, wk, plan, src.Topic())
		if !math.IsNaN(rec) || sec < 3 || !s.LagUnknown {
			return fmt.Sprintf("fetches and probes held: lag_records %v, lag_seconds %v, status %+v; want NaN, at least 3 s, lag_unknown", rec, sec, s)
		}
		first = sec
		return ""
	})
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if rec, sec, s := lagOf(t, wk, plan, src.Topic()); !math.IsNaN(rec) || sec < first || !s.LagUnknown {
			t.Fatalf("while fetches and probes are held: lag_records %v, lag_seconds %v (was %v), status %+v; want NaN, not falling, lag_unknown", rec, sec, first, s)
		}
	}
	if _, sec, _ := lagOf(t, wk, plan, src.Topic()); sec < first+1 {
		t.Errorf("lag_seconds grew from %v to %v in 1.5 s; want it growing with the wall clock", first, sec)
	}
	if probes.reqs.Load() == probed {
		t.Fatal("no probe reached the broker: the unknown state tested nothing")
	}
	probes.stop()
	fetches.stop()
	waitProcessed(t, brokers, time.Minute, plan)
	caughtUp(t, wk, plan, src.Topic(), 5*time.Second)
}

// Regression: the probe of a silent claim must ask at the consumer's
// isolation level. Under exactly_once (read_committed) records of an open
// transaction cannot be given to the worker, so they are no lag; once
// committed while fetches are held, they are (lag counts offsets, markers
// included). sarama's Client.GetOffset asks
// read_uncommitted, which would count the open transaction too.
func TestKfakeLagSilentLeaderReadCommitted(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 1, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(eosTopology, "lag-silent-eos", src.Topic(), "sync.lag-silent-eos"))
	fetches := newSilence(st.Kafka, kmsg.Fetch, src.Topic())
	defer fetches.stop()

	wk := startLagWorker(t, brokers, "w1", plan)
	produceTransactional(t, brokers, makeWorkload(src, 20, 100, 0, 34).Records, 25)
	within(t, time.Minute, func() string {
		if s := wk.w.Stats(plan.Name()); s.Completed < 100 {
			return fmt.Sprintf("%d of 100 records committed", s.Completed)
		}
		return ""
	})
	caughtUp(t, wk, plan, src.Topic(), 5*time.Second)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "source-open-" + t.Name()
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const n = 30
	holdFetches(t, fetches)
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for _, r := range makeWorkload(src, 20, n, 0, 35).Records {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value)})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	// Open transaction: probes answer the last stable offset, unchanged.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if rec, sec, s := lagOf(t, wk, plan, src.Topic()); rec != 0 || sec != 0 || s.LagUnknown {
			t.Fatalf("records of an open transaction count as lag: lag_records %v, lag_seconds %v, status %+v; want 0 and 0", rec, sec, s)
		}
	}
	if err := p.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, func() string {
		// Lag counts offsets: the n records and their commit marker,
		// and the previous transaction's marker when the committed
		// offset stands before it.
		if rec, sec, s := lagOf(t, wk, plan, src.Topic()); rec < n+1 || rec > n+2 || sec <= 0 || float64(s.LagRecords) != rec {
			return fmt.Sprintf("transaction committed, fetches held: lag_records %v, lag_seconds %v, status %+v; want %d or %d, above 0", rec, sec, s, n+1, n+2)
		}
		return ""
	})
	fetches.stop()
	within(t, time.Minute, func() string {
		if s := wk.w.Stats(plan.Name()); s.Completed < 100+n {
			return fmt.Sprintf("%d of %d records committed", s.Completed, 100+n)
		}
		return ""
	})
	caughtUp(t, wk, plan, src.Topic(), 5*time.Second)
}

// Regression: the probe's answer must be compared with the high-water
// mark of the consumer's last fetch response, not only with that of the
// last record it read. Under at_least_once (read_uncommitted) a
// transaction's records are read before it commits; its commit marker
// then reaches the consumer in a response without any record, so the
// probed end stays one offset past the last record read, and the drained
// partition would show lag 1 for as long as the source stays quiet.
func TestKfakeLagZeroAfterMarkersAtLeastOnce(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 1, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "lag-markers-alo", src.Topic(), "sync.lag-markers-alo"))
	wk := startLagWorker(t, brokers, "w1", plan)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "source-" + t.Name()
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for _, r := range makeWorkload(src, 20, 50, 0, 36).Records {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value)})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	within(t, time.Minute, func() string {
		if s := wk.w.Stats(plan.Name()); s.Completed < 50 {
			return fmt.Sprintf("%d of 50 uncommitted records done", s.Completed)
		}
		return ""
	})
	if err := p.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, wk, plan, src.Topic(), 5*time.Second)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if rec, sec, s := lagOf(t, wk, plan, src.Topic()); rec != 0 || sec != 0 || s.LagUnknown {
			t.Fatalf("drained partition: lag_records %v, lag_seconds %v, status %+v; want 0 and 0", rec, sec, s)
		}
	}
}
