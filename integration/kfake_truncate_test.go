package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/route"
)

// produceToPartitions writes records to the given partitions, in order.
func produceToPartitions(t *testing.T, brokers []string, topic string, recs []partRecord) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.MaxMessageBytes = 8 << 20
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, r := range recs {
		m := &sarama.ProducerMessage{Topic: topic, Partition: r.partition}
		if r.key != nil {
			m.Key = sarama.ByteEncoder(r.key)
		}
		if r.value != nil {
			m.Value = sarama.ByteEncoder(r.value)
		}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatalf("producing to %s/%d: %v", topic, r.partition, err)
		}
	}
}

type partRecord struct {
	partition  int32
	key, value []byte
}

// truncateRecord is Debezium's record of a TRUNCATE at lsn: no key, no row.
func truncateRecord(lsn int64) []byte {
	return fmt.Appendf(nil, `{"before":null,"after":null,"source":{"version":"3.6.1.Final","connector":"postgresql","name":"erp","ts_ms":1764230400000,"snapshot":"false","db":"erp","sequence":"[null,\"%d\"]","schema":"public","table":"contacts","txId":900,"lsn":%d},"transaction":null,"op":"t","ts_ms":1764230400001}`, lsn, lsn)
}

// idOnPartition returns the first contact id from start whose key
// {"id":N} Kafka's murmur2 puts on partition p of n.
func idOnPartition(start int64, p, n int32) int64 {
	for id := start; ; id++ {
		if route.Partition(fmt.Appendf(nil, `{"id":%d}`, id), n) == p {
			return id
		}
	}
}

// A TRUNCATE is committed after a change of key A and before a change of
// key B, and A's source partition has a backlog: the worker reads the
// truncate before A's older change. The test shows what each
// source.truncate policy makes of that:
//   - dlq (the default): the truncate goes to the DLQ (stage route), every
//     change reaches the sink, and the partitions keep flowing;
//   - drop: the truncate is dropped, every change reaches the sink;
//   - pass: the truncate reaches both sink partitions at once, and A's
//     change, committed before it, lands after it: a consumer replaying
//     the sink keeps row A, which the database truncated. This is the
//     documented reorder.
//
// The backlog is real: the broker answers every fetch of source partition
// 1 with NOT_LEADER_FOR_PARTITION (sarama re-fetches the metadata and
// tries again) until partition 0, the truncate included, is processed.
func TestKfakeTruncateUnderBacklog(t *testing.T) {
	for _, policy := range []string{"", "dlq", "drop", "pass"} {
		name := policy
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) { truncateUnderBacklog(t, policy) })
	}
}

func truncateUnderBacklog(t *testing.T, policy string) {
	src := demo.NewSource("erp", "erp", false)
	topic := src.Topic()
	st := cluster(t, 2, topic)
	brokers := st.Brokers()
	opt := ""
	if policy != "" {
		opt = ", truncate: " + policy
	}
	sink := "sync.trunc-" + strings.ReplaceAll(t.Name()[strings.LastIndex(t.Name(), "/")+1:], "_", "-")
	plan := mustPlan(t, fmt.Sprintf(`name: trunc-%s
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-json%s}
sink: {topic: %s, key: [id]}
`, sink[len("sync.trunc-"):], topic, opt, sink))

	a, b, c := idOnPartition(1, 1, 2), idOnPartition(1, 0, 2), idOnPartition(1000, 0, 2)
	change := func(id int64) (int32, []byte, []byte) {
		k, v := src.Change('c', nil, &demo.Contact{ID: id, FirstName: fmt.Sprint("row-", id)})
		return route.Partition(k, 2), k, v
	}
	// Commit order (LSN): A, B, TRUNCATE, C.
	pa, ka, va := change(a)
	pb, kb, vb := change(b)
	tr := truncateRecord(30_000_000)
	pc, kc, vc := change(c)
	if pa != 1 || pb != 0 || pc != 0 {
		t.Fatalf("partitions %d %d %d, want A on 1, B and C on 0", pa, pb, pc)
	}

	fault := st.Kafka.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topic, Partitions: []int32{1},
		Err: kerr.NotLeaderForPartition, Count: -1})
	produceToPartitions(t, brokers, topic, []partRecord{{pa, ka, va}, {pb, kb, vb}, {0, nil, tr}, {pc, kc, vc}})
	wk := startWorker(t, brokers, "w1", plan)

	// Wait until partition 0 (B, the truncate, C) is done while A waits.
	deadline := time.Now().Add(30 * time.Second)
	for wk.w.Stats(plan.Name()).Completed < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("partition 0 not processed: %+v", wk.w.Stats(plan.Name()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fault.Hits() == 0 {
		t.Fatal("no fetch of partition 1 was refused: there was no backlog")
	}
	if s := wk.w.Stats(plan.Name()); s.In != 3 {
		t.Fatalf("%d records consumed before the backlog cleared, want partition 0's 3", s.In)
	}
	fault.Remove()
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}

	type out struct {
		partition int32
		offset    int64
		typ       string
		id        string
	}
	var sinkOut []out
	for _, m := range readAll(t, brokers, sink) {
		r := decodeSink(t, m)
		sinkOut = append(sinkOut, out{m.Partition, m.Offset, r.Type, string(r.Key["id"])})
	}
	entries, err := dlq.Read(t.Context(), newClient(t, brokers), string(plan.DLQTopic()), dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := wk.w.Stats(plan.Name())
	creates := map[string]bool{}
	truncates := map[int32]int64{} // sink partition -> offset of the truncate
	for _, o := range sinkOut {
		switch o.typ {
		case "contacts.created":
			creates[o.id] = true
		case "contacts.truncated":
			truncates[o.partition] = o.offset
		}
	}
	for _, id := range []int64{a, b, c} {
		if !creates[fmt.Sprint(id)] {
			t.Errorf("the change of key %d is missing from the sink: %v", id, sinkOut)
		}
	}
	switch policy {
	case "", "dlq":
		if len(truncates) != 0 {
			t.Errorf("the truncate reached the sink: %v", sinkOut)
		}
		if len(entries) != 1 || entries[0].Stage != dlq.StageRoute || entries[0].ExceptionClass != "processor.ErrTruncateHeld" ||
			string(entries[0].Value) != string(tr) || entries[0].Partition != 0 || entries[0].Offset != 1 {
			t.Fatalf("DLQ %+v: want the truncate (0@1), unchanged, stage route, processor.ErrTruncateHeld", entries)
		}
		if !strings.Contains(entries[0].Message, "source.truncate: pass") {
			t.Errorf("DLQ message %q does not say how to pass truncates", entries[0].Message)
		}
	case "drop":
		if len(truncates) != 0 || len(entries) != 0 || s.DLQ != 0 {
			t.Errorf("drop: sink %v, DLQ %d: the truncate must vanish", sinkOut, len(entries))
		}
	case "pass":
		if len(truncates) != 2 || len(entries) != 0 {
			t.Fatalf("pass: truncate on sink partitions %v, DLQ %d; want both partitions, no DLQ", truncates, len(entries))
		}
		// The documented reorder: A was committed before the truncate
		// but sits after it in its sink partition.
		for _, o := range sinkOut {
			if o.id == fmt.Sprint(a) && o.offset < truncates[o.partition] {
				t.Errorf("A (sink %d@%d) came before the truncate (@%d): the backlog did not reorder", o.partition, o.offset, truncates[o.partition])
			}
		}
	}
	if s.Restarts != 0 {
		t.Errorf("%d session restarts", s.Restarts)
	}
}
