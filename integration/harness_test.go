package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/topology"
)

// cluster starts an in-process kfake broker with the given topics.
func cluster(t *testing.T, partitions int32, topics ...string) *embedded.Stack {
	t.Helper()
	st, err := embedded.Start(embedded.Options{Topics: topics, Partitions: partitions, NoRegistry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func mustPlan(t *testing.T, doc string) *topology.Plan {
	t.Helper()
	p, err := topology.Parse(t.Name()+".yaml", []byte(doc))
	if err != nil {
		t.Fatalf("topology: %v", err)
	}
	return p
}

// worker is one in-process cdcsync worker.
type worker struct {
	w      *processor.Worker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func startWorker(t *testing.T, brokers []string, name string, plans ...*topology.Plan) *worker {
	t.Helper()
	return startWorkerWithRegistry(t, brokers, "", name, plans...)
}

// startWorkerWithRegistry is startWorker with a schema registry URL, for
// Avro topologies.
func startWorkerWithRegistry(t *testing.T, brokers []string, registryURL, name string, plans ...*topology.Plan) *worker {
	t.Helper()
	cfg := processor.DefaultConfig()
	cfg.Brokers = brokers
	cfg.RegistryURL = registryURL
	cfg.ClientID = name
	cfg.HTTPAddr = ""
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.Heartbeat = 500 * time.Millisecond
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).With(zap.String("worker", name))
	w, err := processor.New(cfg, plans, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { _ = wk.stop() })
	return wk
}

// wait returns Run's error once the worker stops by itself.
func (w *worker) wait(timeout time.Duration) (error, bool) {
	select {
	case err := <-w.done:
		w.once.Do(func() { w.err = err })
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// stop shuts the worker down softly and returns Run's error.
func (w *worker) stop() error {
	w.once.Do(func() {
		w.cancel()
		select {
		case w.err = <-w.done:
		case <-time.After(60 * time.Second):
			w.err = fmt.Errorf("worker did not stop within 60s")
		}
	})
	return w.err
}

func produce(t *testing.T, brokers []string, recs []demo.Record) {
	t.Helper()
	if err := demo.Produce(brokers, recs); err != nil {
		t.Fatal(err)
	}
}

func waitProcessed(t *testing.T, brokers []string, timeout time.Duration, plans ...*topology.Plan) {
	t.Helper()
	if err := demo.WaitProcessed(context.Background(), brokers, plans, timeout); err != nil {
		t.Fatal(err)
	}
}

func newClient(t *testing.T, brokers []string) sarama.Client {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	c, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads every record of topic up to the high-water marks.
func readAll(t *testing.T, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	c := newClient(t, brokers)
	msgs, err := demo.ReadTopic(context.Background(), c, topic, 0)
	if err != nil {
		t.Fatalf("reading %s: %v", topic, err)
	}
	return msgs
}

// sinkRecord is the part of a sink value the tests check.
type sinkRecord struct {
	ID       string                     `json:"id"`
	Type     string                     `json:"type"`
	Op       string                     `json:"op"`
	Key      map[string]json.RawMessage `json:"key"`
	Fields   map[string]json.RawMessage `json:"fields"`
	Position map[string]json.RawMessage `json:"position"`
}

func decodeSink(t *testing.T, m *sarama.ConsumerMessage) sinkRecord {
	t.Helper()
	var r sinkRecord
	if err := json.Unmarshal(m.Value, &r); err != nil {
		t.Fatalf("sink record %d/%d is not JSON: %v: %s", m.Partition, m.Offset, err, m.Value)
	}
	return r
}

// workload is a stream of updates over a set of keys, with a share of
// redelivered records. Every unique change sets the phone to
// "seq-<key>-<n>", n counting the changes of that key from 1, so the
// sink's per-key order can be checked.
type workload struct {
	Records []demo.Record
	Unique  int
	Dups    int
	PerKey  map[int64]int // changes per key
}

func makeWorkload(src *demo.Source, keys, n int, dupRatio float64, seed uint64) *workload {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	w := &workload{PerKey: map[int64]int{}}
	state := map[int64]*demo.Contact{}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for len(w.Records) < n {
		if len(w.Records) > 0 && rng.Float64() < dupRatio {
			w.Records = append(w.Records, w.Records[rng.IntN(len(w.Records))])
			w.Dups++
			continue
		}
		id := int64(rng.IntN(keys)) + 1
		before := state[id]
		w.PerKey[id]++
		after := demo.Contact{ID: id, FirstName: "Ada", LastName: "Lovelace", Email: fmt.Sprintf("c%d@example.com", id),
			Phone: fmt.Sprintf("seq-%d-%d", id, w.PerKey[id]), Address: "1 Main St", City: "Lyon",
			Balance: int64(len(w.Records)), UpdatedAt: at.Add(time.Duration(len(w.Records)) * time.Second)}
		op := byte('u')
		if before == nil {
			op = 'c'
		}
		k, v := src.Change(op, before, &after)
		state[id] = &after
		w.Records = append(w.Records, demo.Record{Topic: src.Topic(), Key: k, Value: v})
		w.Unique++
	}
	return w
}

// checkExactlyOnce asserts that the sink holds every unique change of w
// exactly once, in per-key order.
func checkExactlyOnce(t *testing.T, msgs []*sarama.ConsumerMessage, w *workload) {
	t.Helper()
	seen := map[string]int{}
	last := map[string]int{}
	for _, m := range msgs {
		r := decodeSink(t, m)
		seen[r.ID]++
		var phone string
		if err := json.Unmarshal(r.Fields["phone"], &phone); err != nil {
			t.Fatalf("sink record without phone: %s", m.Value)
		}
		parts := strings.Split(phone, "-")
		if len(parts) != 3 {
			t.Fatalf("unexpected phone %q", phone)
		}
		n, _ := strconv.Atoi(parts[2])
		key := parts[1]
		if n <= last[key] {
			t.Errorf("key %s: change %d after change %d: per-key order broken (partition %d offset %d)", key, n, last[key], m.Partition, m.Offset)
		}
		last[key] = n
	}
	dups := 0
	for id, c := range seen {
		if c > 1 {
			dups++
			if dups <= 5 {
				t.Errorf("event %s appears %d times in the sink", id, c)
			}
		}
	}
	if len(seen) != w.Unique {
		t.Errorf("sink holds %d distinct events, want %d (records %d, duplicates %d)", len(seen), w.Unique, len(w.Records), w.Dups)
	}
	for key, n := range w.PerKey {
		if got := last[strconv.FormatInt(key, 10)]; got != n {
			t.Errorf("key %d: last change in the sink is %d, want %d", key, got, n)
			break
		}
	}
	if dups > 0 {
		t.Errorf("%d events appear more than once", dups)
	}
}

const contactsTopology = `name: %s
systems: [erp, crm]
source: {topics: [%s], system: erp, format: debezium-json}
authority:
  owners: {first_name: crm, last_name: crm, email: crm}
  default_owner: erp
sink: {topic: '%s', key: [id]}
`
