package pgapply

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// kind is how a JSON value converts to a column's input text.
type kind int

const (
	kindText     kind = iota // any type that reads a string's content: text, numeric, ints, floats, uuid, bool, enums, time…
	kindBytea                // base64 in the sink -> \x hex
	kindDate                 // date, timestamp, timestamptz: ISO 8601 expanded years -> BC notation
	kindJSON                 // json, jsonb: the JSON text itself
	kindInterval             // a number is Debezium's microseconds
)

func kindOf(baseType string) kind {
	switch baseType {
	case "bytea":
		return kindBytea
	case "date", "timestamp without time zone", "timestamp with time zone":
		return kindDate
	case "json", "jsonb":
		return kindJSON
	case "interval":
		return kindInterval
	}
	return kindText
}

// unavailable is Debezium's placeholder for an unchanged TOASTed column:
// not a value, so the column is left alone.
const unavailable = `"__debezium_unavailable_value"`

// toText converts one JSON value, as the sink wrote it (cdc.AppendJSONValue),
// to the input text of a column: nil is SQL NULL. PostgreSQL's input function
// of the column type then reads the text, so numerics keep every digit and
// timestamps every fraction. It fails only on a value whose JSON form cannot
// be right for the column (bytea that is not base64, a scalar for an array);
// a text the type refuses fails in the database (SQLSTATE 22xxx).
func (c *column) toText(raw json.RawMessage) (*string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if c.array {
		if raw[0] == '"' {
			// A string for an array column: PostgreSQL's array literal.
			s, err := unquote(raw)
			return &s, err
		}
		if raw[0] != '[' {
			return nil, fmt.Errorf("want a JSON array for %s, got %s", c.typ, abbrev(raw))
		}
		var b strings.Builder
		if err := appendArray(&b, raw, c.elem); err != nil {
			return nil, err
		}
		s := b.String()
		return &s, nil
	}
	s, err := scalarText(raw, c.elem)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// scalarText converts a non-null JSON value to input text of kind k.
func scalarText(raw json.RawMessage, k kind) (string, error) {
	switch k {
	case kindJSON:
		return string(raw), nil
	case kindBytea:
		if raw[0] != '"' {
			return "", fmt.Errorf("want base64 text for bytea, got %s", abbrev(raw))
		}
		s, err := unquote(raw)
		if err != nil {
			return "", err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("bytea value is not base64: %v", err)
		}
		return `\x` + hex.EncodeToString(b), nil
	case kindDate:
		if raw[0] == '"' {
			s, err := unquote(raw)
			if err != nil {
				return "", err
			}
			return expandedYear(s), nil
		}
	case kindInterval:
		if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
			// Debezium's MicroDuration: microseconds.
			if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
				return "", fmt.Errorf("interval microseconds %s: %v", abbrev(raw), err)
			}
			return string(raw) + " microseconds", nil
		}
	}
	switch raw[0] {
	case '"':
		return unquote(raw)
	case '{', '[':
		// A structure into a scalar column (text, say): its JSON text.
		return string(raw), nil
	}
	// true, false, a number: its text as written, exact digits.
	return string(raw), nil
}

// appendArray writes a JSON array as a PostgreSQL array literal
// ({1,2,NULL}, {{"a","b"},{"c","d"}}), each element converted as kind k.
func appendArray(b *strings.Builder, raw json.RawMessage, k kind) error {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return fmt.Errorf("array %s: %v", abbrev(raw), err)
	}
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		e = bytes.TrimSpace(e)
		switch {
		case string(e) == "null":
			b.WriteString("NULL")
		case e[0] == '[' && k != kindJSON:
			if err := appendArray(b, e, k); err != nil {
				return err
			}
		default:
			s, err := scalarText(e, k)
			if err != nil {
				return err
			}
			b.WriteByte('"')
			for _, r := range []byte(s) {
				if r == '"' || r == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(r)
			}
			b.WriteByte('"')
		}
	}
	b.WriteByte('}')
	return nil
}

// expandedYear rewrites ISO 8601's expanded, astronomical years, which
// PostgreSQL does not read, to its own notation: "+12000-01-01" ->
// "12000-01-01", "-0043-03-15T12:00:00Z" -> "0044-03-15T12:00:00Z BC",
// "0000-01-01" -> "0001-01-01 BC". Other text is returned unchanged.
func expandedYear(s string) string {
	sign := 1
	t := s
	switch {
	case strings.HasPrefix(t, "+"):
		t = t[1:]
	case strings.HasPrefix(t, "-"):
		sign = -1
		t = t[1:]
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i < 4 || i >= len(t) || t[i] != '-' {
		return s
	}
	y, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return s
	}
	y *= int64(sign)
	if y >= 1 {
		return fmt.Sprintf("%04d%s", y, t[i:])
	}
	return fmt.Sprintf("%04d%s BC", 1-y, t[i:])
}

func unquote(raw json.RawMessage) (string, error) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 && bytes.IndexByte(raw[1:n-1], '"') < 0 {
		return string(raw[1 : n-1]), nil // no escapes: the text as it is
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("string %s: %v", abbrev(raw), err)
	}
	return s, nil
}

// abbrev shortens a value for an error message.
func abbrev(raw []byte) string {
	if len(raw) > 64 {
		return string(raw[:61]) + "..."
	}
	return string(raw)
}
