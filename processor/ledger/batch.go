package ledger

import (
	"encoding/binary"
	"fmt"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Group commit: a batch record carries the entries of many applied events,
// every entry acknowledged (or committed) by one write. See doc.go,
// "Batch records".
const (
	// ValueVersionBatch is the version byte of a batch record's value.
	ValueVersionBatch byte = 4
	// BatchKeySize is the size of a batch record's key: batchKeyKind, the
	// writer's 64-bit ID and the writer's 64-bit sequence number. It is not
	// KeySize, so a key tells a batch from a single-ID record.
	BatchKeySize = 1 + 8 + 8
	// BatchMaxBytes bounds a batch value: a writer starts a new batch
	// before an entry would take it past this size. 64 KiB holds about 970
	// version-3 entries and stays far below the broker's message limit.
	BatchMaxBytes = 64 << 10

	batchKeyKind   byte = 0xB4
	batchHeader         = 1 + 4 // version, entry count
	batchEntryHead      = KeySize + 1
	// BatchEntryMax is the largest encoding of one entry in a batch.
	BatchEntryMax = batchEntryHead + ValueSizeRow
)

// BatchKey returns the key of a writer's seq-th batch record. writer is
// random per writer instance (a worker's ALO ledger writer, or one
// transactional producer), so keys never repeat and compaction, which
// keeps only the newest record per key, never drops a batch: batches leave
// the log by retention alone (see doc.go).
func BatchKey(writer, seq uint64) []byte {
	k := make([]byte, BatchKeySize)
	k[0] = batchKeyKind
	binary.BigEndian.PutUint64(k[1:9], writer)
	binary.BigEndian.PutUint64(k[9:17], seq)
	return k
}

// IsBatchKey reports whether key is a batch record's key.
func IsBatchKey(key []byte) bool { return len(key) == BatchKeySize && key[0] == batchKeyKind }

// Batch builds the value of a batch record. The zero value is empty and
// ready; Reset reuses its buffer.
type Batch struct {
	buf []byte
	n   int
}

// Len is the number of entries appended since the last Reset.
func (b *Batch) Len() int { return b.n }

// Size is the encoded size of the batch value so far.
func (b *Batch) Size() int {
	if b.n == 0 {
		return 0
	}
	return len(b.buf)
}

// Fits reports whether one more entry of at most BatchEntryMax bytes keeps
// the value within BatchMaxBytes.
func (b *Batch) Fits() bool { return b.n == 0 || len(b.buf)+BatchEntryMax <= BatchMaxBytes }

// Append adds the entry of one event: its 16-byte key and its single-ID
// value (EncodeValue, version 1 to 3), as a single-ID record would carry
// them. It returns ErrBadKey or ErrBadValue for a key or value that is not
// one, without changing the batch.
func (b *Batch) Append(key, value []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadKey, len(key), KeySize)
	}
	if len(value) == 0 || len(value) > ValueSizeRow {
		return fmt.Errorf("%w: a batch entry of %d bytes", ErrBadValue, len(value))
	}
	if b.n == 0 {
		b.buf = append(b.buf[:0], ValueVersionBatch, 0, 0, 0, 0)
	}
	b.buf = append(b.buf, key...)
	b.buf = append(b.buf, byte(len(value)))
	b.buf = append(b.buf, value...)
	b.n++
	binary.BigEndian.PutUint32(b.buf[1:5], uint32(b.n))
	return nil
}

// AppendEntry adds the entry of event id, encoded as AppendValue encodes e.
func (b *Batch) AppendEntry(id cdc.ID, e Entry) {
	var tmp [ValueSizeRow]byte
	v := AppendValue(tmp[:0], e)
	_ = b.Append(id[:], v) // cannot fail: a 16-byte key and a valid value
}

// Value returns the encoded batch value; it stays valid until the next
// Reset or Append. It returns nil for an empty batch.
func (b *Batch) Value() []byte {
	if b.n == 0 {
		return nil
	}
	return b.buf
}

// Grow makes room for about n bytes of entries without reallocating,
// for a writer that expects a batch like its last one.
func (b *Batch) Grow(n int) {
	n = min(n, BatchMaxBytes) + batchHeader
	if cap(b.buf)-len(b.buf) < n {
		nb := make([]byte, len(b.buf), len(b.buf)+n)
		copy(nb, b.buf)
		b.buf = nb
	}
}

// Reset empties the batch and keeps its buffer.
func (b *Batch) Reset() { b.n = 0; b.buf = b.buf[:0] }

// BatchEntry is one decoded entry of a batch record.
type BatchEntry struct {
	ID    cdc.ID
	Entry Entry
}

// DecodeBatch appends the entries of batch value v to dst and returns it.
// A value that is not a well-formed batch (another version, a count that
// does not match, a trailing byte, an entry DecodeValue refuses, a
// tombstone entry) returns ErrBadValue or ErrUnknownVersion and dst
// unchanged: a batch is never half read.
func DecodeBatch(dst []BatchEntry, v []byte) ([]BatchEntry, error) {
	if len(v) < batchHeader || v[0] != ValueVersionBatch {
		if len(v) > 0 && v[0] != ValueVersionBatch {
			return dst, fmt.Errorf("%w: batch version %d, this build reads %d", ErrUnknownVersion, v[0], ValueVersionBatch)
		}
		return dst, fmt.Errorf("%w: batch of %d bytes", ErrBadValue, len(v))
	}
	n := int(binary.BigEndian.Uint32(v[1:5]))
	start := len(dst)
	rest := v[batchHeader:]
	for i := 0; i < n; i++ {
		if len(rest) < batchEntryHead {
			return dst[:start], fmt.Errorf("%w: batch entry %d of %d cut short", ErrBadValue, i, n)
		}
		l := int(rest[KeySize])
		if l == 0 || len(rest) < batchEntryHead+l {
			return dst[:start], fmt.Errorf("%w: batch entry %d of %d: %d value bytes", ErrBadValue, i, n, l)
		}
		e, err := DecodeValue(rest[batchEntryHead : batchEntryHead+l])
		if err != nil {
			return dst[:start], fmt.Errorf("batch entry %d of %d: %w", i, n, err)
		}
		var be BatchEntry
		copy(be.ID[:], rest[:KeySize])
		be.Entry = e
		dst = append(dst, be)
		rest = rest[batchEntryHead+l:]
	}
	if len(rest) != 0 {
		return dst[:start], fmt.Errorf("%w: %d bytes after the last of %d batch entries", ErrBadValue, len(rest), n)
	}
	return dst, nil
}
