package integration

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/topology"
)

// startObservedWorker is startWorker with the worker's log lines (Info and
// above) kept for the test to check.
func startObservedWorker(t *testing.T, brokers []string, name string, plans ...*topology.Plan) (*worker, *observer.ObservedLogs) {
	t.Helper()
	cfg := processor.DefaultConfig()
	cfg.Brokers = brokers
	cfg.ClientID = name
	cfg.HTTPAddr = ""
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.Heartbeat = 500 * time.Millisecond
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core())).With(zap.String("worker", name))
	w, err := processor.New(cfg, plans, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { _ = wk.stop() })
	return wk, logs
}

// partitionsOf returns the partition count of each topic, 0 for a missing one.
func partitionsOf(t *testing.T, brokers []string, topics ...string) map[string]int {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	md, err := admin.DescribeTopics(topics)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range md {
		out[m.Name] = len(m.Partitions)
	}
	return out
}

// Regression: sarama's metadata requests ask the broker to auto-create
// unknown topics, so a broker with auto.create.topics.enable=true created
// the sink and DLQ topics with num.partitions=1 before cdcsync could create
// them with the source's count. This broker auto-creates with 1 partition,
// as Kafka does by default: the sink and DLQ must still get the source's 4,
// cdcsync must log their creation, and no client may ask for auto-creation.
func TestKfakeTopicsNotAutoCreated(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1),
		kfake.SeedTopics(4, src.Topic()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	var asked, metadata atomic.Int64
	kc.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		metadata.Add(1)
		if r := req.(*kmsg.MetadataRequest); r.AllowAutoTopicCreation && len(r.Topics) > 0 {
			asked.Add(1)
		}
		return nil, nil, false
	})
	brokers := kc.ListenAddrs()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "noauto", src.Topic(), "sync.noauto"))
	w := makeWorkload(src, 40, 200, 0, 21)
	recs := append([]demo.Record{{Topic: src.Topic(), Key: []byte(`{"id":1}`), Value: []byte(`{"not debezium"`)}}, w.Records...)
	produce(t, brokers, recs)

	wk, logs := startObservedWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	got := partitionsOf(t, brokers, "sync.noauto", string(plan.DLQTopic()))
	for topic, n := range got {
		if n != 4 {
			t.Errorf("%s has %d partitions, want the source's 4", topic, n)
		}
	}
	for _, topic := range []string{"sync.noauto", string(plan.DLQTopic())} {
		if logs.FilterMessage("created topic").FilterField(zap.String("topic", topic)).FilterField(zap.Int32("partitions", 4)).Len() != 1 {
			t.Errorf("no \"created topic\" log line for %s with 4 partitions", topic)
		}
	}
	if metadata.Load() == 0 {
		t.Fatal("no metadata request observed: the test checked nothing")
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("%d of %d metadata requests asked the broker to auto-create topics", n, metadata.Load())
	}
	checkExactlyOnce(t, readAll(t, brokers, "sync.noauto"), w)
	if n := len(readAll(t, brokers, string(plan.DLQTopic()))); n != 1 {
		t.Errorf("DLQ holds %d records, want the 1 poison record", n)
	}
}

// An existing sink topic with another partition count than the source is
// used as it is, with one warning that states the consequence.
func TestKfakeTopicsExistingSinkPartitionMismatch(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	if err := st.Kafka.CreateTopic("sync.mismatch2", 2, nil); err != nil {
		t.Fatal(err)
	}
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "mismatch2", src.Topic(), "sync.mismatch2"))
	w := makeWorkload(src, 40, 300, 0, 22)
	produce(t, brokers, w.Records)
	wk, logs := startObservedWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	warned := logs.FilterMessage("existing topic does not have the source's partition count; cdcsync uses it as it is").
		FilterField(zap.String("topic", "sync.mismatch2")).All()
	if len(warned) != 1 {
		t.Fatalf("%d partition-count warnings for sync.mismatch2, want exactly 1", len(warned))
	}
	fields := warned[0].ContextMap()
	if fmt.Sprint(fields["partitions"]) != "2" || fmt.Sprint(fields["source_partitions"]) != "4" ||
		!strings.Contains(fmt.Sprint(fields["consequence"]), "per-key order") || !strings.Contains(fmt.Sprint(fields["consequence"]), "murmur2") {
		t.Errorf("warning fields %v: want the counts 2 and 4 and the consequence for key placement and per-key order", fields)
	}
	msgs := readAll(t, brokers, "sync.mismatch2")
	checkExactlyOnce(t, msgs, w)
	if got := partitionsOf(t, brokers, "sync.mismatch2")["sync.mismatch2"]; got != 2 {
		t.Errorf("the sink topic now has %d partitions; cdcsync must leave an existing topic as it is", got)
	}
}

