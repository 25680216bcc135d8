package processor

import (
	"errors"
	"fmt"

	"strings"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/processor/route"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// Class is how a failure is handled. Every failure is classified once.
type Class int

const (
	// Transient failures (broker, registry or network unavailable,
	// timeouts) are retried with backoff; the partition pauses meanwhile.
	// They never go to the DLQ.
	Transient Class = iota
	// Permanent failures (undecodable bytes, unknown schema, missing key
	// fields, rule violations) send the record to the DLQ; the partition
	// keeps flowing.
	Permanent
	// Fatal failures (bad configuration, a fenced producer, a ledger with
	// the wrong partition count) stop the pipeline with a clear message.
	Fatal
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Fatal:
		return "fatal"
	}
	return "unknown"
}

// Errors returned by the runtime.
var (
	// ErrTopicLayout is returned at start when the source topics of one
	// topology do not all have the same partition count, which the
	// co-partitioned ledger needs.
	ErrTopicLayout = errors.New("processor: source topics are not co-partitioned")
	// ErrNoSourceTopics is logged while a topology's source topics do not
	// exist yet or its pattern matches none; the worker keeps waiting.
	ErrNoSourceTopics = errors.New("processor: no source topics")
	// ErrAuthorityViolation is the DLQ reason of a change that touched
	// fields its source system does not own, under on_violation: dlq.
	ErrAuthorityViolation = errors.New("processor: authority violation")
	// ErrCleanupTimeout is returned by a session's Cleanup when records
	// were still unacknowledged after shutdown_timeout: their offsets stay
	// uncommitted and the next owner consumes them again.
	ErrCleanupTimeout = errors.New("processor: session cleanup timed out")

	// ErrFenced is returned when a producer was fenced by a newer one.
	ErrFenced = errors.New("processor: producer fenced")
	// ErrSinkTopic is wrapped by a *SinkTopicError when an expanded sink
	// topic may not be written: it is or collides with the topology's DLQ,
	// ledger or source topics, or with an existing topic. Permanent: the
	// record goes to the DLQ, stage route.
	ErrSinkTopic = errors.New("processor: unusable sink topic")
	// ErrOutputTooLarge is wrapped (with sarama.ErrMessageSizeTooLarge)
	// when a sink record is larger than the producer accepts. Permanent:
	// the source record goes to the DLQ, stage produce.
	ErrOutputTooLarge = errors.New("processor: output record too large")
	// ErrTruncateHeld is the DLQ reason of a TRUNCATE under
	// source.truncate: dlq (the default), stage route.
	ErrTruncateHeld = errors.New("processor: truncate held back")
)

// SinkTopicError says why an expanded sink topic cannot be used. It is
// permanent, whatever it wraps.
type SinkTopicError struct {
	Topic  string
	Reason string
	Err    error // ErrSinkTopic, topology.ErrInvalidTopicName or the broker's answer
}

func (e *SinkTopicError) Error() string {
	return fmt.Sprintf("sink topic %q cannot be used: %s: %v", e.Topic, e.Reason, e.Err)
}
func (e *SinkTopicError) Unwrap() error   { return e.Err }
func (e *SinkTopicError) Permanent() bool { return true }

// fatalError marks an error as fatal for the classification.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(err error) error {
	if err == nil {
		return nil
	}
	return &fatalError{err}
}

