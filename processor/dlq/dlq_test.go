package dlq

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcsync/cdcsync/processor/route"
)

const (
	srcTopic = "erp.public.contacts"
	dlqTopic = "dlq.contacts"
)

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1),
		kfake.SeedTopics(4, srcTopic), kfake.SeedTopics(3, dlqTopic), kfake.SeedTopics(2, "empty")}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = "dlq-test"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = route.NewJavaPartitioner
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	return cfg
}

func newClient(t *testing.T, c *kfake.Cluster, cfg *sarama.Config) sarama.Client {
	t.Helper()
	cl, err := sarama.NewClient(c.ListenAddrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func newProducer(t *testing.T, cl sarama.Client) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// consumeOne reads the record at topic/partition/offset.
func consumeOne(t *testing.T, cl sarama.Client, topic string, p int32, off int64) *sarama.ConsumerMessage {
	t.Helper()
	cons, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, p, off)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no record at %s/%d@%d", topic, p, off)
		return nil
	}
}

type source struct {
	key, value []byte
	partition  int32
	headers    []sarama.RecordHeader
}

// produceSources writes records to the source topic with the manual
// partitioner and returns them as consumed, with offsets.
func produceSources(t *testing.T, c *kfake.Cluster, srcs []source) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := testConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cl := newClient(t, c, cfg)
	prod := newProducer(t, cl)
	var out []*sarama.ConsumerMessage
	ts := time.UnixMilli(1_760_000_000_000)
	for i, s := range srcs {
		msg := &sarama.ProducerMessage{Topic: srcTopic, Partition: s.partition, Headers: s.headers,
			Timestamp: ts.Add(time.Duration(i) * time.Second)}
		if s.key != nil {
			msg.Key = sarama.ByteEncoder(s.key)
		}
		if s.value != nil {
			msg.Value = sarama.ByteEncoder(s.value)
		}
		p, off, err := prod.SendMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, consumeOne(t, cl, srcTopic, p, off))
	}
	return out
}

var (
	t0       = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	failures = []Failure{
		{Topology: "contacts-erp-to-crm", Stage: StageDecode, Class: "github.com/cdcsync/cdcsync/processor/cdc",
			ExceptionClass: "cdc.ErrMalformed", Message: "cdc: malformed record: value payload: unexpected end",
			Stack: "cdc.ErrMalformed\n  at decode\n  at handler", Attempts: 1, FirstFailure: t0, TaskID: "worker-1/0"},
		{Topology: "contacts-erp-to-crm", Stage: StageRoute, Class: "github.com/cdcsync/cdcsync/processor/route",
			ExceptionClass: "*route.KeyError", Message: `route: missing key field: "contact_id"`, Attempts: 1,
			FirstFailure: t0.Add(time.Minute), EventID: "00112233445566778899aabbccddeeff", SchemaID: 7, TaskID: "worker-1/1"},
		{Topology: "orders", Stage: StageAuthority, ExceptionClass: "authority.Violation", Message: "email not owned by erp",
			Attempts: 3, FirstFailure: t0.Add(2 * time.Minute)},
		{Topology: "orders", Stage: StageDecode, ExceptionClass: "cdc.ErrUnknownSchema", Message: "cdc: unknown schema 99",
			Attempts: 5, FirstFailure: t0.Add(3 * time.Minute), SchemaID: 99},
	}
)

