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

	// ErrRegistryUnavailable is wrapped by a *RegistryError when the schema
	// registry cannot be reached, times out or answers with a server error.
	// Unlike the errors above it is transient, never a *DecodeError: the
	// same record decodes once the registry is back, so it must be retried
	// and never sent to the DLQ.
	ErrRegistryUnavailable = errors.New("cdc: schema registry unavailable")
)

// RegistryError is a transient failure to fetch a writer schema. It wraps
// ErrRegistryUnavailable and the cause (network error, timeout, HTTP 5xx).
type RegistryError struct {
	SchemaID int   // the schema ID being fetched
	Err      error // the cause
}

func (e *RegistryError) Error() string {
	return fmt.Sprintf("%v: fetching schema %d: %v", ErrRegistryUnavailable, e.SchemaID, e.Err)
}

// Unwrap returns ErrRegistryUnavailable and the cause.
func (e *RegistryError) Unwrap() []error { return []error{ErrRegistryUnavailable, e.Err} }

// Transient reports true: retry the record later, never DLQ it.
func (e *RegistryError) Transient() bool { return true }

// Temporary reports true, for callers that use the net.Error convention.
func (e *RegistryError) Temporary() bool { return true }

// DecodeError says what is wrong with a record and where.
type DecodeError struct {
	Part   string // "key" or "value"
	Path   string // dotted JSON path inside the part, e.g. "payload.after.price"
	Reason string // human-readable detail
	Err    error  // one of the sentinel errors above
	// SchemaID is the schema registry ID of the part (Avro only; 0 when
	// unknown or for JSON), for the DLQ's schema-ID header.
	SchemaID int
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
