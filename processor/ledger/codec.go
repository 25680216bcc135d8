package ledger

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Value versions. ValueVersion (1) carries the first-seen time and the
// source offset; ValueVersionContent (2, written by cdcsync before row
// states) adds a content ID that restore remembers as a second ID;
// ValueVersionRow (3) adds the state the change left its row in.
const (
	ValueVersion        byte = 1
	ValueVersionContent byte = 2
	ValueVersionRow     byte = 3
)

// KeySize, ValueSize, ValueSizeContent and ValueSizeRow are the encoded
// sizes of a ledger key and of a version-1, -2 and -3 value, in bytes.
const (
	KeySize          = 16
	ValueSize        = 1 + 8 + 8
	ValueSizeContent = ValueSize + 16
	ValueSizeRow     = ValueSize + 1 + 16 + 16
)

// Flags of a version-3 value (offset 17): the row state in the low two
// bits, and flagRowOnly.
const (
	flagStateMask byte = 0x03
	// flagRowOnly: the record key is not an event ID to remember. Snapshot
	// rows and changes of a dedup.key: content topology are deduplicated by
	// their row's latest state alone.
	flagRowOnly byte = 0x80
)

// Entry is the content of a ledger value: when the ID was first seen, at
// which offset of the source partition, and optionally the content ID of
// the change's after-state. The content ID is what a snapshot row of the
// same state gets as its ID, so recording it lets a re-snapshot after
// streaming changes be recognised as already applied.
type Entry struct {
	FirstSeen    time.Time // stored to the millisecond
	SourceOffset int64
	// Content is the version-2 content ID: a second ID to remember. cdcsync
	// no longer writes it (row states replace it) but reads it from older
	// ledgers. It is not written when Row is set.
	Content cdc.ID

	// Version 3: the state the change left its row in (see RowKeyOf and
	// Index.SetRow). Row is zero when the change leaves no row state.
	Row        cdc.ID
	State      RowState // RowPresent, RowDeleted or RowUnknown when Row is set
	RowContent cdc.ID   // the after-state's content ID when State is RowPresent
	// RowOnly says the record key is not an event ID to remember: the
	// change is deduplicated by its row's state alone.
	RowOnly bool
}

// EncodeKey returns the ledger record key for id: its 16 raw bytes.
func EncodeKey(id cdc.ID) []byte {
	k := make([]byte, KeySize)
	copy(k, id[:])
	return k
}

// DecodeKey parses a ledger record key. It returns ErrBadKey unless the key
// is exactly 16 bytes.
func DecodeKey(key []byte) (cdc.ID, error) {
	var id cdc.ID
	if len(key) != KeySize {
		return id, fmt.Errorf("%w: %d bytes, want %d", ErrBadKey, len(key), KeySize)
	}
	copy(id[:], key)
	return id, nil
}

// EncodeValue returns the ledger record value for e. Layout (big-endian):
//
//	offset 0  version        1 byte: 3 when e.Row is set and e.State valid,
//	                         else 2 when e.Content is set, else 1
//	offset 1  first seen     int64, unix milliseconds
//	offset 9  source offset  int64
//	version 2:
//	offset 17 content ID     16 bytes
//	version 3:
//	offset 17 flags          1 byte: bits 0-1 the RowState (1 present,
//	                         2 deleted, 3 unknown), bit 7 row only; the
//	                         other bits are 0
//	offset 18 row key        16 bytes
//	offset 34 row content    16 bytes, zero unless the state is present
func EncodeValue(e Entry) []byte { return AppendValue(make([]byte, 0, ValueSizeRow), e) }

// AppendValue appends the encoding of e to dst, for callers that reuse
// buffers.
func AppendValue(dst []byte, e Entry) []byte {
	version := ValueVersion
	switch {
	case !e.Row.IsZero() && e.State.valid():
		version = ValueVersionRow
	case !e.Content.IsZero():
		version = ValueVersionContent
	}
	dst = append(dst, version)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.FirstSeen.UnixMilli()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.SourceOffset))
	switch version {
	case ValueVersionContent:
		dst = append(dst, e.Content[:]...)
	case ValueVersionRow:
		flags := byte(e.State)
		if e.RowOnly {
			flags |= flagRowOnly
		}
		dst = append(dst, flags)
		dst = append(dst, e.Row[:]...)
		var content cdc.ID
		if e.State == RowPresent {
			content = e.RowContent
		}
		dst = append(dst, content[:]...)
	}
	return dst
}

// DecodeValue parses a ledger record value. A nil or empty value is a
// tombstone and is not an Entry: it returns ErrTombstone. A value of another
// version returns ErrUnknownVersion; a version-1 value of the wrong length
// returns ErrBadValue. Bytes after a newer version's fields are not
// accepted, so a value is never half understood.
func DecodeValue(v []byte) (Entry, error) {
	if len(v) == 0 {
		return Entry{}, ErrTombstone
	}
	want := 0
	switch v[0] {
	case ValueVersion:
		want = ValueSize
	case ValueVersionContent:
		want = ValueSizeContent
	case ValueVersionRow:
		want = ValueSizeRow
	default:
		return Entry{}, fmt.Errorf("%w: version %d, this build reads versions %d to %d", ErrUnknownVersion, v[0], ValueVersion, ValueVersionRow)
	}
	if len(v) != want {
		return Entry{}, fmt.Errorf("%w: %d bytes, want %d for version %d", ErrBadValue, len(v), want, v[0])
	}
	e := Entry{
		FirstSeen:    time.UnixMilli(int64(binary.BigEndian.Uint64(v[1:9]))),
		SourceOffset: int64(binary.BigEndian.Uint64(v[9:17])),
	}
	switch v[0] {
	case ValueVersionContent:
		copy(e.Content[:], v[17:33])
	case ValueVersionRow:
		flags := v[17]
		e.State = RowState(flags & flagStateMask)
		e.RowOnly = flags&flagRowOnly != 0
		copy(e.Row[:], v[18:34])
		copy(e.RowContent[:], v[34:50])
		switch {
		case flags&^(flagStateMask|flagRowOnly) != 0:
			return Entry{}, fmt.Errorf("%w: version 3 flags %#02x has unknown bits", ErrBadValue, flags)
		case !e.State.valid():
			return Entry{}, fmt.Errorf("%w: version 3 without a row state", ErrBadValue)
		case e.Row.IsZero():
			return Entry{}, fmt.Errorf("%w: version 3 with a zero row key", ErrBadValue)
		case e.State != RowPresent && !e.RowContent.IsZero():
			return Entry{}, fmt.Errorf("%w: version 3 row content with state %d", ErrBadValue, e.State)
		}
	}
	return e, nil
}
