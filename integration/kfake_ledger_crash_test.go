package integration

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/topology"
)

// Group commit widens the window between an output's acknowledgement and
// the ledger batch that records it. A worker killed inside that window
// (here held open: the broker answers every ledger write with a retriable
// error, so the outputs are acknowledged and no ledger batch is) must lose
// nothing, and repeat at most the outputs it wrote without a ledger entry:
// the at_least_once duplicates DESIGN.md documents.
func TestKfakeCrashBetweenOutputAckAndLedgerFlush(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	doc := fmt.Sprintf(contactsTopology, "ledgercrash", src.Topic(), "sync.ledgercrash")
	plan := mustPlan(t, doc)
	ledgerTopic := string(plan.LedgerTopic())
	dir := writeTopology(t, doc)
	w := makeWorkload(src, 400, 12_000, 0.10, 11)
	produce(t, brokers, w.Records)
	client := newClient(t, brokers)

	var hold atomic.Bool
	var refused atomic.Int64
	hold.Store(true)
	st.Kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		st.Kafka.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if !hold.Load() || len(pr.Topics) == 0 || pr.Topics[0].Topic != ledgerTopic {
			return nil, nil, false
		}
		refused.Add(1)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = 19 // NOT_ENOUGH_REPLICAS: retriable, sarama retries with backoff
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})

	// No offset commit before the kill: everything is redelivered.
	a := startProcess(t, "worker-a", brokers, dir, "CDCSYNC_COMMIT_INTERVAL=1h")
	deadline := time.Now().Add(2 * time.Minute)
	for sumHWM(t, client, "sync.ledgercrash") < 2000 || refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("worker A wrote %d outputs and tried %d ledger writes before the deadline",
				sumHWM(t, client, "sync.ledgercrash"), refused.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill()
	hold.Store(false)
	sinkAtKill := sumHWM(t, client, "sync.ledgercrash")
	ledgered := ledgerEntries(t, brokers, ledgerTopic)
	if ledgered != 0 {
		t.Fatalf("%d ledger entries landed although every ledger write was refused", ledgered)
	}

	b := startProcess(t, "worker-b", brokers, dir)
	if err := demo.WaitProcessed(context.Background(), brokers, []*topology.Plan{plan}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.terminate(time.Minute); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	msgs := readAll(t, brokers, "sync.ledgercrash")
	seen := map[string]int{}
	for _, m := range msgs {
		seen[decodeSink(t, m).ID]++
	}
	if len(seen) != w.Unique {
		t.Errorf("sink holds %d distinct events, want %d: changes were lost", len(seen), w.Unique)
	}
	repeats := int64(len(msgs) - len(seen))
	if repeats > sinkAtKill-ledgered {
		t.Errorf("%d sink records repeat; only the %d outputs written without a ledger entry at the kill may", repeats, sinkAtKill-ledgered)
	}
	if repeats == 0 {
		t.Error("no output repeated: the kill did not fall between output acknowledgement and ledger flush")
	}
	// Every change is recorded now: B's ledger holds one entry per event.
	if n := ledgerEntries(t, brokers, ledgerTopic); n != int64(w.Unique) {
		t.Errorf("the ledger holds %d entries after the restart, want %d", n, w.Unique)
	}
	t.Logf("at kill: %d outputs, %d ledger writes refused, 0 ledgered; after restart: %d repeats in the sink", sinkAtKill, refused.Load(), repeats)
}
