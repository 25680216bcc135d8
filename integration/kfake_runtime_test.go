package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/ledger"
)

// Three workers on twelve partitions process 100k events with 10%
// duplicates: every unique event reaches the sink exactly once, in per-key
// order, and the duplicates are counted.
func TestKfakeNormalRun(t *testing.T) {
	events := 100_000
	if testing.Short() {
		events = 20_000
	}
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 12, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "normal", src.Topic(), "sync.normal"))
	w := makeWorkload(src, 2000, events, 0.10, 1)

	workers := []*worker{
		startWorker(t, brokers, "w1", plan),
		startWorker(t, brokers, "w2", plan),
		startWorker(t, brokers, "w3", plan),
	}
	// The three share the partitions before the records arrive: once the
	// worker start-up got faster (no metadata retries for the missing DLQ
	// topic), the first worker could finish the -short workload alone.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := st.Kafka.WaitGroupStable(ctx, string(plan.Group()), 3); err != nil {
		t.Fatalf("the group did not settle with 3 members: %v", err)
	}
	produce(t, brokers, w.Records)
	waitProcessed(t, brokers, 3*time.Minute, plan)
	var in, dups, out int64
	for _, wk := range workers {
		if err := wk.stop(); err != nil {
			t.Fatalf("worker: %v", err)
		}
		s := wk.w.Stats(plan.Name())
		in += s.In
		dups += s.Duplicates
		out += s.Out
		if s.In == 0 {
			t.Errorf("a worker processed nothing: the partitions were not shared")
		}
	}
	checkExactlyOnce(t, readAll(t, brokers, "sync.normal"), w)
	// A record consumed by a worker that loses its partition before the
	// record is acknowledged is consumed again by the next owner, so "in"
	// may exceed the records produced; the ledger counts a redelivery of
	// an acknowledged record as a duplicate.
	if in < int64(len(w.Records)) {
		t.Errorf("records in = %d, want at least %d", in, len(w.Records))
	}
	if dups < int64(w.Dups) || dups-int64(w.Dups) > in-int64(len(w.Records)) {
		t.Errorf("duplicates counted = %d, want %d plus at most the %d redelivered records", dups, w.Dups, in-int64(len(w.Records)))
	}
	if out != int64(w.Unique) {
		t.Errorf("records out = %d, want %d", out, w.Unique)
	}
}

