package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
// headers) and timestamp back to its original topic and partition, with
// the header cdcsync.replay.of (HeaderReplayOf) set to e.Link(). The
// producer must be configured with ConfigureReplayProducer; if the record
// lands elsewhere Replay returns ErrWrongPartition (the record has been
// written). Replaying the same entry twice is harmless: the dedup ledger
// drops the second copy once the first has been processed (see the package
// documentation).
func Replay(ctx context.Context, producer sarama.SyncProducer, e Entry) error {
	_, _, err := replay(ctx, producer, e)
	return err
}

// replay is Replay, also returning where the record was written; the
// position is valid (wrote is true) whenever the record was written, even
// with ErrWrongPartition.
func replay(ctx context.Context, producer sarama.SyncProducer, e Entry) (pos Position, wrote bool, err error) {
	if e.Topic == "" {
		return pos, false, fmt.Errorf("%w (dlq %s/%d@%d)", ErrNoOrigin, e.DLQTopic, e.DLQPartition, e.DLQOffset)
	}
	if err := ctx.Err(); err != nil {
		return pos, false, err
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
		// The link to an earlier DLQ record is replaced by the link to
		// this one, which links to it in turn.
		if h != nil && string(h.Key) != HeaderReplayOf {
			msg.Headers = append(msg.Headers, *h)
		}
	}
	msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(HeaderReplayOf), Value: []byte(e.Link())})
	p, off, err := producer.SendMessage(msg)
	if err != nil {
		return pos, false, fmt.Errorf("dlq: replay %s/%d@%d to %s/%d: %w", e.DLQTopic, e.DLQPartition, e.DLQOffset, e.Topic, e.Partition, err)
	}
	pos = Position{Topic: e.Topic, Partition: p, Offset: off}
	if p != e.Partition {
		return pos, true, fmt.Errorf("%w: %s/%d@%d went to %s/%d@%d, not partition %d", ErrWrongPartition,
			e.DLQTopic, e.DLQPartition, e.DLQOffset, e.Topic, p, off, e.Partition)
	}
	return pos, true, nil
}

// Position is where a replayed record was written.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (p Position) String() string { return fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Offset) }

// ReplayReport is what ReplayAll wrote.
type ReplayReport struct {
	Written int // records written
	// Last holds, for every topic partition written to, the offset of the
	// last record written there, in topic then partition order.
	Last []Position
}

// ReplayAll replays entries in order with Replay and stops at the first
// failure. The report says what was written before it, and is complete
// whether or not an error is returned: a failed replay can be resumed
// from the failed entry, and records already written are dropped by the
// dedup ledger if they are written again. The error names the DLQ record
// that failed.
//
// Call CheckTargets first: ReplayAll does not refuse DLQ targets itself.
func ReplayAll(ctx context.Context, producer sarama.SyncProducer, entries []Entry) (ReplayReport, error) {
	var (
		r    ReplayReport
		last = map[Position]int{} // topic and partition (offset 0) -> index in r.Last
	)
	record := func(pos Position) {
		r.Written++
		k := Position{Topic: pos.Topic, Partition: pos.Partition}
		if i, ok := last[k]; ok {
			r.Last[i] = pos
			return
		}
		last[k] = len(r.Last)
		r.Last = append(r.Last, pos)
	}
	defer func() {
		slices.SortFunc(r.Last, func(a, b Position) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return cmp.Compare(a.Partition, b.Partition)
		})
	}()
	for _, e := range entries {
		pos, wrote, err := replay(ctx, producer, e)
		if wrote {
			record(pos)
		}
		if err != nil {
			return r, &ReplayError{DLQTopic: e.DLQTopic, DLQPartition: e.DLQPartition, DLQOffset: e.DLQOffset, Err: err}
		}
	}
	return r, nil
}

// ReplayError is the failure that stopped ReplayAll: the DLQ record that
// could not be replayed, and why.
type ReplayError struct {
	DLQTopic     string
	DLQPartition int32
	DLQOffset    int64
	Err          error
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("replaying DLQ record %d/%d: %v", e.DLQPartition, e.DLQOffset, e.Err)
}

// Unwrap returns the cause.
func (e *ReplayError) Unwrap() error { return e.Err }

// CheckTargets refuses, before anything is written, a replay that would
// write into a dead-letter topic, or into another topic a replay must
// never feed. An entry's target (its original topic) is refused when it is
//
//   - missing (ErrNoOrigin);
//   - the DLQ topic being replayed, which would grow with every replay;
//   - a topic whose records carry Kafka Connect error headers: the
//     entry's original headers include __connect.errors.topic, so the
//     record was itself read from a dead-letter topic;
//   - a key of forbidden, which maps topics the caller knows must not be
//     written (the DLQ and ledger topics of the loaded topologies) to why;
//   - any topic, when the DLQ copy was cut to fit (HeaderTruncated): its
//     key or value is not the original, and replaying it would write a
//     broken record into the source topic.
//
// The error wraps ErrReplayTarget and lists every refused entry (at most
// 20 lines).
func CheckTargets(entries []Entry, forbidden map[string]string) error {
	var lines []string
	for i := range entries {
		e := &entries[i]
		var why string
		switch {
		case e.Topic == "":
			why = "it has no original topic"
		case e.Topic == e.DLQTopic:
			why = fmt.Sprintf("its original topic %s is the DLQ topic being replayed", e.Topic)
		case forbidden[e.Topic] != "":
			why = fmt.Sprintf("its original topic %s is %s", e.Topic, forbidden[e.Topic])
		case hasConnectErrorHeaders(e.OriginalHeaders):
			why = fmt.Sprintf("its original record carries %s headers, so %s is a dead-letter topic", HeaderTopic, e.Topic)
		case truncated(e) != "":
			why = fmt.Sprintf("the DLQ copy was cut to fit (%s: %s), so it is not the original record; the original is at %s/%d@%d",
				HeaderTruncated, truncated(e), e.Topic, e.Partition, e.Offset)
		default:
			continue
		}
		lines = append(lines, fmt.Sprintf("%d/%d: %s", e.DLQPartition, e.DLQOffset, why))
	}
	if len(lines) == 0 {
		return nil
	}
	n := len(lines)
	if n > maxSkippedListed {
		lines = append(lines[:maxSkippedListed], fmt.Sprintf("… and %d more", n-maxSkippedListed))
	}
	return fmt.Errorf("%w: %d record(s) refused, nothing written (leave them out with the filters):\n  %s",
		ErrReplayTarget, n, strings.Join(lines, "\n  "))
}

// ErrReplayTarget is returned by CheckTargets when an entry's target must
// not be written by a replay.
var ErrReplayTarget = errors.New("dlq: replay would write into a dead-letter or ledger topic")

// truncated is the value of the entry's HeaderTruncated error header, or
// "" when its copy is whole.
func truncated(e *Entry) string {
	hs := e.Headers
	if len(hs) >= len(e.OriginalHeaders) {
		hs = hs[len(e.OriginalHeaders):] // the error headers only
	}
	for _, h := range hs {
		if h != nil && string(h.Key) == HeaderTruncated {
			return string(h.Value)
		}
	}
	return ""
}

func hasConnectErrorHeaders(hs []*sarama.RecordHeader) bool {
	for _, h := range hs {
		if h != nil && string(h.Key) == HeaderTopic {
			return true
		}
	}
	return false
}

// Link is the entry's DLQ position as HeaderReplayOf holds it:
// "DLQTOPIC/PARTITION@OFFSET".
func (e *Entry) Link() string {
	return Position{Topic: e.DLQTopic, Partition: e.DLQPartition, Offset: e.DLQOffset}.String()
}
