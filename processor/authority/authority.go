package authority

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Policy says what happens to a change that touches fields its source
// system does not own.
type Policy int

const (
	// DropField drops the unowned fields and writes the owned ones.
	DropField Policy = iota
	// DLQ sends the whole record to the dead-letter queue.
	DLQ
)

// String returns the topology spelling: "drop_field" or "dlq".
func (p Policy) String() string {
	switch p {
	case DropField:
		return "drop_field"
	case DLQ:
		return "dlq"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Rules is the compiled ownership of one entity's fields. It is immutable
// and safe for concurrent use.
type Rules struct {
	owners       map[string]string
	defaultOwner string
	policy       Policy
}

// New compiles the rules. owners maps a field name to its owning system;
// every other field belongs to defaultOwner, which also owns the entity
// (its deletes and truncates). The map is copied. An empty defaultOwner
// means unlisted fields and the entity belong to no system, so they are
// always dropped; topology validation should prevent that.
func New(owners map[string]string, defaultOwner string, policy Policy) *Rules {
	return &Rules{owners: maps.Clone(owners), defaultOwner: defaultOwner, policy: policy}
}

// Owner returns the system that owns field.
func (r *Rules) Owner(field string) string {
	if o, ok := r.owners[field]; ok {
		return o
	}
	return r.defaultOwner
}

// DefaultOwner returns the owner of unlisted fields and of the entity.
func (r *Rules) DefaultOwner() string { return r.defaultOwner }

// Policy returns the violation policy.
func (r *Rules) Policy() Policy { return r.policy }

// Decision is the outcome of ApplyInto for one event.
type Decision struct {
	// Keep is false when the event must not reach the sink: nothing the
	// source system owns changed (an echo, or a no-op) and it is not an
	// insert from the entity's owner, or a delete, tombstone or truncate
	// from a system that does not own the entity.
	Keep bool
	// Fields are the owned changed fields to write, in Event.Changed order;
	// for an insert from the entity's owner, every owned field, NULL ones
	// included. Key fields are never listed.
	Fields []string
	// Dropped are the changed fields the source system does not own, in
	// Event.Changed order. Count them as authority-dropped.
	Dropped []string
	// Violation is true when the policy is DLQ and the change touched both
	// owned and unowned fields (an insert's NULLs touch nothing): the
	// whole record goes to the DLQ instead of the sink. A change of
	// unowned fields only is never a violation: it cannot be told apart
	// from an echo.
	Violation bool

	buf []string // backing array of Fields and Dropped, reused by ApplyInto
}

// ApplyInto decides what of ev the sink may see, writing into d. Fields
// and Dropped share one backing array, d's previous one when it is large
// enough, so a caller that keeps one Decision per worker allocates
// nothing; the previous Fields and Dropped are overwritten.
func (r *Rules) ApplyInto(ev *cdc.Event, d *Decision) {
	buf := d.buf
	*d = Decision{buf: buf}
	switch {
	case ev.Op == cdc.OpMessage:
		d.Keep = true
		return
	case ev.Tombstone || ev.Op == cdc.OpDelete || ev.Op == cdc.OpTruncate:
		d.Keep = ev.SourceSystem == r.defaultOwner
		return
	}
	noBefore := ev.Before == nil && (ev.Op == cdc.OpCreate || ev.Op == cdc.OpRead)
	// An insert from the entity's owner creates the entity: it passes with
	// its key and all its owned fields, NULL ones included, whatever else
	// it sets (see the package documentation for the whole rule).
	ownerCreates := noBefore && ev.SourceSystem == r.defaultOwner
	n := len(ev.Changed)
	if n == 0 {
		d.Keep = ownerCreates
		return
	}
	if cap(buf) < n {
		buf = make([]string, n)
		d.buf = buf
	}
	buf = buf[:n]
	// Owned fields fill buf from the front, dropped ones from the back.
	// touched counts the owned fields the change set (not the NULLs of an
	// insert): a violation needs an owned and an unowned field touched.
	nf, nd, touched := 0, 0, 0
	hint := 0
	for _, name := range ev.Changed {
		if isKey(ev.Key, name) {
			continue
		}
		var v any
		var present bool
		v, present, hint = find(ev.After, name, hint)
		owned := r.Owner(name) == ev.SourceSystem
		null := false
		if present {
			if _, ok := v.(cdc.Unavailable); ok {
				continue
			}
			// An insert's NULL is no change: the row was created without
			// the field. Only the owner's create writes its owned NULLs.
			if v == nil && noBefore {
				if !ownerCreates || !owned {
					continue
				}
				null = true
			}
		}
		if owned {
			buf[nf] = name
			nf++
			if !null {
				touched++
			}
		} else {
			nd++
			buf[n-nd] = name
		}
	}
	dropped := buf[n-nd : n : n]
	slices.Reverse(dropped)
	if nf > 0 {
		d.Fields = buf[:nf:nf]
	}
	if nd > 0 {
		d.Dropped = dropped
	}
	d.Keep = nf > 0 || ownerCreates
	// A change of unowned fields only is indistinguishable from the echo
	// of a sync write, so it is never a violation: dropped quietly, or,
	// for the owner's insert, passed with its owned fields.
	d.Violation = touched > 0 && nd > 0 && r.policy == DLQ
}

func isKey(key cdc.Row, name string) bool {
	for i := range key {
		if key[i].Name == name {
			return true
		}
	}
	return false
}

// find looks name up in row starting at hint, since Changed usually lists
// fields in row order, and returns the index after the match as the next
// hint.
func find(row cdc.Row, name string, hint int) (any, bool, int) {
	n := len(row)
	if hint >= n {
		hint = 0
	}
	for i := hint; i < n; i++ {
		if row[i].Name == name {
			return row[i].Value, true, i + 1
		}
	}
	for i := 0; i < hint; i++ {
		if row[i].Name == name {
			return row[i].Value, true, i + 1
		}
	}
	return nil, false, hint
}
