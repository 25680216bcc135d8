package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// ErrNoRecord is returned by ReadAt when the topic partition holds no
// record at the offset: it is below the log start (deleted or compacted
// away), at or past the high-water mark, or an offset that is never
// delivered (a transaction marker).
var ErrNoRecord = errors.New("dlq: no record at this offset")

// ReadAt reads and parses the one DLQ record at topic/partition@offset,
// without scanning the rest of the topic. It returns ErrNoRecord when
// there is none, a *ParseError when the record is not a readable DLQ
// record, and other errors for a missing topic, a broker failure or ctx
// done. It does not close the client.
func ReadAt(ctx context.Context, client sarama.Client, topic string, partition int32, offset int64) (Entry, error) {
	oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq: read %s/%d: oldest offset: %w", topic, partition, err)
	}
	end, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq: read %s/%d: high-water mark: %w", topic, partition, err)
	}
	if offset < oldest || offset >= end {
		return Entry{}, fmt.Errorf("%w: %s/%d@%d (partition holds %d..%d)", ErrNoRecord, topic, partition, offset, oldest, end-1)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq: read %s/%d: %w", topic, partition, err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, offset)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq: read %s/%d@%d: %w", topic, partition, offset, err)
	}
	defer pc.Close()
	// As in Read: an offset that is never delivered must not hang.
	idle := max(3*client.Config().Consumer.MaxWaitTime, time.Second)
	timer := time.NewTimer(2 * idle)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	case err := <-pc.Errors():
		return Entry{}, fmt.Errorf("dlq: read %s/%d@%d: %w", topic, partition, offset, err)
	case <-timer.C:
		return Entry{}, fmt.Errorf("%w: %s/%d@%d (nothing delivered there)", ErrNoRecord, topic, partition, offset)
	case msg, ok := <-pc.Messages():
		if !ok || msg.Offset != offset {
			return Entry{}, fmt.Errorf("%w: %s/%d@%d", ErrNoRecord, topic, partition, offset)
		}
		return Parse(msg)
	}
}
