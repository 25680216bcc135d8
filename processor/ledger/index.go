package ledger

import (
	"encoding/binary"
	"math/bits"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// slot is one entry of the open-addressing table: the event ID and its
// first-seen time in unix seconds. seen == 0 marks an empty slot, so stored
// times are clamped to at least 1 (1970-01-01T00:00:01Z). The struct is 20
// bytes with no padding ([16]byte has alignment 1, uint32 has 4).
type slot struct {
	id   cdc.ID
	seen uint32
}

// slotSize is the in-memory size of one slot, in bytes.
const slotSize = 20

const (
	minCapacity = 16
	// The table grows when it would become more than 7/8 full. Right after a
	// growth it is 7/16 full, so a slot costs slotSize/(7/16) ≈ 45.7 bytes
	// per key at worst and slotSize/(7/8) ≈ 22.9 bytes at best.
	maxLoadNum, maxLoadDen = 7, 8
	// After Expire the table shrinks when it is less than 1/8 full, to a
	// capacity where it is at most half full.
	minLoadDen = 8
)

// Index is the in-memory set of event IDs seen on ONE source partition,
// with the time each was first seen. It is an open-addressing hash table of
// 128-bit keys (Robin Hood linear probing with backward-shift deletion, so
// there are no tombstones), using bits of the ID itself as the hash: IDs are
// already uniformly distributed hashes.
//
// Memory: 20 bytes per slot and a load factor between 7/16 and 7/8, so
// 23–46 bytes per key resident (about 42 at 1M keys). While the table grows,
// the old and the new slot arrays are both alive for a moment (≈ 69 bytes per
// key at the peak).
//
// An Index is not safe for concurrent use. The goroutine that owns the
// source partition (the ConsumeClaim loop) owns its Index.
type Index struct {
	slots  []slot
	mask   uint64
	shift  uint   // 64 - log2(len(slots)); the home slot is hash >> shift
	n      int    // entries held, expired or not
	window uint32 // seconds; 0 means entries never expire
	now    func() time.Time

	marked  bool
	journal []undo

	// rows holds the latest applied state per row key (rows.go), with its
	// own journal under a mark.
	rows       rowTable
	rowJournal []rowUndo
}

// undo is one journal record: the ID's first-seen time before the change,
// or 0 if it was absent.
type undo struct {
	id   cdc.ID
	prev uint32
}

func trailingZeros(n int) int { return bits.TrailingZeros64(uint64(n)) }

// IndexOption configures an Index.
type IndexOption func(*Index)

// WithClock sets the clock Seen uses to decide whether an entry has expired.
// The default is time.Now.
func WithClock(now func() time.Time) IndexOption {
	return func(x *Index) { x.now = now }
}

// WithCapacity presizes the table for n keys, which avoids growth steps
// during a restore whose size is known.
func WithCapacity(n int) IndexOption {
	return func(x *Index) { x.alloc(capacityFor(n)) }
}

// NewIndex returns an empty Index whose entries expire window after their
// first-seen time. A window of zero or less means entries never expire.
// The window is kept to whole seconds (rounded up).
func NewIndex(window time.Duration, opts ...IndexOption) *Index {
	x := &Index{now: time.Now}
	if window > 0 {
		s := (window + time.Second - 1) / time.Second
		if s > 1<<32-1 {
			s = 1<<32 - 1
		}
		x.window = uint32(s)
	}
	for _, o := range opts {
		o(x)
	}
	if x.slots == nil {
		x.alloc(minCapacity)
	}
	x.rows.alloc(minCapacity)
	return x
}

// Window returns the expiry window; zero means never.
func (x *Index) Window() time.Duration { return time.Duration(x.window) * time.Second }

// Len returns the number of entries held, IDs and row states, including
// expired ones that Expire has not dropped yet. IDs returns the IDs alone,
// Rows the row states alone.
func (x *Index) Len() int { return x.n + x.rows.n }

// IDs returns the number of IDs held, including expired ones that Expire
// has not dropped yet.
func (x *Index) IDs() int { return x.n }

// Bytes returns the approximate resident size of the Index in bytes: the
// slot arrays, the undo journals and the header.
func (x *Index) Bytes() int {
	return len(x.slots)*slotSize + cap(x.journal)*slotSize +
		len(x.rows.slots)*rowSlotSize + cap(x.rowJournal)*(8+rowSlotSize) + 160
}

// Seen reports whether id is held and has not expired at the Index's clock.
func (x *Index) Seen(id cdc.ID) bool {
	i := x.find(id)
	if i < 0 {
		return false // the usual answer: no clock read for it
	}
	return x.window == 0 || !x.expired(x.slots[i].seen, x.cutoff(x.now()))
}

// SeenAt reports whether id is held and has not expired at now.
func (x *Index) SeenAt(id cdc.ID, now time.Time) bool {
	i := x.find(id)
	if i < 0 {
		return false
	}
	return !x.expired(x.slots[i].seen, x.cutoff(now))
}

// FirstSeen returns the first-seen time of id (to the second), if held,
// whether or not it has expired.
func (x *Index) FirstSeen(id cdc.ID) (time.Time, bool) {
	i := x.find(id)
	if i < 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(x.slots[i].seen), 0), true
}

