package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/linkedin/goavro/v2"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/schemas"
)

// TestKfakeHeaderPropagation checks sink.headers.propagate end to end, under
// both guarantees: the traceparent and tracestate of each source record
// reach the sink records made from it (changes, a delete and its
// tombstone), an unlisted header (baggage) does not, and a poison record's
// DLQ entry keeps all its original headers. Issue 13: source headers such
// as a W3C traceparent were not carried to the sink records.
func TestKfakeHeaderPropagation(t *testing.T) {
	for _, guarantee := range []string{"at_least_once", "exactly_once"} {
		t.Run(guarantee, func(t *testing.T) { testHeaderPropagation(t, guarantee, "json") })
	}
	// Avro sink records carry cdcsync's schema headers too; the
	// propagated ones come after them.
	t.Run("avro sink", func(t *testing.T) { testHeaderPropagation(t, "at_least_once", "avro") })
}

func testHeaderPropagation(t *testing.T, guarantee, format string) {
	src := demo.NewSource("erp", "erp", false)
	st, err := embedded.Start(embedded.Options{Topics: []string{src.Topic()}, Partitions: 2, NoRegistry: format != "avro"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	brokers := st.Brokers()
	name := "headers-" + strings.ReplaceAll(guarantee, "_", "-") + "-" + format
	sink := "sync." + name
	plan := mustPlan(t, fmt.Sprintf(`name: %s
systems: [erp, crm]
source: {topics: [%s], system: erp, format: debezium-json}
authority:
  owners: {first_name: crm, last_name: crm, email: crm}
  default_owner: erp
sink:
  topic: %s
  key: [id]
  format: %s
  headers:
    propagate: [traceparent, tracestate]
guarantee: %s
`, name, src.Topic(), sink, format, guarantee))

	// Six changes over three keys, then a delete of key 1 and its tombstone,
	// then a poison record. Record j carries a traceparent naming j.
	w := makeWorkload(src, 3, 6, 0, 11)
	recs := append([]demo.Record{}, w.Records...)
	k, v := src.Change('d', &demo.Contact{ID: 1}, nil)
	recs = append(recs, demo.Record{Topic: src.Topic(), Key: k, Value: v},
		demo.Record{Topic: src.Topic(), Key: src.Tombstone(1)},
		demo.Record{Topic: src.Topic(), Key: []byte(`{"id":2}`), Value: []byte(`{"before":null,"after":{"id":2,`)})
	poison := len(recs) - 1

	traceparent := func(j int) string { return fmt.Sprintf("00-%032x-%016x-01", j+1, j+1) }
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// source key + offset → the index of the record produced there
	origin := map[string]int{}
	for j, r := range recs {
		m := &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.ByteEncoder(r.Key), Headers: []sarama.RecordHeader{
			{Key: []byte("traceparent"), Value: []byte(traceparent(j))},
			{Key: []byte("baggage"), Value: []byte(fmt.Sprintf("record=%d", j))},
			{Key: []byte("tracestate"), Value: []byte(fmt.Sprintf("cdc=%d", j))},
		}}
		if r.Value != nil {
			m.Value = sarama.ByteEncoder(r.Value)
		}
		part, off, err := p.SendMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		origin[fmt.Sprintf("%d@%d", part, off)] = j
	}
	_ = p.Close()

	registryURL := ""
	if format == "avro" {
		registryURL = st.RegistryURL()
	}
	wk := startWorkerWithRegistry(t, brokers, registryURL, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}

	msgs := readOutputs(t, brokers, sink, guarantee)
	// changes, the delete and the tombstone
	if want := w.Unique + 2; len(msgs) != want {
		t.Fatalf("sink holds %d records, want %d", len(msgs), want)
	}
	byPhone := map[string]int{}
	for j, r := range w.Records {
		var v struct {
			After struct {
				Phone string `json:"phone"`
			} `json:"after"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		byPhone[v.After.Phone] = j
	}
	tombstones := 0
	for _, m := range msgs {
		hs := map[string][]string{}
		for _, h := range m.Headers {
			hs[string(h.Key)] = append(hs[string(h.Key)], string(h.Value))
		}
		var j int
		switch {
		case m.Value == nil:
			tombstones++
			j = len(w.Records) + 1
		default:
			r := decodeHeaderSink(t, m, format)
			if r.Op == "d" {
				j = len(w.Records)
				break
			}
			var phone string
			_ = json.Unmarshal(r.Fields["phone"], &phone)
			var ok bool
			if j, ok = byPhone[phone]; !ok {
				t.Fatalf("sink record %d/%d: phone %q matches no source record", m.Partition, m.Offset, phone)
			}
		}
		if got := hs["traceparent"]; len(got) != 1 || got[0] != traceparent(j) {
			t.Errorf("sink record %d/%d from source record %d: traceparent %q, want [%s]", m.Partition, m.Offset, j, got, traceparent(j))
		}
		if got := hs["tracestate"]; len(got) != 1 || got[0] != fmt.Sprintf("cdc=%d", j) {
			t.Errorf("sink record %d/%d from source record %d: tracestate %q, want [cdc=%d]", m.Partition, m.Offset, j, got, j)
		}
		if got, ok := hs["baggage"]; ok {
			t.Errorf("sink record %d/%d: the unlisted header baggage was copied: %q", m.Partition, m.Offset, got)
		}
		if got := hs["cdcsync.topology"]; len(got) != 1 || got[0] != name {
			t.Errorf("sink record %d/%d: cdcsync.topology %q, want [%s]: cdcsync's own headers must stay", m.Partition, m.Offset, got, name)
		}
		// cdcsync's own headers first, the propagated ones after them.
		own := true
		for _, h := range m.Headers {
			isOwn := strings.HasPrefix(string(h.Key), "cdcsync.")
			if isOwn && !own {
				t.Errorf("sink record %d/%d: cdcsync header %s after a propagated one: %s", m.Partition, m.Offset, h.Key, headerKeys(m))
			}
			own = own && isOwn
		}
		if format == "avro" && m.Value != nil && len(hs["cdcsync.schema.id"]) != 1 {
			t.Errorf("Avro sink record %d/%d lacks cdcsync.schema.id: %s", m.Partition, m.Offset, headerKeys(m))
		}
	}
	if tombstones != 1 {
		t.Errorf("sink holds %d tombstones, want 1", tombstones)
	}

	entries, err := dlq.Read(t.Context(), newClient(t, brokers), string(plan.DLQTopic()), dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("DLQ holds %d records, want the poison record", len(entries))
	}
	if j := origin[fmt.Sprintf("%d@%d", entries[0].Partition, entries[0].Offset)]; j != poison {
		t.Fatalf("DLQ entry comes from source record %d, want %d", j, poison)
	}
	orig := map[string]string{}
	for _, h := range entries[0].Headers {
		orig[string(h.Key)] = string(h.Value)
	}
	for k, v := range map[string]string{"traceparent": traceparent(poison), "tracestate": fmt.Sprintf("cdc=%d", poison), "baggage": fmt.Sprintf("record=%d", poison)} {
		if orig[k] != v {
			t.Errorf("DLQ entry: original header %s = %q, want %q (the DLQ keeps every original header)", k, orig[k], v)
		}
	}
}

func headerKeys(m *sarama.ConsumerMessage) string {
	var ks []string
	for _, h := range m.Headers {
		ks = append(ks, string(h.Key))
	}
	return strings.Join(ks, ",")
}

// decodeHeaderSink reads a sink value as JSON, or as Avro framed in the
// Confluent wire format with schemas/event.avsc.
func decodeHeaderSink(t *testing.T, m *sarama.ConsumerMessage, format string) sinkRecord {
	t.Helper()
	if format != "avro" {
		return decodeSink(t, m)
	}
	_, body, err := cdc.SplitWire(m.Value)
	if err != nil {
		t.Fatalf("sink record %d/%d: %v", m.Partition, m.Offset, err)
	}
	codec, err := goavro.NewCodec(schemas.EventSchema)
	if err != nil {
		t.Fatal(err)
	}
	native, _, err := codec.NativeFromBinary(body)
	if err != nil {
		t.Fatalf("sink record %d/%d: %v", m.Partition, m.Offset, err)
	}
	js, err := codec.TextualFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Op     string         `json:"op"`
		Fields map[string]any `json:"fields"`
	}
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatal(err)
	}
	out := sinkRecord{Op: r.Op, Fields: map[string]json.RawMessage{}}
	// Avro's JSON form wraps union values: {"fields": {"map": {"phone": {"string": "..."}}}}.
	phone := findString(r.Fields, "phone")
	if phone != "" {
		out.Fields["phone"], _ = json.Marshal(phone)
	}
	return out
}

// findString finds the string value under key at any depth of an Avro
// JSON form, unwrapping unions.
func findString(v any, key string) string {
	switch x := v.(type) {
	case map[string]any:
		if inner, ok := x[key]; ok {
			if s := unwrapString(inner); s != "" {
				return s
			}
		}
		for _, inner := range x {
			if s := findString(inner, key); s != "" {
				return s
			}
		}
	}
	return ""
}

func unwrapString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		for _, inner := range x {
			if s := unwrapString(inner); s != "" {
				return s
			}
		}
	}
	return ""
}
