package cdc

import (
	"time"
	"unsafe"
)

// The per-event arena.
//
// A decoded event is made of many small values: field names, strings and
// numbers boxed into Field.Value, and the Rows holding them. Allocating each
// separately dominated the decoder's cost (one allocation per boxed string),
// so the converter carves them out of a few per-event blocks instead:
//
//   - bytes: the text of every copied string, and pointer-free scalars
//     (int64, float64) boxed into an any;
//   - strs: the string headers of boxed strings and Numbers, and Changed;
//   - fields: the Fields of every Row.
//
// Each block belongs to one event: beginEvent drops the converter's
// references, so a block is shared by the values of one event only and an
// event kept by the caller pins nothing of any other event. A block is
// sized from the previous event's usage, so a stream of similar records
// costs one allocation per block per event; a block that runs out is
// followed by another (the first stays alive through the values in it).
// Memory handed out is never written again while its event may be alive,
// so the values stay immutable and share no memory with the input.
//
// The one exception is a Scratch (scratch.go): a caller that decodes
// records one at a time and drops each event before decoding the next
// lends the decoder an arena of its own, and reuseEvent hands the
// previous event's blocks out again instead of dropping them.

// Minimum block sizes (the byte block's: see bytesBlockSize).
const (
	minBytesBlock = 256
	// minBytesEstimated is the byte block's minimum when the previous
	// event's usage sizes it (bytesBlockSize).
	minBytesEstimated = 64
	minStrsBlock      = 16
	minFieldsBlock    = 16
	minTimesBlock     = 4
)

// arena is the converter's per-event allocator. The zero value is ready.
type arena struct {
	bytes  []byte
	strs   []string
	fields []Field
	times  []time.Time
	// What the current event used, and what the previous one did.
	usedBytes, usedStrs, usedFields, usedTimes int
	estBytes, estStrs, estFields, estTimes     int
}

// beginEvent starts a new event: later allocations never share a block
// with the values of earlier events.
func (a *arena) beginEvent() {
	a.estBytes, a.estStrs, a.estFields, a.estTimes = a.usedBytes, a.usedStrs, a.usedFields, a.usedTimes
	a.usedBytes, a.usedStrs, a.usedFields, a.usedTimes = 0, 0, 0, 0
	a.bytes, a.strs, a.fields, a.times = nil, nil, nil, nil
}

// reuseEvent starts a new event in the memory of the previous one, for a
// caller that no longer references anything of it (Scratch). The current
// block of each kind is kept, emptied, when it held all the previous
// event used of its kind (keepBlock); otherwise it is dropped, and the
// first allocation takes a block sized by that usage, which the following
// events then reuse. The kept blocks' used parts are cleared: a Row's
// unused slots must be zero (row), and the blocks the garbage collector
// scans must pin nothing of the previous event.
func (a *arena) reuseEvent() {
	a.estBytes, a.estStrs, a.estFields, a.estTimes = a.usedBytes, a.usedStrs, a.usedFields, a.usedTimes
	if keepBlock(cap(a.bytes), a.usedBytes, 1) {
		a.bytes = a.bytes[:0] // pointer-free: every use writes what it hands out
	} else {
		a.bytes = nil
	}
	if keepBlock(cap(a.strs), a.usedStrs, int(unsafe.Sizeof(""))) {
		clear(a.strs)
		a.strs = a.strs[:0]
	} else {
		a.strs = nil
	}
	if keepBlock(cap(a.fields), a.usedFields, int(unsafe.Sizeof(Field{}))) {
		clear(a.fields) // beyond len the block is zero already (trimRow)
		a.fields = a.fields[:0]
	} else {
		a.fields = nil
	}
	if keepBlock(cap(a.times), a.usedTimes, int(unsafe.Sizeof(time.Time{}))) {
		clear(a.times)
		a.times = a.times[:0]
	} else {
		a.times = nil
	}
	a.usedBytes, a.usedStrs, a.usedFields, a.usedTimes = 0, 0, 0, 0
}

// reuseKeep is the size in bytes up to which a block is kept for the next
// event whatever the previous one used of it (see keepBlock).
const reuseKeep = 16 << 10

// keepBlock reports whether a block of capacity c, of which the previous
// event used u (elements of size bytes), is reused for the next event: it
// must have held all of it, and be at most four times that or reuseKeep
// bytes, so that the blocks of one unusually large event are not kept by
// a Scratch for good (the next event's usage sizes the one after it).
func keepBlock(c, u, size int) bool {
	return u <= c && (c <= 4*u || c*size <= reuseKeep)
}

