package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/linkedin/goavro/v2"

	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/outbox"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/schemas"
)

// outboxRaw is a Debezium change record (JSON converter, no schemas) of
// an outbox row.
func outboxRaw(op, id, aggID, typ, payload string, lsn int) []byte {
	row := map[string]any{"id": id, "aggregatetype": "order", "aggregateid": aggID, "type": typ, "payload": payload,
		"headers": fmt.Sprintf(`{"traceparent": "00-%032x-%016x-01"}`, lsn, lsn)}
	v := map[string]any{"op": op, "ts_ms": 1764478800000,
		"source": map[string]any{"connector": "postgresql", "name": "dbz", "db": "shop", "schema": "public", "table": "outbox", "lsn": lsn, "txId": lsn},
		"before": nil, "after": row}
	if op == "d" {
		v["before"], v["after"] = row, nil
	}
	b, _ := json.Marshal(v)
	return b
}

// TestKfakeOutboxRouter runs a debezium-outbox topology with sink.format
// payload under exactly_once over raw outbox records and over records
// transformed by the EventRouter: every event once on
// outbox.event.order, keyed by its aggregateid, the payload byte for byte
// as the value, headers id, type, aggregatetype and the traceparent; a
// redelivered record and a business retry that reused the outbox id are
// dropped by the ledger; deletes and tombstones (the cleanup) write
// nothing; one aggregate's events keep their order.
func TestKfakeOutboxRouter(t *testing.T) {
	t.Run("raw", func(t *testing.T) { testOutboxRouter(t, false) })
	t.Run("eventrouter", func(t *testing.T) { testOutboxRouter(t, true) })
}