func TestRecordReadParseRoundTrip(t *testing.T) {
	c := newCluster(t)
	srcs := produceSources(t, c, []source{
		{key: []byte(`{"contact_id":42}`), value: []byte(`{"payload":`), partition: 1,
			headers: []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("abc")}, {Key: []byte("dup"), Value: []byte("1")}, {Key: []byte("dup"), Value: []byte("2")}}},
		{key: []byte(`{"id":7}`), value: []byte{0, 0, 0, 0, 7, 0xff, 0x01}, partition: 0},
		{key: nil, value: []byte(`{"op":"u"}`), partition: 2},
		{key: nil, value: nil, partition: 3}, // a null-key tombstone
	})

	cl := newClient(t, c, testConfig())
	prod := newProducer(t, cl)
	type placed struct {
		p   int32
		off int64
	}
	var where []placed
	for i, src := range srcs {
		msg := Record(dlqTopic, src, failures[i])
		p, off, err := prod.SendMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		want := src.Partition % 3 // null keys keep the source partition number
		if src.Key != nil {
			want = route.Partition(src.Key, 3)
		}
		if p != want {
			t.Errorf("record %d went to DLQ partition %d, want %d", i, p, want)
		}
		where = append(where, placed{p, off})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries, err := Read(ctx, cl, dlqTopic, Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(srcs) {
		t.Fatalf("Read returned %d entries, want %d", len(entries), len(srcs))
	}
	byPos := map[placed]Entry{}
	for i, e := range entries {
		if i > 0 && (e.DLQPartition < entries[i-1].DLQPartition ||
			e.DLQPartition == entries[i-1].DLQPartition && e.DLQOffset <= entries[i-1].DLQOffset) {
			t.Errorf("entries not in partition/offset order: %v", entries)
		}
		byPos[placed{e.DLQPartition, e.DLQOffset}] = e
	}
	for i, src := range srcs {
		e, ok := byPos[where[i]]
		if !ok {
			t.Fatalf("record %d not read back", i)
		}
		want := failures[i]
		want.Topic, want.Partition, want.Offset = src.Topic, src.Partition, src.Offset
		if !reflect.DeepEqual(e.Failure, want) {
			t.Errorf("record %d failure:\n got %+v\nwant %+v", i, e.Failure, want)
		}
		if !bytes.Equal(e.Key, src.Key) || (e.Key == nil) != (src.Key == nil) {
			t.Errorf("record %d key = %q, want %q", i, e.Key, src.Key)
		}
		if !bytes.Equal(e.Value, src.Value) || (e.Value == nil) != (src.Value == nil) {
			t.Errorf("record %d value = %q, want %q", i, e.Value, src.Value)
		}
		if !e.Timestamp.Equal(src.Timestamp) {
			t.Errorf("record %d timestamp = %v, want %v", i, e.Timestamp, src.Timestamp)
		}
		if !reflect.DeepEqual(headerPairs(e.OriginalHeaders), headerPairs(src.Headers)) {
			t.Errorf("record %d original headers = %v, want %v", i, headerPairs(e.OriginalHeaders), headerPairs(src.Headers))
		}
		if e.DLQTopic != dlqTopic {
			t.Errorf("DLQTopic = %q", e.DLQTopic)
		}
	}

	// Every Connect header is there, as a string, in Connect's spelling.
	e := byPos[where[0]]
	got := map[string]string{}
	for _, h := range e.Headers[len(e.OriginalHeaders):] {
		got[string(h.Key)] = string(h.Value)
	}
	for k, v := range map[string]string{
		"__connect.errors.topic": srcTopic, "__connect.errors.partition": "1", "__connect.errors.offset": "0",
		"__connect.errors.connector.name": "contacts-erp-to-crm", "__connect.errors.task.id": "worker-1/0",
		"__connect.errors.stage": "decode", "__connect.errors.class.name": "github.com/cdcsync/cdcsync/processor/cdc",
		"__connect.errors.exception.class.name": "cdc.ErrMalformed",
		"__connect.errors.exception.message":    failures[0].Message,
		"__connect.errors.exception.stacktrace": failures[0].Stack,
		"cdcsync.errors.attempts":               "1", "cdcsync.errors.first.failure": "2026-11-27T10:00:00.123456789Z",
		"cdcsync.topology": "contacts-erp-to-crm",
	} {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got[HeaderSchemaID]; ok {
		t.Error("schema id header written without a schema")
	}

	t.Run("filters", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			f    Filter
			want int
		}{
			{"reason exception class", Filter{Reason: "errmalformed"}, 1},
			{"reason message", Filter{Reason: "unknown schema"}, 1},
			{"reason stage", Filter{Reason: "decode"}, 2},
			{"reason class", Filter{Reason: "processor/route"}, 1},
			{"key", Filter{Key: `{"id":7}`}, 1},
			{"since", Filter{Since: t0.Add(time.Minute)}, 3},
			{"until", Filter{Until: t0.Add(time.Minute)}, 1},
			{"window", Filter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, 2},
			{"none", Filter{Reason: "nothing like it"}, 0},
		} {
			got, err := Read(ctx, cl, dlqTopic, tc.f, 0)
			if err != nil || len(got) != tc.want {
				t.Errorf("%s: %d entries, %v; want %d", tc.name, len(got), err, tc.want)
			}
		}
		if got, err := Read(ctx, cl, dlqTopic, Filter{}, 2); err != nil || len(got) != 2 {
			t.Errorf("limit 2: %d entries, %v", len(got), err)
		}
	})

	t.Run("summarize", func(t *testing.T) {
		s := Summarize(entries)
		if s.Total != 4 || s.ByTopology["contacts-erp-to-crm"] != 2 || s.ByTopology["orders"] != 2 ||
			s.ByStage["decode"] != 2 || s.ByStage["route"] != 1 || s.ByStage["authority"] != 1 ||
			s.ByException["cdc.ErrMalformed"] != 1 || len(s.ByException) != 4 {
			t.Errorf("summary = %+v", s)
		}
		if !s.FirstSeen.Equal(t0) || !s.LastSeen.Equal(t0.Add(3*time.Minute)) {
			t.Errorf("first/last seen = %v / %v", s.FirstSeen, s.LastSeen)
		}
		var buf bytes.Buffer
		if err := WriteSummary(&buf, s); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"records:    4", "2  decode", "1  cdc.ErrMalformed", "first seen: 2026-11-27T10:00:00.123456789Z"} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("summary text lacks %q:\n%s", want, buf.String())
			}
		}
	})

	t.Run("list and show", func(t *testing.T) {
		var buf bytes.Buffer
		if err := WriteList(&buf, entries); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "\n"); n != 4 {
			t.Errorf("list has %d lines, want 4:\n%s", n, buf.String())
		}
		if !strings.Contains(buf.String(), `{"contact_id":42}`) || !strings.Contains(buf.String(), "(null)") {
			t.Errorf("list:\n%s", buf.String())
		}
		buf.Reset()
		if err := WriteShow(&buf, byPos[where[1]]); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{"* __connect.errors.exception.class.name: *route.KeyError", "* cdcsync.schema.id: 7",
			"00000000  00 00 00 00 07 ff 01", `"id": 7`} {
			if !strings.Contains(out, want) {
				t.Errorf("show lacks %q:\n%s", want, out)
			}
		}
		buf.Reset()
		_ = WriteShow(&buf, byPos[where[0]])
		for _, want := range []string{"  trace: abc", "      at decode", `"{\"payload\":"`} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("show lacks %q:\n%s", want, buf.String())
			}
		}
	})

	t.Run("replay lands on the original partition", func(t *testing.T) {
		cfg := testConfig()
		ConfigureReplayProducer(cfg)
		rp := newProducer(t, newClient(t, c, cfg))
		for i := range srcs {
			e := byPos[where[i]]
			next, err := cl.GetOffset(srcTopic, e.Partition, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			if err := Replay(ctx, rp, e); err != nil {
				t.Fatalf("replay %d: %v", i, err)
			}
			m := consumeOne(t, cl, srcTopic, e.Partition, next)
			src := srcs[i]
			// The original headers, and the link to the DLQ record.
			wantHeaders := append(headerPairs(src.Headers), HeaderReplayOf+"="+e.Link())
			if !bytes.Equal(m.Key, src.Key) || !bytes.Equal(m.Value, src.Value) ||
				(m.Value == nil) != (src.Value == nil) || !m.Timestamp.Equal(src.Timestamp) ||
				!reflect.DeepEqual(headerPairs(m.Headers), wantHeaders) {
				t.Errorf("replayed %d = key %q value %q ts %v headers %v; want %q %q %v %v", i,
					m.Key, m.Value, m.Timestamp, headerPairs(m.Headers), src.Key, src.Value, src.Timestamp, wantHeaders)
			}
		}
		if err := Replay(ctx, rp, Entry{}); !errors.Is(err, ErrNoOrigin) {
			t.Errorf("replay without origin: %v", err)
		}
	})

	t.Run("replay with a hashing producer reports the wrong partition", func(t *testing.T) {
		hp := newProducer(t, cl) // Java partitioner, not manual
		e := byPos[where[0]]
		e.Partition = (route.Partition(e.Key, 4) + 1) % 4
		if err := Replay(ctx, hp, e); !errors.Is(err, ErrWrongPartition) {
			t.Errorf("err = %v, want ErrWrongPartition", err)
		}
	})
}