// blockSize is the size of a new block that must hold at least need: the
// estimate for the event's first block (what the previous event used), at
// least min, which also absorbs a stream whose records vary in size.
func blockSize(need, est, min int) int {
	return max(need, est, min)
}

// bytesBlockSize is blockSize for the byte block, with a smaller
// minimum once there is an estimate: an owned decode (DecodeOwned)
// copies only strings with escapes, often a few bytes, and took a block
// of 256 bytes for each event; a stream of several tables' records, whose
// estimate is the previous record's, needs some slack.
func bytesBlockSize(need, est int) int {
	if est > 0 {
		return max(need, est, minBytesEstimated)
	}
	return max(need, minBytesBlock)
}

// copyBytes copies b into the arena. The result has len == cap, so an
// append to it never writes into the arena.
func (a *arena) copyBytes(b []byte) []byte {
	n := len(b)
	if cap(a.bytes)-len(a.bytes) < n {
		a.bytes = make([]byte, 0, bytesBlockSize(n, a.estBytes))
		a.estBytes = 0
	}
	start := len(a.bytes)
	a.bytes = append(a.bytes, b...)
	a.usedBytes += n
	return a.bytes[start : start+n : start+n]
}

// scalar returns 8 bytes of 8-aligned, zeroed arena memory for a
// pointer-free scalar.
func (a *arena) scalar() unsafe.Pointer {
	const size = 8
	pad := (size - (int(uintptr(unsafe.Pointer(unsafe.SliceData(a.bytes))))+len(a.bytes))%size) % size
	if cap(a.bytes)-len(a.bytes) < pad+size {
		// A fresh block of 8 bytes or more is at least 8-aligned.
		a.bytes = make([]byte, 0, bytesBlockSize(size, a.estBytes))
		a.estBytes = 0
		pad = 0
	}
	start := len(a.bytes) + pad
	a.bytes = a.bytes[:start+size]
	a.usedBytes += pad + size
	return unsafe.Pointer(&a.bytes[start])
}

// string1 returns a fresh string slot.
func (a *arena) string1() *string {
	if len(a.strs) == cap(a.strs) {
		a.strs = make([]string, 0, blockSize(1, a.estStrs, minStrsBlock))
		a.estStrs = 0
	}
	a.strs = a.strs[:len(a.strs)+1]
	a.usedStrs++
	return &a.strs[len(a.strs)-1]
}

// stringsN returns n fresh string slots, len == cap == n.
func (a *arena) stringsN(n int) []string {
	if cap(a.strs)-len(a.strs) < n {
		a.strs = make([]string, 0, blockSize(n, a.estStrs, minStrsBlock))
		a.estStrs = 0
	}
	start := len(a.strs)
	a.strs = a.strs[:start+n]
	a.usedStrs += n
	return a.strs[start : start+n : start+n]
}

// row returns an empty Row with room for n fields; len 0, cap n, so the
// Row can grow to n fields without touching the rest of the block. It is
// never nil: a nil Row means absent.
func (a *arena) row(n int) Row {
	if n == 0 {
		return Row{}
	}
	if cap(a.fields)-len(a.fields) < n {
		a.fields = make([]Field, 0, blockSize(n, a.estFields, minFieldsBlock))
		a.estFields = 0
	}
	start := len(a.fields)
	a.fields = a.fields[:start+n]
	a.usedFields += n
	return Row(a.fields[start : start : start+n])
}

// rowGuess returns an empty Row for about n fields, to be filled with
// growRow and trimRow: room for n, or for what is left of the current
// block (at least one), so that a guess too wide opens no new block.
func (a *arena) rowGuess(n int) Row {
	if room := cap(a.fields) - len(a.fields); room > 0 {
		n = min(n, room)
	}
	return a.row(max(n, 1))
}

// lastRow reports whether r's capacity ends where the fields block's
// used part does: r is the last row handed out and may change size in
// place.
func (a *arena) lastRow(r Row) bool {
	return cap(r) > 0 && len(a.fields) > 0 &&
		unsafe.Pointer(&r[:cap(r)][cap(r)-1]) == unsafe.Pointer(&a.fields[len(a.fields)-1])
}

// growRow returns r, full, with room for more fields: n more, or what
// is left of the block when r is its last row (in place), else n more in
// a new row.
func (a *arena) growRow(r Row, n int) Row {
	if room := cap(a.fields) - len(a.fields); room > 0 && a.lastRow(r) {
		n = min(n, room)
		start := len(a.fields) - cap(r)
		a.fields = a.fields[:len(a.fields)+n]
		a.usedFields += n
		return Row(a.fields[start : start+len(r) : start+cap(r)+n])
	}
	// Moved: the old slots stay unused (a last row moves only to a new
	// block), and are not the event's need, which sizes the next
	// event's first block.
	out := append(a.row(len(r)+n), r...)
	a.usedFields -= cap(r)
	return out
}