// classify returns the class of err. An error is transient only when a
// retry can succeed; DESIGN.md has the table of every error the data path
// can see.
func classify(err error) Class {
	if err == nil {
		return Transient
	}
	var fe *fatalError
	if errors.As(err, &fe) || errors.Is(err, ErrConfig) || IsAccessFailure(err) {
		return Fatal
	}
	if errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) {
		return Fatal
	}
	if errors.Is(err, ledger.ErrPartitionMismatch) || errors.Is(err, ledger.ErrInvalidArgument) {
		return Fatal
	}
	if errors.Is(err, cdc.ErrRegistryUnavailable) {
		return Transient
	}
	if errors.Is(err, schemas.ErrIncompatible) || errors.Is(err, schemas.ErrNotRegistered) || errors.Is(err, schemas.ErrInvalidSchema) {
		return Fatal
	}
	var perm interface{ Permanent() bool }
	if errors.As(err, &perm) && perm.Permanent() {
		return Permanent
	}
	var ce sarama.ConfigurationError
	if errors.As(err, &ce) {
		// sarama's client-side size check answers with a ConfigurationError
		// for one record; every other one is about the configuration.
		if strings.Contains(string(ce), "MaxMessageBytes") {
			return Permanent
		}
		return Fatal
	}
	switch {
	// The record itself is refused: the same bytes are refused again.
	case errors.Is(err, sarama.ErrMessageSizeTooLarge),
		errors.Is(err, sarama.ErrInvalidMessage), // CRC mismatch; sarama retried it already
		errors.Is(err, sarama.ErrInvalidMessageSize),
		errors.Is(err, sarama.ErrMessageSetSizeTooLarge),
		errors.Is(err, sarama.ErrInvalidRecord),    // e.g. a keyless record into a compacted topic
		errors.Is(err, sarama.ErrInvalidTimestamp), // outside message.timestamp.*.max.ms
		errors.Is(err, sarama.ErrInvalidTopic),     // an illegal or colliding name, from CreateTopics or Produce
		errors.Is(err, sarama.ErrPolicyViolation),  // create.topic.policy refused the topic
		errors.Is(err, sarama.ErrInvalidPartitions),
		errors.Is(err, sarama.ErrInvalidConfig):
		return Permanent
	// The worker may not do this, or cannot speak to this cluster: nothing
	// changes until an operator does.
	case errors.Is(err, sarama.ErrTopicAuthorizationFailed),
		errors.Is(err, sarama.ErrClusterAuthorizationFailed),
		errors.Is(err, sarama.ErrGroupAuthorizationFailed),
		errors.Is(err, sarama.ErrTransactionalIDAuthorizationFailed),
		errors.Is(err, sarama.ErrSASLAuthenticationFailed),
		errors.Is(err, sarama.ErrIllegalSASLState),
		errors.Is(err, sarama.ErrUnsupportedSASLMechanism),
		errors.Is(err, sarama.ErrUnsupportedVersion),
		errors.Is(err, sarama.ErrUnsupportedForMessageFormat),
		errors.Is(err, sarama.ErrInvalidRequiredAcks),
		errors.Is(err, sarama.ErrInvalidTransactionTimeout):
		return Fatal
	}
	return Transient
}

// permanentError marks a failure of a record as permanent: it goes to the
// DLQ with the stage it failed in.
type permanentError struct {
	stage string
	err   error
}

func (e *permanentError) Error() string   { return fmt.Sprintf("%s: %v", e.stage, e.err) }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// exceptionClass names an error for the DLQ's exception-class header: the
// sentinel it wraps when it is one of ours, else its Go type.
func exceptionClass(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{
		{cdc.ErrMalformed, "cdc.ErrMalformed"},
		{cdc.ErrMissingField, "cdc.ErrMissingField"},
		{cdc.ErrUnknownOp, "cdc.ErrUnknownOp"},
		{cdc.ErrSchemaMismatch, "cdc.ErrSchemaMismatch"},
		{cdc.ErrUnknownSchema, "cdc.ErrUnknownSchema"},
		{route.ErrMissingKeyField, "route.ErrMissingKeyField"},
		{ErrAuthorityViolation, "processor.ErrAuthorityViolation"},
		{ErrSinkTopic, "processor.ErrSinkTopic"},
		{ErrOutputTooLarge, "processor.ErrOutputTooLarge"},
		{ErrTruncateHeld, "processor.ErrTruncateHeld"},
		{topology.ErrInvalidTopicName, "topology.ErrInvalidTopicName"},
		{sarama.ErrMessageSizeTooLarge, "sarama.ErrMessageSizeTooLarge"},
		{sarama.ErrInvalidTopic, "sarama.ErrInvalidTopic"},
		{sarama.ErrInvalidRecord, "sarama.ErrInvalidRecord"},
		{sarama.ErrInvalidTimestamp, "sarama.ErrInvalidTimestamp"},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return fmt.Sprintf("%T", err)
		}
		err = next
	}
}
