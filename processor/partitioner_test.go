package processor

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/route"
)

func TestPartitionerKeyedUsesMurmur2(t *testing.T) {
	p := partitionerFor("t.ledger")("sync.crm.contacts")
	if !p.RequiresConsistency() {
		t.Error("RequiresConsistency() = false; keyed records must never be re-partitioned")
	}
	for _, n := range []int32{1, 3, 8, 12, 100} {
		for i := range 500 {
			key := []byte(fmt.Sprintf(`{"id":%d}`, i))
			got, err := p.Partition(&sarama.ProducerMessage{Topic: "sync.crm.contacts", Key: sarama.ByteEncoder(key), Partition: 5}, n)
			if err != nil {
				t.Fatal(err)
			}
			if want := route.Partition(key, n); got != want {
				t.Fatalf("key %s, %d partitions: partition %d, route.Partition says %d", key, n, got, want)
			}
		}
	}
	// The empty key is a key, not a null one.
	got, _ := p.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder{}, Partition: 5}, 8)
	if want := route.Partition([]byte{}, 8); got != want {
		t.Errorf("empty key: partition %d, want %d", got, want)
	}
}

func TestPartitionerNilKeyUsesMessagePartition(t *testing.T) {
	p := partitionerFor("t.ledger")("dlq.t")
	for _, tc := range []struct{ part, n, want int32 }{
		{0, 8, 0}, {5, 8, 5}, {7, 8, 7},
		{8, 8, 0}, {-1, 8, 0}, // out of range: partition 0
	} {
		got, err := p.Partition(&sarama.ProducerMessage{Partition: tc.part}, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("nil key, Partition %d of %d: got %d, %v; want %d", tc.part, tc.n, got, err, tc.want)
		}
	}
	// A DLQ record of a null-keyed source record carries a route.NullKey:
	// it goes to the source partition modulo the count.
	for _, tc := range []struct{ part, n, want int32 }{{3, 8, 3}, {11, 8, 3}} {
		got, err := p.Partition(&sarama.ProducerMessage{Key: route.NullKey{Partition: tc.part}}, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("NullKey{%d} of %d: got %d, %v; want %d", tc.part, tc.n, got, err, tc.want)
		}
	}
}

func TestPartitionerLedgerTopicIsManual(t *testing.T) {
	p := partitionerFor("t.ledger")("t.ledger")
	for _, part := range []int32{0, 3, 7} {
		// Keyed: the key is the event ID, but the ledger partition is the
		// source partition the message names.
		got, err := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder("k"), Partition: part}, 8)
		if err != nil || got != part {
			t.Errorf("ledger, Partition %d: got %d, %v", part, got, err)
		}
	}
}