// trimRow returns r with len == cap; when r is the last row of its
// block, its unused tail goes back to the block.
func (a *arena) trimRow(r Row) Row {
	if spare := cap(r) - len(r); spare > 0 && a.lastRow(r) {
		clear(r[len(r):cap(r)]) // never written; kept zero for the next row
		a.fields = a.fields[:len(a.fields)-spare]
		a.usedFields -= spare
	}
	return r[:len(r):len(r)]
}

// time1 returns a fresh time slot.
func (a *arena) time1() *time.Time {
	if len(a.times) == cap(a.times) {
		a.times = make([]time.Time, 0, blockSize(1, a.estTimes, minTimesBlock))
		a.estTimes = 0
	}
	a.times = a.times[:len(a.times)+1]
	a.usedTimes++
	return &a.times[len(a.times)-1]
}

// Boxing without allocating. Converting a string, an int64 or a
// time.Time to an interface normally allocates a copy of the value on the
// heap; the interface holds its type and a pointer to that copy. The
// box functions build the same interface with the pointer aimed at an arena
// slot instead. The slot is written once before boxing and never again, as
// the runtime requires of an interface's data. Pointer-free scalars sit in
// the byte blocks; values holding pointers (strings, times) in typed blocks
// the garbage collector scans.

// eface is the runtime layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeWord(x any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&x)).typ }

var (
	stringTypeWord  = typeWord("")
	numberTypeWord  = typeWord(Number(""))
	int64TypeWord   = typeWord(int64(0))
	float64TypeWord = typeWord(float64(0))
	timeTypeWord    = typeWord(time.Time{})
	localTypeWord   = typeWord(LocalDateTime{})
	// boxOK is false if the interface layout is not the expected one; the
	// box functions then box the ordinary way.
	boxOK = checkBoxing()
)

func makeEface(typ, data unsafe.Pointer) any {
	e := eface{typ: typ, data: data}
	return *(*any)(unsafe.Pointer(&e))
}

// checkBoxing verifies the interface layout the box functions rely on.
func checkBoxing() bool {
	if unsafe.Sizeof(any(nil)) != unsafe.Sizeof(eface{}) {
		return false
	}
	s := "cdcsync"
	x := makeEface(typeWord(""), unsafe.Pointer(&s))
	got, ok := x.(string)
	if !ok || got != s || x != any("cdcsync") {
		return false
	}
	n := int64(1 << 40)
	y := makeEface(typeWord(int64(0)), unsafe.Pointer(&n))
	m, ok := y.(int64)
	return ok && m == n && y == any(int64(1<<40))
}

// boxString returns s as an any holding a string.
func (a *arena) boxString(s string) any {
	if !boxOK || s == "" {
		return s
	}
	p := a.string1()
	*p = s
	return makeEface(stringTypeWord, unsafe.Pointer(p))
}

// boxNumber returns n as an any holding a Number.
func (a *arena) boxNumber(n Number) any {
	if !boxOK || n == "" {
		return n
	}
	p := a.string1()
	*p = string(n)
	return makeEface(numberTypeWord, unsafe.Pointer(p))
}

// boxInt64 returns n as an any holding an int64.
func (a *arena) boxInt64(n int64) any {
	if !boxOK || (n >= 0 && n < 256) {
		return n // small values are boxed without allocating
	}
	p := a.scalar()
	*(*int64)(p) = n
	return makeEface(int64TypeWord, p)
}

// boxFloat64 returns f as an any holding a float64.
func (a *arena) boxFloat64(f float64) any {
	if !boxOK {
		return f
	}
	p := a.scalar()
	*(*float64)(p) = f
	return makeEface(float64TypeWord, p)
}

// boxTime returns t as an any holding a time.Time.
func (a *arena) boxTime(t time.Time) any {
	if !boxOK {
		return t
	}
	p := a.time1()
	*p = t
	return makeEface(timeTypeWord, unsafe.Pointer(p))
}

// boxLocal returns t's wall clock as an any holding a LocalDateTime, which
// has the memory layout of a time.Time.
func (a *arena) boxLocal(t time.Time) any {
	if !boxOK {
		return LocalDateTime(t)
	}
	p := a.time1()
	*p = t
	return makeEface(localTypeWord, unsafe.Pointer(p))
}
