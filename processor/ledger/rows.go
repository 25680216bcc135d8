package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// RowState is the state a change leaves its row in, as the ledger records
// it for snapshot dedup: a row is re-emitted by a snapshot unless the
// snapshot row equals the latest state already applied.
type RowState byte

const (
	// RowNone: the change leaves no row state (a keyless table, a
	// truncate, a logical message, a dedup.key: field topology, or a
	// ledger record written before version 3).
	RowNone RowState = iota
	// RowPresent: the row exists with the after-state whose content ID is
	// recorded.
	RowPresent
	// RowDeleted: the row was deleted.
	RowDeleted
	// RowUnknown: the row exists but its full after-state is not known (an
	// unchanged TOASTed column arrived as "unavailable"), so no snapshot
	// row can be proved equal to it.
	RowUnknown
)

func (s RowState) valid() bool { return s >= RowPresent && s <= RowUnknown }

// rowKeyTag separates the row key's hash input from the event ID schemes.
const rowKeyTag = "cdcsync/ledger/row/v1"

// RowKeyOf returns the key of a row: a hash of the source topic and the
// record's primary key, the same for every change of one row whatever its
// state or position. A Debezium topic carries one table of one connector
// (prefix.schema.table), so this is the row's connector, database, table
// and key; unlike the source block, the topic is also known for a
// tombstone, and source offsets, which the row state keeps, are offsets of
// that topic. It returns the zero ID for a record without a key (a table
// without a primary key, a truncate, a message): such changes have no row
// state.
func RowKeyOf(topic string, key cdc.Row) cdc.ID {
	var k cdc.ID
	if len(key) == 0 {
		return k
	}
	var buf [256]byte
	b := cdc.AppendCanonicalString(buf[:0], rowKeyTag)
	b = cdc.AppendCanonicalString(b, topic)
	b = cdc.AppendCanonicalRow(b, key)
	sum := sha256.Sum256(b)
	copy(k[:], sum[:])
	return k
}

// rowSlot is one entry of the row table: the latest applied state of one
// row. All fields are byte arrays, so the struct has alignment 1 and no
// padding: 26 bytes.
//
//	key      the first 8 bytes of the row key (RowKeyOf)
//	content  fingerprint of the state: contentDeleted, contentUnknown, or
//	         the first 8 bytes of the after-state's content ID (moved off
//	         the two reserved values)
//	off      the source offset of the change that set it, 48 bits
//	         (offUnknown when it does not fit)
//	seen     when it was set, unix seconds; 0 marks an empty slot
type rowSlot struct {
	key     [8]byte
	content [8]byte
	off     [6]byte
	seen    [4]byte
}

// rowSlotSize is the in-memory size of one rowSlot, in bytes.
const rowSlotSize = 26

const (
	contentUnknown uint64 = 0
	contentDeleted uint64 = 1
	offUnknown     int64  = 1<<48 - 1
)

func (s *rowSlot) keyU() uint64     { return binary.LittleEndian.Uint64(s.key[:]) }
func (s *rowSlot) contentU() uint64 { return binary.LittleEndian.Uint64(s.content[:]) }
func (s *rowSlot) seenU() uint32    { return binary.LittleEndian.Uint32(s.seen[:]) }
func (s *rowSlot) setSeen(t uint32) { binary.LittleEndian.PutUint32(s.seen[:], t) }
func (s *rowSlot) offset() int64 {
	var b [8]byte
	copy(b[:6], s.off[:])
	return int64(binary.LittleEndian.Uint64(b[:]))
}

func makeRowSlot(key uint64, state RowState, content cdc.ID, offset int64, seen uint32) rowSlot {
	var s rowSlot
	binary.LittleEndian.PutUint64(s.key[:], key)
	binary.LittleEndian.PutUint64(s.content[:], fingerprint(state, content))
	if offset < 0 || offset > offUnknown {
		offset = offUnknown
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(offset))
	copy(s.off[:], b[:6])
	s.setSeen(seen)
	return s
}

