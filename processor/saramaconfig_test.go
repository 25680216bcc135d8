package processor

import (
	"testing"
	"time"
)

// Regression: sarama's default Metadata.AllowAutoTopicCreation=true made a
// broker with auto.create.topics.enable=true create sink and DLQ topics
// with 1 partition. Every client the worker opens uses saramaConfig (the
// pipeline client, the output and ledger producers through its Config,
// the transactional producers).
func TestSaramaConfigNoAutoTopicCreation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	for _, purpose := range []string{"check", "orders", "orders-txn"} {
		sc, err := cfg.saramaConfig(purpose)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Metadata.AllowAutoTopicCreation {
			t.Errorf("%s: Metadata.AllowAutoTopicCreation is on", purpose)
		}
		if sc.Producer.MaxMessageBytes != maxMessageBytes {
			t.Errorf("%s: Producer.MaxMessageBytes = %d, want %d", purpose, sc.Producer.MaxMessageBytes, maxMessageBytes)
		}
		// Regression: with sarama's 1 MiB per partition a worker on real
		// Kafka peaked at up to 177 MB, over the 150 MB budget (issue 11).
		if sc.Consumer.Fetch.Default != 256<<10 || sc.Consumer.Fetch.MaxBytes != 8<<20 {
			t.Errorf("%s: Consumer.Fetch.Default %d, MaxBytes %d; want 256 KiB and 8 MiB", purpose, sc.Consumer.Fetch.Default, sc.Consumer.Fetch.MaxBytes)
		}
	}
}

// Regression: sarama's default Net.ReadTimeout of 30 s held every request
// to a broker paused with SIGSTOP for 30 s, and exactly_once partitions
// stayed stuck about 20 s past the end of the fault (docs/faults.md,
// BrokerStop).
// The timeout must stay above Producer.Timeout, the broker's own wait for
// acks=all, or a slow but healthy produce would be cut short.
func TestSaramaConfigReadTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	sc, err := cfg.saramaConfig("orders")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Net.ReadTimeout != 15*time.Second {
		t.Errorf("Net.ReadTimeout = %v, want 15s", sc.Net.ReadTimeout)
	}
	if sc.Net.ReadTimeout <= sc.Producer.Timeout {
		t.Errorf("Net.ReadTimeout %v is not above Producer.Timeout %v", sc.Net.ReadTimeout, sc.Producer.Timeout)
	}
}

// Regression: sarama bounds a JoinGroup request by Net.ReadTimeout, while
// the coordinator holds it up to the rebalance timeout when a member died
// without leaving, and kfake restarts that wait on every join. With the
// read timeout lowered to 15 s for every client, the live members' joins
// timed out and rejoined until the group happened to settle
// (TestKfakeSagaChaos: 9,793 of 10,000 sagas after 4 minutes). A client
// that runs a group gets twice the rebalance timeout; producers keep 15 s.
func TestSaramaConfigGroupReadTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	sc, err := cfg.saramaConfig("orders")
	if err != nil {
		t.Fatal(err)
	}
	g := groupConfig(sc)
	if rt, rb := g.Net.ReadTimeout, g.Consumer.Group.Rebalance.Timeout; rt < 2*rb {
		t.Errorf("group client: Net.ReadTimeout %v, want at least twice the rebalance timeout %v", rt, rb)
	}
	if sc.Net.ReadTimeout != 15*time.Second {
		t.Errorf("groupConfig changed the configuration it was given: Net.ReadTimeout %v", sc.Net.ReadTimeout)
	}
	if p := producerConfig(g); p.Net.ReadTimeout != 15*time.Second {
		t.Errorf("producer from a group client's configuration: Net.ReadTimeout %v, want 15s", p.Net.ReadTimeout)
	}
	if applyDrainGrace >= g.Consumer.Group.Rebalance.Timeout {
		t.Errorf("applyDrainGrace %v does not fit in the rebalance timeout %v", applyDrainGrace, g.Consumer.Group.Rebalance.Timeout)
	}
}