func testOutboxRouter(t *testing.T, transformed bool) {
	src := "dbz.public.outbox"
	parts := int32(1) // Debezium keys the raw records by the outbox id: one partition keeps an aggregate's order
	if transformed {
		src, parts = "outbox.smt.order", 3 // keyed by aggregateid
	}
	st, err := embedded.Start(embedded.Options{Topics: []string{src}, Partitions: parts, NoRegistry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	brokers := st.Brokers()
	name := "outbox-raw"
	if transformed {
		name = "outbox-smt"
	}
	plan := mustPlan(t, fmt.Sprintf(`name: %s
systems: [shop]
source: {topics: [%s], system: shop, format: debezium-outbox}
sink:
  topic: outbox.event.{aggregatetype}
  format: payload
  headers: {propagate: [traceparent]}
guarantee: exactly_once
`, name, src))

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	type ev struct{ id, agg, payload string }
	var events []ev
	send := func(m *sarama.ProducerMessage) {
		t.Helper()
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	lsn := 100
	put := func(e ev, op string) {
		lsn++
		if !transformed {
			m := &sarama.ProducerMessage{Topic: src, Key: sarama.ByteEncoder(fmt.Sprintf(`{"id":%q}`, e.id))}
			if op != "tomb" {
				m.Value = sarama.ByteEncoder(outboxRaw(op, e.id, e.agg, "OrderUpdated", e.payload, lsn))
			}
			send(m)
			return
		}
		if op != "c" {
			return // the EventRouter drops deletes (debezium.op.invalid.behavior)
		}
		v, _ := json.Marshal(e.payload) // the Json string the SMT writes by default
		send(&sarama.ProducerMessage{Topic: src, Key: sarama.ByteEncoder(fmt.Sprintf("%q", e.agg)), Value: sarama.ByteEncoder(v),
			Headers: []sarama.RecordHeader{
				{Key: []byte("id"), Value: []byte(e.id)},
				{Key: []byte("eventType"), Value: []byte("OrderUpdated")},
				{Key: []byte("aggregatetype"), Value: []byte("order")},
				{Key: []byte("traceparent"), Value: []byte(fmt.Sprintf("00-%032x-%016x-01", lsn, lsn))},
			}})
	}
	const aggs, n = 7, 60
	redelivered := 0
	for i := 0; i < n; i++ {
		e := ev{id: outbox.NewID(), agg: fmt.Sprintf("order-%d", i%aggs),
			payload: fmt.Sprintf(`{"seq": %d, "agg": "order-%d", "note": "caf\u00e9 \"q\""}`, i, i%aggs)}
		events = append(events, e)
		put(e, "c")
		if !transformed {
			put(e, "d") // DeleteAfterInsert: the cleanup
			put(e, "tomb")
		}
		if i%10 == 3 {
			put(e, "c") // a business retry reusing the ID, or a redelivery
			redelivered++
		}
	}
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	stats := wk.w.Stats(plan.Name())
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	// Each raw event's delete and tombstone are the cleanup: ignored and
	// counted, never an output. (At least: a record handled again after
	// an aborted transaction counts again.)
	wantIgnored := int64(0)
	if !transformed {
		wantIgnored = 2 * n
	}
	if stats.OutboxIgnored < wantIgnored || (transformed && stats.OutboxIgnored != 0) || stats.Duplicates < int64(redelivered) {
		t.Errorf("ignored %d (want %d), duplicates %d (want %d)", stats.OutboxIgnored, wantIgnored, stats.Duplicates, redelivered)
	}

	msgs := readOutputs(t, brokers, "outbox.event.order", "exactly_once")
	if len(msgs) != n {
		t.Fatalf("outbox.event.order holds %d records, want %d (one per event)", len(msgs), n)
	}
	byID := map[string]ev{}
	for _, e := range events {
		byID[e.id] = e
	}
	seen := map[string]bool{}
	last := map[string]int{} // aggregate -> last seq
	for _, m := range msgs {
		hs := map[string]string{}
		for _, h := range m.Headers {
			hs[string(h.Key)] = string(h.Value)
		}
		e, ok := byID[hs["id"]]
		if !ok || seen[e.id] {
			t.Fatalf("record %d/%d: id header %q unknown or seen twice", m.Partition, m.Offset, hs["id"])
		}
		seen[e.id] = true
		if string(m.Value) != e.payload {
			t.Errorf("value %s, want the payload %s byte for byte", m.Value, e.payload)
		}
		if string(m.Key) != e.agg {
			t.Errorf("key %q, want the aggregateid %q", m.Key, e.agg)
		}
		if hs["type"] != "OrderUpdated" || hs["aggregatetype"] != "order" || !strings.HasPrefix(hs["traceparent"], "00-") {
			t.Errorf("headers %v", hs)
		}
		var body struct{ Seq int }
		if err := json.Unmarshal(m.Value, &body); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[e.agg]; ok && body.Seq <= prev {
			t.Errorf("aggregate %s: seq %d after %d", e.agg, body.Seq, prev)
		}
		last[e.agg] = body.Seq
	}
}

// TestKfakeOutboxEnvelope checks sink.format json and avro for an outbox
// topology: the cdcsync event envelope, whose id is the outbox UUID, type
// the outbox type, entity the aggregate type, key the aggregateid, and
// whose payload field is the payload as JSON (json: an object, not a
// quoted string; avro: the payload's JSON text, as the Avro form writes
// every field).
func TestKfakeOutboxEnvelope(t *testing.T) {
	for _, format := range []string{"json", "avro"} {
		t.Run(format, func(t *testing.T) {
			const src = "dbz.public.outbox"
			st, err := embedded.Start(embedded.Options{Topics: []string{src}, Partitions: 1, NoRegistry: format != "avro"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close)
			brokers := st.Brokers()
			plan := mustPlan(t, fmt.Sprintf(`name: outbox-env-%s
systems: [shop]
source: {topics: [%s], system: shop, format: debezium-outbox}
sink:
  topic: env.outbox.{aggregatetype}
  format: %s
`, format, src, format))
			id := outbox.NewID()
			payload := `{"id": 7, "lines": [{"qty": 2, "sku": "A-1"}], "total": 19.90}`
			cfg := sarama.NewConfig()
			cfg.Version = sarama.V2_8_0_0
			cfg.Producer.Return.Successes = true
			p, err := sarama.NewSyncProducer(brokers, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: src, Key: sarama.StringEncoder(fmt.Sprintf(`{"id":%q}`, id)),
				Value: sarama.ByteEncoder(outboxRaw("c", id, "order-7", "OrderPlaced", payload, 1))}); err != nil {
				t.Fatal(err)
			}
			p.Close()
			registry := ""
			if format == "avro" {
				registry = st.RegistryURL()
			}
			wk := startWorkerWithRegistry(t, brokers, registry, "w1", plan)
			waitProcessed(t, brokers, time.Minute, plan)
			if err := wk.stop(); err != nil {
				t.Fatal(err)
			}
			msgs := readAll(t, brokers, "env.outbox.order")
			if len(msgs) != 1 {
				t.Fatalf("%d sink records, want 1", len(msgs))
			}
			m := msgs[0]
			if string(m.Key) != "order-7" {
				t.Errorf("key %q, want the aggregateid", m.Key)
			}
			wantID := strings.ReplaceAll(id, "-", "")
			if format == "json" {
				r := decodeSink(t, m)
				if r.ID != wantID || r.Type != "OrderPlaced" || r.Op != "c" {
					t.Errorf("envelope id %q type %q op %q, want %s OrderPlaced c", r.ID, r.Type, r.Op, wantID)
				}
				if string(r.Fields["payload"]) != payload {
					t.Errorf("fields.payload %s, want the payload as JSON %s", r.Fields["payload"], payload)
				}
				return
			}
			_, body, err := cdc.SplitWire(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			codec, err := goavro.NewCodec(schemas.EventSchema)
			if err != nil {
				t.Fatal(err)
			}
			native, _, err := codec.NativeFromBinary(body)
			if err != nil {
				t.Fatal(err)
			}
			js, _ := codec.TextualFromNative(nil, native)
			quoted, _ := json.Marshal(payload)
			if !strings.Contains(string(js), wantID) || !strings.Contains(string(js), "OrderPlaced") || !strings.Contains(string(js), string(quoted)) {
				t.Errorf("avro event %s lacks the id %s, the type or the payload text %s", js, wantID, quoted)
			}
		})
	}
}
