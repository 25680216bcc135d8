package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/processor/route"
	"github.com/cdcsync/cdcsync/schemas"
)

func TestClassify(t *testing.T) {
	decodeErr := &cdc.DecodeError{Part: "value", Path: "payload.op", Reason: "bad", Err: cdc.ErrUnknownOp}
	keyErr := &route.KeyError{Entity: "contacts", Field: "id", Err: route.ErrMissingKeyField}
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		// Fenced producers: kfake answers 90, older brokers 47.
		{"producer fenced", sarama.ErrProducerFenced, Fatal},
		{"invalid producer epoch", sarama.ErrInvalidProducerEpoch, Fatal},
		{"fenced by code 90", sarama.KError(90), Fatal},
		{"fenced by code 47", sarama.KError(47), Fatal},
		{"fenced, wrapped", fmt.Errorf("produce: %w", sarama.ErrProducerFenced), Fatal},
		{"fenced inside a permanent error", &permanentError{stage: "produce", err: sarama.ErrProducerFenced}, Fatal},
		{"fatal()", fatal(errors.New("ledger has 3 partitions, want 8")), Fatal},
		{"ErrConfig", fmt.Errorf("%w: brokers: none", ErrConfig), Fatal},
		{"topic authorization", sarama.ErrTopicAuthorizationFailed, Fatal},
		{"cluster authorization", sarama.ErrClusterAuthorizationFailed, Fatal},
		{"transactional id authorization", sarama.ErrTransactionalIDAuthorizationFailed, Fatal},
		// Regression: a registry answering 401/403 was "unavailable" and
		// retried forever; a wrong credential never heals by itself.
		{"registry access denied", &cdc.RegistryError{SchemaID: 7, Err: fmt.Errorf("%w (HTTP 401): Unauthorized", schemas.ErrAccessDenied)}, Fatal},

		{"message too large", sarama.ErrMessageSizeTooLarge, Permanent},
		{"message too large, wrapped", fmt.Errorf("x: %w", sarama.ErrMessageSizeTooLarge), Permanent},
		{"invalid message", sarama.ErrInvalidMessage, Permanent},
		{"invalid message size", sarama.ErrInvalidMessageSize, Permanent},
		{"message set too large", sarama.ErrMessageSetSizeTooLarge, Permanent},
		{"decode error", decodeErr, Permanent},
		{"decode error, wrapped", fmt.Errorf("decode: %w", decodeErr), Permanent},
		{"route key error", keyErr, Permanent},
		{"permanentError", &permanentError{stage: "route", err: errors.New("x")}, Permanent},

		{"not leader", sarama.ErrNotLeaderForPartition, Transient},
		{"leader not available", sarama.ErrLeaderNotAvailable, Transient},
		{"request timed out", sarama.ErrRequestTimedOut, Transient},
		{"not enough replicas", sarama.ErrNotEnoughReplicas, Transient},
		{"network exception", sarama.ErrNetworkException, Transient},
		{"out of brokers", sarama.ErrOutOfBrokers, Transient},
		{"not connected", sarama.ErrNotConnected, Transient},
		{"connection refused", netErr, Transient},
		{"EOF", io.EOF, Transient},
		{"unexpected EOF, wrapped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), Transient},
		{"deadline", context.DeadlineExceeded, Transient},
		{"plain error", errors.New("something"), Transient},
		{"nil", nil, Transient},

		// Issue 9 item 8: every error the data path sees, by class. An
		// error is transient only when a retry can succeed.
		{"sarama's client-side size check", sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 2000100 > 1000000"), Permanent},
		{"output too large (our check)", checkSize(&sarama.ProducerMessage{Topic: "t", Value: sarama.ByteEncoder(make([]byte, maxMessageBytes))}), Permanent},
		{"other sarama configuration error", sarama.ConfigurationError("Producing headers requires Kafka at least v0.11"), Fatal},
		{"invalid record (keyless into compacted)", sarama.ErrInvalidRecord, Permanent},
		{"invalid timestamp", sarama.ErrInvalidTimestamp, Permanent},
		{"invalid topic from CreateTopics", &sarama.TopicError{Err: sarama.ErrInvalidTopic}, Permanent},
		{"collision from CreateTopics", fmt.Errorf("creating sink topic a_b: %w", &sarama.TopicError{Err: sarama.ErrInvalidTopic}), Permanent},
		{"policy violation from CreateTopics", &sarama.TopicError{Err: sarama.ErrPolicyViolation}, Permanent},
		{"invalid config from CreateTopics", &sarama.TopicError{Err: sarama.ErrInvalidConfig}, Permanent},
		{"sink topic refused by our check", &SinkTopicError{Topic: "dlq.x", Reason: "it is the topology's DLQ topic", Err: ErrSinkTopic}, Permanent},
		{"replication factor above live brokers", &sarama.TopicError{Err: sarama.ErrInvalidReplicationFactor}, Transient},
		{"not controller", sarama.ErrNotController, Transient},
		{"topic not known yet", sarama.ErrUnknownTopicOrPartition, Transient},
		{"throttled", sarama.ErrThrottlingQuotaExceeded, Transient},
		{"concurrent transactions", sarama.ErrConcurrentTransactions, Transient},
		{"group authorization", sarama.ErrGroupAuthorizationFailed, Fatal},
		{"SASL authentication", sarama.ErrSASLAuthenticationFailed, Fatal},
		{"unsupported version", sarama.ErrUnsupportedVersion, Fatal},
		{"unsupported message format", sarama.ErrUnsupportedForMessageFormat, Fatal},
		{"ledger partition mismatch", &ledger.PartitionMismatchError{Topic: "x.ledger", Have: 3, Want: 4}, Fatal},
		{"ledger restore, invalid argument", fmt.Errorf("restoring: %w", ledger.ErrInvalidArgument), Fatal},
		{"registry unavailable", &cdc.RegistryError{SchemaID: 3, Err: errors.New("503")}, Transient},
		{"registry: unknown schema", &cdc.DecodeError{Part: "value", Err: cdc.ErrUnknownSchema, SchemaID: 9}, Permanent},
		{"registry: incompatible output schema", fmt.Errorf("register: %w", schemas.ErrIncompatible), Fatal},
		{"fatal cause of a failed session", fmt.Errorf("%w: %w", errSessionFailed, sarama.ErrTopicAuthorizationFailed), Fatal},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("%s: classify(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{Transient: "transient", Permanent: "permanent", Fatal: "fatal", Class(9): "unknown"} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestFatalNil(t *testing.T) {
	if err := fatal(nil); err != nil {
		t.Errorf("fatal(nil) = %v, want nil", err)
	}
	base := errors.New("base")
	if err := fatal(base); !errors.Is(err, base) || err.Error() != "base" {
		t.Errorf("fatal(base) = %v, want it to wrap base and keep its text", err)
	}
}

type customErr struct{}

func (customErr) Error() string { return "custom" }

func TestExceptionClass(t *testing.T) {
	de := func(sentinel error) error { return &cdc.DecodeError{Part: "value", Reason: "r", Err: sentinel} }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{de(cdc.ErrMalformed), "cdc.ErrMalformed"},
		{de(cdc.ErrMissingField), "cdc.ErrMissingField"},
		{de(cdc.ErrUnknownOp), "cdc.ErrUnknownOp"},
		{de(cdc.ErrSchemaMismatch), "cdc.ErrSchemaMismatch"},
		{de(cdc.ErrUnknownSchema), "cdc.ErrUnknownSchema"},
		{fmt.Errorf("decode: %w", de(cdc.ErrMalformed)), "cdc.ErrMalformed"},
		{&route.KeyError{Field: "id", Err: route.ErrMissingKeyField}, "route.ErrMissingKeyField"},
		{fmt.Errorf("%w: erp changed [email]", ErrAuthorityViolation), "processor.ErrAuthorityViolation"},
		{sarama.ErrMessageSizeTooLarge, "sarama.ErrMessageSizeTooLarge"},
		{&permanentError{stage: "produce", err: sarama.ErrMessageSizeTooLarge}, "sarama.ErrMessageSizeTooLarge"},
		// Not one of ours: the innermost error's Go type.
		{&route.KeyError{Field: "id", Err: route.ErrUnencodableKey}, "*errors.errorString"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", customErr{})), "processor.customErr"},
		{customErr{}, "processor.customErr"},
		{sarama.ErrNotLeaderForPartition, "sarama.KError"},
		{errors.New("x"), "*errors.errorString"},
	} {
		if got := exceptionClass(tc.err); got != tc.want {
			t.Errorf("exceptionClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
