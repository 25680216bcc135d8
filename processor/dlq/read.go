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
// Records Parse rejects (not DLQ records, malformed error headers) are
// skipped and never fail the others: Read then returns every entry it did
// parse together with a Skipped error listing one *ParseError per skipped
// record. limit counts parsed entries only. Other errors (a missing topic,
// a broker failure, ctx done) return nil entries.
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
		parseErrs Skipped
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
	if len(parseErrs) > 0 {
		return out, parseErrs
	}
	return out, nil
}

func readPartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, from, end int64,
	idle time.Duration, f Filter, limit int, out []Entry, parseErrs Skipped,
) ([]Entry, Skipped, error) {
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
			var pe *ParseError
			switch {
			case errors.As(err, &pe):
				parseErrs = append(parseErrs, pe)
			case err != nil: // Parse returns only *ParseError
				parseErrs = append(parseErrs, &ParseError{Topic: topic, Partition: p, Offset: msg.Offset, Err: err})
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

// Skipped is the error Read returns, with the entries it did read, when
// some records of the topic are not readable DLQ records. Each element
// names the record's partition and offset and says why; the records
// around them were read normally.
type Skipped []*ParseError

// maxSkippedListed bounds the records Skipped.Error lists one by one.
const maxSkippedListed = 20

// Error reports the count, then one line per record ("P/O: reason"), at
// most 20 of them.
func (s Skipped) Error() string {
	var b strings.Builder
	topic := ""
	if len(s) > 0 {
		topic = " of " + s[0].Topic
	}
	fmt.Fprintf(&b, "dlq: skipped %d record(s)%s that are not readable DLQ records:", len(s), topic)
	for i, pe := range s {
		if i == maxSkippedListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(s)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %d/%d: %s", pe.Partition, pe.Offset, pe.Reason())
	}
	return b.String()
}

// Unwrap returns the *ParseError of each skipped record.
func (s Skipped) Unwrap() []error {
	out := make([]error, len(s))
	for i, pe := range s {
		out[i] = pe
	}
	return out
}

// Find returns the skipped record at partition/offset, if it is one.
func (s Skipped) Find(partition int32, offset int64) *ParseError {
	for _, pe := range s {
		if pe.Partition == partition && pe.Offset == offset {
			return pe
		}
	}
	return nil
}

// Reason is why the record could not be parsed, without its position.
func (e *ParseError) Reason() string {
	switch {
	case errors.Is(e.Err, ErrNotDLQRecord):
		return "not a dead-letter record (no " + HeaderTopic + " header)"
	case e.Header != "":
		return fmt.Sprintf("%v: %s=%q", e.Err, e.Header, e.Value)
	}
	return e.Err.Error()
}
