package cdc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"
)

// The text forms of values. AppendJSONValue is the one writer of decoded
// values as JSON: `cdcsync decode` (Event.MarshalJSON), the JSON sink,
// the sink key (through AppendJSONKey) and the MarshalJSON methods of the
// value types all go through it, so the same value is always the same
// text, and a key field reads as it does in the value. docs/sink-format.md documents every
// form; in short:
//
//   - time.Time (an instant): ISO 8601 with its offset ("Z" for UTC),
//     nanoseconds without trailing zeros, e.g. "2026-11-27T09:00:00.5Z".
//   - LocalDateTime (a timestamp without time zone): the same without a
//     zone, e.g. "2026-11-27T09:00:00.5".
//   - Date: "2026-11-27".
//   - Years outside 0000..9999 in ISO 8601 expanded form, with a sign and
//     at least four digits, as Java's ISO formatters (and so Debezium)
//     write them: "+12000-01-01T00:00:00Z", "-0043-03-15" (astronomical
//     years: -0043 is 44 BC).
//   - Infinity: "infinity" and "-infinity", as PostgreSQL and Debezium
//     write them for dates and timestamps.
//   - float64 NaN and infinities: "NaN", "Infinity", "-Infinity" (JSON
//     strings, as Debezium and Jackson write them); finite floats as
//     encoding/json writes them (plain notation from 1e-6 to 1e21, else
//     1e+21 and 1e-7), never Go's "%v" or 'g' form ("1e+06").

// Infinity is PostgreSQL's infinity (+1) or -infinity (-1) of a date or a
// timestamp. Debezium writes it as the ZonedTimestamp strings "infinity"
// and "-infinity", and as fixed out-of-range numbers for timestamps
// without time zone and dates (see the sentinels in intLogical).
type Infinity int8

// The two infinities.
const (
	PosInfinity Infinity = 1
	NegInfinity Infinity = -1
)

// String is "infinity" or "-infinity".
func (i Infinity) String() string {
	if i < 0 {
		return "-infinity"
	}
	return "infinity"
}

// MarshalJSON writes the JSON string "infinity" or "-infinity".
func (i Infinity) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, i), nil }

// LocalDateTime is a date and time without a time zone (PostgreSQL
// timestamp, MySQL DATETIME; Debezium's Timestamp, MicroTimestamp and
// NanoTimestamp and Connect's Timestamp). It holds the wall clock as a
// time.Time in UTC: only its fields are meaningful, never its zone.
type LocalDateTime time.Time

// LocalDateTimeOf takes t's wall clock, whatever its zone.
func LocalDateTimeOf(t time.Time) LocalDateTime {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return LocalDateTime(time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC))
}

// Time returns the wall clock as a time.Time in UTC.
func (l LocalDateTime) Time() time.Time { return time.Time(l) }

// String is the ISO 8601 local date-time, e.g. "2026-11-27T09:00:00.5".
func (l LocalDateTime) String() string {
	return string(appendDateTime(nil, time.Time(l), false))
}

// MarshalJSON writes the local date-time as a JSON string.
func (l LocalDateTime) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, l), nil }

// FormatTime is the text of an instant: ISO 8601 with its offset and
// expanded years, e.g. "2026-11-27T09:00:00Z", "+12000-01-01T00:00:00Z".
func FormatTime(t time.Time) string { return string(appendDateTime(nil, t, true)) }

// appendYear writes an ISO 8601 year: four digits for 0..9999, else a
// sign and at least four digits.
func appendYear(dst []byte, y int) []byte {
	switch {
	case y > 9999:
		dst = append(dst, '+')
	case y < 0:
		dst = append(dst, '-')
		y = -y
	}
	for d := 1000; d > 1 && y < d; d /= 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(y), 10)
}

func append2(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

// appendDate writes y-mm-dd.
func appendDate(dst []byte, y int, m time.Month, d int) []byte {
	dst = appendYear(dst, y)
	dst = append(dst, '-')
	dst = append2(dst, int(m))
	dst = append(dst, '-')
	return append2(dst, d)
}

// appendDateTime writes t as ISO 8601: date, 'T', clock, the fraction of
// a second without trailing zeros, and with zone the offset (Z for UTC).
func appendDateTime(dst []byte, t time.Time, zone bool) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = appendDate(dst, y, mo, d)
	dst = append(dst, 'T')
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, mi)
	dst = append(dst, ':')
	dst = append2(dst, s)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	if !zone {
		return dst
	}
	_, off := t.Zone()
	if off == 0 {
		return append(dst, 'Z')
	}
	if off < 0 {
		dst = append(dst, '-')
		off = -off
	} else {
		dst = append(dst, '+')
	}
	dst = append2(dst, off/3600)
	dst = append(dst, ':')
	dst = append2(dst, off/60%60)
	if off%60 != 0 {
		dst = append(dst, ':')
		dst = append2(dst, off%60)
	}
	return dst
}

