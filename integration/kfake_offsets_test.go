package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/topology"
)

// resetToEarliest moves a stopped topology's consumer group back to the
// start of its source partitions, as `kafka-consumer-groups.sh
// --reset-offsets --to-earliest --execute` does: an offset commit outside
// any group generation, which Kafka accepts only while the group is empty.
func resetToEarliest(t *testing.T, brokers []string, plan *topology.Plan, topic string, partitions int32) {
	t.Helper()
	c := newClient(t, brokers)
	om, err := sarama.NewOffsetManagerFromClient(string(plan.Group()), c)
	if err != nil {
		t.Fatal(err)
	}
	for p := range partitions {
		pom, err := om.ManagePartition(topic, p)
		if err != nil {
			t.Fatal(err)
		}
		earliest, err := c.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		if next, _ := pom.NextOffset(); next <= earliest {
			t.Fatalf("%s/%d: committed offset %d is not past the earliest %d: the reset would test nothing", topic, p, next, earliest)
		}
		pom.ResetOffset(earliest, "")
		if err := pom.Close(); err != nil {
			t.Fatal(err)
		}
	}
	om.Commit()
	if err := om.Close(); err != nil {
		t.Fatal(err)
	}
	// The group's committed offsets are the earliest now.
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]int32, partitions)
	for p := range partitions {
		parts[p] = p
	}
	resp, err := admin.ListConsumerGroupOffsets(string(plan.Group()), map[string][]int32{topic: parts})
	if err != nil {
		t.Fatal(err)
	}
	for p := range partitions {
		if b := resp.GetBlock(topic, p); b == nil || b.Offset != 0 {
			t.Fatalf("%s/%d: committed offset after the reset: %+v, want 0", topic, p, b)
		}
	}
}

// TestKfakeOffsetReset checks what docs/operations.md#offset-resets says
// about resetting a topology's group back to the earliest offsets, under
// both guarantees: with the ledger kept, every change read again is a
// duplicate and nothing is written twice; with the ledger topic deleted
// first, every change is written again (a sink rebuild).
func TestKfakeOffsetReset(t *testing.T) {
	for _, guarantee := range []string{"at_least_once", "exactly_once"} {
		t.Run(guarantee, func(t *testing.T) { testOffsetReset(t, guarantee) })
	}
}

func testOffsetReset(t *testing.T, guarantee string) {
	const partitions = 2
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, partitions, src.Topic())
	brokers := st.Brokers()
	name := "reset-" + map[string]string{"at_least_once": "alo", "exactly_once": "eos"}[guarantee]
	sink := "sync." + name
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, name, src.Topic(), sink)+"guarantee: "+guarantee+"\n")
	w := makeWorkload(src, 30, 300, 0.1, 41)
	produce(t, brokers, w.Records)

	run := func() processorStats {
		t.Helper()
		wk := startWorker(t, brokers, "w1", plan)
		waitProcessed(t, brokers, time.Minute, plan)
		s := wk.w.Stats(plan.Name())
		if err := wk.stop(); err != nil {
			t.Fatal(err)
		}
		return processorStats{in: s.In, out: s.Out, dup: s.Duplicates}
	}
	first := run()
	checkExactlyOnce(t, readOutputs(t, brokers, sink, guarantee), w)
	if first.in != int64(len(w.Records)) {
		t.Fatalf("first run consumed %d records, want %d", first.in, len(w.Records))
	}

	// Reset back with the ledger kept: everything is read again, and all
	// of it is a duplicate.
	resetToEarliest(t, brokers, plan, src.Topic(), partitions)
	again := run()
	if again.in != int64(len(w.Records)) || again.out != 0 || again.dup != int64(len(w.Records)) {
		t.Errorf("after a reset with the ledger kept: in %d, out %d, duplicates %d; want %d read again, 0 written, %d duplicates",
			again.in, again.out, again.dup, len(w.Records), len(w.Records))
	}
	checkExactlyOnce(t, readOutputs(t, brokers, sink, guarantee), w)

	// Delete the ledger, then reset back: every change is written again.
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTopic(string(plan.LedgerTopic())); err != nil {
		t.Fatal(err)
	}
	resetToEarliest(t, brokers, plan, src.Topic(), partitions)
	rebuilt := run()
	if rebuilt.out != int64(w.Unique) {
		t.Errorf("after deleting the ledger and resetting: %d written, want every unique change again (%d)", rebuilt.out, w.Unique)
	}
	if n := len(readOutputs(t, brokers, sink, guarantee)); n != 2*w.Unique {
		t.Errorf("sink holds %d records after the rebuild, want each of the %d changes twice", n, w.Unique)
	}
}

type processorStats struct{ in, out, dup int64 }
