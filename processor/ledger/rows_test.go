package ledger

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// checkRowInvariants verifies the row table like checkInvariants does the
// ID table.
func checkRowInvariants(t *testing.T, x *Index) {
	t.Helper()
	rt := &x.rows
	n := 0
	for i := range rt.slots {
		if rt.slots[i].seenU() == 0 {
			continue
		}
		n++
		if got := rt.find(rt.slots[i].keyU()); got != i {
			t.Fatalf("row slot %d: find returns %d", i, got)
		}
		d := rt.dist(uint64(i))
		for k := uint64(1); k <= d; k++ {
			if rt.slots[(uint64(i)-k)&rt.mask].seenU() == 0 {
				t.Fatalf("row slot %d (dist %d): empty slot %d steps before it", i, d, k)
			}
		}
	}
	if n != rt.n {
		t.Fatalf("counted %d rows, Rows says %d", n, rt.n)
	}
	if rt.n*maxLoadDen > len(rt.slots)*maxLoadNum {
		t.Fatalf("row load %d/%d over the maximum", rt.n, len(rt.slots))
	}
}

func TestRowSlotSize(t *testing.T) {
	if s := int(unsafeSizeofRowSlot()); s != rowSlotSize {
		t.Fatalf("rowSlot is %d bytes, rowSlotSize says %d", s, rowSlotSize)
	}
}

func TestRowKeyOf(t *testing.T) {
	key := cdc.Row{{Name: "id", Value: int64(7)}}
	a := RowKeyOf("erp.public.contacts", key)
	if a.IsZero() || a != RowKeyOf("erp.public.contacts", cdc.Row{{Name: "id", Value: int64(7)}}) {
		t.Fatal("row key not stable")
	}
	if a == RowKeyOf("erp.public.contacts", cdc.Row{{Name: "id", Value: int64(8)}}) ||
		a == RowKeyOf("crm.public.contacts", key) {
		t.Fatal("row keys of different rows are equal")
	}
	if !RowKeyOf("erp.public.contacts", nil).IsZero() {
		t.Fatal("a keyless record has a row key")
	}
}

// rowKeyPins are row keys computed by a released version. Ledgers of
// running deployments hold row keys: a changed RowKeyOf would lose every
// row state on upgrade (snapshot rows re-emitted, redelivered tombstones
// no longer recognised as stale).
var rowKeyPins = []struct {
	topic string
	key   cdc.Row
	want  string
}{
	{"erp.public.contacts", cdc.Row{{Name: "id", Value: int64(7)}}, "1c5e72044a72bf310de33552318be9b6"},
	{"pg.public.customers", cdc.Row{{Name: "id", Value: int64(1004)}}, "b4c85649a0861e4ba4ef4aa6dea77164"},
	{"mysql.inventory.orders", cdc.Row{{Name: "order_id", Value: int64(-3)}, {Name: "region", Value: "eu-west"}}, "8b1037eb10254aae257fe6bad00d6ac2"},
	{"mongo.inventory.customers", cdc.Row{{Name: "id", Value: "{\"$oid\": \"596e275826f08b2730779e1f\"}"}}, "e75141d8a02921a2c228d212f6092520"},
	{"x", cdc.Row{{Name: "k", Value: cdc.Number("1.50")}, {Name: "t", Value: nil}}, "ee956cd17c33daa2a692239e0f13b394"},
}

func TestRowKeyPinned(t *testing.T) {
	for _, p := range rowKeyPins {
		if got := RowKeyOf(p.topic, p.key).String(); got != p.want {
			t.Errorf("RowKeyOf(%q, %v) = %s, pinned %s", p.topic, p.key, got, p.want)
		}
	}
}

