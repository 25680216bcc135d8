package ledger

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// ValueVersion is the version byte written at the start of every ledger
// value by this package.
const ValueVersion byte = 1

// KeySize and ValueSize are the encoded sizes of a ledger key and a version-1
// ledger value, in bytes.
const (
	KeySize   = 16
	ValueSize = 1 + 8 + 8
)

// Entry is the content of a ledger value: when the ID was first seen and at
// which offset of the source partition.
type Entry struct {
	FirstSeen    time.Time // stored to the millisecond
	SourceOffset int64
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
	dst = append(dst, ValueVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.FirstSeen.UnixMilli()))
	return binary.BigEndian.AppendUint64(dst, uint64(e.SourceOffset))
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
	if v[0] != ValueVersion {
		return Entry{}, fmt.Errorf("%w: version %d, this build reads version %d", ErrUnknownVersion, v[0], ValueVersion)
	}
	if len(v) != ValueSize {
		return Entry{}, fmt.Errorf("%w: %d bytes, want %d for version %d", ErrBadValue, len(v), ValueSize, ValueVersion)
	}
	return Entry{
		FirstSeen:    time.UnixMilli(int64(binary.BigEndian.Uint64(v[1:9]))),
		SourceOffset: int64(binary.BigEndian.Uint64(v[9:17])),
	}, nil
}
