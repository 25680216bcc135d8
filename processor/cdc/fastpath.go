package cdc

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/valyala/fastjson/fastfloat"
)

// The fast path.
//
// Most records are Debezium change events written without the schema
// envelope (the JSON converter's schemas.enable=false): an object with
// op, source, before, after and a transaction block, whose rows are
// converted without a schema. For those, decodeFast reads the record in
// one pass, converting the rows while it scans them, instead of parsing
// it into a fastjson tree and converting that (the parse, the copy of the
// record, the visits and the lazy unescaping took about 40% of a decode).
//
// It gives up, and the caller decodes the record the ordinary way, on
// anything it does not take: the envelope, a tombstone, a syntax error,
// a number or literal outside the JSON grammar (fastjson accepts some),
// a value of an unexpected type, an op other than c, u, d or r, a
// MongoDB document string, a missing or malformed member, nesting deeper
// than fastMaxDepth. So it only has to be right about the records it
// takes: for those, the event is the one the ordinary path makes, field
// for field (TestFastPathMatchesSlow, FuzzFastPathMatchesSlow), and every
// error, DLQ reason and edge case stays the ordinary path's.

// fastNamesKept bounds the field names fastScanner.names keeps per depth.
const fastNamesKept = 256

// fastMaxDepth bounds the nesting the fast path follows; deeper records
// take the ordinary path (fastjson allows 300).
const fastMaxDepth = 64

// fastScanner is the working memory of decodeFast; it belongs to a
// decodeState.
type fastScanner struct {
	b []byte
	c *converter
	// width is the number of fields of the last object converted at
	// each depth (the last entry: at any deeper one), the width of the
	// next one's row.
	width [4]int
	// names are the field names of the last objects at each depth, in
	// order (up to fastNamesKept): a row's names are those of the
	// topic's last row, found with one comparison each.
	names [4][]string
	known [4]int // see object
	esc   []byte // scratch of unescaped strings
	// owned: the input is the caller's to give (DecodeOwned), so strings
	// without escapes and numbers alias it instead of being copied.
	owned bool
	// The last connector's position fields (positionFields).
	posConnector string
	posNames     []string
	posKnown     bool
}

// keep returns s, which is b's text or the unescape scratch (esc), as a
// string the event may keep: b itself when the input is owned and s has
// no escapes, else a copy in the event's arena.
func (f *fastScanner) keep(s []byte, esc bool) string {
	if f.owned && !esc {
		return unsafeString(s)
	}
	return f.c.copyStr(s)
}

// isJSONWS is fastjson's whitespace.
func isJSONWS(c byte) bool { return c <= ' ' && (c == 0x20 || c == 0x0A || c == 0x09 || c == 0x0D) }

func (f *fastScanner) ws(i int) int {
	for i < len(f.b) && isJSONWS(f.b[i]) {
		i++
	}
	return i
}

// SWAR (SIMD within a register) constants: a byte repeated in each of
// the eight bytes of a word, and the top bit of each byte.
const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
	swarQuot = swarOnes * '"'
	swarBack = swarOnes * '\\'
)

// str scans the string starting at b[i] == '"' as fastjson does: it ends
// at the first quote preceded by an even number of backslashes (a
// backslash escapes the byte after it). It returns the raw content, the
// index after the closing quote, and whether the content has a backslash.
//
// It reads eight bytes at a time while it can: a byte of x equal to c is
// a zero byte of x^c, and (y-ones)&^y&high marks the zero bytes of y
// (exactly up to the first one, which is all it needs).
func (f *fastScanner) str(i int) (raw []byte, next int, esc, ok bool) {
	b := f.b
	j := i + 1
	for j+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[j : j+8])
		q, s := x^swarQuot, x^swarBack
		m := (((q - swarOnes) &^ q) | ((s - swarOnes) &^ s)) & swarHigh
		if m == 0 {
			j += 8
			continue
		}
		j += bits.TrailingZeros64(m) >> 3
		if b[j] == '"' {
			return b[i+1 : j], j + 1, esc, true
		}
		esc = true // a backslash: skip the byte it escapes
		j += 2
	}
	for ; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return b[i+1 : j], j + 1, esc, true
		}
	}
	return nil, 0, false, false
}

// text returns raw unescaped as fastjson unescapes it (best effort:
// invalid escapes are kept as written); esc says whether raw has a
// backslash. The result aliases raw or f.esc.
func (f *fastScanner) text(raw []byte, esc bool) []byte {
	if !esc {
		return raw
	}
	f.esc = unescapeBestEffort(f.esc[:0], unsafeString(raw))
	return f.esc
}

