package processor

import "testing"

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
