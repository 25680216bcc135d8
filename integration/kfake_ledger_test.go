package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
)

// Regression (issue 9, item 2): a row went A -> B, was set back to A while
// the connector was stopped, and that last change reached Kafka only as a
// snapshot row. The ledger remembered the content ID of every earlier state
// of the key, so the snapshot row was dropped as a duplicate and the sink
// kept B. A snapshot row is now a duplicate only when it equals the
// row's LATEST applied state (or is a redelivery of an older record).
//
// Rows 1-5 return to A (delivered only by the re-snapshot), 6-10 stay at B
// (streamed), 11-20 never change, 21 is deleted while streaming and
// re-inserted with its old content while the connector is down. The
// re-snapshot must add exactly rows 1-5 and 21; a second worker then
// re-reads the whole topic from the start (consumer group deleted) and must
// add nothing: every record is a redelivery.
func TestKfakeLedgerResnapshotReturnsToEarlierState(t *testing.T) {
	for _, mode := range []string{"position", "content"} {
		t.Run(mode, func(t *testing.T) {
			src := demo.NewSource("erp", "erp", false)
			st := cluster(t, 3, src.Topic())
			brokers := st.Brokers()
			name, sink := "aba-"+mode, "sync.aba."+mode
			plan := mustPlan(t, fmt.Sprintf(contactsTopology, name, src.Topic(), sink)+"dedup: {key: "+mode+"}\n")
			row := func(id int64, phone string) *demo.Contact {
				return &demo.Contact{ID: id, FirstName: "Ada", LastName: "Lovelace", Email: fmt.Sprintf("c%d@example.com", id),
					Phone: phone, Address: "1 Main St", City: "Lyon", Balance: 100 * id,
					UpdatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
			}
			rec := func(op byte, before, after *demo.Contact) demo.Record {
				k, v := src.Change(op, before, after)
				return demo.Record{Topic: src.Topic(), Key: k, Value: v}
			}
			var first []demo.Record
			for id := int64(1); id <= 21; id++ {
				first = append(first, rec('r', nil, row(id, "init")))
			}
			for id := int64(1); id <= 10; id++ {
				first = append(first, rec('u', row(id, "init"), row(id, "B2")))
			}
			first = append(first, rec('d', row(21, "init"), nil), demo.Record{Topic: src.Topic(), Key: src.Tombstone(21)})
			produce(t, brokers, first)
			w1 := startWorker(t, brokers, "w1", plan)
			waitProcessed(t, brokers, time.Minute, plan)
			if err := w1.stop(); err != nil {
				t.Fatal(err)
			}
			before := len(readAll(t, brokers, sink))

			// The re-snapshot: every row's current state, op=r.
			var snap []demo.Record
			for id := int64(1); id <= 21; id++ {
				phone := "init"
				if id >= 6 && id <= 10 {
					phone = "B2"
				}
				snap = append(snap, rec('r', nil, row(id, phone)))
			}
			produce(t, brokers, snap)
			w2 := startWorker(t, brokers, "w2", plan)
			waitProcessed(t, brokers, time.Minute, plan)
			if err := w2.stop(); err != nil {
				t.Fatal(err)
			}
			msgs := readAll(t, brokers, sink)
			if added := len(msgs) - before; added != 6 {
				t.Errorf("the re-snapshot added %d sink records, want 6 (rows 1-5 back at init, row 21 re-inserted)", added)
			}
			if s := w2.w.Stats(plan.Name()); s.Duplicates != 15 {
				t.Errorf("duplicates dropped by the re-snapshot = %d, want 15", s.Duplicates)
			}
			checkFinalPhones(t, msgs)

			// Everything again, from offset 0: only redeliveries.
			deleteGroup(t, brokers, "cdcsync."+name)
			w3 := startWorker(t, brokers, "w3", plan)
			waitProcessed(t, brokers, time.Minute, plan)
			if err := w3.stop(); err != nil {
				t.Fatal(err)
			}
			again := readAll(t, brokers, sink)
			if len(again) != len(msgs) {
				t.Errorf("re-reading the source from the start added %d sink records, want 0", len(again)-len(msgs))
			}
			checkFinalPhones(t, again)
		})
	}
}

// checkFinalPhones folds the sink per key and checks that every row ends as
// PostgreSQL has it: 6-10 at B2, the others at init.
func checkFinalPhones(t *testing.T, msgs []*sarama.ConsumerMessage) {
	t.Helper()
	last := map[string]string{}
	for _, m := range msgs {
		if m.Value == nil {
			last[string(m.Key)] = "<tombstone>"
			continue
		}
		r := decodeSink(t, m)
		if r.Op == "d" {
			last[string(m.Key)] = "<deleted>"
			continue
		}
		last[string(m.Key)] = strings.Trim(string(r.Fields["phone"]), `"`)
	}
	for id := 1; id <= 21; id++ {
		want := "init"
		if id >= 6 && id <= 10 {
			want = "B2"
		}
		if got := last[fmt.Sprintf(`{"id":%d}`, id)]; got != want {
			t.Errorf("row %d ends as %q in the sink, want %q", id, got, want)
		}
	}
}

func deleteGroup(t *testing.T, brokers []string, group string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	a, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := a.DeleteConsumerGroup(group)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleting group %s: %v", group, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
