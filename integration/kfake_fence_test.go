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

// A worker whose transactional producer is fenced never writes with it
// again: its open transaction aborts, and the worker rejoins the group,
// whose next session gives the partition a new producer that resumes from
// the last committed offset. Every record arrives once. (A fenced
// partition used to stay idle until the next rebalance; when the
// transaction coordinator itself bumped the epoch after a broker
// failover, no rebalance came, and the partition stalled for good:
// TestRealStackClusterFaults/LeaderKill/exactly_once.)
func TestKfakeFencedPartitionRejoins(t *testing.T) {
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
	rebalances := wk.w.Stats(plan.Name()).Rebalances

	// A producer with partition 0's transactional ID fences the worker's,
	// as a new owner or the coordinator's epoch bump does.
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
	// Both partitions' 100 new records arrive, partition 0's through the
	// producer of the next session.
	var after []*sarama.ConsumerMessage
	deadline = time.Now().Add(time.Minute)
	for {
		after = readCommitted(t, brokers, "sync.fence")
		if len(after)-before >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := len(after) - before; got != 200 {
		t.Errorf("after fencing, %d new committed sink records; want partition 0's and partition 1's 100 each", got)
	}
	ids := map[string]bool{}
	for _, m := range after {
		ids[decodeSink(t, m).ID] = true
	}
	if len(ids) != len(after) {
		t.Errorf("%d sink records for %d events", len(after), len(ids))
	}
	if st := wk.w.Stats(plan.Name()); st.Rebalances <= rebalances || st.Restarts == 0 {
		t.Errorf("after the fence: %d sessions (%d before), %d restarts; want the session restarted", st.Rebalances, rebalances, st.Restarts)
	}
	if err := wk.stop(); err != nil {
		t.Errorf("worker stopped with %v; a fence must not stop the topology", err)
	}
}
