package ledger

import (
	"errors"
	"fmt"
)

var (
	// ErrBadKey is returned by DecodeKey (and counted by Restore) for a
	// ledger key that is not 16 bytes. Permanent: the record was not written
	// by cdcsync.
	ErrBadKey = errors.New("ledger: bad key")
	// ErrBadValue is returned by DecodeValue for a value of a known version
	// but the wrong length. Permanent.
	ErrBadValue = errors.New("ledger: bad value")
	// ErrUnknownVersion is returned by DecodeValue for a value whose version
	// byte this build does not know, e.g. written by a newer cdcsync.
	// Permanent for this build.
	ErrUnknownVersion = errors.New("ledger: unknown value version")
	// ErrTombstone is returned by DecodeValue for a nil or empty value: the
	// ledger's "forget this ID" marker. It is not a failure.
	ErrTombstone = errors.New("ledger: tombstone")
	// ErrPartitionMismatch is returned (inside a *PartitionMismatchError) by
	// Ensure when the ledger topic exists with a partition count different
	// from the source's. Fatal: the worker must not start.
	ErrPartitionMismatch = errors.New("ledger: partition count mismatch")
	// ErrInvalidArgument is returned by Ensure and Restore for arguments that
	// can never work (empty topic, no partitions, nil index). Fatal.
	ErrInvalidArgument = errors.New("ledger: invalid argument")
)

// PartitionMismatchError says that the ledger topic has the wrong number of
// partitions. It unwraps to ErrPartitionMismatch; check it with errors.As.
type PartitionMismatchError struct {
	Topic string
	Have  int32 // partitions the ledger topic has
	Want  int32 // partitions it must have: the source topic's count
}

func (e *PartitionMismatchError) Error() string {
	return fmt.Sprintf("ledger: topic %q has %d partitions but the source has %d; "+
		"the ledger must have exactly one partition per source partition "+
		"(ledger partition p holds the IDs seen on source partition p). "+
		"To fix it, stop every worker of this topology, then delete and recreate the ledger topic:\n"+
		"  kafka-topics.sh --bootstrap-server <broker> --delete --topic %s\n"+
		"  kafka-topics.sh --bootstrap-server <broker> --create --topic %s --partitions %d "+
		"--config cleanup.policy=compact,delete --config retention.ms=<dedup window in ms>\n"+
		"(or simply restart the workers after the delete: they create it). "+
		"The ledger is rebuilt as records flow; until the dedup window has passed, "+
		"redelivered records seen before the recreate are not recognised as duplicates",
		e.Topic, e.Have, e.Want, e.Topic, e.Topic, e.Want)
}

func (e *PartitionMismatchError) Unwrap() error { return ErrPartitionMismatch }
