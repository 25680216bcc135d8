package cdc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// utf8BOM is the UTF-8 byte-order mark, which RFC 8259 forbids at the
// start of a JSON text sent over a network.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// syntaxReason turns a fastjson parse error into a reason that says what
// is wrong first: fastjson writes one "cannot parse ...: " per nesting
// level before the cause, 14 KB of them for a document nested too deep.
// It keeps the innermost cause, the kind of value it was in, the byte
// offset when known and a short excerpt of the rest of the input.
func syntaxReason(input []byte, err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "unexpected tail: "); ok {
		return fmt.Sprintf("unexpected data after the JSON value at byte %d: %s", len(input)-unquotedLen(rest), excerpt(rest))
	}
	msg = strings.TrimPrefix(msg, "cannot parse JSON: ")
	chain, tail, hasTail := strings.Cut(msg, "; unparsed tail: ")
	segs := strings.Split(chain, ": ")
	k := -1
	for i, sg := range segs {
		if strings.HasPrefix(sg, "cannot parse ") {
			k = i
		}
	}
	var reason string
	switch {
	case k < 0:
		reason = chain
	case k == len(segs)-1:
		reason = segs[k]
	default:
		reason = strings.Join(segs[k+1:], ": ") + " (" + strings.TrimPrefix(segs[k], "cannot parse ") + ")"
	}
	if strings.HasPrefix(reason, "too big depth for the nested JSON") {
		reason = "JSON nests deeper than 300 levels, the parser's limit"
	}
	if !hasTail {
		return reason
	}
	if n := unquotedLen(tail); n >= 0 {
		reason += fmt.Sprintf(" at byte %d", len(input)-n)
	}
	if tail != `""` {
		reason += "; the rest is " + excerpt(tail)
	}
	return reason
}

// unquotedLen is the length of the quoted excerpt q of the unparsed input,
// or -1 when fastjson shortened it (over 80 bytes, "start...end").
func unquotedLen(q string) int {
	s, err := strconv.Unquote(q)
	if err != nil || len(s) > 80 {
		return -1
	}
	return len(s)
}

// excerpt shortens a quoted excerpt to about 40 bytes of input.
func excerpt(q string) string {
	s, err := strconv.Unquote(q)
	if err != nil {
		return q
	}
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}
