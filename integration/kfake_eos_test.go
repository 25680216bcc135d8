package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
)

const eosTopology = `name: %s
systems: [erp, crm]
source: {topics: [%s], system: erp, format: debezium-json}
authority:
  owners: {first_name: crm, last_name: crm, email: crm}
  default_owner: erp
sink: {topic: '%s', key: [id]}
guarantee: exactly_once
commit_interval: 100ms
`

// readCommitted reads every committed record of topic with
// isolation.level=read_committed, up to the last stable offsets.
func readCommitted(t *testing.T, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	c, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cons, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hwm == 0 {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		// Commit markers take offsets that are never delivered: stop when
		// the fetch position reaches the high-water mark, or when nothing
		// more arrives.
	loop:
		for {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				if m.Offset >= hwm-1 {
					break loop
				}
			case <-time.After(1500 * time.Millisecond):
				break loop
			}
		}
		pc.Close()
	}
	return out
}

// Exactly-once with in-process workers: a rebalance in the middle, then
// every event is in the sink exactly once for a read_committed consumer.
func TestKfakeExactlyOnceRebalance(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 6, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(eosTopology, "eos", src.Topic(), "sync.eos"))
	w := makeWorkload(src, 500, 20_000, 0.10, 7)
	half := len(w.Records) / 2

	w1 := startWorker(t, brokers, "w1", plan)
	produce(t, brokers, w.Records[:half])
	time.Sleep(500 * time.Millisecond)
	w2 := startWorker(t, brokers, "w2", plan)
	produce(t, brokers, w.Records[half:])
	time.Sleep(time.Second)
	if err := w1.stop(); err != nil {
		t.Fatalf("w1: %v", err)
	}
	waitProcessed(t, brokers, 2*time.Minute, plan)
	if err := w2.stop(); err != nil {
		t.Fatalf("w2: %v", err)
	}
	msgs := readCommitted(t, brokers, "sync.eos")
	checkExactlyOnce(t, msgs, w)
	s1, s2 := w1.w.Stats(plan.Name()), w2.w.Stats(plan.Name())
	if s1.TxnCommits+s2.TxnCommits == 0 {
		t.Fatal("no transaction committed")
	}
	t.Logf("w1 %+v\nw2 %+v", s1, s2)
	_ = context.Background
}
