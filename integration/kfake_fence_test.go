package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
)

// produceTo writes records to one partition.
func produceTo(t *testing.T, brokers []string, partition int32, recs []demo.Record) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, r := range recs {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: r.Topic, Partition: partition,
			Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value)}); err != nil {
			t.Fatal(err)
		}
	}
}

// A worker whose transactional producer is fenced by a newer one (a new
// owner of the partition after a rebalance it missed) stops that
// partition only, never writes to it again, and keeps the other
// partitions flowing.
func TestKfakeFencedPartitionStops(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(eosTopology, "fence", src.Topic(), "sync.fence"))
	w := makeWorkload(src, 50, 400, 0, 11)
	produceTo(t, brokers, 0, w.Records[:100])
	produceTo(t, brokers, 1, w.Records[100:200])

	wk := startWorker(t, brokers, "zombie", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	before := len(readCommitted(t, brokers, "sync.fence"))

	// A new producer with partition 0's transactional ID fences the worker.
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Transaction.ID = fmt.Sprintf("%s-%s-0", plan.Group(), src.Topic())
	fencer, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fencer.Close()

	produceTo(t, brokers, 0, w.Records[200:300])
	produceTo(t, brokers, 1, w.Records[300:400])
	deadline := time.Now().Add(30 * time.Second)
	for wk.w.Stats(plan.Name()).TxnAborts == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fenced partition's transaction was never aborted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // let partition 1 commit
	after := readCommitted(t, brokers, "sync.fence")
	// Partition 1's 100 new records arrived; none of partition 0's.
	if got := len(after) - before; got != 100 {
		t.Errorf("after fencing, %d new committed sink records; want partition 1's 100 and none of partition 0's", got)
	}
	ids := map[string]bool{}
	for _, m := range after {
		ids[decodeSink(t, m).ID] = true
	}
	if len(ids) != len(after) {
		t.Errorf("%d sink records for %d events", len(after), len(ids))
	}
	if err := wk.stop(); err != nil {
		t.Logf("worker stopped with %v", err)
	}
}