// TestRowApplied is the rule for one row, state by state.
func TestRowApplied(t *testing.T) {
	now := t0
	x := NewIndex(time.Hour, fixedClock(&now))
	row, other := cdc.ID{1, 2, 3}, cdc.ID{9}
	a, b := cdc.ID{0xa}, cdc.ID{0xb}
	check := func(what string, state RowState, content cdc.ID, offset int64, wantApplied, wantKnown bool) {
		t.Helper()
		if applied, known := x.RowApplied(row, state, content, offset); applied != wantApplied || known != wantKnown {
			t.Errorf("%s: applied %v known %v, want %v %v", what, applied, known, wantApplied, wantKnown)
		}
	}
	check("nothing held", RowPresent, a, 10, false, false)
	x.SetRow(row, RowPresent, a, 10, now)
	check("same state, later", RowPresent, a, 50, true, true)
	check("other state, later", RowPresent, b, 50, false, true)
	check("other state, redelivered", RowPresent, b, 10, true, true)
	check("other state, older", RowPresent, b, 3, true, true)
	check("a delete, later", RowDeleted, cdc.ID{}, 50, false, true)
	check("unknown content, later", RowUnknown, cdc.ID{}, 50, false, true)
	check("a tombstone after it", RowNone, cdc.ID{}, 11, false, true)
	check("a tombstone before it", RowNone, cdc.ID{}, 9, true, true)
	if applied, known := x.RowApplied(other, RowPresent, a, 50); applied || known {
		t.Error("another row's state answered")
	}

	// A -> B -> A: only the latest state counts.
	x.SetRow(row, RowPresent, b, 11, now)
	check("A after B", RowPresent, a, 50, false, true)
	check("B after B", RowPresent, b, 50, true, true)
	x.SetRow(row, RowDeleted, cdc.ID{}, 12, now)
	check("A after the delete", RowPresent, a, 50, false, true)
	check("a delete after the delete", RowDeleted, cdc.ID{}, 50, true, true)
	x.SetRow(row, RowUnknown, cdc.ID{}, 13, now)
	check("A after an unknown state", RowPresent, a, 50, false, true)
	check("unknown after an unknown state", RowUnknown, cdc.ID{}, 50, false, true)
	check("redelivery of the unknown state", RowUnknown, cdc.ID{}, 13, true, true)

	// Offsets that do not fit 48 bits are not compared.
	x.SetRow(row, RowPresent, a, 1<<50, now)
	check("huge offset held", RowPresent, b, 1<<50, false, true)
	if st, off, _, ok := x.Row(row); !ok || st != RowPresent || off != -1 {
		t.Errorf("Row = %v %d %v", st, off, ok)
	}

	// Expiry: a state older than the window is not known.
	x.SetRow(row, RowPresent, a, 20, now)
	now = now.Add(time.Hour + 2*time.Second)
	check("expired", RowPresent, a, 50, false, false)
	if n := x.Expire(now); n != 1 || x.Rows() != 0 {
		t.Errorf("Expire dropped %d, %d rows left", n, x.Rows())
	}
	// Zero keys and RowNone record nothing.
	x.SetRow(cdc.ID{}, RowPresent, a, 1, now)
	x.SetRow(row, RowNone, a, 1, now)
	if x.Rows() != 0 {
		t.Error("SetRow of a zero key or RowNone recorded a row")
	}
}

// A content ID whose first 8 bytes hit a reserved fingerprint stays a
// present state, distinct from deleted and unknown.
func TestRowFingerprintReserved(t *testing.T) {
	x := NewIndex(0)
	row := cdc.ID{1}
	x.SetRow(row, RowPresent, cdc.ID{}, 1, t0) // first 8 bytes 0: "unknown"
	if st, _, _, _ := x.Row(row); st != RowPresent {
		t.Fatalf("state %v", st)
	}
	if applied, _ := x.RowApplied(row, RowPresent, cdc.ID{}, 2); !applied {
		t.Error("equal content not recognised")
	}
	x.SetRow(row, RowPresent, cdc.ID{0: 1}, 3, t0) // first 8 bytes 1: "deleted"
	if applied, _ := x.RowApplied(row, RowDeleted, cdc.ID{}, 4); applied {
		t.Error("a present state equals a delete")
	}
}

