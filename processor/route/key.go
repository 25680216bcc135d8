package route

import "github.com/cdcsync/cdcsync/processor/cdc"

// Key returns the sink record key for ev: a JSON object of fields, in the
// given order, e.g. {"contact_id":42}. Each value comes from ev.After,
// else ev.Before, else ev.Key; a field present with a nil value is written
// as null. Values have the text the sink record gives them
// (cdc.AppendJSONValue, docs/sink-format.md): the key text picks the
// partition (murmur2), so it must be one function of the value. Strings
// are not HTML-escaped, as Jackson writes them.
//
// A field in none of the rows is a *KeyError wrapping ErrMissingKeyField;
// a value no JSON can hold (never a decoded value) one wrapping
// ErrUnencodableKey.
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

// appendValue writes v as the sink writes it (cdc.AppendJSONKey, the
// strict form of the writer of sink values), so a key field has the text
// its value has in the sink record.
func appendValue(dst []byte, v any) ([]byte, error) { return cdc.AppendJSONKey(dst, v) }

// appendString writes s as the sink writes strings, so a field name has
// the same text in the key and in the value.
func appendString(dst []byte, s string) []byte { return cdc.AppendJSONString(dst, s) }