// Regression: an expanded sink topic that Kafka refuses (illegal
// characters, too long, "." or empty, colliding with an existing name) or
// that is the topology's own DLQ, ledger or source topic was retried
// forever as "invalid topic", and some were even created. Each now goes
// to the DLQ with stage route, nothing is created for them, and the
// records after them still flow.
func TestKfakeSinkTopicNames(t *testing.T) {
	const topic = "erp.public.contacts"
	st := cluster(t, 1, topic)
	brokers := st.Brokers()
	if err := st.Kafka.CreateTopic("col.x", 1, nil); err != nil {
		t.Fatal(err)
	}
	plan := mustPlan(t, fmt.Sprintf(`name: names
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-json}
sink: {topic: '{table}', key: [id]}
`, topic))
	bad := []struct{ table, want string }{
		{"col_x", "collides with existing topic col.x"},
		{"bad/name", "not a legal topic name"},
		{"has space", "not a legal topic name"},
		{"tablé", "not a legal topic name"},
		{strings.Repeat("t", 250), "not a legal topic name"},
		{".", "not a legal topic name"},
		{"", "not a legal topic name"},
		{"dlq.names", "the topology's DLQ topic"},
		{"names.ledger", "the topology's ledger topic"},
		{"names_ledger", "collides with the topology's ledger topic"},
		{topic, "source topic of this topology"},
	}
	var recs []demo.Record
	good := func(id int64) {
		s := demo.NewSource("erp", "erp", false)
		k, v := s.Change('c', nil, &demo.Contact{ID: id, FirstName: "Ada"})
		recs = append(recs, demo.Record{Topic: topic, Key: k, Value: v})
	}
	good(1)
	for i, b := range bad {
		s := demo.NewSource("erp", "erp", false)
		s.Table = b.table
		k, v := s.Change('c', nil, &demo.Contact{ID: int64(100 + i), FirstName: "Bad"})
		recs = append(recs, demo.Record{Topic: topic, Key: k, Value: v})
	}
	good(2)
	produce(t, brokers, recs)
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	entries, err := dlq.Read(t.Context(), newClient(t, brokers), string(plan.DLQTopic()), dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(bad) {
		t.Fatalf("DLQ holds %d records, want %d", len(entries), len(bad))
	}
	for i, e := range entries {
		if e.Stage != dlq.StageRoute || e.Offset != int64(1+i) || !strings.Contains(e.Message, bad[i].want) {
			t.Errorf("table %.20q: DLQ stage %q offset %d message %q; want stage route, offset %d and %q",
				bad[i].table, e.Stage, e.Offset, e.Message, 1+i, bad[i].want)
		}
	}
	if msgs := readAll(t, brokers, "contacts"); len(msgs) != 2 {
		t.Errorf("sink holds %d records, want the 2 good ones around the bad ones", len(msgs))
	}
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	for name := range topics {
		switch name {
		case topic, "col.x", "contacts", string(plan.DLQTopic()), string(plan.LedgerTopic()), processor.DefaultControlTopic:
		default:
			t.Errorf("unexpected topic %q was created", name)
		}
	}
	if s := wk.w.Stats(plan.Name()); s.DLQ != int64(len(bad)) || s.Restarts != 0 {
		t.Errorf("stats %+v: want %d DLQ records and no session restart", s, len(bad))
	}
}

// Sink topics that a source topic's name decides are created at start,
// before any record is read, so the claim goroutines never call the admin
// client for them (issue 10: topics are created outside the hot path). A
// template with {db} is left to the first record: a PostgreSQL topic does
// not name its database, and a guess would create a topic nothing writes.
func TestKfakeSinkTopicsPreparedAtStart(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	table := src.Topic()[strings.LastIndex(src.Topic(), ".")+1:]
	byTable := mustPlan(t, fmt.Sprintf(contactsTopology, "prep-table", src.Topic(), "sync.prep.{table}"))
	byDB := mustPlan(t, fmt.Sprintf(contactsTopology, "prep-db", src.Topic(), "sync.prepdb.{db}.{table}"))
	wk, logs := startObservedWorker(t, brokers, "w1", byTable, byDB)
	want := "sync.prep." + table
	deadline := time.Now().Add(30 * time.Second)
	for partitionsOf(t, brokers, want)[want] != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not created at start with the source's 4 partitions (no record was produced)", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	for _, e := range logs.FilterMessage("created topic").All() {
		if topic := fmt.Sprint(e.ContextMap()["topic"]); strings.HasPrefix(topic, "sync.prepdb.") {
			t.Errorf("created %s before any record: a {db} template must wait for the records", topic)
		}
	}
}