// A fourth worker joins and one leaves while events flow: nothing is lost
// and no duplicate gets past the ledger.
func TestKfakeRebalance(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 12, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "rebalance", src.Topic(), "sync.rebalance"))
	w := makeWorkload(src, 1000, 40_000, 0.10, 2)

	w1 := startWorker(t, brokers, "w1", plan)
	startWorker(t, brokers, "w2", plan)
	w3 := startWorker(t, brokers, "w3", plan)
	// Produce in slices while the group changes.
	chunk := len(w.Records) / 8
	for i := 0; i < 8; i++ {
		produce(t, brokers, w.Records[i*chunk:min((i+1)*chunk, len(w.Records))])
		switch i {
		case 2:
			startWorker(t, brokers, "w4", plan)
		case 4:
			if err := w3.stop(); err != nil {
				t.Fatalf("w3: %v", err)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if rest := len(w.Records) - 8*chunk; rest > 0 {
		produce(t, brokers, w.Records[8*chunk:])
	}
	waitProcessed(t, brokers, 3*time.Minute, plan)
	if err := w1.stop(); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readAll(t, brokers, "sync.rebalance"), w)
}

// Poison records go to the DLQ with their original key, value and
// timestamp and the Connect-compatible headers; the records after them
// still flow.
func TestKfakePoisonRecords(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 1, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "poison", src.Topic(), "sync.poison"))

	good := makeWorkload(src, 5, 10, 0, 3)
	poison := []demo.Record{
		{Topic: src.Topic(), Key: []byte(`{"id":1}`), Value: []byte(`{"before":null,"after":{"id":1,`)},
		{Topic: src.Topic(), Key: []byte(`{"id":2}`), Value: []byte(`{"before":null,"after":{"id":2,"phone":"x"},"source":{"connector":"postgresql","name":"erp","db":"erp","schema":"public","table":"contacts","lsn":1,"txId":1,"ts_ms":0},"op":"x","ts_ms":0}`)},
		{Topic: src.Topic(), Key: []byte(`{"ref":3}`), Value: []byte(`{"before":null,"after":{"ref":3,"phone":"+1"},"source":{"connector":"postgresql","name":"erp","db":"erp","schema":"public","table":"contacts","lsn":9,"txId":2,"ts_ms":0},"op":"c","ts_ms":0}`)},
	}
	recs := append(append(append([]demo.Record{}, good.Records[:5]...), poison...), good.Records[5:]...)
	produce(t, brokers, recs)
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}

	checkExactlyOnce(t, readAll(t, brokers, "sync.poison"), good)
	entries, err := dlq.Read(t.Context(), newClient(t, brokers), string(plan.DLQTopic()), dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("DLQ holds %d records, want 3", len(entries))
	}
	wantClass := []string{"cdc.ErrMalformed", "cdc.ErrUnknownOp", "route.ErrMissingKeyField"}
	wantStage := []string{"decode", "decode", "route"}
	for i, e := range entries {
		if string(e.Key) != string(poison[i].Key) || string(e.Value) != string(poison[i].Value) {
			t.Errorf("DLQ %d: key/value changed: %s %s", i, e.Key, e.Value)
		}
		if e.ExceptionClass != wantClass[i] || e.Stage != wantStage[i] {
			t.Errorf("DLQ %d: class %q stage %q, want %q %q", i, e.ExceptionClass, e.Stage, wantClass[i], wantStage[i])
		}
		if e.Topic != src.Topic() || e.Partition != 0 || e.Offset != int64(5+i) {
			t.Errorf("DLQ %d: origin %s/%d@%d, want %s/0@%d", i, e.Topic, e.Partition, e.Offset, src.Topic(), 5+i)
		}
		if e.Topology != plan.Name() || e.Message == "" || e.Attempts != 1 || e.FirstFailure.IsZero() {
			t.Errorf("DLQ %d: incomplete context: %+v", i, e.Failure)
		}
		headers := map[string]bool{}
		for _, h := range e.Headers {
			headers[string(h.Key)] = true
		}
		for _, h := range []string{dlq.HeaderTopic, dlq.HeaderPartition, dlq.HeaderOffset, dlq.HeaderConnectorName, dlq.HeaderTaskID,
			dlq.HeaderStage, dlq.HeaderClassName, dlq.HeaderExceptionClassName, dlq.HeaderExceptionMessage,
			dlq.HeaderAttempts, dlq.HeaderFirstFailure, dlq.HeaderTopology} {
			if !headers[h] {
				t.Errorf("DLQ %d: header %s missing", i, h)
			}
		}
	}
	if !strings.Contains(entries[1].Message, `"x"`) {
		t.Errorf("unknown-op message does not name the op: %q", entries[1].Message)
	}
}

// Authority: a field owned by another system never reaches the sink, and
// the echo of our own sync write is dropped whole.
func TestKfakeAuthority(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "authority", src.Topic(), "sync.authority"))

	base := demo.Contact{ID: 7, FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Phone: "+44 1", Address: "1 St James", City: "London", Balance: 100}
	var recs []demo.Record
	add := func(op byte, b, a *demo.Contact) {
		k, v := src.Change(op, b, a)
		recs = append(recs, demo.Record{Topic: src.Topic(), Key: k, Value: v})
	}
	add('c', nil, &base)
	// ERP changes its phone and, against the rules, the CRM-owned email.
	mixed := base
	mixed.Phone, mixed.Email = "+44 2", "typo@erp"
	add('u', &base, &mixed)
	// The echo of a CRM write: only CRM-owned fields changed.
	echo := mixed
	echo.FirstName, echo.Email = "Augusta Ada", "ada@crm.example"
	add('u', &mixed, &echo)
	produce(t, brokers, recs)

	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	msgs := readAll(t, brokers, "sync.authority")
	if len(msgs) != 2 {
		t.Fatalf("sink holds %d records, want 2 (insert, phone update); the echo must be dropped", len(msgs))
	}
	for _, m := range msgs {
		r := decodeSink(t, m)
		for _, f := range []string{"first_name", "last_name", "email"} {
			if _, ok := r.Fields[f]; ok {
				t.Errorf("%s: CRM-owned field %s reached the sink from the ERP: %s", r.Type, f, m.Value)
			}
		}
	}
	upd := decodeSink(t, msgs[1])
	if string(upd.Fields["phone"]) != `"+44 2"` || len(upd.Fields) != 1 {
		t.Errorf("update fields = %v, want only the phone", upd.Fields)
	}
	s := wk.w.Stats(plan.Name())
	if s.AuthorityEvents != 1 || s.AuthorityFields < 3 {
		t.Errorf("authority stats = %+v, want 1 event dropped and the unowned fields counted", s)
	}
}