// Add records id as first seen at firstSeen. It returns true if id was added,
// and false if it was already held and not expired at firstSeen, in which
// case the earlier first-seen time is kept. An expired entry is replaced.
// While a mark is open, the change is journaled for Rollback.
func (x *Index) Add(id cdc.ID, firstSeen time.Time) (added bool) {
	t := toSeconds(firstSeen)
	if i := x.find(id); i >= 0 {
		prev := x.slots[i].seen
		if !x.expired(prev, x.cutoffSeconds(t)) {
			return false
		}
		x.record(id, prev)
		x.slots[i].seen = t
		return true
	}
	x.record(id, 0)
	x.insertNew(id, t)
	return true
}

// Delete forgets id, as a ledger tombstone asks. It reports whether id was
// held. While a mark is open, the change is journaled for Rollback.
func (x *Index) Delete(id cdc.ID) bool {
	i := x.find(id)
	if i < 0 {
		return false
	}
	x.record(id, x.slots[i].seen)
	x.removeAt(uint64(i))
	return true
}

// Expire drops every entry (ID or row state) first seen more than the
// window before now and returns how many it dropped. It sweeps the whole table (O(capacity)), so
// call it periodically, not per record. It may shrink the table.
// Entries dropped by Expire are not journaled: Rollback does not bring them
// back, which is harmless because they no longer count as seen.
func (x *Index) Expire(now time.Time) int {
	if x.window == 0 {
		return 0
	}
	dropped := 0
	if x.n > 0 {
		dropped = x.sweep(x.cutoff(now))
	}
	if x.rows.n > 0 {
		dropped += x.rows.sweep(x.cutoff(now))
	}
	x.rows.shrink()
	if len(x.slots) > minCapacity && x.n*minLoadDen < len(x.slots) {
		c := minCapacity
		for c < 2*x.n {
			c *= 2
		}
		if c < len(x.slots) {
			x.resize(c)
		}
	}
	return dropped
}

// sweep removes every entry first seen before cutoff.
func (x *Index) sweep(cutoff uint32) int {
	// Start the sweep just after an empty slot. Backward shifts then only move
	// entries the sweep has not examined yet, and never across the start.
	// There is always an empty slot because the load is at most 7/8.
	start := uint64(0)
	for x.slots[start].seen != 0 {
		start++
	}
	dropped := 0
	c := uint64(len(x.slots))
	for k := uint64(1); k <= c; {
		i := (start + k) & x.mask
		s := x.slots[i].seen
		if s != 0 && x.expired(s, cutoff) {
			x.removeAt(i)
			dropped++
			continue // slot i now holds a shifted entry (or is empty): look again
		}
		k++
	}
	return dropped
}

// Mark opens a journal: Adds, Deletes and SetRows from now on can be undone with
// Rollback, or kept with Commit. A Mark while a mark is open commits the
// earlier one first. Used under exactly-once: mark at the start of a
// transaction, roll back if it aborts.
func (x *Index) Mark() {
	x.journal = x.journal[:0]
	x.rowJournal = x.rowJournal[:0]
	x.marked = true
}

// Commit keeps every change since Mark and closes the mark.
func (x *Index) Commit() {
	x.journal = x.journal[:0]
	x.rowJournal = x.rowJournal[:0]
	x.marked = false
	x.trimJournal()
}

// Rollback undoes every Add, Delete and SetRow since Mark, newest first, and closes
// the mark. It returns the number of changes undone. Without an open mark it
// does nothing.
func (x *Index) Rollback() int {
	if !x.marked {
		return 0
	}
	x.marked = false
	undone := len(x.journal)
	for j := len(x.journal) - 1; j >= 0; j-- {
		u := x.journal[j]
		i := x.find(u.id)
		switch {
		case u.prev == 0 && i >= 0:
			x.removeAt(uint64(i))
		case u.prev != 0 && i >= 0:
			x.slots[i].seen = u.prev
		case u.prev != 0:
			x.insertNew(u.id, u.prev)
		}
	}
	x.journal = x.journal[:0]
	undone += x.rollbackRows()
	x.trimJournal()
	return undone
}

