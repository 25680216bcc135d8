package ledger

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

func TestBatchRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	now := time.UnixMilli(time.Now().UnixMilli())
	want := []BatchEntry{
		{randID(r), Entry{FirstSeen: now, SourceOffset: 1}},
		{randID(r), Entry{FirstSeen: now, SourceOffset: 2, Content: randID(r)}},
		{randID(r), Entry{FirstSeen: now, SourceOffset: 3, Row: randID(r), State: RowPresent, RowContent: randID(r)}},
		{randID(r), Entry{FirstSeen: now, SourceOffset: 4, Row: randID(r), State: RowDeleted, RowOnly: true}},
	}
	var b Batch
	if b.Value() != nil || b.Size() != 0 || !b.Fits() {
		t.Fatal("an empty batch is not empty")
	}
	for _, e := range want {
		b.AppendEntry(e.ID, e.Entry)
	}
	if b.Len() != len(want) {
		t.Fatalf("Len %d", b.Len())
	}
	got, err := DecodeBatch(nil, b.Value())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || !got[i].Entry.FirstSeen.Equal(want[i].Entry.FirstSeen) ||
			got[i].Entry.SourceOffset != want[i].Entry.SourceOffset || got[i].Entry.Content != want[i].Entry.Content ||
			got[i].Entry.Row != want[i].Entry.Row || got[i].Entry.State != want[i].Entry.State ||
			got[i].Entry.RowContent != want[i].Entry.RowContent || got[i].Entry.RowOnly != want[i].Entry.RowOnly {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	b.Reset()
	if b.Len() != 0 || b.Value() != nil {
		t.Fatal("Reset left entries")
	}

	// A full batch stays within BatchMaxBytes.
	for b.Fits() {
		b.AppendEntry(randID(r), Entry{FirstSeen: now, Row: randID(r), State: RowPresent, RowContent: randID(r)})
	}
	if b.Size() > BatchMaxBytes || b.Len() < 900 {
		t.Fatalf("a full batch: %d entries, %d bytes", b.Len(), b.Size())
	}

	// A batch grown to a full batch's size fills without reallocating.
	full := b.Size()
	var g Batch
	g.Grow(full)
	before := cap(g.buf)
	for g.Fits() {
		g.AppendEntry(randID(r), Entry{FirstSeen: now, Row: randID(r), State: RowPresent, RowContent: randID(r)})
	}
	if cap(g.buf) != before || g.Size() != full {
		t.Errorf("after Grow(%d): capacity %d -> %d, size %d", full, before, cap(g.buf), g.Size())
	}

	if !IsBatchKey(BatchKey(1, 2)) || IsBatchKey(EncodeKey(randID(r))) || IsBatchKey(nil) {
		t.Fatal("IsBatchKey")
	}
	if string(BatchKey(1, 2)) == string(BatchKey(1, 3)) || string(BatchKey(1, 2)) == string(BatchKey(2, 2)) {
		t.Fatal("batch keys repeat")
	}
}

