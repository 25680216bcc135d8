package processor

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/route"
	"github.com/cdcsync/cdcsync/schemas"
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
	// ErrFenced is returned when a producer was fenced by a newer one.
	ErrFenced = errors.New("processor: producer fenced")
)

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

// classify returns the class of err.
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
	switch {
	case errors.Is(err, sarama.ErrMessageSizeTooLarge),
		errors.Is(err, sarama.ErrInvalidMessage),
		errors.Is(err, sarama.ErrInvalidMessageSize),
		errors.Is(err, sarama.ErrMessageSetSizeTooLarge):
		return Permanent
	case errors.Is(err, sarama.ErrTopicAuthorizationFailed),
		errors.Is(err, sarama.ErrClusterAuthorizationFailed),
		errors.Is(err, sarama.ErrTransactionalIDAuthorizationFailed):
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
		{sarama.ErrMessageSizeTooLarge, "sarama.ErrMessageSizeTooLarge"},
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