// unescapeBestEffort appends s unescaped to dst, byte for byte as
// fastjson's unescapeStringBestEffort (v1.6.10) unescapes it.
func unescapeBestEffort(dst []byte, s string) []byte {
	n := strings.IndexByte(s, '\\')
	if n < 0 {
		return append(dst, s...)
	}
	dst = append(dst, s[:n]...)
	s = s[n+1:]
	for len(s) > 0 {
		ch := s[0]
		s = s[1:]
		switch ch {
		case '"':
			dst = append(dst, '"')
		case '\\':
			dst = append(dst, '\\')
		case '/':
			dst = append(dst, '/')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if len(s) < 4 {
				dst = append(dst, "\\u"...)
				break
			}
			xs := s[:4]
			x, err := strconv.ParseUint(xs, 16, 16)
			if err != nil {
				dst = append(dst, "\\u"...)
				break
			}
			s = s[4:]
			if !utf16.IsSurrogate(rune(x)) {
				dst = append(dst, string(rune(x))...)
				break
			}
			if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
				dst = append(dst, "\\u"...)
				dst = append(dst, xs...)
				break
			}
			x1, err := strconv.ParseUint(s[2:6], 16, 16)
			if err != nil {
				dst = append(dst, "\\u"...)
				dst = append(dst, xs...)
				break
			}
			r := utf16.DecodeRune(rune(x), rune(x1))
			dst = append(dst, string(r)...)
			s = s[6:]
		default:
			dst = append(dst, '\\', ch)
		}
		n = strings.IndexByte(s, '\\')
		if n < 0 {
			dst = append(dst, s...)
			break
		}
		dst = append(dst, s[:n]...)
		s = s[n+1:]
	}
	return dst
}

// number scans a number token as fastjson delimits it (the longest run
// of digits, '.', '-', '+', 'e' and 'E') and requires it to be a JSON
// number (fastjson accepts more, e.g. "1-2"): it reads the JSON grammar
// and then requires the run to end there.
func (f *fastScanner) number(i int) (tok []byte, next int, ok bool) {
	b := f.b
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return nil, 0, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == k {
			return nil, 0, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == k {
			return nil, 0, false
		}
	}
	if j < len(b) && numberRun[b[j]] {
		return nil, 0, false // fastjson's token runs on: not a JSON number
	}
	return b[i:j], j, true
}

// numberRun holds the bytes of a fastjson number token.
var numberRun = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'.': true, '-': true, '+': true, 'e': true, 'E': true,
}

// literal reads true, false or null at b[i].
func (f *fastScanner) literal(i int, lit string) (next int, ok bool) {
	if len(f.b)-i < len(lit) || string(f.b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// value converts the value at b[i] as converter.schemaless does.
func (f *fastScanner) value(i, depth int) (any, int, bool) {
	b, c := f.b, f.c
	if i >= len(b) {
		return nil, 0, false
	}
	switch b[i] {
	case '{':
		r, next, ok := f.object(i, depth)
		return r, next, ok
	case '[':
		return f.array(i, depth)
	case '"':
		raw, next, esc, ok := f.str(i)
		if !ok {
			return nil, 0, false
		}
		s := f.text(raw, esc)
		if string(s) == UnavailablePlaceholder {
			return Unavailable{}, next, true
		}
		return c.a.boxString(f.keep(s, esc)), next, true
	case 't':
		next, ok := f.literal(i, "true")
		return true, next, ok
	case 'f':
		next, ok := f.literal(i, "false")
		return false, next, ok
	case 'n':
		next, ok := f.literal(i, "null")
		return nil, next, ok
	}
	tok, next, ok := f.number(i)
	if !ok {
		return nil, 0, false
	}
	return c.a.boxNumber(Number(f.keep(tok, false))), next, true
}

// object converts the object at b[i] == '{' into a Row as converter.row
// does without a schema: in the object's order, a key given twice keeps
// its first position and its last value.
//
// The fields go straight into an arena row as wide as the last object
// converted at the same depth (a topic's rows have the same columns from
// record to record), which grows or gives its unused tail back.
func (f *fastScanner) object(i, depth int) (Row, int, bool) {
	if depth >= fastMaxDepth {
		return nil, 0, false
	}
	b, c := f.b, f.c
	i = f.ws(i + 1)
	if i < len(b) && b[i] == '}' {
		return c.a.row(0), i + 1, true
	}
	d := min(depth, len(f.width)-1)
	w := &f.width[d]
	out := c.a.rowGuess(*w)
	names := f.names[d]
	defer func() { f.names[d] = names }()
	// While every name so far is the last object's at the same index
	// (hits), and that object's first f.known[d] names were its own
	// (distinct, as a Row's are), a name found there is not given twice
	// and needs no look-up among the fields before it. Only where the
	// objects nested in this one keep their names apart (below the
	// shared last entry).
	known := &f.known[d]
	hits := d < len(f.names)-1
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, 0, false
		}
		raw, next, esc, ok := f.str(i)
		if !ok {
			return nil, 0, false
		}
		var name string
		k := len(out)
		fresh := false // name is not among out's
		if !esc && k < len(names) && names[k] == string(raw) {
			name = names[k] // the name of the last object's field k
			fresh = hits && k < *known
		} else {
			hits = false
			name = c.str(f.text(raw, esc))
			if k < fastNamesKept {
				if k >= len(names) {
					names = append(names, make([]string, k+1-len(names))...)
				}
				names[k] = name
				*known = min(*known, k)
			}
		}
		i = f.ws(next)
		if i >= len(b) || b[i] != ':' {
			return nil, 0, false
		}
		x, next2, ok := f.value(f.ws(i+1), depth+1)
		if !ok {
			return nil, 0, false
		}
		j := -1
		if !fresh {
			j = indexOf(out, name)
		}
		if j >= 0 {
			out[j].Value = x
		} else {
			if len(out) == cap(out) {
				out = c.a.growRow(out, len(out))
			}
			out = append(out, Field{Name: name, Value: x})
		}
		i = f.ws(next2)
		if i >= len(b) {
			return nil, 0, false
		}
		if b[i] == ',' {
			i = f.ws(i + 1)
			continue
		}
		if b[i] != '}' {
			return nil, 0, false
		}
		*w = len(out)
		*known = min(len(out), len(names)) // names[:len(out)] are out's now
		return c.a.trimRow(out), i + 1, true
	}
}

func (f *fastScanner) array(i, depth int) (any, int, bool) {
	if depth >= fastMaxDepth {
		return nil, 0, false
	}
	b := f.b
	i = f.ws(i + 1)
	out := []any{}
	if i < len(b) && b[i] == ']' {
		return out, i + 1, true
	}
	for {
		x, next, ok := f.value(i, depth+1)
		if !ok {
			return nil, 0, false
		}
		out = append(out, x)
		i = f.ws(next)
		if i >= len(b) {
			return nil, 0, false
		}
		if b[i] == ',' {
			i = f.ws(i + 1)
			continue
		}
		if b[i] != ']' {
			return nil, 0, false
		}
		return out, i + 1, true
	}
}

// skip validates the value at b[i] without converting it.
func (f *fastScanner) skip(i, depth int) (int, bool) {
	b := f.b
	if i >= len(b) || depth >= fastMaxDepth {
		return 0, false
	}
	switch b[i] {
	case '{', '[':
		end := byte('}')
		if b[i] == '[' {
			end = ']'
		}
		obj := b[i] == '{'
		i = f.ws(i + 1)
		if i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			if obj {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				_, next, _, ok := f.str(i)
				if !ok {
					return 0, false
				}
				i = f.ws(next)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = f.ws(i + 1)
			}
			next, ok := f.skip(i, depth+1)
			if !ok {
				return 0, false
			}
			i = f.ws(next)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == ',' {
				i = f.ws(i + 1)
				continue
			}
			if b[i] != end {
				return 0, false
			}
			return i + 1, true
		}
	case '"':
		_, next, _, ok := f.str(i)
		return next, ok
	case 't':
		return f.literal(i, "true")
	case 'f':
		return f.literal(i, "false")
	case 'n':
		return f.literal(i, "null")
	}
	_, next, ok := f.number(i)
	return next, ok
}

// members scans the object at b[i] == '{', calling member with each key
// (unescaped; valid until the next call) and the index of its value;
// member returns the index after the value, having read or skipped it.
// first is the raw first key, for the envelope check.
func (f *fastScanner) members(i int, member func(key []byte, at int) (int, bool)) (next int, ok bool) {
	b := f.b
	i = f.ws(i + 1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		raw, next, esc, ok := f.str(i)
		if !ok {
			return 0, false
		}
		i = f.ws(next)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		if i, ok = member(f.text(raw, esc), f.ws(i+1)); !ok {
			return 0, false
		}
		i = f.ws(i)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == ',' {
			i = f.ws(i + 1)
			continue
		}
		if b[i] != '}' {
			return 0, false
		}
		return i + 1, true
	}
}