func TestBatchDecodeErrors(t *testing.T) {
	var b Batch
	id := cdc.ID{1}
	b.AppendEntry(id, Entry{FirstSeen: time.Now(), SourceOffset: 7})
	b.AppendEntry(id, Entry{FirstSeen: time.Now(), SourceOffset: 8})
	good := append([]byte(nil), b.Value()...)
	if err := b.Append([]byte("short"), EncodeValue(Entry{})); !errors.Is(err, ErrBadKey) {
		t.Errorf("Append short key: %v", err)
	}
	if err := b.Append(id[:], nil); !errors.Is(err, ErrBadValue) {
		t.Errorf("Append tombstone: %v", err)
	}
	if b.Len() != 2 {
		t.Fatal("a refused Append changed the batch")
	}
	mut := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, tc := range map[string]struct {
		v    []byte
		want error
	}{
		"empty":         {nil, ErrBadValue},
		"header only":   {good[:3], ErrBadValue},
		"other version": {mut(func(v []byte) []byte { v[0] = 9; return v }), ErrUnknownVersion},
		"cut short":     {good[:len(good)-1], ErrBadValue},
		"count high":    {mut(func(v []byte) []byte { v[4] = 3; return v }), ErrBadValue},
		"count low":     {mut(func(v []byte) []byte { v[4] = 1; return v }), ErrBadValue},
		"trailing byte": {append(append([]byte(nil), good...), 0), ErrBadValue},
		"zero length":   {mut(func(v []byte) []byte { v[batchHeader+KeySize] = 0; return v }), ErrBadValue},
		"bad entry":     {mut(func(v []byte) []byte { v[batchHeader+KeySize+1] = 7; return v }), ErrUnknownVersion},
	} {
		dst := []BatchEntry{{ID: id}}
		got, err := DecodeBatch(dst, tc.v)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if len(got) != 1 {
			t.Errorf("%s: a bad batch was half read: %d entries", name, len(got))
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	var b Batch
	b.AppendEntry(cdc.ID{1}, Entry{FirstSeen: time.Now(), SourceOffset: 1})
	b.AppendEntry(cdc.ID{2}, Entry{FirstSeen: time.Now(), Row: cdc.ID{3}, State: RowPresent, RowContent: cdc.ID{4}})
	f.Add(append([]byte(nil), b.Value()...))
	f.Add([]byte{ValueVersionBatch, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		_, _ = DecodeBatch(nil, v)
	})
}

func batchMsg(topic string, partition int32, seq uint64, entries ...BatchEntry) *sarama.ProducerMessage {
	var b Batch
	for _, e := range entries {
		b.AppendEntry(e.ID, e.Entry)
	}
	return &sarama.ProducerMessage{Topic: topic, Partition: partition,
		Key: sarama.ByteEncoder(BatchKey(42, seq)), Value: sarama.ByteEncoder(b.Value())}
}

// A ledger written before group commit (single-ID records of versions 1,
// 2 and 3) and continued by a build that writes batch records restores as
// one log: every ID from both formats, row states folded in log order
// across them, tombstones and expiry applied to batch entries too, and a
// corrupt batch skipped whole.
func TestRestoreMixedLedger(t *testing.T) {
	const topic = "mixed.ledger"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	cl := newClient(t, c)
	p := newProducer(t, c, "")
	r := rand.New(rand.NewPCG(6, 6))
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	v1, v2id, v2content, v3id := randID(r), randID(r), randID(r), randID(r)
	rowA, rowB, rowC := randID(r), randID(r), randID(r)
	contA1, contA2, contA3, contB, contC := randID(r), randID(r), randID(r), randID(r), randID(r)
	batched := []cdc.ID{randID(r), randID(r), randID(r)}
	expired, forgotten, snapshot := randID(r), randID(r), randID(r)
	one := func(id cdc.ID, e Entry) *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(EncodeKey(id)), Value: sarama.ByteEncoder(EncodeValue(e))}
	}
	msgs := []*sarama.ProducerMessage{
		one(v1, Entry{FirstSeen: now, SourceOffset: 1}),
		one(v2id, Entry{FirstSeen: now, SourceOffset: 2, Content: v2content}),
		one(v3id, Entry{FirstSeen: now, SourceOffset: 3, Row: rowA, State: RowPresent, RowContent: contA1}),
		one(randID(r), Entry{FirstSeen: now, SourceOffset: 4, Row: rowB, State: RowPresent, RowContent: contB}),
		batchMsg(topic, 0, 1,
			BatchEntry{batched[0], Entry{FirstSeen: now, SourceOffset: 5, Row: rowA, State: RowPresent, RowContent: contA2}},
			BatchEntry{expired, Entry{FirstSeen: old, SourceOffset: 6}},
			BatchEntry{forgotten, Entry{FirstSeen: now, SourceOffset: 7}},
			BatchEntry{snapshot, Entry{FirstSeen: now, SourceOffset: 8, Row: rowC, State: RowPresent, RowContent: contC, RowOnly: true}},
		),
		tombstoneMsg(topic, 0, forgotten),
		{Topic: topic, Key: sarama.ByteEncoder(BatchKey(42, 2)), Value: sarama.ByteEncoder([]byte{ValueVersionBatch, 0, 0, 0, 1, 1})},
		// An older build's single-ID record after a batch: the latest
		// state of row A is the one it names.
		one(batched[1], Entry{FirstSeen: now, SourceOffset: 9, Row: rowA, State: RowPresent, RowContent: contA3}),
		batchMsg(topic, 0, 3,
			BatchEntry{batched[2], Entry{FirstSeen: now, SourceOffset: 10, Row: rowB, State: RowDeleted}}),
	}
	send(t, p, msgs...)

	idx := NewIndex(time.Hour)
	st := restoreNow(t, cl, topic, 0, idx, false)
	t.Logf("%+v", st)
	if st.Records != len(msgs) || st.Batches != 2 || st.Invalid != 1 || st.Tombstones != 1 || st.Expired != 1 {
		t.Errorf("stats %+v", st)
	}
	if !errors.Is(st.FirstInvalid, ErrBadValue) {
		t.Errorf("FirstInvalid = %v", st.FirstInvalid)
	}
	for _, id := range append([]cdc.ID{v1, v2id, v2content, v3id}, batched...) {
		if !idx.Seen(id) {
			t.Errorf("ID %s not restored", id)
		}
	}
	for name, id := range map[string]cdc.ID{"expired": expired, "tombstoned": forgotten, "row-only": snapshot} {
		if idx.Seen(id) {
			t.Errorf("%s ID restored", name)
		}
	}
	for _, tc := range []struct {
		name    string
		row     cdc.ID
		state   RowState
		content cdc.ID
		offset  int64
	}{
		{"A: single, batch, then single", rowA, RowPresent, contA3, 9},
		{"B: single then batch", rowB, RowDeleted, cdc.ID{}, 10},
		{"C: snapshot row in a batch", rowC, RowPresent, contC, 8},
	} {
		state, off, _, ok := idx.Row(tc.row)
		if !ok || state != tc.state || off != tc.offset {
			t.Errorf("row %s: state %v offset %d ok %v, want %v at %d", tc.name, state, off, ok, tc.state, tc.offset)
		}
		if tc.state == RowPresent {
			if applied, _ := idx.RowApplied(tc.row, RowPresent, tc.content, 1<<40); !applied {
				t.Errorf("row %s: its latest content is not applied", tc.name)
			}
		}
	}
	// Row A's earlier states are not its latest: a snapshot of them applies.
	for _, cont := range []cdc.ID{contA1, contA2} {
		if applied, _ := idx.RowApplied(rowA, RowPresent, cont, 1<<40); applied {
			t.Error("an earlier state of row A counts as applied")
		}
	}
}