// A ledger with the wrong partition count stops start-up with a message
// that explains the fix.
func TestKfakeLedgerMismatch(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "mismatch", src.Topic(), "sync.mismatch"))
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(string(plan.LedgerTopic()), &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	wk := startWorker(t, brokers, "w1", plan)
	runErr, stopped := wk.wait(30 * time.Second)
	if !stopped {
		t.Fatal("the worker started despite the ledger mismatch")
	}
	if !errors.Is(runErr, ledger.ErrPartitionMismatch) {
		t.Fatalf("error = %v, want a ledger partition mismatch", runErr)
	}
	for _, want := range []string{string(plan.LedgerTopic()), "3", "4", "kafka-topics"} {
		if !strings.Contains(runErr.Error(), want) {
			t.Errorf("message %q does not mention %q", runErr, want)
		}
	}
	_ = processor.ErrConfig
}

// Regression: tombstones skipped the authority check, so after a delete
// from a system that does not own the entity was dropped, its tombstone
// still reached the sink.
func TestKfakeAuthorityTombstone(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 1, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(`name: tomb
systems: [erp, crm]
source: {topics: [%s], system: erp, format: debezium-json}
authority: {owners: {phone: erp}, default_owner: crm}
sink: {topic: sync.tomb, key: [id]}
`, src.Topic()))
	c := demo.Contact{ID: 3, FirstName: "Ken", Phone: "+1 555"}
	k, v := src.Change('d', &c, nil)
	produce(t, brokers, []demo.Record{
		{Topic: src.Topic(), Key: k, Value: v},
		{Topic: src.Topic(), Key: src.Tombstone(3)},
	})
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	c2 := newClient(t, brokers)
	if parts, err := c2.Partitions("sync.tomb"); err == nil && len(parts) > 0 {
		if msgs := readAll(t, brokers, "sync.tomb"); len(msgs) != 0 {
			t.Errorf("the ERP does not own contacts, yet %d records reached the sink: %v", len(msgs), msgs[0].Value)
		}
	}
	if s := wk.w.Stats(plan.Name()); s.AuthorityEvents != 2 || s.Tombstones != 1 {
		t.Errorf("stats %+v: want the delete and the tombstone dropped by authority", s)
	}
}

// Regression (found on the real stack): a TRUNCATE has no key and no row,
// and went to the DLQ with "missing key field". Under source.truncate:
// pass it reaches every sink partition, keyless.
func TestKfakeTruncateReachesEveryPartition(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 3, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, strings.Replace(fmt.Sprintf(contactsTopology, "truncate", src.Topic(), "sync.truncate"),
		"format: debezium-json}", "format: debezium-json, truncate: pass}", 1))
	truncate := []byte(`{"before":null,"after":null,"source":{"version":"3.6.1.Final","connector":"postgresql","name":"erp","ts_ms":1764230400000,"snapshot":"false","db":"erp","sequence":"[null,\"24023200\"]","schema":"public","table":"contacts","txId":900,"lsn":24023200},"transaction":null,"op":"t","ts_ms":1764230400001}`)
	w := makeWorkload(src, 20, 60, 0, 12)
	recs := append(append([]demo.Record{}, w.Records...), demo.Record{Topic: src.Topic(), Value: truncate})
	// A tombstone from the entity's owner passes as a sink tombstone.
	recs = append(recs, demo.Record{Topic: src.Topic(), Key: src.Tombstone(1)})
	produce(t, brokers, recs)
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	if s := wk.w.Stats(plan.Name()); s.DLQ != 0 {
		t.Fatalf("%d records went to the DLQ", s.DLQ)
	}
	perPartition := map[int32]int{}
	tombstones := 0
	for _, m := range readAll(t, brokers, "sync.truncate") {
		if m.Value == nil {
			if string(m.Key) != `{"id":1}` {
				t.Errorf("sink tombstone with key %s", m.Key)
			}
			tombstones++
			continue
		}
		if r := decodeSink(t, m); r.Type == "contacts.truncated" {
			if m.Key != nil {
				t.Errorf("truncate with key %q", m.Key)
			}
			perPartition[m.Partition]++
		}
	}
	if len(perPartition) != 3 {
		t.Errorf("truncate reached partitions %v, want all 3 once", perPartition)
	}
	// Regression: tombstones were emitted with a nil second output and
	// panicked the worker.
	if tombstones != 1 {
		t.Errorf("%d sink tombstones, want 1", tombstones)
	}
}

