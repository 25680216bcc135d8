package integration

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor/dlq"
)

// readOutputs reads a topic the worker wrote under guarantee.
func readOutputs(t *testing.T, brokers []string, topic, guarantee string) []*sarama.ConsumerMessage {
	t.Helper()
	if guarantee == "exactly_once" {
		return readCommitted(t, brokers, topic)
	}
	return readAll(t, brokers, topic)
}

// header returns the value of a DLQ entry's header, "" when absent.
func header(e dlq.Entry, key string) string {
	for _, h := range e.Headers {
		if h != nil && string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// oversizeTopology is a topology over topic with the given guarantee.
func oversizeTopology(name, topic, sink, guarantee string) string {
	return fmt.Sprintf(`name: %s
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-json}
sink: {topic: %s, key: [id]}
guarantee: %s
`, name, topic, sink, guarantee)
}

// Regression: a valid 2 MB record, or a source key of 1 MB (copied into
// the sink value's "key"), makes a sink record over the producer's limit.
// sarama refused it with a ConfigurationError that was classed transient,
// so the session restarted forever. And the DLQ copy of such a record was
// itself over the limit, so the DLQ write failed too. Now the record goes
// to the DLQ with stage produce, its DLQ copy cut to fit with headers that
// say so, and the partition keeps flowing, under both guarantees.
func TestKfakeOversizedOutput(t *testing.T) {
	for _, g := range []string{"at_least_once", "exactly_once"} {
		t.Run(g, func(t *testing.T) { oversizedOutput(t, g) })
	}
}

func oversizedOutput(t *testing.T, guarantee string) {
	src := demo.NewSource("erp", "erp", false)
	topic := src.Topic()
	st := cluster(t, 1)
	// The source may hold records up to 8 MB; the sink keeps Kafka's
	// default limit.
	if err := st.Kafka.CreateTopic(topic, 1, map[string]string{"max.message.bytes": strconv.Itoa(8 << 20)}); err != nil {
		t.Fatal(err)
	}
	brokers := st.Brokers()
	name := "big-" + strings.ReplaceAll(guarantee, "_", "-")
	plan := mustPlan(t, oversizeTopology(name, topic, "sync."+name, guarantee))

	rec := func(id int64, first string) ([]byte, []byte) {
		return src.Change('c', nil, &demo.Contact{ID: id, FirstName: first, City: "Lyon"})
	}
	k1, v1 := rec(1, "Ada")
	k2, v2 := rec(2, strings.Repeat("v", 2<<20)) // a valid 2 MB row
	bigKey := strings.Repeat("k", 1_050_000)
	k3, v3 := rec(3, "Key")
	k3 = fmt.Appendf(nil, `{"id":3,"tag":%q}`, bigKey) // a 1 MB key column
	v3 = bytes.Replace(v3, []byte(`"id":3,`), fmt.Appendf(nil, `"id":3,"tag":%q,`, bigKey), 1)
	k4, v4 := rec(4, "Grace")
	produceToPartitions(t, brokers, topic, []partRecord{{0, k1, v1}, {0, k2, v2}, {0, k3, v3}, {0, k4, v4}})

	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range readOutputs(t, brokers, "sync."+name, guarantee) {
		ids = append(ids, string(decodeSink(t, m).Key["id"]))
	}
	if strings.Join(ids, ",") != "1,4" {
		t.Errorf("sink holds ids %v, want 1 and 4 (the records around the oversized ones)", ids)
	}
	entries, err := dlq.Read(t.Context(), newClient(t, brokers), string(plan.DLQTopic()), dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("DLQ holds %d records, want 2", len(entries))
	}
	want := []struct {
		offset         int64
		cut            string
		keyLen, valLen int
	}{
		{1, "value", len(k2), len(v2)},
		{2, "value,key", len(k3), len(v3)},
	}
	for i, e := range entries {
		w := want[i]
		if e.Stage != dlq.StageProduce || e.ExceptionClass != "processor.ErrOutputTooLarge" || e.Offset != w.offset {
			t.Errorf("DLQ %d: stage %q class %q offset %d, want produce, processor.ErrOutputTooLarge, %d", i, e.Stage, e.ExceptionClass, e.Offset, w.offset)
		}
		if got := header(e, dlq.HeaderTruncated); got != w.cut {
			t.Errorf("DLQ %d: %s = %q, want %q", i, dlq.HeaderTruncated, got, w.cut)
		}
		if header(e, dlq.HeaderOriginalKeyBytes) != strconv.Itoa(w.keyLen) || header(e, dlq.HeaderOriginalValueBytes) != strconv.Itoa(w.valLen) {
			t.Errorf("DLQ %d: original sizes %s/%s, want %d/%d", i, header(e, dlq.HeaderOriginalKeyBytes), header(e, dlq.HeaderOriginalValueBytes), w.keyLen, w.valLen)
		}
		if size := len(e.Key) + len(e.Value); size > 1_000_000 || size == 0 {
			t.Errorf("DLQ %d: key+value %d bytes: not cut to the limit, or cut to nothing", i, size)
		}
	}
	if !bytes.HasPrefix(v2, entries[0].Value) || !bytes.HasPrefix(k3, entries[1].Key) {
		t.Error("the cut DLQ copies are not prefixes of the originals")
	}
	s := wk.w.Stats(plan.Name())
	if s.DLQ != 2 || s.Restarts != 0 {
		t.Errorf("stats %+v: want 2 DLQ records and no session restart", s)
	}
}

// A topic whose max.message.bytes is below the producer's limit refuses
// records that passed cdcsync's own check: the broker's MESSAGE_TOO_LARGE.
// The sink record goes to the DLQ (stage produce); the DLQ topic, just as
// small, refuses that copy too, so it is sent again with only its error
// headers. Under exactly_once the refusal aborts the transaction, and the
// record takes the same way when it comes again. The partition keeps
// flowing either way.
func TestKfakeBrokerRefusesOutput(t *testing.T) {
	for _, g := range []string{"at_least_once", "exactly_once"} {
		t.Run(g, func(t *testing.T) { brokerRefusesOutput(t, g) })
	}
}

func brokerRefusesOutput(t *testing.T, guarantee string) {
	src := demo.NewSource("erp", "erp", false)
	topic := src.Topic()
	st := cluster(t, 1, topic)
	brokers := st.Brokers()
	name := "refuse-" + strings.ReplaceAll(guarantee, "_", "-")
	plan := mustPlan(t, oversizeTopology(name, topic, "sync."+name, guarantee))
	small := map[string]string{"max.message.bytes": "20000"}
	for _, tp := range []string{"sync." + name, string(plan.DLQTopic())} {
		if err := st.Kafka.CreateTopic(tp, 1, small); err != nil {
			t.Fatal(err)
		}
	}
	kb, vb := src.Change('c', nil, &demo.Contact{ID: 1, FirstName: strings.Repeat("x", 50_000)})
	produceToPartitions(t, brokers, topic, []partRecord{{0, kb, vb}})
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	// Later records flow: the big one did not stall the partition.
	var later []demo.Record
	for id := int64(2); id <= 4; id++ {
		k, v := src.Change('c', nil, &demo.Contact{ID: id, FirstName: "ok"})
		later = append(later, demo.Record{Topic: topic, Key: k, Value: v})
	}
	produce(t, brokers, later)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(readOutputs(t, brokers, "sync."+name, guarantee)); n != 3 {
		t.Errorf("sink holds %d records, want the 3 after the refused one", n)
	}
	entries, err := dlq.Read(t.Context(), newClient(t, brokers), string(plan.DLQTopic()), dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("DLQ holds %d records, want 1", len(entries))
	}
	e := entries[0]
	if e.Stage != dlq.StageProduce || e.Offset != 0 || !strings.Contains(e.Message, "too large") {
		t.Errorf("DLQ: stage %q offset %d message %q; want produce, 0, the broker's refusal", e.Stage, e.Offset, e.Message)
	}
	// Regression (issue 10): cdcsync.errors.attempts was always 1. Under
	// exactly_once the record is tried three times: its output is refused
	// (the transaction aborts), then its DLQ record is refused (aborts
	// again), then its cut DLQ record is written. Under at_least_once the
	// refused output is replaced by the DLQ record in the same attempt.
	wantAttempts := 1
	if guarantee == "exactly_once" {
		wantAttempts = 3
	}
	if e.Attempts != wantAttempts {
		t.Errorf("DLQ: %s = %d, want %d", dlq.HeaderAttempts, e.Attempts, wantAttempts)
	}
	if header(e, dlq.HeaderTruncated) == "" || len(e.Value) != 0 || header(e, dlq.HeaderOriginalValueBytes) != strconv.Itoa(len(vb)) {
		t.Errorf("DLQ: truncated %q, value %d bytes, original %s; want the copy cut to its error headers, original %d",
			header(e, dlq.HeaderTruncated), len(e.Value), header(e, dlq.HeaderOriginalValueBytes), len(vb))
	}
}
