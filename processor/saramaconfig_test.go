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
// without leaving. With the rebalance timeout at or above the read timeout
// the live members' joins timed out and they rejoined for ever
// (TestKfakeSagaChaos stalled at 9,793 of 10,000 sagas). Every group
// client (pipelines, apply, sagas) takes its config from saramaConfig.
func TestSaramaConfigRebalanceUnderReadTimeout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	sc, err := cfg.saramaConfig("orders")
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Net.ReadTimeout - sc.Consumer.Group.Rebalance.Timeout; got < 5*time.Second {
		t.Errorf("Net.ReadTimeout %v is only %v above Consumer.Group.Rebalance.Timeout %v, want 5s or more",
			sc.Net.ReadTimeout, got, sc.Consumer.Group.Rebalance.Timeout)
	}
	if applyDrainGrace >= sc.Consumer.Group.Rebalance.Timeout {
		t.Errorf("applyDrainGrace %v does not fit in the rebalance timeout %v", applyDrainGrace, sc.Consumer.Group.Rebalance.Timeout)
	}
}