// AppendFloat writes f as JSON: encoding/json's form for finite values
// (plain notation from 1e-6 to 1e21, else 1e+21 and 1e-7), and the
// strings "NaN", "Infinity" and "-Infinity" otherwise. bits is 32 for a
// float32, so its shortest form is used.
func AppendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// AppendJSONValue appends the JSON form of one decoded value (see the
// package documentation for the types). A nil Row is null. It never
// fails: a value of a type the decoder does not produce is written as
// encoding/json writes it (without HTML escaping), or null if
// encoding/json cannot write it either. The sink key needs to know about
// the latter and uses AppendJSONKey.
func AppendJSONValue(b []byte, v any) []byte {
	b, _ = appendJSON(b, v, false)
	return b
}

// AppendJSONTime is AppendJSONValue(b, t) for a caller that holds a
// time.Time: the same bytes, without converting t to an interface (which
// allocates a copy of it).
func AppendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = appendDateTime(b, t, true)
	return append(b, '"')
}

// AppendJSONKey is AppendJSONValue for a value that identifies a record
// (the sink key): the same bytes, but a value encoding/json cannot write
// (a func, a channel, a map with non-string keys; never a decoded value)
// is an error instead of null, because null would give distinct values
// one key. On error b is returned unchanged.
func AppendJSONKey(b []byte, v any) ([]byte, error) {
	out, err := appendJSON(b, v, true)
	if err != nil {
		return b, err
	}
	return out, nil
}

// appendJSON writes v. An unwritable value is null, or with strict the
// error that stops the whole value.
func appendJSON(b []byte, v any, strict bool) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case Row:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '{')
		for i, f := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f.Name)
			b = append(b, ':')
			if b, err = appendJSON(b, f.Value, strict); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e, strict); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			if b, err = appendJSON(b, x[k], strict); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case string:
		return appendJSONString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		return AppendFloat(b, x, 64), nil
	case float32:
		return AppendFloat(b, float64(x), 32), nil
	case Number:
		if !validNumber([]byte(x)) {
			return appendJSONString(b, string(x)), nil
		}
		return append(b, x...), nil
	case []byte:
		// nil is the empty byte string (the Avro decoder's empty bytes), not
		// SQL NULL, which is the untyped nil above.
		return appendJSONBytes(b, x), nil
	case time.Time:
		b = append(b, '"')
		b = appendDateTime(b, x, true)
		return append(b, '"'), nil
	case LocalDateTime:
		b = append(b, '"')
		b = appendDateTime(b, time.Time(x), false)
		return append(b, '"'), nil
	case Date:
		b = append(b, '"')
		b = appendDate(b, x.Year, x.Month, x.Day)
		return append(b, '"'), nil
	case Infinity:
		if x < 0 {
			return append(b, `"-infinity"`...), nil
		}
		return append(b, `"infinity"`...), nil
	case TimeOfDay:
		return appendJSONString(b, x.String()), nil
	case Decimal:
		return appendDecimal(b, x), nil
	case *big.Int:
		if x == nil {
			return append(b, "null"...), nil
		}
		return x.Append(b, 10), nil
	case Enum:
		return appendJSONString(b, string(x)), nil
	case JSON:
		if x == "" || !json.Valid([]byte(x)) {
			return appendJSONString(b, string(x)), nil
		}
		return append(b, x...), nil
	case UUID:
		return appendJSONString(b, x.String()), nil
	case Unavailable:
		return appendJSONString(b, UnavailablePlaceholder), nil
	}
	// Not a decoded value: encoding/json's text, with strings as above.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		if strict {
			return b, err
		}
		return append(b, "null"...), nil
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...), nil
}

func appendJSONBytes(b []byte, p []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// parseZonedTimestamp parses io.debezium.time.ZonedTimestamp text:
// RFC 3339 with an offset, ISO 8601 expanded years ("+12000-01-01T…",
// "-0043-03-15T…", as Debezium writes years outside 0000..9999), or
// "infinity" / "-infinity". It returns a time.Time or an Infinity.
func parseZonedTimestamp(b []byte) (any, bool) {
	s := unsafeString(b)
	switch s {
	case "infinity", "+infinity":
		return PosInfinity, true
	case "-infinity":
		return NegInfinity, true
	}
	if len(s) == 0 || (s[0] != '+' && s[0] != '-') {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	// Expanded year: a sign, four or more digits, then -MM-DD…. Parse the
	// rest with a stand-in year of the same leap-ness, then put the year
	// back.
	i := 1
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i-1 < 4 || i-1 > 10 || i >= len(s) || s[i] != '-' {
		return nil, false
	}
	y, err := strconv.Atoi(s[1:i])
	if err != nil {
		return nil, false
	}
	if s[0] == '-' {
		y = -y
	}
	proxy := "2001"
	if isLeap(y) {
		proxy = "2000"
	}
	t, err := time.Parse(time.RFC3339Nano, proxy+s[i:])
	if err != nil {
		return nil, false
	}
	h, mi, sec := t.Clock()
	return time.Date(y, t.Month(), t.Day(), h, mi, sec, t.Nanosecond(), t.Location()), true
}

// isLeap reports whether y is a leap year of the proleptic Gregorian
// calendar (astronomical numbering: year 0 is 1 BC, a leap year).
func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }
