package dlq

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
)

// ConfigureReplayProducer sets what Replay needs on a producer config:
// the manual partitioner (so a record goes back to its original partition,
// where that partition's ledger sees it), Return.Successes (required by a
// SyncProducer) and acks from all in-sync replicas.
func ConfigureReplayProducer(cfg *sarama.Config) {
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
}

// Replay writes e's original key, value, headers (without the error
// headers) and timestamp back to its original topic and partition. The
// producer must be configured with ConfigureReplayProducer; if the record
// lands elsewhere Replay returns ErrWrongPartition (the record has been
// written). Replaying the same entry twice is harmless: the dedup ledger
// drops the second copy once the first has been processed (see the package
// documentation).
func Replay(ctx context.Context, producer sarama.SyncProducer, e Entry) error {
	if e.Topic == "" {
		return fmt.Errorf("%w (dlq %s/%d@%d)", ErrNoOrigin, e.DLQTopic, e.DLQPartition, e.DLQOffset)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	msg := &sarama.ProducerMessage{
		Topic:     e.Topic,
		Partition: e.Partition,
		Timestamp: e.Timestamp,
		Headers:   make([]sarama.RecordHeader, 0, len(e.OriginalHeaders)),
	}
	if e.Key != nil {
		msg.Key = sarama.ByteEncoder(e.Key)
	}
	if e.Value != nil {
		msg.Value = sarama.ByteEncoder(e.Value)
	}
	for _, h := range e.OriginalHeaders {
		if h != nil {
			msg.Headers = append(msg.Headers, *h)
		}
	}
	p, off, err := producer.SendMessage(msg)
	if err != nil {
		return fmt.Errorf("dlq: replay %s/%d@%d to %s/%d: %w", e.DLQTopic, e.DLQPartition, e.DLQOffset, e.Topic, e.Partition, err)
	}
	if p != e.Partition {
		return fmt.Errorf("%w: %s/%d@%d went to %s/%d@%d, not partition %d", ErrWrongPartition,
			e.DLQTopic, e.DLQPartition, e.DLQOffset, e.Topic, p, off, e.Partition)
	}
	return nil
}