func TestRowRollback(t *testing.T) {
	now := t0
	x := NewIndex(time.Hour, fixedClock(&now))
	kept, changed := cdc.ID{1}, cdc.ID{2}
	x.SetRow(kept, RowPresent, cdc.ID{0xa}, 1, t0)
	x.SetRow(changed, RowPresent, cdc.ID{0xa}, 2, t0)
	x.Add(seqID(1), t0)

	x.Mark()
	for i := uint64(10); i < 1000; i++ { // grows the row table inside the mark
		x.SetRow(seqID(i), RowPresent, cdc.ID{0xc}, int64(i), t0)
	}
	x.SetRow(changed, RowPresent, cdc.ID{0xb}, 5, t0)
	x.SetRow(changed, RowDeleted, cdc.ID{}, 6, t0)
	x.Add(seqID(2), t0)
	if n := x.Rollback(); n != 990+2+1 {
		t.Fatalf("Rollback undid %d changes, want 993", n)
	}
	if x.Rows() != 2 || x.IDs() != 1 || x.Len() != 3 {
		t.Fatalf("after rollback: %d rows, %d IDs", x.Rows(), x.IDs())
	}
	if applied, _ := x.RowApplied(changed, RowPresent, cdc.ID{0xa}, 100); !applied {
		t.Error("rollback did not restore the row's earlier state")
	}
	if _, off, _, _ := x.Row(changed); off != 2 {
		t.Errorf("offset after rollback = %d, want 2", off)
	}
	if _, _, _, ok := x.Row(seqID(10)); ok {
		t.Error("a row added inside the mark survived the rollback")
	}
	checkRowInvariants(t, x)

	x.Mark()
	x.SetRow(changed, RowDeleted, cdc.ID{}, 7, t0)
	x.Commit()
	if x.Rollback() != 0 {
		t.Fatal("Rollback after Commit must do nothing")
	}
	if st, _, _, _ := x.Row(changed); st != RowDeleted {
		t.Error("a committed row state was lost")
	}
}

// TestRowProperty runs random SetRow, Expire, Mark, Commit and Rollback
// against a map model, with keys that share their home slots.
func TestRowProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 19))
	now := t0
	x := NewIndex(time.Minute, fixedClock(&now))
	type state struct {
		content byte
		off     int64
		seen    int64
	}
	model := map[cdc.ID]state{}
	var pool []cdc.ID
	for i := 0; i < 3000; i++ {
		var k cdc.ID
		if i%3 == 0 { // low-entropy keys collide on their home slot
			binary.LittleEndian.PutUint64(k[0:8], uint64(i+1)<<40)
		} else {
			k = randID(r)
		}
		pool = append(pool, k)
	}
	live := func(s int64) bool { return s >= now.Unix()-60 }
	var snapshot map[cdc.ID]state
	var offset int64
	for step := 0; step < 200_000; step++ {
		k := pool[r.IntN(len(pool))]

		switch op := r.IntN(100); {
		case op < 50:
			offset++
			c := byte(r.IntN(3)) + 1
			x.SetRow(k, RowPresent, cdc.ID{7: c}, offset, now)
			model[k] = state{c, offset, now.Unix()}
		case op < 80:
			now = now.Add(time.Duration(r.IntN(3)) * time.Second)
		case op < 81:
			dropped := 0
			for k, s := range model {
				if !live(s.seen) {
					delete(model, k)
					dropped++
				}
			}
			if got := x.Expire(now); got != dropped {
				t.Fatalf("step %d: Expire = %d, want %d", step, got, dropped)
			}
			checkRowInvariants(t, x)
		case op < 84 && !x.Marked():
			x.Mark()
			snapshot = make(map[cdc.ID]state, len(model))
			for k, v := range model {
				snapshot[k] = v
			}
		case op < 86 && x.Marked():
			if r.IntN(2) == 0 {
				x.Commit()
			} else {
				x.Rollback()
				model = snapshot
				for k, v := range model {
					if _, _, _, ok := x.Row(k); !ok && !live(v.seen) {
						delete(model, k)
					}
				}
			}
		}
		c := byte(r.IntN(3)) + 1
		s, ok := model[k]
		applied, known := x.RowApplied(k, RowPresent, cdc.ID{7: c}, offset+1)
		wantKnown := ok && live(s.seen)
		if known != wantKnown || applied != (wantKnown && s.content == c) {
			t.Fatalf("step %d: RowApplied = %v %v, model %+v %v", step, applied, known, s, ok)
		}
		if x.Rows() != len(model) {
			t.Fatalf("step %d: Rows = %d, model %d", step, x.Rows(), len(model))
		}
	}
	checkRowInvariants(t, x)
}

// heapPerRow loads n random row states into a fresh Index and returns the
// resident heap growth per row, after a GC.
func heapPerRow(n int) (float64, *Index) {
	r := rand.New(rand.NewPCG(3, 4))
	keys := make([]cdc.ID, n)
	for i := range keys {
		keys[i] = randID(r)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := NewIndex(time.Hour)
	for i, k := range keys {
		x.SetRow(k, RowPresent, k, int64(i), t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keys)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n), x
}

func TestRowMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a million rows")
	}
	// 1M rows, and the worst case: the count right after a growth step.
	for _, n := range []int{1_000_000, 1<<20*maxLoadNum/maxLoadDen + 1} {
		perKey, x := heapPerRow(n)
		t.Logf("%d rows: %.1f bytes/row resident (Bytes() says %.1f)", n, perKey, float64(x.Bytes())/float64(n))
		if perKey > 64 {
			t.Errorf("%d rows: %.1f bytes/row, target 64", n, perKey)
		}
		runtime.KeepAlive(x)
	}
}

