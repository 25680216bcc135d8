package dlq

import (
	"errors"
	"fmt"
)

var (
	// ErrNotDLQRecord is returned (inside a *ParseError) by Parse for a
	// record without the __connect.errors.topic header.
	ErrNotDLQRecord = errors.New("dlq: not a dead-letter record")
	// ErrBadHeader is returned (inside a *ParseError) by Parse when an
	// error header's value does not parse, such as a non-numeric offset.
	ErrBadHeader = errors.New("dlq: malformed error header")
	// ErrWrongPartition is returned by Replay when the record was written
	// to a partition other than the original: the producer does not use
	// sarama.NewManualPartitioner (see ConfigureReplayProducer). The record
	// has been written.
	ErrWrongPartition = errors.New("dlq: replay landed on a different partition")
	// ErrNoOrigin is returned by Replay for an entry without an original
	// topic.
	ErrNoOrigin = errors.New("dlq: entry has no original topic")
)

// ParseError says which DLQ record could not be parsed, and why.
type ParseError struct {
	Topic     string // the DLQ topic
	Partition int32
	Offset    int64
	Header    string // the offending header, if any
	Value     string // its value
	Err       error  // ErrNotDLQRecord or ErrBadHeader
}

func (e *ParseError) Error() string {
	s := fmt.Sprintf("%v: %s/%d@%d", e.Err, e.Topic, e.Partition, e.Offset)
	if e.Header != "" {
		s += fmt.Sprintf(": %s=%q", e.Header, e.Value)
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *ParseError) Unwrap() error { return e.Err }
