package cdc

import (
	"crypto/sha256"
)

// Domain tags keep the hash inputs of the ID schemes apart.
const (
	idTagPosition  = "cdcsync/id/position/v1"
	idTagContent   = "cdcsync/id/content/v1"
	idTagField     = "cdcsync/id/field/v1"
	idTagTombstone = "cdcsync/id/tombstone/v2"
)

// ComputeID returns the deterministic ID of ev (see the package
// documentation for the schemes). It depends only on ev's typed values, so
// the JSON and Avro decoders give the same change the same ID. The only
// error is a *DecodeError wrapping ErrMissingField when mode is IDField and
// the field is in neither After, Before nor Key.
func ComputeID(ev *Event, mode IDMode, field string) (ID, error) {
	var buf []byte
	return computeID(ev, mode, field, &buf)
}

// ComputeIDBuf is ComputeID with a scratch buffer the caller keeps, for
// callers that compute an ID per record: the canonical encoding then
// reuses *buf instead of growing a new one each time.
func ComputeIDBuf(ev *Event, mode IDMode, field string, buf *[]byte) (ID, error) {
	return computeID(ev, mode, field, buf)
}

func computeID(ev *Event, mode IDMode, field string, buf *[]byte) (ID, error) {
	b := (*buf)[:0]
	defer func() { *buf = b[:0] }()
	src := &ev.Source
	// A tombstone's identity is its topic's name parts in order, whatever
	// shape they were read in: the shape depends on what the decoder saw
	// of the topic before (topicKinds), and the ID must not. Regression:
	// v1 hashed the parts by role, so a MySQL tombstone read first after a
	// start (prefix.schema.table) and one read after a value record
	// (prefix.database.table) got different IDs, and a redelivered
	// tombstone was not recognised.
	identTombstone := func() {
		b = appendCanonString(b, canonString, idTagTombstone)
		for _, part := range [...]string{src.Name, src.Database, src.Schema, src.Table} {
			if part != "" {
				b = appendCanonString(b, canonString, part)
			}
		}
		b = appendCanonRow(b, ev.Key)
	}
	ident := func(tag string) {
		b = appendCanonString(b, canonString, tag)
		b = appendCanonString(b, canonString, src.Name)
		b = appendCanonString(b, canonString, src.Database)
		b = appendCanonString(b, canonString, src.Schema)
		b = appendCanonString(b, canonString, src.Table)
		b = appendCanonRow(b, ev.Key)
	}

	switch {
	case mode == IDField:
		v, ok := ev.After.Get(field)
		if !ok {
			v, ok = ev.Before.Get(field)
		}
		if !ok {
			v, ok = ev.Key.Get(field)
		}
		if !ok {
			if ev.Tombstone {
				identTombstone()
				break
			}
			return ID{}, &DecodeError{Part: "value", Path: "payload.after." + field, Reason: "ID field is absent", Err: ErrMissingField}
		}
		b = appendCanonString(b, canonString, idTagField)
		b = appendCanonString(b, canonString, ev.Entity)
		b = AppendCanonical(b, v)
	case ev.Tombstone:
		identTombstone()
	case (mode == IDContent || ev.Op == OpRead) && ev.Op != OpTruncate && ev.Op != OpMessage:
		ident(idTagContent)
		// The state is hashed separately, so the key input stays short and
		// fixed-size whatever the row's width.
		start := len(b)
		state := ev.After
		if state == nil {
			b = append(b, 'D') // a delete: the last state, marked as gone
			state = ev.Before
		} else {
			b = append(b, 'A')
		}
		b = appendCanonRow(b, state)
		sum := sha256.Sum256(b[start:])
		b = append(b[:start], sum[:]...)
	default:
		ident(idTagPosition)
		b = append(b, byte(ev.Op))
		if ev.Position != nil {
			b = appendCanonRow(b, ev.Position)
		} else {
			// A connector with no known position fields: its event time is
			// the best position there is.
			b = appendCanonTime(b, ev.OccurredAt)
		}
		if ev.Message != nil {
			b = appendCanonString(b, canonString, ev.Message.Prefix)
			b = appendCanonBytes(b, ev.Message.Content)
		}
	}
	sum := sha256.Sum256(b)
	var id ID
	copy(id[:], sum[:len(id)])
	return id, nil
}
