package route

import (
	"errors"
	"fmt"
)

var (
	// ErrMissingKeyField is returned (inside a *KeyError) by Key and
	// AppendKey when a configured key field is in none of the event's
	// After, Before and Key rows. Permanent: a DLQ case.
	ErrMissingKeyField = errors.New("route: missing key field")
	// ErrUnencodableKey is returned (inside a *KeyError) when a key
	// field's value cannot be written as JSON at all: a Go value the
	// decoder never produces, such as a func. (A NaN float is "NaN", as
	// in the sink.) Permanent: a DLQ case.
	ErrUnencodableKey = errors.New("route: key field value cannot be encoded as JSON")
)

// KeyError says which key field could not be used, and why.
type KeyError struct {
	Entity string // the event's entity (table), for the message
	Field  string // the key field name
	Err    error  // ErrMissingKeyField or ErrUnencodableKey
	Cause  error  // the encoding error, for ErrUnencodableKey
}

func (e *KeyError) Error() string {
	s := fmt.Sprintf("%v: %q", e.Err, e.Field)
	if e.Entity != "" {
		s += " (entity " + e.Entity + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel error, so errors.Is(err, ErrMissingKeyField)
// works.
func (e *KeyError) Unwrap() error { return e.Err }

// Permanent reports true: the same event always fails the same way.
func (e *KeyError) Permanent() bool { return true }