// rowKeyU is the part of a row key the index keeps.
func rowKeyU(k cdc.ID) uint64 { return binary.LittleEndian.Uint64(k[0:8]) }

// fingerprint is the 64-bit form of a row state. A present state whose
// content ID starts with one of the two reserved values is moved off them;
// two different states then share a fingerprint with probability 2^-64.
func fingerprint(state RowState, content cdc.ID) uint64 {
	switch state {
	case RowDeleted:
		return contentDeleted
	case RowPresent:
		f := binary.LittleEndian.Uint64(content[0:8])
		if f <= contentDeleted {
			f += 2
		}
		return f
	}
	return contentUnknown
}

// rowTable is the open-addressing table of row states, built like the ID
// table (Robin Hood linear probing, backward-shift deletion) but keyed by
// a 64-bit row key.
type rowTable struct {
	slots []rowSlot
	mask  uint64
	shift uint
	n     int
}

func (t *rowTable) alloc(capacity int) {
	t.slots = make([]rowSlot, capacity)
	t.mask = uint64(capacity - 1)
	t.shift = uint(64 - trailingZeros(capacity))
}

func (t *rowTable) home(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> t.shift }

func (t *rowTable) dist(i uint64) uint64 { return (i - t.home(t.slots[i].keyU())) & t.mask }

func (t *rowTable) find(key uint64) int {
	i := t.home(key)
	for d := uint64(0); ; d++ {
		s := &t.slots[i]
		if s.seenU() == 0 {
			return -1
		}
		if s.keyU() == key {
			return int(i)
		}
		if t.dist(i) < d {
			return -1
		}
		i = (i + 1) & t.mask
	}
}

func (t *rowTable) insertNew(e rowSlot) {
	if (t.n+1)*maxLoadDen > len(t.slots)*maxLoadNum {
		t.resize(len(t.slots) * 2)
	}
	t.place(e)
	t.n++
}

func (t *rowTable) place(e rowSlot) {
	i := t.home(e.keyU())
	d := uint64(0)
	for {
		s := &t.slots[i]
		if s.seenU() == 0 {
			*s = e
			return
		}
		if sd := t.dist(i); sd < d {
			e, *s = *s, e
			d = sd
		}
		i = (i + 1) & t.mask
		d++
	}
}