func BenchmarkRowMemory1M(b *testing.B) {
	var perKey float64
	for b.Loop() {
		var x *Index
		perKey, x = heapPerRow(1_000_000)
		runtime.KeepAlive(x)
	}
	b.ReportMetric(perKey, "bytes/row")
}

func BenchmarkRowApplied(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	x := NewIndex(time.Hour, WithClock(func() time.Time { return t0 }))
	keys := make([]cdc.ID, 1<<20)
	for i := range keys {
		keys[i] = randID(r)
		if i%2 == 0 {
			x.SetRow(keys[i], RowPresent, keys[i], int64(i), t0)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := keys[i&(len(keys)-1)]
		x.RowApplied(k, RowPresent, k, 1<<30) // half hits, half misses
	}
}

func rowMsg(topic string, id cdc.ID, e Entry) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: topic, Partition: 0,
		Key: sarama.ByteEncoder(EncodeKey(id)), Value: sarama.ByteEncoder(EncodeValue(e))}
}

// The A -> B -> A sequence across a restore (issue 9, item 2): the ledger
// holds the first snapshot of row K (A), a streamed update to B, a
// re-snapshot back to A, and records written by older builds (versions 1
// and 2). After a restore, the index must answer "the latest state of K is
// A": a snapshot row A is a duplicate, B is not; and the version-2 record
// of a row without row state still works as an ID, as before.
func TestRestoreRowStates(t *testing.T) {
	const topic = "rows.ledger"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	p := newProducer(t, c, "")
	now := time.Now()
	k, legacyRow := cdc.ID{0x4b, 1}, cdc.ID{0x4c, 2}
	a, b := cdc.ID{0xa, 1}, cdc.ID{0xb, 1}
	posB, posDel := cdc.ID{0x70, 1}, cdc.ID{0x70, 2}
	legacyPos, legacyContent, v1 := cdc.ID{0x11}, cdc.ID{0x12}, cdc.ID{0x13}
	deleted, expired := cdc.ID{0x44, 3}, cdc.ID{0x45, 4}
	send(t, p,
		// Written by an older build: a v1 and a v2 record.
		rowMsg(topic, v1, Entry{FirstSeen: now, SourceOffset: 1}),
		rowMsg(topic, legacyPos, Entry{FirstSeen: now, SourceOffset: 2, Content: legacyContent}),
		// Row K: snapshot A (row only), update to B (position ID + row), re-snapshot A.
		rowMsg(topic, a, Entry{FirstSeen: now, SourceOffset: 10, Row: k, State: RowPresent, RowContent: a, RowOnly: true}),
		rowMsg(topic, posB, Entry{FirstSeen: now, SourceOffset: 11, Row: k, State: RowPresent, RowContent: b}),
		rowMsg(topic, a, Entry{FirstSeen: now, SourceOffset: 40, Row: k, State: RowPresent, RowContent: a, RowOnly: true}),
		// A deleted row, and a row whose only state is older than the window.
		rowMsg(topic, posDel, Entry{FirstSeen: now, SourceOffset: 12, Row: deleted, State: RowDeleted}),
		rowMsg(topic, cdc.ID{0x99}, Entry{FirstSeen: now.Add(-2 * time.Hour), SourceOffset: 13, Row: expired, State: RowPresent, RowContent: a, RowOnly: true}),
	)
	idx := NewIndex(time.Hour)
	st := restoreNow(t, newClient(t, c), topic, 0, idx, false)
	t.Logf("%+v", st)
	if st.Keys != 5 || st.Rows != 2 || st.Expired != 1 || st.Invalid != 0 {
		t.Fatalf("stats %+v: want 5 IDs (v1, v2 pair, posB, posDel), 2 rows, 1 expired", st)
	}
	if idx.Seen(a) {
		t.Error("a snapshot row's content ID was remembered as an ID: an earlier state would count as applied")
	}
	for _, id := range []cdc.ID{v1, legacyPos, legacyContent, posB, posDel} {
		if !idx.Seen(id) {
			t.Errorf("ID %v not restored", id)
		}
	}
	if applied, known := idx.RowApplied(k, RowPresent, a, 100); !applied || !known {
		t.Error("the latest state A of K is not recognised after the restore")
	}
	if applied, _ := idx.RowApplied(k, RowPresent, b, 100); applied {
		t.Error("the earlier state B of K counts as applied after the restore")
	}
	if applied, _ := idx.RowApplied(k, RowPresent, b, 40); !applied {
		t.Error("a redelivery at the latest offset is not a duplicate")
	}
	if applied, _ := idx.RowApplied(deleted, RowPresent, a, 100); applied {
		t.Error("a row re-inserted after a delete counts as applied")
	}
	if _, known := idx.RowApplied(expired, RowPresent, a, 100); known {
		t.Error("an expired row state was restored")
	}
	if _, known := idx.RowApplied(legacyRow, RowPresent, legacyContent, 100); known {
		t.Error("a row without state is known")
	}
}

// Under read_committed a row state written in an aborted transaction is
// not restored: the committed state stays the latest.
func TestRestoreRowStatesReadCommitted(t *testing.T) {
	const topic = "rowtxn.ledger"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	p := newProducer(t, c, "cdcsync.rows-src-0")
	now := time.Now()
	k, a, b := cdc.ID{0x4b}, cdc.ID{0xa}, cdc.ID{0xb}
	txn := func(commit bool, msgs ...*sarama.ProducerMessage) {
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		send(t, p, msgs...)
		var err error
		if commit {
			err = p.CommitTxn()
		} else {
			err = p.AbortTxn()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	txn(true, rowMsg(topic, a, Entry{FirstSeen: now, SourceOffset: 1, Row: k, State: RowPresent, RowContent: a, RowOnly: true}))
	txn(false, rowMsg(topic, cdc.ID{0x70}, Entry{FirstSeen: now, SourceOffset: 2, Row: k, State: RowPresent, RowContent: b}))
	idx := NewIndex(time.Hour)
	restoreNow(t, newClient(t, c), topic, 0, idx, true)
	if applied, _ := idx.RowApplied(k, RowPresent, a, 100); !applied {
		t.Error("the committed state was replaced by an aborted one")
	}
	if _, off, _, _ := idx.Row(k); off != 1 {
		t.Errorf("offset %d, want 1", off)
	}
}

// BenchmarkRestoreRows500k restores 500k version-3 records as cdcsync
// writes them for streamed updates: a position ID and a row state each,
// over 100k rows.
func BenchmarkRestoreRows500k(b *testing.B) {
	const topic, n, rows = "benchrows.ledger", 500_000, 100_000
	c := newCluster(b, kfake.SeedTopics(1, topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1_000_000))
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	keys := make([]cdc.ID, rows)
	for i := range keys {
		keys[i] = randID(r)
	}
	now := time.Now()
	for i := 0; i < n; i += 50_000 {
		recs := make([]*kgo.Record, 0, 50_000)
		for j := i; j < i+50_000; j++ {
			recs = append(recs, &kgo.Record{Key: EncodeKey(randID(r)), Value: EncodeValue(Entry{FirstSeen: now, SourceOffset: int64(j),
				Row: keys[j%rows], State: RowPresent, RowContent: randID(r)})})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	cl.Close()
	client := newClient(b, c)
	var total time.Duration
	var recs int
	for b.Loop() {
		idx := NewIndex(time.Hour, WithCapacity(n))
		st, err := Restore(context.Background(), client, topic, 0, idx, true)
		if err != nil {
			b.Fatal(err)
		}
		if st.Keys != n || st.Rows != rows {
			b.Fatalf("%+v", st)
		}
		total += st.Duration
		recs += st.Records
	}
	b.ReportMetric(float64(recs)/total.Seconds(), "records/s")
}

// BenchmarkRowKeyOf is the row key the dedup stage computes for every
// keyed change: the workload's topic and one-column key.
func BenchmarkRowKeyOf(b *testing.B) {
	key := cdc.Row{{Name: "id", Value: int64(1004)}}
	b.ReportAllocs()
	for b.Loop() {
		if RowKeyOf("bench.public.customers", key).IsZero() {
			b.Fatal("zero row key")
		}
	}
}