// Batch records written in aborted transactions are not loaded under
// read_committed, like single-ID ones.
func TestRestoreBatchReadCommitted(t *testing.T) {
	const topic = "txnbatch.ledger"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	cl := newClient(t, c)
	p := newProducer(t, c, "cdcsync.txnbatch-src-0")
	r := rand.New(rand.NewPCG(7, 7))
	now := time.Now()
	var committed, aborted []cdc.ID
	for i, commit := range []bool{true, false, true} {
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		var es []BatchEntry
		for j := 0; j < 100; j++ {
			id := randID(r)
			es = append(es, BatchEntry{id, Entry{FirstSeen: now, SourceOffset: int64(i*100 + j)}})
			if commit {
				committed = append(committed, id)
			} else {
				aborted = append(aborted, id)
			}
		}
		send(t, p, batchMsg(topic, 0, uint64(i+1), es...))
		end := p.CommitTxn
		if !commit {
			end = p.AbortTxn
		}
		if err := end(); err != nil {
			t.Fatal(err)
		}
	}
	idx := NewIndex(time.Hour)
	st := restoreNow(t, cl, topic, 0, idx, true)
	if st.Keys != len(committed) || st.Batches != 2 {
		t.Fatalf("%+v, want %d keys in 2 batches", st, len(committed))
	}
	for _, id := range aborted {
		if idx.Seen(id) {
			t.Fatal("an aborted batch entry was loaded")
		}
	}
	for _, id := range committed {
		if !idx.Seen(id) {
			t.Fatal("a committed batch entry was not loaded")
		}
	}
}

// BenchmarkRestoreBatches500k restores 500k IDs written as cdcsync writes
// them with group commit, in full batch records: "ids" holds version-1
// entries (an ID each, as BenchmarkRestore500k in single-ID records),
// "rows" version-3 entries (an ID and a row state each, over 100k rows, as
// BenchmarkRestoreRows500k).
func BenchmarkRestoreBatches500k(b *testing.B) {
	for _, withRows := range []bool{false, true} {
		name := "ids"
		if withRows {
			name = "rows"
		}
		b.Run(name, func(b *testing.B) { benchRestoreBatches(b, withRows) })
	}
}

func benchRestoreBatches(b *testing.B, withRows bool) {
	const topic, n, rows = "benchbatch.ledger", 500_000, 100_000
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
	var recs []*kgo.Record
	var batch Batch
	seq := uint64(0)
	for i := 0; i < n; i++ {
		e := Entry{FirstSeen: now, SourceOffset: int64(i)}
		if withRows {
			e.Row, e.State, e.RowContent = keys[i%rows], RowPresent, randID(r)
		}
		batch.AppendEntry(randID(r), e)
		if !batch.Fits() || i == n-1 {
			seq++
			recs = append(recs, &kgo.Record{Key: BatchKey(1, seq), Value: append([]byte(nil), batch.Value()...)})
			batch.Reset()
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	wantRows := 0
	if withRows {
		wantRows = rows
	}
	client := newClient(b, c)
	var total time.Duration
	var keysRead int
	for b.Loop() {
		idx := NewIndex(time.Hour, WithCapacity(n))
		st, err := Restore(context.Background(), client, topic, 0, idx, true)
		if err != nil {
			b.Fatal(err)
		}
		if st.Keys != n || st.Rows != wantRows {
			b.Fatalf("%+v", st)
		}
		total += st.Duration
		keysRead += st.Keys
	}
	b.ReportMetric(float64(keysRead)/total.Seconds(), "keys/s")
}