// Regression (found on the real stack): a re-snapshot after streaming
// changes re-emitted every changed row, because those rows were in the
// ledger only under their position IDs. Inserts and updates now also
// record the content ID a snapshot row of the same state gets.
func TestKfakeResnapshotAfterUpdates(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "resnap", src.Topic(), "sync.resnap"))
	w := makeWorkload(src, 30, 300, 0, 13)
	produce(t, brokers, w.Records)
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	before := len(readAll(t, brokers, "sync.resnap"))

	// The connector snapshots again: every row's current state, op=r,
	// at new positions. A second worker restores the ledger from Kafka.
	var snap []demo.Record
	state := lastStates(t, w)
	for _, c := range state {
		k, v := src.Change('r', nil, c)
		snap = append(snap, demo.Record{Topic: src.Topic(), Key: k, Value: v})
	}
	produce(t, brokers, snap)
	wk2 := startWorker(t, brokers, "w2", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk2.stop(); err != nil {
		t.Fatal(err)
	}
	if after := len(readAll(t, brokers, "sync.resnap")); after != before {
		t.Errorf("the re-snapshot of %d rows added %d sink records; the ledger must drop them all", len(snap), after-before)
	}
	if s := wk2.w.Stats(plan.Name()); s.Duplicates != int64(len(snap)) {
		t.Errorf("duplicates dropped = %d, want %d", s.Duplicates, len(snap))
	}
}

// lastStates replays the workload's records to the final row of each key.
func lastStates(t *testing.T, w *workload) map[int64]*demo.Contact {
	t.Helper()
	out := map[int64]*demo.Contact{}
	for _, r := range w.Records {
		var v struct {
			After *struct {
				ID        int64  `json:"id"`
				FirstName string `json:"first_name"`
				LastName  string `json:"last_name"`
				Email     string `json:"email"`
				Phone     string `json:"phone"`
				Address   string `json:"address"`
				City      string `json:"city"`
				Balance   string `json:"balance"`
				UpdatedAt int64  `json:"updated_at"`
			} `json:"after"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil || v.After == nil {
			t.Fatalf("workload record: %v", err)
		}
		a := v.After
		bal, err := strconv.ParseFloat(a.Balance, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[a.ID] = &demo.Contact{ID: a.ID, FirstName: a.FirstName, LastName: a.LastName, Email: a.Email, Phone: a.Phone,
			Address: a.Address, City: a.City, Balance: int64(math.Round(bal * 100)), UpdatedAt: time.UnixMicro(a.UpdatedAt).UTC()}
	}
	return out
}

// Topologies fail independently: one that cannot start (its ledger has
// the wrong partition count) stops, and the worker's other topology keeps
// processing.
func TestKfakeTopologiesFailIndependently(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	good := mustPlan(t, fmt.Sprintf(contactsTopology, "indep-good", src.Topic(), "sync.indep"))
	bad := mustPlan(t, fmt.Sprintf(contactsTopology, "indep-bad", src.Topic(), "sync.indep-bad"))
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(string(bad.LedgerTopic()), &sarama.TopicDetail{NumPartitions: 5, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	w := makeWorkload(src, 50, 500, 0, 14)
	produce(t, brokers, w.Records)
	wk := startWorker(t, brokers, "w1", good, bad)
	waitProcessed(t, brokers, time.Minute, good)
	checkExactlyOnce(t, readAll(t, brokers, "sync.indep"), w)
	if wk.w.Ready() {
		t.Error("/readyz would say ready while a topology is stopped")
	}
	err = wk.stop()
	if !errors.Is(err, ledger.ErrPartitionMismatch) {
		t.Errorf("worker returned %v, want the stopped topology's ledger mismatch", err)
	}
}
