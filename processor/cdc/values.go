package cdc

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Number is the exact text of a JSON number decoded without a schema.
type Number string

// MarshalJSON writes the number text unchanged (a string if it is not a
// JSON number).
func (n Number) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, n), nil }

// Decimal is an exact decimal: Unscaled × 10^-Scale.
type Decimal struct {
	Unscaled *big.Int
	Scale    int32
}

// String formats the decimal in plain notation, e.g. "-12.50".
func (d Decimal) String() string {
	if d.Unscaled == nil {
		return "0"
	}
	s := d.Unscaled.String()
	if d.Scale <= 0 {
		if d.Scale < 0 && d.Unscaled.Sign() != 0 {
			s += strings.Repeat("0", int(-d.Scale))
		}
		return s
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	if len(s) <= int(d.Scale) {
		s = strings.Repeat("0", int(d.Scale)-len(s)+1) + s
	}
	p := len(s) - int(d.Scale)
	s = s[:p] + "." + s[p:]
	if neg {
		s = "-" + s
	}
	return s
}

// appendDecimal appends d.String(), without allocating when the unscaled
// value fits an int64.
func appendDecimal(b []byte, d Decimal) []byte {
	if d.Unscaled == nil {
		return append(b, '0')
	}
	var tmp [64]byte
	var s []byte
	if d.Unscaled.IsInt64() {
		s = strconv.AppendInt(tmp[:0], d.Unscaled.Int64(), 10) // big.Int's Append allocates
	} else {
		s = d.Unscaled.Append(tmp[:0], 10)
	}
	if d.Scale <= 0 {
		b = append(b, s...)
		if d.Scale < 0 && d.Unscaled.Sign() != 0 {
			for range -int(d.Scale) {
				b = append(b, '0')
			}
		}
		return b
	}
	if s[0] == '-' {
		b = append(b, '-')
		s = s[1:]
	}
	scale := int(d.Scale)
	if len(s) <= scale {
		b = append(b, '0', '.')
		for range scale - len(s) {
			b = append(b, '0')
		}
		return append(b, s...)
	}
	p := len(s) - scale
	b = append(b, s[:p]...)
	b = append(b, '.')
	return append(b, s[p:]...)
}

// MarshalJSON writes the decimal as a JSON number in plain notation, exact.
func (d Decimal) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, d), nil }

// Date is a calendar date without a zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateFromEpochDays converts days since 1970-01-01 (proleptic Gregorian
// calendar, any int32 day count).
func DateFromEpochDays(days int64) Date {
	t := time.Unix(days*86400, 0).UTC()
	return Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}
}

// EpochDays is the number of days since 1970-01-01.
func (d Date) EpochDays() int64 {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// String is the ISO 8601 form, 2006-01-02, with expanded years outside
// 0000..9999: +12000-01-01, -0043-03-15.
func (d Date) String() string { return string(appendDate(nil, d.Year, d.Month, d.Day)) }

// MarshalJSON writes the ISO 8601 date as a JSON string.
func (d Date) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, d), nil }

// TimeOfDay is a wall-clock time as the duration since midnight.
type TimeOfDay time.Duration

// String is 15:04:05 with a fractional part when there is one.
func (t TimeOfDay) String() string {
	d := time.Duration(t)
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	s := d / time.Second
	d -= s * time.Second
	out := fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	if d != 0 {
		out += strings.TrimRight(fmt.Sprintf(".%09d", int64(d)), "0")
	}
	return out
}

// MarshalJSON writes the time as a JSON string.
func (t TimeOfDay) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, t), nil }

// JSON is the raw text of an io.debezium.data.Json value.
type JSON string

// MarshalJSON embeds the JSON text as is; invalid text is written as a string.
func (j JSON) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, j), nil }

// UUID is an io.debezium.data.Uuid value.
type UUID [16]byte

// ParseUUID parses the canonical 36-character form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("invalid uuid %q", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("invalid uuid %q", s)
	}
	return u, nil
}

// String is the canonical lower-case form.
func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// MarshalJSON writes the canonical form as a JSON string.
func (u UUID) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, u), nil }

// Enum is an io.debezium.data.Enum value.
type Enum string

// Unavailable marks a column Debezium could not read, typically an
// unchanged TOASTed column in PostgreSQL. It is never "changed".
type Unavailable struct{}

// UnavailablePlaceholder is the text Debezium writes for an unavailable value.
const UnavailablePlaceholder = "__debezium_unavailable_value"

// MarshalJSON writes the placeholder text, so downstream tools that know
// Debezium recognise it.
func (u Unavailable) MarshalJSON() ([]byte, error) { return AppendJSONValue(nil, u), nil }
