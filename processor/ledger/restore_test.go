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

func ledgerMsg(topic string, partition int32, id cdc.ID, firstSeen time.Time, offset int64) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic:     topic,
		Partition: partition,
		Key:       sarama.ByteEncoder(EncodeKey(id)),
		Value:     sarama.ByteEncoder(EncodeValue(Entry{FirstSeen: firstSeen, SourceOffset: offset})),
	}
}

func tombstoneMsg(topic string, partition int32, id cdc.ID) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: topic, Partition: partition, Key: sarama.ByteEncoder(EncodeKey(id))}
}

// newProducer returns a sync producer that writes to the partition each
// message names, as the worker does for its ledger partition.
func newProducer(t testing.TB, c *kfake.Cluster, txnID string) sarama.SyncProducer {
	t.Helper()
	cfg := testConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	if txnID != "" {
		cfg.Producer.Idempotent = true
		cfg.Producer.Transaction.ID = txnID
		cfg.Net.MaxOpenRequests = 1
	}
	p, err := sarama.NewSyncProducer(c.ListenAddrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func send(t testing.TB, p sarama.SyncProducer, msgs ...*sarama.ProducerMessage) {
	t.Helper()
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

func restoreNow(t *testing.T, cl sarama.Client, topic string, partition int32, idx *Index, readCommitted bool) RestoreStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Restore(ctx, cl, topic, partition, idx, readCommitted)
	if err != nil {
		t.Fatalf("Restore: %v (stats %+v)", err, st)
	}
	return st
}

func TestRestoreEmpty(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "empty.ledger"))
	cl := newClient(t, c)
	for _, rc := range []bool{false, true} {
		idx := NewIndex(time.Hour)
		st := restoreNow(t, cl, "empty.ledger", 1, idx, rc)
		if st.Keys != 0 || st.Records != 0 || idx.Len() != 0 {
			t.Fatalf("read_committed=%v: %+v", rc, st)
		}
		if st.Duration > time.Second {
			t.Fatalf("empty restore took %v", st.Duration)
		}
	}
}

func TestRestoreNormalTombstonesExpired(t *testing.T) {
	const topic = "contacts.ledger"
	c := newCluster(t, kfake.SeedTopics(2, topic))
	cl := newClient(t, c)
	p := newProducer(t, c, "")
	now := time.Now()
	r := rand.New(rand.NewPCG(1, 1))

	var live, dead, old []cdc.ID
	var msgs []*sarama.ProducerMessage
	for i := 0; i < 3000; i++ {
		id := randID(r)
		switch {
		case i%10 == 0: // forgotten later by a tombstone
			dead = append(dead, id)
		case i%10 == 1: // first seen before the window
			old = append(old, id)
			msgs = append(msgs, ledgerMsg(topic, 1, id, now.Add(-2*time.Hour), int64(i)))
			continue
		default:
			live = append(live, id)
		}
		msgs = append(msgs, ledgerMsg(topic, 1, id, now.Add(-time.Minute), int64(i)))
	}
	for _, id := range dead {
		msgs = append(msgs, tombstoneMsg(topic, 1, id))
	}
	// Garbage that a restore must survive.
	msgs = append(msgs,
		&sarama.ProducerMessage{Topic: topic, Partition: 1, Key: sarama.StringEncoder("short"), Value: sarama.ByteEncoder(EncodeValue(Entry{FirstSeen: now}))},
		&sarama.ProducerMessage{Topic: topic, Partition: 1, Key: sarama.ByteEncoder(EncodeKey(randID(r))), Value: sarama.ByteEncoder([]byte{9, 9})},
	)
	// Partition 0 belongs to another source partition: not read.
	other := randID(r)
	msgs = append(msgs, ledgerMsg(topic, 0, other, now, 1))
	for i := 0; i < len(msgs); i += 500 {
		send(t, p, msgs[i:min(i+500, len(msgs))]...)
	}

	idx := NewIndex(time.Hour)
	st := restoreNow(t, cl, topic, 1, idx, false)
	t.Logf("%+v", st)
	if st.Records != len(msgs)-1 || st.Keys != len(live)+len(dead) || st.Tombstones != len(dead) ||
		st.Expired != len(old) || st.Invalid != 2 || st.FirstInvalid == nil {
		t.Fatalf("stats %+v; want records %d keys %d tombstones %d expired %d invalid 2",
			st, len(msgs)-1, len(live)+len(dead), len(dead), len(old))
	}
	if !errors.Is(st.FirstInvalid, ErrBadKey) {
		t.Errorf("FirstInvalid = %v", st.FirstInvalid)
	}
	if idx.Len() != len(live) {
		t.Fatalf("Len = %d, want %d", idx.Len(), len(live))
	}
	for _, id := range live {
		if !idx.Seen(id) {
			t.Fatal("live ID not restored")
		}
	}
	for _, id := range append(append(dead, old...), other) {
		if idx.Seen(id) {
			t.Fatal("tombstoned, expired or foreign ID restored")
		}
	}
	if st.EndOffset != int64(len(msgs)-1) || st.StartOffset != 0 {
		t.Errorf("offsets %d..%d", st.StartOffset, st.EndOffset)
	}
}

// Under read_committed, records of aborted transactions must not be loaded,
// and the restore must end although the last offsets are transaction
// markers that are never delivered (the failure mode: waiting for
// "last delivered offset == high-water mark - 1", which never happens).
func TestRestoreReadCommitted(t *testing.T) {
	const topic = "txn.ledger"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	cl := newClient(t, c)
	p := newProducer(t, c, "cdcsync.txn-src-0")
	now := time.Now()
	r := rand.New(rand.NewPCG(2, 2))

	var committed, aborted []cdc.ID
	txn := func(commit bool, n int) {
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < n; i++ {
			id := randID(r)
			if commit {
				committed = append(committed, id)
			} else {
				aborted = append(aborted, id)
			}
			msgs = append(msgs, ledgerMsg(topic, 0, id, now, int64(i)))
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
	txn(true, 100)
	txn(false, 50)
	txn(true, 100)
	txn(false, 50)
	txn(true, 10) // the log ends with a commit marker

	idx := NewIndex(time.Hour)
	st := restoreNow(t, cl, topic, 0, idx, true)
	t.Logf("read_committed: %+v", st)
	if st.Keys != len(committed) || idx.Len() != len(committed) {
		t.Fatalf("loaded %d keys (Len %d), want %d", st.Keys, idx.Len(), len(committed))
	}
	for _, id := range aborted {
		if idx.Seen(id) {
			t.Fatal("an aborted ledger record was loaded")
		}
	}
	for _, id := range committed {
		if !idx.Seen(id) {
			t.Fatal("a committed ledger record was not loaded")
		}
	}

	// read_uncommitted sees everything, markers still not delivered.
	all := NewIndex(time.Hour)
	st = restoreNow(t, cl, topic, 0, all, false)
	if st.Keys != len(committed)+len(aborted) {
		t.Fatalf("read_uncommitted loaded %d keys, want %d", st.Keys, len(committed)+len(aborted))
	}

	// An open transaction at the end: read_committed stops at the last
	// stable offset at once instead of waiting for it.
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	open := randID(r)
	send(t, p, ledgerMsg(topic, 0, open, now, 1))
	idx = NewIndex(time.Hour)
	st = restoreNow(t, cl, topic, 0, idx, true)
	if idx.Seen(open) || st.Keys != len(committed) || st.Duration > 2*time.Second {
		t.Fatalf("with an open transaction: %+v, open seen %v", st, idx.Seen(open))
	}
	if err := p.AbortTxn(); err != nil {
		t.Fatal(err)
	}
	// Now the log ends with aborted records and an abort marker.
	idx = NewIndex(time.Hour)
	st = restoreNow(t, cl, topic, 0, idx, true)
	if idx.Seen(open) || st.Keys != len(committed) {
		t.Fatalf("ending in an aborted transaction: %+v", st)
	}
}

func TestRestoreCancel(t *testing.T) {
	const topic = "cancel.ledger"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	cl := newClient(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Restore(ctx, cl, topic, 0, NewIndex(time.Hour), false)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	// Cancelled mid-way through a large partition: returns promptly. Small
	// fetches make the restore take many round trips.
	seed(t, c, topic, 200_000)
	cl = newClient(t, c, func(cfg *sarama.Config) { cfg.Consumer.Fetch.Default = 16 << 10 })
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	began := time.Now()
	st, err := Restore(ctx, cl, topic, 0, NewIndex(time.Hour), false)
	if err == nil {
		t.Skipf("restore finished before the cancel (%+v)", st)
	}
	if !errors.Is(err, context.Canceled) || time.Since(began) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(began))
	}
}

func TestRestoreInvalidArguments(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "x.ledger"))
	cl := newClient(t, c)
	ctx := testContext(t)
	marked := NewIndex(time.Hour)
	marked.Mark()
	for name, idx := range map[string]*Index{"nil index": nil, "marked index": marked} {
		if _, err := Restore(ctx, cl, "x.ledger", 0, idx, false); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := Restore(ctx, cl, "", 0, NewIndex(time.Hour), false); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty topic: err = %v", err)
	}
}

// seed writes n ledger records to partition 0 of topic with franz-go, an
// independent client, in large batches like a busy worker's.
func seed(t testing.TB, c *kfake.Cluster, topic string, n int) []cdc.ID {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1_000_000),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := rand.New(rand.NewPCG(9, 9))
	now := time.Now()
	ids := make([]cdc.ID, n)
	const chunk = 50_000
	for i := 0; i < n; i += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			ids[j] = randID(r)
			recs = append(recs, &kgo.Record{
				Partition: 0,
				Key:       EncodeKey(ids[j]),
				Value:     EncodeValue(Entry{FirstSeen: now, SourceOffset: int64(j)}),
			})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestRestoreLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100k records")
	}
	const topic, n = "large.ledger", 100_000
	c := newCluster(t, kfake.SeedTopics(1, topic))
	ids := seed(t, c, topic, n)
	cl := newClient(t, c)
	idx := NewIndex(time.Hour)
	st := restoreNow(t, cl, topic, 0, idx, true)
	t.Logf("%d keys in %v: %.0f keys/s", st.Keys, st.Duration, st.KeysPerSecond())
	if st.Keys != n || idx.Len() != n {
		t.Fatalf("%+v", st)
	}
	for _, id := range ids {
		if !idx.Seen(id) {
			t.Fatal("missing ID")
		}
	}
}