func headerPairs[H sarama.RecordHeader | *sarama.RecordHeader](hs []H) []string {
	out := []string{}
	for _, h := range hs {
		var rh sarama.RecordHeader
		switch x := any(h).(type) {
		case sarama.RecordHeader:
			rh = x
		case *sarama.RecordHeader:
			rh = *x
		}
		out = append(out, string(rh.Key)+"="+string(rh.Value))
	}
	return out
}

func TestReadEmptyTopicReturnsAtOnce(t *testing.T) {
	c := newCluster(t)
	cl := newClient(t, c, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	got, err := Read(ctx, cl, "empty", Filter{}, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("Read(empty) = %v, %v", got, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Read of an empty topic took %v", d)
	}
	if _, err := Read(ctx, cl, "no-such-topic", Filter{}, 0); err == nil {
		t.Error("Read of a missing topic: no error")
	}
}

// Under read_committed the commit marker takes the last offset and is never
// delivered, so "last offset == high-water mark - 1" never comes true.
func TestReadDoesNotHangOnTransactionMarkers(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "txn"))
	pcfg := testConfig()
	pcfg.Producer.Idempotent = true
	pcfg.Producer.Transaction.ID = "dlq-test-txn"
	pcfg.Net.MaxOpenRequests = 1
	prod := newProducer(t, newClient(t, c, pcfg))
	src := &sarama.ConsumerMessage{Topic: srcTopic, Partition: 0, Offset: 9, Key: []byte("k"), Value: []byte("v")}
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := prod.SendMessage(Record("txn", src, failures[0])); err != nil {
			t.Fatal(err)
		}
	}
	if err := prod.CommitTxn(); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cl := newClient(t, c, cfg)
	if hwm, _ := cl.GetOffset("txn", 0, sarama.OffsetNewest); hwm != 3 {
		t.Logf("high-water mark %d (2 records + marker expected 3)", hwm)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	got, err := Read(ctx, cl, "txn", Filter{}, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("Read = %d entries, %v; want 2", len(got), err)
	}
	t.Logf("read_committed Read took %v", time.Since(start))
}