func (t *rowTable) removeAt(i uint64) {
	for {
		j := (i + 1) & t.mask
		if t.slots[j].seenU() == 0 || t.dist(j) == 0 {
			break
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = rowSlot{}
	t.n--
}

func (t *rowTable) resize(capacity int) {
	if capacity < minCapacity {
		capacity = minCapacity
	}
	old := t.slots
	t.alloc(capacity)
	for i := range old {
		if old[i].seenU() != 0 {
			t.place(old[i])
		}
	}
}

// sweep removes every entry set before cutoff; see Index.sweep.
func (t *rowTable) sweep(cutoff uint32) int {
	start := uint64(0)
	for t.slots[start].seenU() != 0 {
		start++
	}
	dropped := 0
	c := uint64(len(t.slots))
	for k := uint64(1); k <= c; {
		i := (start + k) & t.mask
		s := t.slots[i].seenU()
		if s != 0 && s < cutoff {
			t.removeAt(i)
			dropped++
			continue
		}
		k++
	}
	return dropped
}

// shrink halves the table while it is less than 1/8 full.
func (t *rowTable) shrink() {
	if len(t.slots) > minCapacity && t.n*minLoadDen < len(t.slots) {
		c := minCapacity
		for c < 2*t.n {
			c *= 2
		}
		if c < len(t.slots) {
			t.resize(c)
		}
	}
}

// rowUndo is one journal record of the row table: the slot before the
// change (seen == 0: the row was absent).
type rowUndo struct {
	key  uint64
	prev rowSlot
}

// SetRow records the latest applied state of the row with key row: the
// change at source offset offset, applied at at, left it in state (with
// the after-state's content ID when state is RowPresent). It replaces what
// was held for the row. A zero row key or RowNone does nothing. While a
// mark is open, the change is journaled for Rollback.
func (x *Index) SetRow(row cdc.ID, state RowState, content cdc.ID, offset int64, at time.Time) {
	if row.IsZero() || !state.valid() {
		return
	}
	key := rowKeyU(row)
	e := makeRowSlot(key, state, content, offset, toSeconds(at))
	if i := x.rows.find(key); i >= 0 {
		x.recordRow(key, x.rows.slots[i])
		x.rows.slots[i] = e
		return
	}
	x.recordRow(key, rowSlot{})
	x.rows.insertNew(e)
}

// RowApplied answers, for a change of row row read at source offset offset
// that leaves the row in state (content as for SetRow): is it already
// applied? known is false when no live state is held for the row (never
// seen within the window, or the ledger predates row states); the caller
// then falls back to the ID set. When known, applied is true if
//
//   - the change leaves the row exactly as the latest applied state
//     (RowPresent with the same content, or RowDeleted after a delete), or
//   - the change is not newer than the change that set the latest state:
//     its offset is at or below that change's offset on the same source
//     partition, so it is a redelivery, or an older change that was
//     overtaken (the rows of one key are in one partition, in order).
//
// A row whose latest state is RowUnknown is never equal to anything, and
// a change given as RowNone is checked for the second rule only (a
// tombstone: it follows its delete, and must pass unless a later change of
// the row was already applied).
func (x *Index) RowApplied(row cdc.ID, state RowState, content cdc.ID, offset int64) (applied, known bool) {
	if row.IsZero() {
		return false, false
	}
	i := x.rows.find(rowKeyU(row))
	if i < 0 {
		return false, false
	}
	s := &x.rows.slots[i]
	if x.window != 0 && x.expired(s.seenU(), x.cutoff(x.now())) {
		return false, false
	}
	if held := s.offset(); held != offUnknown && offset >= 0 && offset <= held {
		return true, true
	}
	f := s.contentU()
	if f == contentUnknown || !state.valid() || state == RowUnknown {
		return false, true
	}
	return fingerprint(state, content) == f, true
}

// Row returns the latest state held for row, whether or not it has
// expired: its state, the source offset that set it (-1 when unknown) and
// when it was set. For tests and diagnostics.
func (x *Index) Row(row cdc.ID) (state RowState, offset int64, at time.Time, ok bool) {
	i := x.rows.find(rowKeyU(row))
	if i < 0 {
		return RowNone, 0, time.Time{}, false
	}
	s := &x.rows.slots[i]
	switch s.contentU() {
	case contentUnknown:
		state = RowUnknown
	case contentDeleted:
		state = RowDeleted
	default:
		state = RowPresent
	}
	offset = s.offset()
	if offset == offUnknown {
		offset = -1
	}
	return state, offset, time.Unix(int64(s.seenU()), 0), true
}

// Rows returns the number of row states held, including expired ones that
// Expire has not dropped yet.
func (x *Index) Rows() int { return x.rows.n }

func (x *Index) recordRow(key uint64, prev rowSlot) {
	if x.marked {
		x.rowJournal = append(x.rowJournal, rowUndo{key: key, prev: prev})
	}
}

// rollbackRows undoes the row changes since Mark, newest first.
func (x *Index) rollbackRows() int {
	undone := len(x.rowJournal)
	for j := len(x.rowJournal) - 1; j >= 0; j-- {
		u := x.rowJournal[j]
		i := x.rows.find(u.key)
		switch {
		case u.prev.seenU() == 0 && i >= 0:
			x.rows.removeAt(uint64(i))
		case u.prev.seenU() != 0 && i >= 0:
			x.rows.slots[i] = u.prev
		case u.prev.seenU() != 0:
			x.rows.insertNew(u.prev)
		}
	}
	x.rowJournal = x.rowJournal[:0]
	return undone
}