// stringish reads a source block string: a string, null (""), true or
// false, as converter.source reads them; at is 0 for an absent member.
func (f *fastScanner) stringish(at int) (string, bool) {
	if at == 0 {
		return "", true
	}
	switch f.b[at] {
	case '"':
		raw, _, esc, ok := f.str(at)
		if !ok {
			return "", false
		}
		return f.c.str(f.text(raw, esc)), true
	case 'n':
		return "", true
	case 't':
		return "true", true
	case 'f':
		return "false", true
	}
	return "", false
}

// int64At reads an int64 member as fastjson's Value.Int64 does. present
// is false for an absent or null member.
func (f *fastScanner) int64At(at int) (n int64, present, ok bool) {
	if at == 0 || f.b[at] == 'n' {
		return 0, false, true
	}
	tok, _, ok := f.number(at)
	if !ok {
		return 0, false, false
	}
	if n, ok := parseDecimalInt64(tok); ok {
		return n, true, true
	}
	n, err := fastfloat.ParseInt64(unsafeString(tok))
	if err != nil {
		return 0, false, false
	}
	return n, true, true
}

// parseDecimalInt64 parses an optional minus and up to 19 decimal
// digits, as fastfloat.ParseInt64 does (which hands 19 digits to
// strconv.ParseInt: a Debezium ts_ns has 19). ok is false for anything
// else, including a value out of range, which the caller then hands to
// fastfloat.ParseInt64 for its verdict.
func parseDecimalInt64(tok []byte) (n int64, ok bool) {
	neg := len(tok) > 0 && tok[0] == '-'
	d := tok
	if neg {
		d = tok[1:]
	}
	if len(d) == 0 || len(d) > 19 {
		return 0, false
	}
	var u uint64 // 19 digits are below 1e19 < 2^64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	case neg && u <= 1<<63:
		return -int64(u), true // -(1<<63) wraps to math.MinInt64
	}
	return 0, false
}

// timestampAt is timestampFrom over member indexes (0: absent).
func (f *fastScanner) timestampAt(ns, us, ms int) (time.Time, bool) {
	if n, present, ok := f.int64At(ns); !ok {
		return time.Time{}, false
	} else if present {
		return time.Unix(0, n).UTC(), true
	}
	if n, present, ok := f.int64At(us); !ok {
		return time.Time{}, false
	} else if present {
		return time.UnixMicro(n).UTC(), true
	}
	if n, present, ok := f.int64At(ms); !ok {
		return time.Time{}, false
	} else if present {
		return time.UnixMilli(n).UTC(), true
	}
	return time.Time{}, true
}

// isEnvelopeKey reports whether the raw first key of a document makes
// the ordinary path look for a {schema, payload} envelope.
func isEnvelopeKey(b []byte, i int) bool {
	return bytes.HasPrefix(b[i:], []byte(`"schema"`)) || bytes.HasPrefix(b[i:], []byte(`"payload"`))
}

// fastKey converts a record key that is a bare JSON object. ok is false
// for anything else.
func (f *fastScanner) fastKey(key []byte) (Row, bool) {
	f.b = key
	i := f.ws(0)
	if i >= len(key) || key[i] != '{' || isEnvelopeKey(key, f.ws(i+1)) {
		return nil, false
	}
	r, next, ok := f.object(i, 0)
	if !ok || f.ws(next) != len(key) {
		return nil, false
	}
	return r, true
}

// decodeFast fills blk from a bare change event (see "The fast path"
// above). It returns false, leaving blk for the caller to reset, when
// the record needs the ordinary path.
func (d *JSONDecoder) decodeFast(st *decodeState, blk *eventBlock, key, value []byte) bool {
	f := &st.fast
	c := &st.conv
	f.c = c
	ev := &blk.ev
	if len(bytes.TrimSpace(key)) > 0 {
		k, ok := f.fastKey(key)
		if !ok {
			return false
		}
		ev.Key = k
	}

	f.b = value
	i := f.ws(0)
	if i >= len(value) || value[i] != '{' || isEnvelopeKey(value, f.ws(i+1)) {
		return false
	}
	var m [emN]int // index of each envelope member's value, 0 when absent
	var src [skAll]int
	var before, after Row
	haveSource := false
	next, ok := f.members(i, func(k []byte, at int) (int, bool) {
		em := envelopeMember(k)
		switch em {
		case emBefore, emAfter:
			var r Row
			next := at
			switch {
			case at < len(value) && value[at] == '{':
				var ok bool
				if r, next, ok = f.object(at, 1); !ok {
					return 0, false
				}
			case at < len(value) && value[at] == 'n':
				var ok bool
				if next, ok = f.literal(at, "null"); !ok {
					return 0, false
				}
			default:
				return 0, false // a MongoDB document string, or a mismatch
			}
			if em == emBefore {
				before = r
			} else {
				after = r
			}
			return next, true
		case emSource:
			if at >= len(value) || value[at] != '{' {
				return 0, false
			}
			haveSource = true
			src = [skAll]int{}
			return f.members(at, func(k []byte, at int) (int, bool) {
				if j := sourceKey(k); j >= 0 {
					src[j] = at
				}
				return f.skip(at, 2)
			})
		}
		if em >= 0 {
			m[em] = at
		}
		return f.skip(at, 1)
	})
	if !ok || f.ws(next) != len(value) || !haveSource || m[emOp] == 0 {
		return false
	}

	// op: c, u, d or r (truncates and messages take the ordinary path).
	if value[m[emOp]] != '"' {
		return false
	}
	raw, _, esc, _ := f.str(m[emOp])
	op := f.text(raw, esc)
	if len(op) != 1 || !strings.Contains("cudr", string(op)) {
		return false
	}
	ev.Op = Op(op[0])

	s := &ev.Source
	for _, g := range [...]struct {
		dst *string
		at  int
	}{{&s.Connector, src[skConnector]}, {&s.Name, src[skName]}, {&s.Database, src[skDB]},
		{&s.Schema, src[skSchema]}, {&s.Table, src[skTable]}} {
		v, ok := f.stringish(g.at)
		if !ok {
			return false
		}
		*g.dst = v
	}
	if s.Table == "" {
		v, ok := f.stringish(src[skCollection])
		if !ok {
			return false
		}
		s.Table = v
	}
	v, ok := f.stringish(src[skSnapshot])
	if !ok {
		return false
	}
	s.Snapshot = v
	if f.posConnector != s.Connector || f.posNames == nil {
		f.posNames, f.posKnown = positionFields[s.Connector]
		f.posConnector = s.Connector
	}
	if names, known := f.posNames, f.posKnown; known {
		pos := c.a.row(len(names))[:len(names)]
		for j, name := range names {
			pos[j].Name = name
			at := src[positionKey(name)]
			if at == 0 {
				continue
			}
			x, _, ok := f.value(at, 2)
			if !ok {
				return false
			}
			pos[j].Value = x
		}
		ev.Position = pos
	}
	t, ok := f.timestampAt(src[skTsNs], src[skTsUs], src[skTsMs])
	if !ok {
		return false
	}
	ev.OccurredAt = t
	ev.Entity = s.Table

	if checkSides(ev.Op, before, after) != nil {
		return false
	}
	ev.Before, ev.After = before, after
	ev.Changed = c.changed(before, after)

	if ev.OccurredAt.IsZero() {
		t, ok := f.timestampAt(m[emTsNs], m[emTsUs], m[emTsMs])
		if !ok {
			return false
		}
		ev.OccurredAt = t
	}

	if at := m[emTransaction]; at != 0 && value[at] != 'n' {
		if value[at] != '{' {
			return false
		}
		var id, total, dco int
		if _, ok := f.members(at, func(k []byte, at int) (int, bool) {
			switch string(k) {
			case "id":
				id = at
			case "total_order":
				total = at
			case "data_collection_order":
				dco = at
			}
			return f.skip(at, 2)
		}); !ok || id == 0 || value[id] != '"' {
			return false
		}
		raw, _, esc, _ := f.str(id)
		blk.tx.ID = f.keep(f.text(raw, esc), esc)
		var present bool
		if blk.tx.TotalOrder, present, ok = f.int64At(total); !ok {
			return false
		}
		_ = present
		if blk.tx.DataCollectionOrder, _, ok = f.int64At(dco); !ok {
			return false
		}
		ev.Transaction = &blk.tx
	}
	ev.Type = st.types.eventType(ev.Entity, ev.Op)
	return true
}
