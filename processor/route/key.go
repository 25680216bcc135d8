package route

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Key returns the sink record key for ev: a JSON object of fields, in the
// given order, e.g. {"contact_id":42}. Each value comes from ev.After,
// else ev.Before, else ev.Key; a field present with a nil value is written
// as null. The bytes are those encoding/json would produce.
//
// A field in none of the rows is a *KeyError wrapping ErrMissingKeyField.
func Key(ev *cdc.Event, fields []string) ([]byte, error) {
	return AppendKey(make([]byte, 0, 16+16*len(fields)), ev, fields)
}

// AppendKey is Key appending to dst, for callers that reuse a buffer. On
// error it returns dst unchanged.
func AppendKey(dst []byte, ev *cdc.Event, fields []string) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '{')
	for i, name := range fields {
		v, ok := lookup(ev, name)
		if !ok {
			return dst[:start], &KeyError{Entity: ev.Entity, Field: name, Err: ErrMissingKeyField}
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, name)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, v); err != nil {
			return dst[:start], &KeyError{Entity: ev.Entity, Field: name, Err: ErrUnencodableKey, Cause: err}
		}
	}
	return append(dst, '}'), nil
}

func lookup(ev *cdc.Event, name string) (any, bool) {
	if v, ok := ev.After.Get(name); ok {
		return v, true
	}
	if v, ok := ev.Before.Get(name); ok {
		return v, true
	}
	return ev.Key.Get(name)
}

// appendValue writes v as encoding/json would. The common key types are
// written directly; anything else goes through json.Marshal.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case string:
		return appendString(dst, x), nil
	case cdc.Number:
		if x == "" {
			break // let encoding/json report the invalid empty number
		}
		return append(dst, x...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case float64:
		return appendFloat(dst, x)
	case cdc.Enum:
		return appendString(dst, string(x)), nil
	case cdc.UUID:
		return append(append(append(dst, '"'), x.String()...), '"'), nil
	case cdc.Decimal:
		return append(dst, x.String()...), nil
	case cdc.Date:
		return append(append(append(dst, '"'), x.String()...), '"'), nil
	case []byte:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"'), nil
	case time.Time:
		// encoding/json refuses years outside 0..9999 and writes
		// sub-minute zone offsets differently; leave those to it.
		if _, off := x.Zone(); off%60 == 0 && x.Year() >= 0 && x.Year() <= 9999 {
			dst = append(dst, '"')
			dst = x.AppendFormat(dst, time.RFC3339Nano)
			return append(dst, '"'), nil
		}
		if x.Year() < 0 || x.Year() > 9999 {
			// Debezium's "+12000-…" and BC instants: the sink's own
			// text, which encoding/json refuses.
			return append(append(append(dst, '"'), cdc.FormatTime(x)...), '"'), nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendFloat follows encoding/json's float64 encoder: 'f' format except
// for very small or large magnitudes, and no NaN or Inf.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// appendString writes s as encoding/json does by default (HTML-safe), so
// a key is the same bytes whoever encodes it.
func appendString(dst []byte, s string) []byte { return cdc.AppendJSONString(dst, s, true) }
