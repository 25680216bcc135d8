package topology

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Sentinel errors. Every problem with a topology file is an *Error that
// wraps one of them, so callers can tell the kind with errors.Is. All of
// them are fatal to a worker: a topology that does not load never runs.
var (
	// ErrSyntax is returned when a file is not well-formed YAML, holds more
	// than one YAML document, or its top level is not a mapping.
	ErrSyntax = errors.New("topology: syntax error")
	// ErrUnknownField is returned for a key the format does not define, so a
	// misspelt option is never silently ignored.
	ErrUnknownField = errors.New("topology: unknown field")
	// ErrMissing is returned when a required option is absent or empty, for
	// an empty file, and when Load finds no topology files.
	ErrMissing = errors.New("topology: missing field")
	// ErrInvalid is returned for a value that is malformed (a bad duration,
	// regexp or template), out of range, not one of an option's allowed
	// values, inconsistent with another option, or a reference to a system
	// that is not declared.
	ErrInvalid = errors.New("topology: invalid value")
	// ErrDuplicateName is returned by Load when two files declare the same
	// topology name.
	ErrDuplicateName = errors.New("topology: duplicate name")
	// ErrRead is returned when a file or directory cannot be read.
	ErrRead = errors.New("topology: cannot read")
	// ErrInvalidTopicName is returned by CheckTopicName for a name Kafka
	// does not accept, such as a sink topic expanded from a table name.
	ErrInvalidTopicName = errors.New("topology: invalid topic name")
)

// Error is one problem in one topology file.
type Error struct {
	File   string // the file as named to Load, LoadFile or Parse
	Line   int    // 1-based line in File; 0 when no single line is to blame
	Field  string // dotted path of the option, e.g. "sink.key[1]" or "authority.owners.email"; empty for the whole file
	Reason string // what is wrong, for a human
	Err    error  // one of the sentinel errors above, or an I/O error wrapped by ErrRead
}

// Error formats the problem as "file:line: field: reason", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found while loading one or more topology files.
// Loading never stops at the first problem, so one run of
// `cdcsync topology validate` shows all of them. The functions of this
// package return an Errors value (never an empty one) as their error; use
// errors.As with a *Error or an Errors target.
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, so errors.Is and errors.As see
// each of them.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortByLine orders the problems of one file by line, keeping the order in
// which they were found for ties. File-level problems (line 0) come first.
func (es Errors) sortByLine() {
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
}

// err returns es as an error, or nil when it is empty, so a nil Errors
// never becomes a non-nil error interface.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
