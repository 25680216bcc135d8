package cdc

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"
)

// Canonical encoding tags. Each value is a tag byte followed by its body;
// variable-length bodies are prefixed with their length as a uvarint, so
// no two different values encode the same.
const (
	canonNull      = 'z'
	canonFalse     = 'f'
	canonTrue      = 't'
	canonNumber    = 'n' // normalized decimal text, see appendCanonNumber
	canonSpecial   = 'x' // NaN, +Inf, -Inf
	canonString    = 's' // string, Enum, JSON and UUID text
	canonBytes     = 'y'
	canonInstant   = 'i' // time.Time: Unix seconds, nanoseconds
	canonDate      = 'd'
	canonTime      = 'h' // TimeOfDay: nanoseconds since midnight
	canonUnavail   = 'u'
	canonRow       = 'r'
	canonArray     = 'a'
	canonMap       = 'm'
	canonOther     = '?'
	canonNumberRaw = 'N' // a number whose exponent is too large to normalize
)

// AppendCanonical appends a canonical, type-stable byte encoding of v to
// dst. It depends only on the value, not on how it was read: a number
// encodes the same whether it is an int64, a float64, a Decimal, a
// *big.Int or the Number text of a JSON decode without schema (42, 42.0
// and Decimal{4200, 2} are equal); string, Enum, JSON and UUID encode as
// their text; a time.Time as its instant, whatever its zone. A Row keeps
// its field order; a map is encoded with sorted keys. It never panics; an
// unknown type is encoded from its %T and %v.
func AppendCanonical(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, canonNull)
	case bool:
		if x {
			return append(dst, canonTrue)
		}
		return append(dst, canonFalse)
	case string:
		return appendCanonString(dst, canonString, x)
	case Enum:
		return appendCanonString(dst, canonString, string(x))
	case JSON:
		return appendCanonString(dst, canonString, string(x))
	case UUID:
		return appendCanonString(dst, canonString, x.String())
	case []byte:
		return appendCanonBytes(dst, x)
	case int64:
		return appendCanonInt(dst, x)
	case int:
		return appendCanonInt(dst, int64(x))
	case int32:
		return appendCanonInt(dst, int64(x))
	case int16:
		return appendCanonInt(dst, int64(x))
	case int8:
		return appendCanonInt(dst, int64(x))
	case uint64:
		var buf [24]byte
		return appendCanonDigits(dst, false, strconv.AppendUint(buf[:0], x, 10), 0)
	case uint:
		return AppendCanonical(dst, uint64(x))
	case uint32:
		return appendCanonInt(dst, int64(x))
	case uint16:
		return appendCanonInt(dst, int64(x))
	case uint8:
		return appendCanonInt(dst, int64(x))
	case float64:
		return appendCanonFloat(dst, x, 64)
	case float32:
		return appendCanonFloat(dst, float64(x), 32)
	case Number:
		if out, ok := appendCanonInteger(dst, string(x)); ok {
			return out
		}
		return appendCanonNumberText(dst, x)
	case Decimal:
		if x.Unscaled == nil {
			return appendCanonDigits(dst, false, []byte{'0'}, 0)
		}
		return appendCanonBig(dst, x.Unscaled, -int(x.Scale))
	case *big.Int:
		if x == nil {
			return append(dst, canonNull)
		}
		return appendCanonBig(dst, x, 0)
	case time.Time:
		return appendCanonTime(dst, x)
	case LocalDateTime:
		// As the instant its wall clock names in UTC: the encoding a
		// timestamp without time zone had when it was decoded as a
		// time.Time, so IDs stay those of earlier versions.
		t := time.Time(x)
		dst = append(dst, canonInstant)
		dst = binary.AppendVarint(dst, t.Unix())
		return binary.AppendVarint(dst, int64(t.Nanosecond()))
	case Infinity:
		return appendCanonString(dst, canonSpecial, x.String())
	case Date:
		dst = append(dst, canonDate)
		dst = binary.AppendVarint(dst, int64(x.Year))
		dst = binary.AppendVarint(dst, int64(x.Month))
		return binary.AppendVarint(dst, int64(x.Day))
	case TimeOfDay:
		dst = append(dst, canonTime)
		return binary.AppendVarint(dst, int64(x))
	case Unavailable:
		return append(dst, canonUnavail)
	case Row:
		// Not appendCanonRow: a call cycle between the two would make the
		// escape analysis move every caller's dst to the heap.
		dst = append(dst, canonRow)
		dst = binary.AppendUvarint(dst, uint64(len(x)))
		for _, f := range x {
			dst = appendCanonString(dst, canonString, f.Name)
			dst = AppendCanonical(dst, f.Value)
		}
		return dst
	case []any:
		dst = append(dst, canonArray)
		dst = binary.AppendUvarint(dst, uint64(len(x)))
		for _, e := range x {
			dst = AppendCanonical(dst, e)
		}
		return dst
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, canonMap)
		dst = binary.AppendUvarint(dst, uint64(len(x)))
		for _, k := range keys {
			dst = appendCanonString(dst, canonString, k)
			dst = AppendCanonical(dst, x[k])
		}
		return dst
	case ID:
		return appendCanonString(dst, canonString, x.String())
	}
	return appendCanonString(dst, canonOther, fmt.Sprintf("%T:%v", v, v))
}

// AppendCanonicalRow is AppendCanonical(dst, r) for a caller that holds
// a Row: the same bytes, without converting r to an interface (which
// allocates its slice header on the heap).
func AppendCanonicalRow(dst []byte, r Row) []byte { return appendCanonRow(dst, r) }

