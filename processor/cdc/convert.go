package cdc

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
)

// convErr is a conversion failure on its way up the value tree. Path
// segments are collected innermost first while the stack unwinds, so the
// success path never builds a path.
type convErr struct {
	segs   []string // innermost first
	reason string
	err    error
}

func newConvErr(sentinel error, format string, args ...any) *convErr {
	return &convErr{reason: fmt.Sprintf(format, args...), err: sentinel}
}

func malformed(format string, args ...any) *convErr {
	return newConvErr(ErrMalformed, format, args...)
}

func mismatch(format string, args ...any) *convErr {
	return newConvErr(ErrSchemaMismatch, format, args...)
}

func missing(name string) *convErr {
	return (&convErr{reason: "required field is absent", err: ErrMissingField}).at(name)
}

// at prepends a field name to the path.
func (e *convErr) at(name string) *convErr {
	e.segs = append(e.segs, name)
	return e
}

// atIndex prepends an array index to the path.
func (e *convErr) atIndex(i int) *convErr {
	e.segs = append(e.segs, "["+strconv.Itoa(i)+"]")
	return e
}

// decodeError turns the failure into the public error, with the path under
// prefix (e.g. "payload").
func (e *convErr) decodeError(part, prefix string) *DecodeError {
	var b strings.Builder
	b.WriteString(prefix)
	for i := len(e.segs) - 1; i >= 0; i-- {
		s := e.segs[i]
		if b.Len() > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return &DecodeError{Part: part, Path: b.String(), Reason: e.reason, Err: e.err}
}

// converter turns fastjson values into Go values. It belongs to one decode
// state, so it is used by one goroutine at a time.
type converter struct {
	scratch []byte
	a       arena // per-event memory of copied strings, boxed values and Rows
	intern  map[string]string
	recent  *[recentSize]string // cache in front of intern, see str
	// changedBuf is reused scratch for Event.Changed.
	changedBuf []string
	mongo      fastjson.Parser // parses MongoDB's before/after JSON strings
}

// maxInterned bounds the per-state intern table of field names and
// repeated source strings.
const maxInterned = 4096

// str copies b out of the parser's memory, sharing the copy with earlier
// identical short strings (field names, connector and table names), which
// repeat in every record.
//
// A small two-way cache in front of the intern table answers most
// look-ups with one hash of a few bytes and one or two comparisons (a
// direct-mapped one thrashed on two names of the benchmark's record that
// share a slot, "country" and "public", and so did "pg" and "false").
func (c *converter) str(b []byte) string {
	if len(b) > 64 {
		return string(b)
	}
	if c.recent == nil {
		c.recent = new([recentSize]string)
	}
	h := internHash(b) & (recentSize - 1)
	slot, alt := &c.recent[h], &c.recent[h^1]
	if *slot == string(b) {
		return *slot
	}
	if *alt == string(b) {
		return *alt
	}
	s, ok := c.intern[string(b)]
	if !ok {
		s = string(b)
		if c.intern == nil {
			c.intern = make(map[string]string, 64)
		}
		if len(c.intern) < maxInterned {
			c.intern[s] = s
		}
	}
	*alt, *slot = *slot, s
	return s
}

// recentSize is the number of slots of converter.recent, a power of two.
const recentSize = 512

// internHash is a cheap hash of the short strings str interns: the
// length and the first and last (up to) eight bytes.
func internHash(b []byte) uint32 {
	var x, y uint64
	if len(b) >= 8 {
		x = binary.LittleEndian.Uint64(b)
		y = binary.LittleEndian.Uint64(b[len(b)-8:])
	} else {
		for i, c := range b {
			x |= uint64(c) << (8 * i)
		}
	}
	h := (x*0x9E3779B97F4A7C15 ^ y*0xC2B2AE3D27D4EB4F ^ uint64(len(b))) * 0x9E3779B97F4A7C15
	return uint32(h >> 32)
}

// Strings longer than slabLargest get their own allocation rather than
// inflating the arena's blocks.
const slabLargest = 256

// copyStr copies b out of the parser's memory, into the event's arena.
func (c *converter) copyStr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > slabLargest {
		return string(b)
	}
	return unsafeString(c.a.copyBytes(b))
}

// rawNumber returns the text of a JSON number, validated against the JSON
// grammar (fastjson accepts more, e.g. "1-2" or "nan"). The result aliases
// the converter's scratch buffer.
func (c *converter) rawNumber(v *fastjson.Value) ([]byte, *convErr) {
	c.scratch = v.MarshalTo(c.scratch[:0])
	if !validNumber(c.scratch) {
		return nil, malformed("invalid number %q", c.scratch)
	}
	return c.scratch, nil
}

// validNumber reports whether b is a JSON number.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

func isIntegerText(b []byte) bool {
	for _, c := range b {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

// unsafeString views b as a string for a call that does not keep it.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// schemaless converts a value read without a schema: numbers stay exact as
// Number, objects become ordered Rows.
func (c *converter) schemaless(v *fastjson.Value) (any, *convErr) {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil, nil
	case fastjson.TypeTrue:
		return true, nil
	case fastjson.TypeFalse:
		return false, nil
	case fastjson.TypeNumber:
		b, err := c.rawNumber(v)
		if err != nil {
			return nil, err
		}
		return c.a.boxNumber(Number(c.copyStr(b))), nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if string(b) == UnavailablePlaceholder {
			return Unavailable{}, nil
		}
		return c.a.boxString(c.copyStr(b)), nil
	case fastjson.TypeArray:
		arr, _ := v.Array()
		out := make([]any, len(arr))
		for i, e := range arr {
			x, err := c.schemaless(e)
			if err != nil {
				return nil, err.atIndex(i)
			}
			out[i] = x
		}
		return out, nil
	case fastjson.TypeObject:
		o, _ := v.Object()
		return c.row(o, nil)
	}
	return nil, malformed("unexpected JSON value")
}

// row converts an object into a Row, in the object's order. s is the
// struct schema, or nil. A key given twice keeps its first position and
// its last value, as in most JSON parsers: a Row never repeats a name.
func (c *converter) row(o *fastjson.Object, s *schemaNode) (Row, *convErr) {
	out := c.a.row(o.Len())
	var cerr *convErr
	i := 0
	o.Visit(func(key []byte, v *fastjson.Value) {
		if cerr != nil {
			return
		}
		var name string
		var fs *schemaNode
		// A field found at its schema position is new: positions only
		// grow. Any other may repeat an earlier one.
		inOrder := false
		if s != nil {
			name, fs = s.field(key, i)
			inOrder = i < len(s.fields) && s.fields[i].name == name && name != ""
		}
		if name == "" {
			name = c.str(key)
		}
		dup := -1
		if !inOrder {
			dup = indexOf(out, name)
		}
		var x any
		var err *convErr
		if fs != nil {
			x, err = c.value(v, fs)
		} else {
			x, err = c.schemaless(v)
		}
		if err != nil {
			cerr = err.at(name)
			return
		}
		if dup >= 0 {
			out[dup].Value = x
			return
		}
		out = append(out, Field{Name: name, Value: x})
		i++
	})
	if cerr != nil {
		return nil, cerr
	}
	return out, nil
}

// indexOf is the position of the named field in r, or -1.
func indexOf(r Row, name string) int {
	for j := range r {
		if r[j].Name == name {
			return j
		}
	}
	return -1
}

var unavailableBase64 = base64.StdEncoding.EncodeToString([]byte(UnavailablePlaceholder))

// value converts v according to the Connect schema s.
func (c *converter) value(v *fastjson.Value, s *schemaNode) (any, *convErr) {
	if s == nil || s.typ == tAny {
		return c.schemaless(v)
	}
	t := v.Type()
	if t == fastjson.TypeNull {
		return nil, nil
	}
	if t == fastjson.TypeString {
		b, _ := v.StringBytes()
		if string(b) == UnavailablePlaceholder || (s.typ == tBytes && string(b) == unavailableBase64) {
			return Unavailable{}, nil
		}
	}
	switch s.typ {
	case tInt8, tInt16, tInt32, tInt64:
		if t != fastjson.TypeNumber {
			return nil, mismatch("expected %s, got %s", s.typ, t)
		}
		b, err := c.rawNumber(v)
		if err != nil {
			return nil, err
		}
		if !isIntegerText(b) {
			return nil, mismatch("expected %s, got %s", s.typ, b)
		}
		bits := 64
		switch s.typ {
		case tInt8:
			bits = 8
		case tInt16:
			bits = 16
		case tInt32:
			bits = 32
		}
		n, perr := strconv.ParseInt(unsafeString(b), 10, bits)
		if perr != nil {
			return nil, mismatch("%s out of range for %s", b, s.typ)
		}
		return c.intLogical(n, s)
	case tFloat32, tFloat64:
		switch t {
		case fastjson.TypeNumber:
			b, err := c.rawNumber(v)
			if err != nil {
				return nil, err
			}
			f, perr := strconv.ParseFloat(unsafeString(b), 64)
			if perr != nil && !isRangeErr(perr) {
				return nil, mismatch("invalid %s %s", s.typ, b)
			}
			return c.a.boxFloat64(f), nil
		case fastjson.TypeString:
			b, _ := v.StringBytes()
			switch string(b) {
			case "NaN":
				return math.NaN(), nil
			case "Infinity":
				return math.Inf(1), nil
			case "-Infinity":
				return math.Inf(-1), nil
			}
		}
		return nil, mismatch("expected %s, got %s", s.typ, t)
	case tBool:
		switch t {
		case fastjson.TypeTrue:
			return true, nil
		case fastjson.TypeFalse:
			return false, nil
		}
		return nil, mismatch("expected boolean, got %s", t)
	case tString:
		if t != fastjson.TypeString {
			return nil, mismatch("expected string, got %s", t)
		}
		b, _ := v.StringBytes()
		switch s.logical {
		case lZonedTs:
			x, ok := parseZonedTimestamp(b)
			if !ok {
				return nil, mismatch("invalid ZonedTimestamp %q", b)
			}
			if ts, ok := x.(time.Time); ok {
				return c.a.boxTime(ts), nil
			}
			return x, nil
		case lJSON:
			return JSON(b), nil
		case lUUID:
			u, err := ParseUUID(unsafeString(b))
			if err != nil {
				return nil, mismatch("invalid Uuid %q", b)
			}
			return u, nil
		case lEnum:
			return Enum(c.str(b)), nil
		}
		return c.a.boxString(c.copyStr(b)), nil
	case tBytes:
		if s.logical == lDecimal && t == fastjson.TypeNumber {
			// decimal.format=NUMERIC writes the number itself.
			b, err := c.rawNumber(v)
			if err != nil {
				return nil, err
			}
			d, ok := parseDecimalText(b)
			if !ok {
				return nil, mismatch("invalid decimal %s", b)
			}
			return d, nil
		}
		if t != fastjson.TypeString {
			return nil, mismatch("expected base64 bytes, got %s", t)
		}
		b, _ := v.StringBytes()
		raw, err := base64.StdEncoding.DecodeString(unsafeString(b))
		if err != nil {
			return nil, mismatch("invalid base64: %v", err)
		}
		if s.logical == lDecimal {
			return Decimal{Unscaled: fromTwosComplement(raw), Scale: s.scale}, nil
		}
		return raw, nil
	case tArray:
		if t != fastjson.TypeArray {
			return nil, mismatch("expected array, got %s", t)
		}
		arr, _ := v.Array()
		out := make([]any, len(arr))
		for i, e := range arr {
			x, err := c.value(e, s.items)
			if err != nil {
				return nil, err.atIndex(i)
			}
			out[i] = x
		}
		return out, nil
	case tMap:
		switch t {
		case fastjson.TypeObject:
			// String keys: the JSON converter writes an object.
			o, _ := v.Object()
			out := make(map[string]any, o.Len())
			var cerr *convErr
			o.Visit(func(key []byte, e *fastjson.Value) {
				if cerr != nil {
					return
				}
				x, err := c.value(e, s.values)
				if err != nil {
					cerr = err.at(string(key))
					return
				}
				out[string(key)] = x
			})
			if cerr != nil {
				return nil, cerr
			}
			return out, nil
		case fastjson.TypeArray:
			// Other keys: an array of [key, value] pairs.
			arr, _ := v.Array()
			out := make([]any, len(arr))
			for i, e := range arr {
				pair, err := e.Array()
				if err != nil || len(pair) != 2 {
					return nil, mismatch("expected [key, value] pair").atIndex(i)
				}
				k, cerr := c.value(pair[0], s.keys)
				if cerr != nil {
					return nil, cerr.atIndex(0).atIndex(i)
				}
				x, cerr := c.value(pair[1], s.values)
				if cerr != nil {
					return nil, cerr.atIndex(1).atIndex(i)
				}
				out[i] = []any{k, x}
			}
			return out, nil
		}
		return nil, mismatch("expected map, got %s", t)
	case tStruct:
		if t != fastjson.TypeObject {
			return nil, mismatch("expected struct, got %s", t)
		}
		o, _ := v.Object()
		if s.logical == lVarDecimal {
			return c.varDecimal(o)
		}
		return c.row(o, s)
	}
	return nil, mismatch("unsupported schema type")
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// Debezium's PostgreSQL connector writes infinity and -infinity of a
// timestamp without time zone and of a date as fixed numbers, all outside
// the range of PostgreSQL's own dates (4713 BC to 5874897 AD), so they
// cannot be real values. Measured with Debezium 3.6.1:
//
//   - timestamps: PgJDBC's PGStatement.DATE_POSITIVE_INFINITY and
//     DATE_NEGATIVE_INFINITY (9223372036825200000, -9223372036832400000)
//     as microseconds (MicroTimestamp), divided by 1000 as milliseconds
//     (Timestamp, Connect Timestamp);
//   - dates, streamed: PostgreSQL's own date infinities (INT32 max and
//     min days since 2000-01-01) moved to the 1970 epoch with int32
//     overflow: -2147472692 and -2147472691;
//   - dates, snapshot: what the JDBC driver's infinity dates become:
//     -622191234 and -625821272.
const (
	pgInfinityMicros      = 9223372036825200000
	pgNegInfinityMicros   = -9223372036832400000
	pgInfinityMillis      = pgInfinityMicros / 1000
	pgNegInfinityMillis   = pgNegInfinityMicros / 1000
	pgInfinityDays        = -2147472692
	pgNegInfinityDays     = -2147472691
	pgInfinityDaysJDBC    = -622191234
	pgNegInfinityDaysJDBC = -625821272
)

// intLogical applies an integer-based logical type. Connect and Debezium
// timestamps given as numbers are local date-times (LocalDateTime);
// Avro's own timestamp-* are instants (time.Time, UTC).
func (c *converter) intLogical(n int64, s *schemaNode) (any, *convErr) {
	switch s.logical {
	case lDate:
		switch n {
		case pgInfinityDays, pgInfinityDaysJDBC:
			return PosInfinity, nil
		case pgNegInfinityDays, pgNegInfinityDaysJDBC:
			return NegInfinity, nil
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return nil, mismatch("date %d days out of range", n)
		}
		return DateFromEpochDays(n), nil
	case lTimeMs:
		return timeOfDay(n, int64(time.Millisecond))
	case lTimeUs:
		return timeOfDay(n, int64(time.Microsecond))
	case lTimeNs:
		return timeOfDay(n, 1)
	case lTsMs:
		switch n {
		case pgInfinityMillis:
			return PosInfinity, nil
		case pgNegInfinityMillis:
			return NegInfinity, nil
		}
		return c.a.boxLocal(unixMilli(n)), nil
	case lTsUs:
		switch n {
		case pgInfinityMicros:
			return PosInfinity, nil
		case pgNegInfinityMicros:
			return NegInfinity, nil
		}
		return c.a.boxLocal(time.UnixMicro(n).UTC()), nil
	case lTsNs:
		return c.a.boxLocal(time.Unix(0, n).UTC()), nil
	case lInstantMs:
		return c.a.boxTime(unixMilli(n)), nil
	case lInstantUs:
		return c.a.boxTime(time.UnixMicro(n).UTC()), nil
	case lInstantNs:
		return c.a.boxTime(time.Unix(0, n).UTC()), nil
	}
	return c.a.boxInt64(n), nil
}

// unixMilli is time.UnixMilli in UTC.
func unixMilli(n int64) time.Time { return time.UnixMilli(n).UTC() }

func timeOfDay(n, unit int64) (any, *convErr) {
	// 24:00:00 is allowed: PostgreSQL time can hold it.
	if n < 0 || n > 24*int64(time.Hour)/unit {
		return nil, mismatch("time of day %d out of range", n)
	}
	return TimeOfDay(time.Duration(n * unit)), nil
}

// varDecimal converts io.debezium.data.VariableScaleDecimal, {scale, value}.
func (c *converter) varDecimal(o *fastjson.Object) (any, *convErr) {
	sv, vv := lastGet(o, "scale"), lastGet(o, "value")
	if sv == nil {
		return nil, missing("scale")
	}
	if vv == nil {
		return nil, missing("value")
	}
	if vv.Type() == fastjson.TypeString {
		if b, _ := vv.StringBytes(); string(b) == unavailableBase64 || string(b) == UnavailablePlaceholder {
			return Unavailable{}, nil
		}
	}
	scale, err := sv.Int64()
	if err != nil || scale < -maxScale || scale > maxScale {
		return nil, mismatch("expected int32 scale").at("scale")
	}
	b, err := vv.StringBytes()
	if err != nil {
		return nil, mismatch("expected base64 bytes").at("value")
	}
	raw, err := base64.StdEncoding.DecodeString(unsafeString(b))
	if err != nil {
		return nil, mismatch("invalid base64: %v", err).at("value")
	}
	return Decimal{Unscaled: fromTwosComplement(raw), Scale: int32(scale)}, nil
}

// maxScale bounds decimal scales so a hostile record cannot make the
// plain-notation text of a value arbitrarily long.
const maxScale = 1000

// fromTwosComplement reads a big-endian two's-complement integer, as Connect
// writes a Decimal's unscaled value.
func fromTwosComplement(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n
}

// parseDecimalText parses an exact JSON number into a Decimal.
func parseDecimalText(b []byte) (Decimal, bool) {
	var buf [64]byte
	neg, digits, exp, ok := splitNumber(b, buf[:])
	if !ok || exp < -maxScale || exp > maxScale {
		return Decimal{}, false
	}
	n, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		return Decimal{}, false
	}
	if neg {
		n.Neg(n)
	}
	if exp > 0 {
		n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
		exp = 0
	}
	return Decimal{Unscaled: n, Scale: int32(-exp)}, true
}

// splitNumber splits a valid JSON number into sign, significant digits
// (without leading zeros, at least "0") and a decimal exponent, so that the
// value is digits × 10^exp. ok is false for an exponent that overflows.
// The digits are appended to buf[:0], which callers may back with an array
// on their stack.
func splitNumber(b, buf []byte) (neg bool, digits []byte, exp int, ok bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	digits = buf[:0]
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		digits = append(digits, b[i])
		i++
	}
	if i < len(b) && b[i] == '.' {
		i++
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			digits = append(digits, b[i])
			exp--
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		e := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			e = e*10 + int(b[i]-'0')
			if e > 1<<30 {
				return false, nil, 0, false
			}
			i++
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	digits = bytes.TrimLeft(digits, "0")
	if len(digits) == 0 {
		return false, zeroDigits, 0, true
	}
	return neg, digits, exp, true
}

// zeroDigits is splitNumber's digits for zero. Callers only read digits.
var zeroDigits = []byte{'0'}
