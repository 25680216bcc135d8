package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
)

// Every sink record a worker wrote under at_least_once is byte for byte
// what the stages make of its source record offline: key, value and every
// header. The worker recycles a sink record's memory once the record is
// done (processor's sinkBlock); a block handed out again while sarama
// still held its message, or while another record still pointed into it,
// would put one record's bytes into another's. Rows of very different
// sizes (addresses of 0 to 3000 characters, with escapes and non-ASCII)
// make the recycled buffers too small for some records and too large for
// others; two workers on 8 partitions recycle concurrently.
func TestKfakeSinkRecordsByteExact(t *testing.T) {
	events := 20_000
	if testing.Short() {
		events = 6_000
	}
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 8, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "bytes", src.Topic(), "sync.bytes"))

	rng := rand.New(rand.NewPCG(7, 8))
	var recs []demo.Record
	state := map[int64]*demo.Contact{}
	at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for len(recs) < events {
		if len(recs) > 0 && rng.Float64() < 0.1 {
			recs = append(recs, recs[rng.IntN(len(recs))]) // a redelivery
			continue
		}
		id := int64(rng.IntN(500)) + 1
		before := state[id]
		after := demo.Contact{ID: id, FirstName: "Zoë", LastName: `O"Brien\`, Email: fmt.Sprintf("c%d@example.com", id),
			Phone: fmt.Sprintf("+33 %d", len(recs)), Address: strings.Repeat("Straße \"7\" ", rng.IntN(300)),
			City: "Lyon", Balance: int64(rng.IntN(1 << 40)), UpdatedAt: at.Add(time.Duration(len(recs)) * time.Millisecond)}
		op := byte('u')
		if before == nil {
			op = 'c'
		}
		k, v := src.Change(op, before, &after)
		state[id] = &after
		recs = append(recs, demo.Record{Topic: src.Topic(), Key: k, Value: v})
	}

	// What each event must look like, from the stages run offline.
	off, err := processor.NewOffline(plan, 8, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*sarama.ProducerMessage{}
	for i, r := range recs {
		res := off.Process(&sarama.ConsumerMessage{Topic: r.Topic, Key: r.Key, Value: r.Value, Offset: int64(i)})
		switch res.Outcome {
		case processor.OutcomeSink:
			m := res.Records[0]
			want[headerValue(m.Headers, "cdcsync.event.id")] = m
		case processor.OutcomeDuplicate, processor.OutcomeAuthorityDrop:
		default:
			t.Fatalf("record %d offline: %s %v", i, res.Outcome, res.Err)
		}
	}

	w1, w2 := startWorker(t, brokers, "w1", plan), startWorker(t, brokers, "w2", plan)
	produce(t, brokers, recs)
	waitProcessed(t, brokers, 3*time.Minute, plan)
	for _, w := range []*worker{w1, w2} {
		if err := w.stop(); err != nil {
			t.Fatalf("worker: %v", err)
		}
	}

	got := readAll(t, brokers, "sync.bytes")
	if len(got) != len(want) {
		t.Errorf("sink holds %d records, want %d", len(got), len(want))
	}
	bad := 0
	for _, m := range got {
		var hs []sarama.RecordHeader
		for _, h := range m.Headers {
			hs = append(hs, *h)
		}
		id := headerValue(hs, "cdcsync.event.id")
		w := want[id]
		if w == nil {
			t.Fatalf("sink record %d/%d has event ID %q, which no source record has", m.Partition, m.Offset, id)
		}
		wk, _ := w.Key.Encode()
		wv, _ := w.Value.Encode()
		if !bytes.Equal(m.Key, wk) || !bytes.Equal(m.Value, wv) || !sameHeaders(hs, w.Headers) {
			if bad++; bad <= 3 {
				t.Errorf("sink record %d/%d (event %s) differs from the offline stages:\nkey   %q\nwant  %q\nvalue %q\nwant  %q\nheaders %q\nwant    %q",
					m.Partition, m.Offset, id, m.Key, wk, m.Value, wv, hs, w.Headers)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d sink records differ", bad, len(got))
	}
}

func headerValue(hs []sarama.RecordHeader, key string) string {
	for _, h := range hs {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

func sameHeaders(a, b []sarama.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}