func TestParse(t *testing.T) {
	src := &sarama.ConsumerMessage{Topic: srcTopic, Partition: 2, Offset: 5, Key: []byte("k"), Value: []byte("v"),
		Headers: []*sarama.RecordHeader{
			{Key: []byte("a"), Value: []byte("1")},
			// The source record came from a Connect DLQ itself.
			{Key: []byte(HeaderTopic), Value: []byte("older")},
			{Key: []byte(HeaderStage), Value: []byte("TASK_PUT")},
		}}
	pm := Record(dlqTopic, src, Failure{Topology: "t", Stage: StageRoute, Attempts: 2})
	rec := consumed(pm)
	e, err := Parse(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.OriginalHeaders) != 3 || string(e.OriginalHeaders[1].Value) != "older" {
		t.Errorf("original headers = %v", headerPairs(e.OriginalHeaders))
	}
	if e.Topic != srcTopic || e.Partition != 2 || e.Offset != 5 || e.Stage != StageRoute || e.Attempts != 2 || e.Topology != "t" {
		t.Errorf("failure = %+v", e.Failure)
	}
	if _, ok := pm.Key.(sarama.ByteEncoder); !ok {
		t.Errorf("keyed record key is %T", pm.Key)
	}

	// Topology falls back to Connect's connector name.
	rec.Headers = removeHeader(rec.Headers, HeaderTopology)
	if e, err := Parse(rec); err != nil || e.Topology != "t" {
		t.Errorf("connector-name fallback: %q, %v", e.Topology, err)
	}

	_, err = Parse(&sarama.ConsumerMessage{Topic: dlqTopic, Headers: src.Headers[:1]})
	var pe *ParseError
	if !errors.Is(err, ErrNotDLQRecord) || !errors.As(err, &pe) || pe.Topic != dlqTopic {
		t.Errorf("plain record: %v", err)
	}
	bad := consumed(Record(dlqTopic, src, Failure{}))
	for _, h := range bad.Headers {
		if string(h.Key) == HeaderOffset {
			h.Value = []byte("x")
		}
	}
	if _, err := Parse(bad); !errors.Is(err, ErrBadHeader) || !strings.Contains(err.Error(), HeaderOffset) {
		t.Errorf("bad offset: %v", err)
	}
}

// consumed turns a produced message into what a consumer would see.
func consumed(pm *sarama.ProducerMessage) *sarama.ConsumerMessage {
	m := &sarama.ConsumerMessage{Topic: pm.Topic}
	if pm.Key != nil {
		m.Key, _ = pm.Key.Encode()
	}
	if pm.Value != nil {
		m.Value, _ = pm.Value.Encode()
	}
	for i := range pm.Headers {
		h := pm.Headers[i]
		m.Headers = append(m.Headers, &h)
	}
	return m
}

func removeHeader(hs []*sarama.RecordHeader, key string) []*sarama.RecordHeader {
	var out []*sarama.RecordHeader
	for _, h := range hs {
		if string(h.Key) != key {
			out = append(out, h)
		}
	}
	return out
}

