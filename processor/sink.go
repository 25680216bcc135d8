package processor

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Sink record format (JSON). One object per event:
//
//	{"id":"<32 hex>","type":"contacts.updated","op":"u","entity":"contacts",
//	 "source_system":"erp","key":{...primary key...},
//	 "fields":{...owned, changed fields: after values...},
//	 "before":{...the same fields' before values, when known...},
//	 "position":{...source position...},"occurred_at":"RFC3339Nano",
//	 "schema_version":2}
//
// A delete carries no "fields"; op "t" and "m" carry neither key fields
// nor values beyond what the source gave. Values use the JSON forms of the
// cdc value types: exact numbers, ISO dates and times, embedded JSON.
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
		dst = append(dst, `,"occurred_at":"`...)
		dst = ev.OccurredAt.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
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
	for _, name := range fields {
		v, ok := row.Get(name)
		if !ok {
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

// appendJSONValue writes v as JSON. Common types are written directly;
// anything else goes through encoding/json.
func appendJSONValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case int32:
		return strconv.AppendInt(dst, int64(x), 10)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return appendString(dst, strconv.FormatFloat(x, 'g', -1, 64))
		}
		return strconv.AppendFloat(dst, x, 'g', -1, 64)
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return appendString(dst, strconv.FormatFloat(float64(x), 'g', -1, 32))
		}
		return strconv.AppendFloat(dst, float64(x), 'g', -1, 32)
	case string:
		return appendString(dst, x)
	case cdc.Number:
		return append(dst, x...)
	case cdc.Decimal:
		return append(dst, x.String()...)
	case cdc.Enum:
		return appendString(dst, string(x))
	case cdc.JSON:
		if x == "" || !json.Valid([]byte(x)) {
			return appendString(dst, string(x))
		}
		return append(dst, x...)
	case time.Time:
		dst = append(dst, '"')
		dst = x.AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	case cdc.Date:
		return appendString(dst, x.String())
	case cdc.TimeOfDay:
		return appendString(dst, x.String())
	case cdc.UUID:
		return appendString(dst, x.String())
	case cdc.Unavailable:
		return appendString(dst, cdc.UnavailablePlaceholder)
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"')
	case cdc.Row:
		return appendRow(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONValue(dst, e)
		}
		return append(dst, ']')
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// appendString writes s as a JSON string, as encoding/json does with
// SetEscapeHTML(false).
func appendString(dst []byte, s string) []byte { return cdc.AppendJSONString(dst, s, false) }
