package processor

import (
	"encoding/base64"
	"strconv"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Sink record format (JSON). One object per event:
//
//	{"id":"<32 hex>","type":"contacts.updated","op":"u","entity":"contacts",
//	 "source_system":"erp","key":{...primary key...},
//	 "fields":{...owned, changed fields: after values...},
//	 "before":{...the same fields' before values, when known...},
//	 "position":{...source position...},"occurred_at":"<ISO 8601, UTC>",
//	 "schema_version":2}
//
// A delete carries no "fields"; op "t" and "m" carry neither key fields
// nor values beyond what the source gave. Values use the JSON forms of the
// cdc value types (cdc.AppendJSONValue): exact numbers, ISO dates and
// times, embedded JSON. docs/sink-format.md is the reference.
func appendSinkValue(dst []byte, ev *cdc.Event, fields []string) []byte {
	dst = append(dst, `{"id":"`...)
	dst = appendHexID(dst, ev.ID)
	dst = append(dst, `","type":`...)
	dst = appendString(dst, ev.Type)
	dst = append(dst, `,"op":"`...)
	dst = append(dst, byte(ev.Op))
	dst = append(dst, `","entity":`...)
	dst = appendString(dst, ev.Entity)
	dst = append(dst, `,"source_system":`...)
	dst = appendString(dst, ev.SourceSystem)
	dst = append(dst, `,"key":`...)
	dst = appendRow(dst, ev.Key)
	if ev.Op != cdc.OpDelete && ev.After != nil {
		dst = append(dst, `,"fields":`...)
		dst = appendProjected(dst, ev.After, fields)
	}
	if ev.Before != nil && len(fields) > 0 {
		dst = append(dst, `,"before":`...)
		dst = appendProjected(dst, ev.Before, fields)
	}
	if len(ev.Position) > 0 {
		dst = append(dst, `,"position":`...)
		dst = appendRow(dst, ev.Position)
	}
	if !ev.OccurredAt.IsZero() {
		dst = append(dst, `,"occurred_at":`...)
		dst = cdc.AppendJSONTime(dst, ev.OccurredAt.UTC())
	}
	if ev.Schema.Version != 0 {
		dst = append(dst, `,"schema_version":`...)
		dst = strconv.AppendInt(dst, int64(ev.Schema.Version), 10)
	}
	if ev.Message != nil {
		dst = append(dst, `,"message":{"prefix":`...)
		dst = appendString(dst, ev.Message.Prefix)
		dst = append(dst, `,"content":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, ev.Message.Content)
		dst = append(dst, `"}`...)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

func appendHexID(dst []byte, id cdc.ID) []byte {
	for _, b := range id {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&15])
	}
	return dst
}

// appendProjected writes the named fields of row, in the order of fields,
// skipping names the row lacks.
func appendProjected(dst []byte, row cdc.Row, fields []string) []byte {
	dst = append(dst, '{')
	first := true
	for i, name := range fields {
		v, ok := row.Get(name)
		if !ok || repeated(fields, i) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, name)
		dst = append(dst, ':')
		dst = appendJSONValue(dst, v)
	}
	return append(dst, '}')
}

// repeated reports whether fields[i] occurs before i: an object never
// repeats a key.
func repeated(fields []string, i int) bool {
	for _, f := range fields[:i] {
		if f == fields[i] {
			return true
		}
	}
	return false
}

func appendRow(dst []byte, row cdc.Row) []byte {
	dst = append(dst, '{')
	for i := range row {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, row[i].Name)
		dst = append(dst, ':')
		dst = appendJSONValue(dst, row[i].Value)
	}
	return append(dst, '}')
}

// appendJSONValue writes v as JSON with cdc.AppendJSONValue, the writer
// `cdcsync decode` uses too, so a value has the same text in both.
func appendJSONValue(dst []byte, v any) []byte { return cdc.AppendJSONValue(dst, v) }

// appendString writes s as a JSON string, as encoding/json does with
// SetEscapeHTML(false).
func appendString(dst []byte, s string) []byte { return cdc.AppendJSONString(dst, s) }
