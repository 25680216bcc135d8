package ledger

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// ValueVersion is the version byte of a ledger value without a content ID;
// ValueVersionContent is the version of one that carries it.
const (
	ValueVersion        byte = 1
	ValueVersionContent byte = 2
)

// KeySize, ValueSize and ValueSizeContent are the encoded sizes of a ledger
// key, a version-1 value and a version-2 value, in bytes.
const (
	KeySize          = 16
	ValueSize        = 1 + 8 + 8
	ValueSizeContent = ValueSize + 16
)

// Entry is the content of a ledger value: when the ID was first seen, at
// which offset of the source partition, and optionally the content ID of
// the change's after-state. The content ID is what a snapshot row of the
// same state gets as its ID, so recording it lets a re-snapshot after
// streaming changes be recognised as already applied.
type Entry struct {
	FirstSeen    time.Time // stored to the millisecond
	SourceOffset int64
	Content      cdc.ID // zero when absent (version 1)
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
//	offset 0  version        1 byte, ValueVersion (1)
//	offset 1  first seen     int64, unix milliseconds
//	offset 9  source offset  int64
func EncodeValue(e Entry) []byte { return AppendValue(make([]byte, 0, ValueSize), e) }

// AppendValue appends the encoding of e to dst, for callers that reuse
// buffers.
func AppendValue(dst []byte, e Entry) []byte {
	version := ValueVersion
	if !e.Content.IsZero() {
		version = ValueVersionContent
	}
	dst = append(dst, version)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.FirstSeen.UnixMilli()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.SourceOffset))
	if version == ValueVersionContent {
		dst = append(dst, e.Content[:]...)
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
	default:
		return Entry{}, fmt.Errorf("%w: version %d, this build reads versions %d and %d", ErrUnknownVersion, v[0], ValueVersion, ValueVersionContent)
	}
	if len(v) != want {
		return Entry{}, fmt.Errorf("%w: %d bytes, want %d for version %d", ErrBadValue, len(v), want, v[0])
	}
	e := Entry{
		FirstSeen:    time.UnixMilli(int64(binary.BigEndian.Uint64(v[1:9]))),
		SourceOffset: int64(binary.BigEndian.Uint64(v[9:17])),
	}
	if v[0] == ValueVersionContent {
		copy(e.Content[:], v[17:33])
	}
	return e, nil
}