// Marked reports whether a mark is open.
func (x *Index) Marked() bool { return x.marked }

// trimJournal drops a journal that grew large in one transaction, so a burst
// does not pin memory for the life of the partition.
func (x *Index) trimJournal() {
	if cap(x.journal) > 1<<16 {
		x.journal = nil
	}
	if cap(x.rowJournal) > 1<<16 {
		x.rowJournal = nil
	}
}

func (x *Index) record(id cdc.ID, prev uint32) {
	if x.marked {
		x.journal = append(x.journal, undo{id: id, prev: prev})
	}
}

// hash mixes both halves of the ID. The IDs are already hashes; the multiply
// only protects against IDs whose high bits are constant (e.g. a content key
// someone built by hand).
func hash(id *cdc.ID) uint64 {
	lo := binary.LittleEndian.Uint64(id[0:8])
	hi := binary.LittleEndian.Uint64(id[8:16])
	return (lo ^ bits.RotateLeft64(hi, 31)) * 0x9E3779B97F4A7C15
}

func (x *Index) home(id *cdc.ID) uint64 { return hash(id) >> x.shift }

// dist is how far slot i is from the home slot of the id it holds.
func (x *Index) dist(i uint64) uint64 { return (i - x.home(&x.slots[i].id)) & x.mask }

// find returns the slot index of id, or -1.
func (x *Index) find(id cdc.ID) int {
	i := x.home(&id)
	for d := uint64(0); ; d++ {
		s := &x.slots[i]
		if s.seen == 0 {
			return -1
		}
		if s.id == id {
			return int(i)
		}
		// Robin Hood invariant: had id been here, it would have displaced
		// any entry closer to its home than id is to its own.
		if x.dist(i) < d {
			return -1
		}
		i = (i + 1) & x.mask
	}
}

// insertNew inserts an id known to be absent.
func (x *Index) insertNew(id cdc.ID, seen uint32) {
	if (x.n+1)*maxLoadDen > len(x.slots)*maxLoadNum {
		x.resize(len(x.slots) * 2)
	}
	x.place(slot{id: id, seen: seen})
	x.n++
}

func (x *Index) place(e slot) {
	i := x.home(&e.id)
	d := uint64(0)
	for {
		s := &x.slots[i]
		if s.seen == 0 {
			*s = e
			return
		}
		if sd := x.dist(i); sd < d {
			e, *s = *s, e
			d = sd
		}
		i = (i + 1) & x.mask
		d++
	}
}

// removeAt empties slot i and shifts the rest of its cluster back by one
// until an empty slot or an entry already at its home.
func (x *Index) removeAt(i uint64) {
	for {
		j := (i + 1) & x.mask
		if x.slots[j].seen == 0 || x.dist(j) == 0 {
			break
		}
		x.slots[i] = x.slots[j]
		i = j
	}
	x.slots[i] = slot{}
	x.n--
}

func (x *Index) alloc(capacity int) {
	x.slots = make([]slot, capacity)
	x.mask = uint64(capacity - 1)
	x.shift = uint(64 - bits.TrailingZeros64(uint64(capacity)))
}

func (x *Index) resize(capacity int) {
	if capacity < minCapacity {
		capacity = minCapacity
	}
	old := x.slots
	x.alloc(capacity)
	for i := range old {
		if old[i].seen != 0 {
			x.place(old[i])
		}
	}
}

// capacityFor returns the smallest power-of-two capacity that holds n keys
// within the maximum load.
func capacityFor(n int) int {
	c := minCapacity
	for n*maxLoadDen > c*maxLoadNum {
		c *= 2
	}
	return c
}

func toSeconds(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case s < 1:
		return 1
	case s > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(s)
}

// cutoff returns the oldest first-seen second that is still live at now;
// 0 when nothing expires.
func (x *Index) cutoff(now time.Time) uint32 { return x.cutoffSeconds(toSeconds(now)) }

func (x *Index) cutoffSeconds(now uint32) uint32 {
	if x.window == 0 || now <= x.window {
		return 0
	}
	return now - x.window
}

// expired: an entry first seen at s is live while now - s <= window, that is
// s >= now - window.
func (x *Index) expired(s, cutoff uint32) bool { return s < cutoff }