func TestRecordNullKey(t *testing.T) {
	pm := Record(dlqTopic, &sarama.ConsumerMessage{Topic: srcTopic, Partition: 5}, Failure{})
	if k, ok := pm.Key.(route.NullKey); !ok || k.Partition != 5 {
		t.Errorf("null-key record key = %#v", pm.Key)
	}
	if pm.Value != nil {
		t.Errorf("tombstone value = %#v, want nil", pm.Value)
	}
}

// Regression (issue 9): one malformed record in a DLQ topic made `dlq
// inspect` fail for the whole topic, even --show of a good record. Read
// returns every good record, and a Skipped error naming the bad ones by
// partition and offset.
func TestReadSkipsMalformedRecords(t *testing.T) {
	const mixed = "dlq.mixed"
	c := newCluster(t, kfake.SeedTopics(1, mixed))
	cl := newClient(t, c, testConfig())
	prod := newProducer(t, cl)
	src := &sarama.ConsumerMessage{Topic: srcTopic, Partition: 1, Offset: 7, Key: []byte("k"), Value: []byte("v")}
	badOffset := Record(mixed, src, failures[0])
	for i := range badOffset.Headers {
		if string(badOffset.Headers[i].Key) == HeaderOffset {
			badOffset.Headers[i].Value = []byte("seven")
		}
	}
	for i, msg := range []*sarama.ProducerMessage{
		Record(mixed, src, failures[0]), // 0
		{Topic: mixed, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("a sink record written here by mistake")}, // 1: no error headers
		Record(mixed, src, failures[1]), // 2
		badOffset,                       // 3
		Record(mixed, src, failures[2]), // 4
	} {
		if _, off, err := prod.SendMessage(msg); err != nil || off != int64(i) {
			t.Fatalf("record %d at offset %d: %v", i, off, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	entries, err := Read(ctx, cl, mixed, Filter{}, 0)
	var offs []int64
	for _, e := range entries {
		offs = append(offs, e.DLQOffset)
	}
	if !reflect.DeepEqual(offs, []int64{0, 2, 4}) {
		t.Errorf("read offsets %v, want [0 2 4]", offs)
	}
	var skipped Skipped
	if !errors.As(err, &skipped) || len(skipped) != 2 {
		t.Fatalf("err = %v, want Skipped with 2 records", err)
	}
	if pe := skipped.Find(0, 1); pe == nil || !errors.Is(pe, ErrNotDLQRecord) {
		t.Errorf("0/1: %v", pe)
	}
	if pe := skipped.Find(0, 3); pe == nil || !errors.Is(pe, ErrBadHeader) || pe.Header != HeaderOffset {
		t.Errorf("0/3: %v", pe)
	}
	if !errors.Is(err, ErrNotDLQRecord) || !errors.Is(err, ErrBadHeader) {
		t.Errorf("errors.Is does not see both causes through %v", err)
	}
	want := "dlq: skipped 2 record(s) of dlq.mixed that are not readable DLQ records:\n" +
		"  0/1: not a dead-letter record (no __connect.errors.topic header)\n" +
		`  0/3: dlq: malformed error header: __connect.errors.offset="seven"`
	if err.Error() != want {
		t.Errorf("error text:\n%s\nwant\n%s", err, want)
	}
	// The limit counts good records only.
	if got, err := Read(ctx, cl, mixed, Filter{}, 2); len(got) != 2 || got[1].DLQOffset != 2 || !errors.As(err, &skipped) || len(skipped) != 1 {
		t.Errorf("limit 2: %d entries, %v", len(got), err)
	}
}

// Regression (issue 9): `dlq replay` stopped at the first failure without
// saying what it had already written. ReplayAll reports the count and the
// last offset per partition, also when it fails; here the third record's
// original topic was deleted before the replay.
func TestReplayAllReportsWhatItWroteBeforeAFailure(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "gone"))
	cl := newClient(t, c, testConfig())
	srcs := produceSources(t, c, []source{
		{key: []byte("a"), value: []byte("1"), partition: 1},
		{key: []byte("b"), value: []byte("2"), partition: 3},
		{key: []byte("c"), value: []byte("3"), partition: 1},
		{key: []byte("d"), value: []byte("4"), partition: 2},
	})
	entries := make([]Entry, len(srcs))
	for i, s := range srcs {
		entries[i] = Entry{Failure: Failure{Topic: s.Topic, Partition: s.Partition, Offset: s.Offset}, Key: s.Key, Value: s.Value,
			DLQTopic: dlqTopic, DLQOffset: int64(i)}
	}
	entries = slices.Insert(entries, 3, Entry{Failure: Failure{Topic: "gone", Partition: 0}, Key: []byte("x"), Value: []byte("x"),
		DLQTopic: dlqTopic, DLQOffset: 99})
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, c, testConfig()))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	ConfigureReplayProducer(cfg)
	cfg.Producer.Retry.Max = 1
	rp := newProducer(t, newClient(t, c, cfg))
	ends := map[int32]int64{}
	for p := int32(0); p < 4; p++ {
		ends[p], _ = cl.GetOffset(srcTopic, p, sarama.OffsetNewest)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := ReplayAll(ctx, rp, entries)
	var re *ReplayError
	if !errors.As(err, &re) || re.DLQOffset != 99 || !strings.Contains(err.Error(), "replaying DLQ record 0/99") ||
		!strings.Contains(err.Error(), "gone/0") {
		t.Fatalf("err = %v, want a ReplayError for 0/99", err)
	}
	want := []Position{{srcTopic, 1, ends[1]}, {srcTopic, 3, ends[3]}}
	want[0].Offset++ // two records went to partition 1: the last is the second
	if r.Written != 3 || !reflect.DeepEqual(r.Last, want) {
		t.Errorf("report = %+v, want 3 written, last %v", r, want)
	}
	// Nothing after the failure was written.
	if end, _ := cl.GetOffset(srcTopic, 2, sarama.OffsetNewest); end != ends[2] {
		t.Errorf("partition 2 grew from %d to %d: a record after the failure was written", ends[2], end)
	}

	r, err = ReplayAll(ctx, rp, entries[:3])
	if err != nil || r.Written != 3 || len(r.Last) != 2 {
		t.Errorf("clean replay: %+v, %v", r, err)
	}
}

