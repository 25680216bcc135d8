package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// Filter selects DLQ entries. Zero fields match everything.
type Filter struct {
	// Reason matches, case-insensitively, a substring of the exception
	// class, the message, the stage or the failing class.
	Reason string
	// Key matches the original key exactly (as text).
	Key string
	// Since and Until bound Entry.Time(): Since inclusive, Until exclusive.
	Since, Until time.Time
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Entry) bool {
	if f.Key != "" && string(e.Key) != f.Key {
		return false
	}
	if t := e.Time(); (!f.Since.IsZero() && t.Before(f.Since)) || (!f.Until.IsZero() && !t.Before(f.Until)) {
		return false
	}
	if f.Reason != "" {
		r := strings.ToLower(f.Reason)
		if !strings.Contains(strings.ToLower(e.ExceptionClass), r) &&
			!strings.Contains(strings.ToLower(e.Message), r) &&
			!strings.Contains(strings.ToLower(e.Stage), r) &&
			!strings.Contains(strings.ToLower(e.Class), r) {
			return false
		}
	}
	return true
}

// Read returns the entries of a DLQ topic that match f, in partition then
// offset order, at most limit of them (limit <= 0: no limit).
//
// It reads every partition from its oldest offset to the high-water mark
// taken when it starts the partition, then stops; records written later are
// not waited for. Offsets that are never delivered (transaction markers,
// aborted records under read_committed, compacted gaps) cannot make it
// hang: a partition that delivers nothing for an idle period of three
// fetch waits (Consumer.MaxWaitTime, at least one second; twice that
// before the first record) counts as read.
// Read uses the client's consumer settings (isolation level, fetch sizes)
// and does not close the client.
//
// Records Parse rejects are skipped; Read then returns the entries it did
// parse together with an error joining one *ParseError per skipped record.
// Other errors (a missing topic, a broker failure, ctx done) return nil
// entries.
func Read(ctx context.Context, client sarama.Client, topic string, f Filter, limit int) ([]Entry, error) {
	partitions, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("dlq: read %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("dlq: read %s: %w", topic, err)
	}
	defer consumer.Close()

	idle := 3 * client.Config().Consumer.MaxWaitTime
	idle = max(idle, time.Second)
	var (
		out       []Entry
		parseErrs []error
	)
	for _, p := range partitions {
		if limit > 0 && len(out) >= limit {
			break
		}
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("dlq: read %s/%d: oldest offset: %w", topic, p, err)
		}
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("dlq: read %s/%d: high-water mark: %w", topic, p, err)
		}
		if oldest >= end {
			continue
		}
		out, parseErrs, err = readPartition(ctx, consumer, topic, p, oldest, end, idle, f, limit, out, parseErrs)
		if err != nil {
			return nil, err
		}
	}
	return out, errors.Join(parseErrs...)
}

func readPartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, from, end int64,
	idle time.Duration, f Filter, limit int, out []Entry, parseErrs []error,
) ([]Entry, []error, error) {
	pc, err := consumer.ConsumePartition(topic, p, from)
	if err != nil {
		return nil, nil, fmt.Errorf("dlq: read %s/%d: %w", topic, p, err)
	}
	// Close drains Messages and Errors, so nothing outlives Read.
	defer pc.Close()

	// The first fetch includes connecting to the leader: allow it longer.
	timer := time.NewTimer(2 * idle)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case err := <-pc.Errors():
			return nil, nil, fmt.Errorf("dlq: read %s/%d: %w", topic, p, err)
		case <-timer.C:
			return out, parseErrs, nil // only undeliverable offsets remain
		case msg, ok := <-pc.Messages():
			if !ok {
				return out, parseErrs, nil
			}
			if msg.Offset >= end {
				return out, parseErrs, nil
			}
			e, err := Parse(msg)
			switch {
			case err != nil:
				parseErrs = append(parseErrs, err)
			case f.Match(&e):
				out = append(out, e)
			}
			if msg.Offset+1 >= end || (limit > 0 && len(out) >= limit) {
				return out, parseErrs, nil
			}
			timer.Reset(idle)
		}
	}
}