// AppendCanonicalString is AppendCanonical(dst, s), without converting s
// to an interface.
func AppendCanonicalString(dst []byte, s string) []byte {
	return appendCanonString(dst, canonString, s)
}

func appendCanonRow(dst []byte, r Row) []byte {
	dst = append(dst, canonRow)
	dst = binary.AppendUvarint(dst, uint64(len(r)))
	for i := range r {
		dst = appendCanonString(dst, canonString, r[i].Name)
		// The usual values of a row without a schema first, sparing them
		// AppendCanonical's long type switch.
		switch v := r[i].Value.(type) {
		case string:
			dst = appendCanonString(dst, canonString, v)
		case Number:
			if out, ok := appendCanonInteger(dst, string(v)); ok {
				dst = out
			} else {
				dst = appendCanonNumberText(dst, v)
			}
		default:
			dst = AppendCanonical(dst, v)
		}
	}
	return dst
}

func appendCanonTime(dst []byte, t time.Time) []byte {
	dst = append(dst, canonInstant)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendVarint(dst, int64(t.Nanosecond()))
}

func appendCanonBytes(dst []byte, b []byte) []byte {
	dst = append(dst, canonBytes)
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendCanonString(dst []byte, tag byte, s string) []byte {
	if len(s) < 0x80 { // a one-byte uvarint
		return append(append(dst, tag, byte(len(s))), s...)
	}
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendCanonNumberText encodes any Number; appendCanonInteger is its
// shortcut for integers.
func appendCanonNumberText(dst []byte, x Number) []byte {
	if !validNumber([]byte(x)) {
		return appendCanonString(dst, canonOther, "Number:"+string(x))
	}
	var buf [64]byte
	neg, digits, exp, ok := splitNumber([]byte(x), buf[:])
	if !ok {
		return appendCanonString(dst, canonNumberRaw, string(x))
	}
	return appendCanonDigits(dst, neg, digits, exp)
}

// appendCanonInteger is the canonical encoding of the text of a JSON
// integer (the usual Number): what validNumber, splitNumber and
// appendCanonDigits make of it, in one pass. ok is false, with dst
// unchanged, for anything else: a fraction, an exponent, a leading zero,
// "-0", more than 40 digits, or not a number.
func appendCanonInteger(dst []byte, s string) (out []byte, ok bool) {
	digits := s
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		digits = s[1:]
	}
	n := len(digits)
	if n == 0 || n > 40 || digits[0] == '0' {
		return dst, false // zero, "-0" and leading zeros: the general path
	}
	for i := 0; i < n; i++ {
		if c := digits[i]; c < '0' || c > '9' {
			return dst, false
		}
	}
	// Trailing zeros move into the exponent: 1200 is +12e2.
	z := 0
	for z < n-1 && digits[n-1-z] == '0' {
		z++
	}
	digits = digits[:n-z]
	sign := byte('+')
	if neg {
		sign = '-'
	}
	dst = append(dst, canonNumber)
	if z < 10 {
		dst = append(dst, byte(1+len(digits)+2), sign)
		dst = append(dst, digits...)
		return append(dst, 'e', byte('0'+z)), true
	}
	dst = append(dst, byte(1+len(digits)+3), sign)
	dst = append(dst, digits...)
	return append(dst, 'e', byte('0'+z/10), byte('0'+z%10)), true
}

func appendCanonInt(dst []byte, n int64) []byte {
	var buf [24]byte
	b := strconv.AppendInt(buf[:0], n, 10)
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
	}
	return appendCanonDigits(dst, neg, b, 0)
}

func appendCanonBig(dst []byte, n *big.Int, exp int) []byte {
	var buf [64]byte
	var b []byte
	if n.IsInt64() {
		b = strconv.AppendInt(buf[:0], n.Int64(), 10) // the same text; big.Int's Append allocates
	} else {
		b = n.Append(buf[:0], 10)
	}
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
	}
	return appendCanonDigits(dst, neg, b, exp)
}

func appendCanonFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return appendCanonString(dst, canonSpecial, "NaN")
	case math.IsInf(f, 1):
		return appendCanonString(dst, canonSpecial, "+Inf")
	case math.IsInf(f, -1):
		return appendCanonString(dst, canonSpecial, "-Inf")
	}
	// The shortest decimal that round-trips: the same text a JSON writer
	// produces, so a float64 and the JSON number it was written as agree.
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, 'e', -1, bits)
	var dbuf [32]byte
	neg, digits, exp, _ := splitNumber(b, dbuf[:])
	return appendCanonDigits(dst, neg, digits, exp)
}

// appendCanonDigits writes a number as sign, significant digits with
// trailing zeros moved into the exponent, and the exponent: the value
// digits × 10^exp in one form only. Zero is always "+0e0".
func appendCanonDigits(dst []byte, neg bool, digits []byte, exp int) []byte {
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if len(digits) == 0 || (len(digits) == 1 && digits[0] == '0') {
		digits, exp, neg = []byte{'0'}, 0, false
	}
	var ebuf [24]byte
	e := strconv.AppendInt(ebuf[:0], int64(exp), 10)
	dst = append(dst, canonNumber)
	dst = binary.AppendUvarint(dst, uint64(1+len(digits)+1+len(e)))
	if neg {
		dst = append(dst, '-')
	} else {
		dst = append(dst, '+')
	}
	dst = append(dst, digits...)
	dst = append(dst, 'e')
	return append(dst, e...)
}