// Regression (issue 9): `dlq replay` could write into a dead-letter topic.
// CheckTargets refuses, before anything is written, every entry whose
// target is the DLQ being replayed, a topic known to be a DLQ or ledger,
// or a topic whose records carry Connect error headers.
func TestCheckTargets(t *testing.T) {
	good := Entry{Failure: Failure{Topic: srcTopic}, DLQTopic: dlqTopic, DLQOffset: 1}
	if err := CheckTargets([]Entry{good}, map[string]string{"dlq.other": "x"}); err != nil {
		t.Fatalf("good entry refused: %v", err)
	}
	self := Entry{Failure: Failure{Topic: dlqTopic}, DLQTopic: dlqTopic, DLQPartition: 2, DLQOffset: 5}
	known := Entry{Failure: Failure{Topic: "dlq.other"}, DLQTopic: dlqTopic, DLQOffset: 6}
	fromDLQ := Entry{Failure: Failure{Topic: "connect-dlq"}, DLQTopic: dlqTopic, DLQOffset: 7,
		OriginalHeaders: []*sarama.RecordHeader{{Key: []byte(HeaderTopic), Value: []byte("pg.public.t")}}}
	none := Entry{DLQTopic: dlqTopic, DLQOffset: 8}
	// Regression: a DLQ copy cut to fit (Fit) was replayed as if whole,
	// writing a broken record into the source topic.
	cut := Entry{Failure: Failure{Topic: srcTopic, Partition: 3, Offset: 42}, DLQTopic: dlqTopic, DLQOffset: 9,
		Headers: []*sarama.RecordHeader{{Key: []byte(HeaderTopic), Value: []byte(srcTopic)}, {Key: []byte(HeaderTruncated), Value: []byte("value")}}}
	err := CheckTargets([]Entry{good, self, known, fromDLQ, none, cut}, map[string]string{"dlq.other": "the DLQ topic of topology other (o.yaml)"})
	if !errors.Is(err, ErrReplayTarget) {
		t.Fatalf("err = %v, want ErrReplayTarget", err)
	}
	for _, want := range []string{
		"5 record(s) refused, nothing written",
		"2/5: its original topic dlq.contacts is the DLQ topic being replayed",
		"0/6: its original topic dlq.other is the DLQ topic of topology other (o.yaml)",
		"0/7: its original record carries __connect.errors.topic headers, so connect-dlq is a dead-letter topic",
		"0/8: it has no original topic",
		"0/9: the DLQ copy was cut to fit (cdcsync.errors.truncated: value), so it is not the original record; the original is at " + srcTopic + "/3@42",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "0/1:") {
		t.Errorf("good entry listed: %v", err)
	}
}
