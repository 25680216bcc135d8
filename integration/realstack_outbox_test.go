//go:build realstack

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcsync/cdcsync/outbox"
)

// TestRealStackOutbox is the transactional outbox end to end on
// PostgreSQL + Debezium + Kafka: an application writes 5,000 orders over
// 200 aggregates through the outbox package (an order row and its event
// in one transaction, DeleteAfterInsert), some rolled back, some retried
// with the same event ID; a cdcsync worker under exactly_once is killed
// with SIGKILL mid-stream and replaced. A read_committed reader of the
// sink sees every committed event exactly once, none of the rolled-back
// ones, in per-aggregate order, with the payload byte for byte as
// PostgreSQL stored it, and the traceparent the application wrote in the
// headers column as a header. "raw" reads the outbox table's change records;
// "eventrouter" puts Debezium's EventRouter SMT in front.
func TestRealStackOutbox(t *testing.T) {
	t.Run("raw", func(t *testing.T) { realStackOutbox(t, false) })
	t.Run("eventrouter", func(t *testing.T) { realStackOutbox(t, true) })
}

func realStackOutbox(t *testing.T, smt bool) {
	s := loadStack(t)
	run := runID()
	kind := "raw"
	if smt {
		kind = "smt"
	}
	db, prefix := "ob"+kind+"_"+run, "ob"+kind+run
	s.psql(t, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { _, _ = s.psqlErr("postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	s.psql(t, db, outbox.DDL+"\nCREATE TABLE orders (id text PRIMARY KEY, aggregate text NOT NULL, seq int NOT NULL);")

	srcTopic := prefix + ".public.outbox"
	extra := map[string]string{"table.include.list": "public.outbox",
		// The raw records are keyed by the outbox id: one partition keeps
		// each aggregate's order.
		"topic.creation.default.partitions": "1"}
	if smt {
		srcTopic = prefix + ".routed.order"
		extra = map[string]string{"table.include.list": "public.outbox",
			"transforms":             "outbox",
			"transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
			"transforms.outbox.route.topic.replacement":           prefix + ".routed.${routedByValue}",
			"transforms.outbox.table.fields.additional.placement": "type:header:type,aggregatetype:header:aggregatetype,headers:header:headers",
		}
	}
	sink := prefix + ".outbox.event.{aggregatetype}"
	sinkTopic := prefix + ".outbox.event.order"
	dir, plans := writeTopologies(t, fmt.Sprintf(`name: outbox-%[1]s-%[2]s
systems: [shop]
source: {topics: [%[3]s], system: shop, format: debezium-outbox}
sink:
  topic: %[4]s
  format: payload
guarantee: exactly_once
commit_interval: 100ms
`, kind, run, srcTopic, sink))
	// The source topic exists before the worker starts (Debezium would
	// create it with the first change): 1 partition for the raw records,
	// keyed by the outbox id, so each aggregate keeps its order; 3 for
	// the EventRouter's, keyed by the aggregate ID.
	parts := int32(1)
	if smt {
		parts = 3
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(s.brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(srcTopic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	s.connector(t, "outbox-"+kind+"-"+run, db, prefix, extra)

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, fmt.Sprintf("postgres://%s@127.0.0.1:%s/%s?sslmode=disable", s.PGUser, s.PGPort, db))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	w, _ := outbox.New(outbox.Config{Cleanup: outbox.DeleteAfterInsert})

	const orders, aggs = 5000, 200
	type want struct {
		agg, payload string
		seq          int
	}
	committed := map[string]want{}
	var rolledBack []string
	payloadOf := func(i int) string {
		// jsonb's own text form (keys by length, then bytes; ", " and ": "),
		// so the stored text is these bytes.
		return fmt.Sprintf(`{"agg": "order-%d", "seq": %d, "note": "café \"%d\"", "total": %d.50}`, i%aggs, i, i, i%97)
	}
	if got := s.psql(t, db, "SELECT '"+payloadOf(1)+"'::jsonb::text"); got != payloadOf(1) {
		t.Fatalf("payload %s is not in jsonb's text form: %s", payloadOf(1), got)
	}
	traceparentOf := func(i int) string { return fmt.Sprintf("00-%032x-%016x-01", i+1, i+1) }
	write := func(i int, id string, rollback bool) string {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer tx.Rollback(ctx)
		agg := fmt.Sprintf("order-%d", i%aggs)
		if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, fmt.Sprintf("o-%d", i), agg, i); err != nil {
			t.Error(err)
			return ""
		}
		id, err = w.Write(ctx, outbox.PgxTx(tx), outbox.Event{ID: id, AggregateType: "order", AggregateID: agg, Type: "OrderPlaced",
			Payload: []byte(payloadOf(i)), Headers: map[string]string{"traceparent": traceparentOf(i)}})
		if err != nil {
			t.Error(err)
			return ""
		}
		if rollback {
			return id
		}
		if err := tx.Commit(ctx); err != nil {
			t.Error(err)
			return ""
		}
		return id
	}

	workers := startWorkers(t, s, dir, "ob-w1-"+kind+run)
	done := make(chan struct{})
	retries := 0
	go func() {
		defer close(done)
		for i := 0; i < orders; i++ {
			if i%100 == 50 { // a transaction that rolls back: no event
				rolledBack = append(rolledBack, write(i, "", true))
			}
			id := write(i, "", false)
			committed[id] = want{agg: fmt.Sprintf("order-%d", i%aggs), payload: payloadOf(i), seq: i}
			if i%40 == 7 { // a business retry after an unknown outcome: same ID
				write(i, id, false)
				retries++
			}
		}
	}()
	// SIGKILL the worker once part of the stream is committed, then
	// start its replacement.
	eventually(t, 3*time.Minute, "a share of the events in the sink", func() string {
		if s.hwm(t, sinkTopic) < orders/4 {
			return fmt.Sprintf("sink high-water mark %d", s.hwm(t, sinkTopic))
		}
		return ""
	})
	workers[0].kill()
	t.Logf("worker killed at sink high-water mark %d", s.hwm(t, sinkTopic))
	startWorkers(t, s, dir, "ob-w2-"+kind+run)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	var msgsN int
	eventually(t, 3*time.Minute, "every committed event in the sink", func() string {
		msgsN = len(readCommitted(t, s.brokers, sinkTopic))
		if msgsN < len(committed) {
			return fmt.Sprintf("%d/%d committed sink records", msgsN, len(committed))
		}
		return ""
	})
	waitAll(t, s, plans)

	msgs := readCommitted(t, s.brokers, sinkTopic)
	if len(msgs) != len(committed) {
		t.Errorf("sink holds %d committed records, want %d (%d retries reused an ID)", len(msgs), len(committed), retries)
	}
	rb := map[string]bool{}
	for _, id := range rolledBack {
		rb[id] = true
	}
	seen := map[string]bool{}
	last := map[string]int{}
	for _, m := range msgs {
		var id, typ, tp string
		for _, h := range m.Headers {
			switch string(h.Key) {
			case "id":
				id = string(h.Value)
			case "type":
				typ = string(h.Value)
			case "traceparent":
				tp = string(h.Value)
			}
		}
		if rb[id] {
			t.Fatalf("rolled-back event %s in the sink", id)
		}
		wt, ok := committed[id]
		if !ok {
			t.Fatalf("record %d/%d: unknown id %q", m.Partition, m.Offset, id)
		}
		if seen[id] {
			t.Fatalf("event %s twice in the committed sink", id)
		}
		seen[id] = true
		if string(m.Value) != wt.payload {
			t.Fatalf("event %s: value %s, want the payload as written %s", id, m.Value, wt.payload)
		}
		if tp != traceparentOf(wt.seq) {
			t.Fatalf("event %s: traceparent %q, want the one the application wrote, %s", id, tp, traceparentOf(wt.seq))
		}
		if string(m.Key) != wt.agg || typ != "OrderPlaced" {
			t.Fatalf("event %s: key %q type %q", id, m.Key, typ)
		}
		var body struct{ Seq int }
		if err := json.Unmarshal(m.Value, &body); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[wt.agg]; ok && body.Seq <= prev {
			t.Fatalf("aggregate %s: seq %d after %d", wt.agg, body.Seq, prev)
		}
		last[wt.agg] = body.Seq
	}
	if n := s.psql(t, db, "SELECT count(*) FROM outbox"); strings.TrimSpace(n) != "0" {
		t.Errorf("outbox table holds %s rows, want 0 (DeleteAfterInsert)", n)
	}
	t.Logf("%d events once each (%d retries, %d rolled back), %d aggregates in order", len(seen), retries, len(rolledBack), len(last))
}