// BenchmarkRestore500k measures restore throughput over TCP against the
// in-process broker. The broker shares the CPUs with the client.
func BenchmarkRestore500k(b *testing.B) {
	const topic, n = "bench.ledger", 500_000
	c := newCluster(b, kfake.SeedTopics(1, topic))
	seed(b, c, topic, n)
	saramaDefaults := func(cfg *sarama.Config) {
		d := sarama.NewConfig()
		cfg.Consumer.Fetch = d.Consumer.Fetch
		cfg.Consumer.MaxWaitTime = d.Consumer.MaxWaitTime
	}
	for _, tc := range []struct {
		name          string
		readCommitted bool
		tweak         func(*sarama.Config)
	}{
		{"read_uncommitted", false, func(*sarama.Config) {}},
		{"read_committed", true, func(*sarama.Config) {}},
		{"read_committed/sarama_default_fetch", true, saramaDefaults},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cl := newClient(b, c, tc.tweak)
			var total time.Duration
			var keys int
			for b.Loop() {
				idx := NewIndex(time.Hour, WithCapacity(n))
				st, err := Restore(context.Background(), cl, topic, 0, idx, tc.readCommitted)
				if err != nil {
					b.Fatal(err)
				}
				if st.Keys != n {
					b.Fatalf("%+v", st)
				}
				total += st.Duration
				keys += st.Keys
			}
			b.ReportMetric(float64(keys)/total.Seconds(), "keys/s")
		})
	}
}

// After compaction and retention the log has offset gaps and a log start
// above 0; Restore must follow the batch offsets, not count records.
func TestRestoreAfterCompaction(t *testing.T) {
	const topic = "compacted.ledger"
	// Small segments, so the cleaner has closed segments to compact.
	c := newCluster(t, kfake.BrokerConfigs(map[string]string{"log.segment.bytes": "4096"}))
	if err := Ensure(testContext(t), newAdmin(t, c), topic, 1, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, c, "")
	r := rand.New(rand.NewPCG(4, 4))
	now := time.Now()
	var first, live, dead []cdc.ID
	for i := 0; i < 200; i++ {
		first = append(first, randID(r)) // removed by DeleteRecords below
	}
	for i := 0; i < 1000; i++ {
		if i%4 == 0 {
			dead = append(dead, randID(r))
		} else {
			live = append(live, randID(r))
		}
	}
	var msgs []*sarama.ProducerMessage
	for i, id := range first {
		msgs = append(msgs, ledgerMsg(topic, 0, id, now, int64(i)))
	}
	send(t, p, msgs...)
	msgs = msgs[:0]
	for i, id := range append(append([]cdc.ID{}, live...), dead...) {
		msgs = append(msgs, ledgerMsg(topic, 0, id, now.Add(-time.Minute), int64(i)))
	}
	for i := 0; i < len(msgs); i += 100 { // many batches, so compaction leaves gaps
		send(t, p, msgs[i:min(i+100, len(msgs))]...)
	}
	msgs = msgs[:0]
	for _, id := range dead {
		msgs = append(msgs, tombstoneMsg(topic, 0, id))
	}
	for i, id := range live[:100] { // rewritten: compaction keeps only these
		msgs = append(msgs, ledgerMsg(topic, 0, id, now, int64(i)))
	}
	send(t, p, msgs...)
	if err := c.DeleteRecords(topic, 0, int64(len(first))); err != nil {
		t.Fatal(err)
	}
	c.Compact()

	idx := NewIndex(time.Hour)
	st := restoreNow(t, newClient(t, c), topic, 0, idx, false)
	t.Logf("%+v", st)
	if gaps := st.EndOffset - st.StartOffset - int64(st.Records); gaps <= 0 {
		t.Errorf("compaction left no offset gaps (%+v): the test does not test them", st)
	}
	// The log starts at the DeleteRecords offset; compaction may also have
	// removed the records right after it, so the first offset read can be
	// later (seen flaking at 201 when the test asserted equality).
	if st.StartOffset < int64(len(first)) {
		t.Errorf("StartOffset = %d, want at least %d", st.StartOffset, len(first))
	}
	if idx.Len() != len(live) {
		t.Fatalf("Len = %d, want %d", idx.Len(), len(live))
	}
	for _, id := range live {
		if !idx.Seen(id) {
			t.Fatal("live ID missing")
		}
	}
	for _, id := range append(first, dead...) {
		if idx.Seen(id) {
			t.Fatal("deleted or tombstoned ID restored")
		}
	}
	// A rewritten ID keeps its earliest surviving first-seen time.
	if fs, _ := idx.FirstSeen(live[0]); fs.Unix() > now.Unix() {
		t.Errorf("FirstSeen = %v", fs)
	}
}
