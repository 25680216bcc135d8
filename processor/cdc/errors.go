package cdc

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every decode failure is a *DecodeError that wraps one of
// them, so callers can tell the kind with errors.Is. All are permanent: the
// same bytes will always fail the same way.
var (
	// ErrMalformed is returned for bytes that are not valid JSON or Avro,
	// or are truncated.
	ErrMalformed = errors.New("cdc: malformed record")
	// ErrMissingField is returned when a required field (payload, op,
	// source, a key field) is absent.
	ErrMissingField = errors.New("cdc: missing field")
	// ErrUnknownOp is returned for an op other than c, u, d, r, t, m.
	ErrUnknownOp = errors.New("cdc: unknown op")
	// ErrSchemaMismatch is returned when a value does not match its schema.
	ErrSchemaMismatch = errors.New("cdc: value does not match schema")
	// ErrUnknownSchema is returned when a schema ID is not in the registry.
	ErrUnknownSchema = errors.New("cdc: unknown schema")
)

// DecodeError says what is wrong with a record and where.
type DecodeError struct {
	Part   string // "key" or "value"
	Path   string // dotted JSON path inside the part, e.g. "payload.after.price"
	Reason string // human-readable detail
	Err    error  // one of the sentinel errors above
}

func (e *DecodeError) Error() string {
	where := e.Part
	if e.Path != "" {
		where += " " + e.Path
	}
	return fmt.Sprintf("%v: %s: %s", e.Err, where, e.Reason)
}

// Unwrap returns the sentinel error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Permanent marks decode errors as permanent for the processor's
// error classification.
func (e *DecodeError) Permanent() bool { return true }
