package cdc

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"
)

// MarshalJSON writes the event as one JSON object. Rows keep their field
// order; values are written by their own MarshalJSON, time.Time as
// RFC 3339 with nanoseconds, []byte as base64.
func (ev *Event) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 1024)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, ev.ID.String())
	b = append(b, `,"type":`...)
	b = appendJSONString(b, ev.Type)
	b = append(b, `,"op":`...)
	if ev.Op == 0 {
		b = append(b, `""`...)
	} else {
		b = appendJSONString(b, ev.Op.String())
	}
	b = append(b, `,"entity":`...)
	b = appendJSONString(b, ev.Entity)
	b = append(b, `,"source_system":`...)
	b = appendJSONString(b, ev.SourceSystem)
	s := &ev.Source
	b = append(b, `,"source":{"connector":`...)
	b = appendJSONString(b, s.Connector)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, s.Name)
	b = append(b, `,"db":`...)
	b = appendJSONString(b, s.Database)
	b = append(b, `,"schema":`...)
	b = appendJSONString(b, s.Schema)
	b = append(b, `,"table":`...)
	b = appendJSONString(b, s.Table)
	b = append(b, `,"snapshot":`...)
	b = appendJSONString(b, s.Snapshot)
	b = append(b, '}')
	var err error
	for _, r := range [...]struct {
		name string
		row  Row
	}{{"key", ev.Key}, {"before", ev.Before}, {"after", ev.After}} {
		b = append(b, `,"`...)
		b = append(b, r.name...)
		b = append(b, `":`...)
		if b, err = appendJSONValue(b, r.row); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"changed":[`...)
	for i, c := range ev.Changed {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c)
	}
	b = append(b, `],"position":`...)
	if b, err = appendJSONValue(b, ev.Position); err != nil {
		return nil, err
	}
	b = append(b, `,"schema":{"name":`...)
	b = appendJSONString(b, ev.Schema.Name)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(ev.Schema.Version), 10)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, int64(ev.Schema.ID), 10)
	b = append(b, `,"subject":`...)
	b = appendJSONString(b, ev.Schema.Subject)
	b = append(b, `},"occurred_at":`...)
	if ev.OccurredAt.IsZero() {
		b = append(b, "null"...)
	} else {
		b = appendJSONTime(b, ev.OccurredAt)
	}
	b = append(b, `,"tombstone":`...)
	b = strconv.AppendBool(b, ev.Tombstone)
	b = append(b, `,"transaction":`...)
	if tx := ev.Transaction; tx == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"id":`...)
		b = appendJSONString(b, tx.ID)
		b = append(b, `,"total_order":`...)
		b = strconv.AppendInt(b, tx.TotalOrder, 10)
		b = append(b, `,"data_collection_order":`...)
		b = strconv.AppendInt(b, tx.DataCollectionOrder, 10)
		b = append(b, '}')
	}
	b = append(b, `,"message":`...)
	if m := ev.Message; m == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"prefix":`...)
		b = appendJSONString(b, m.Prefix)
		b = append(b, `,"content":`...)
		b = appendJSONBytes(b, m.Content)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// MarshalJSON writes the row as a JSON object in field order. A nil Row is
// null.
func (r Row) MarshalJSON() ([]byte, error) {
	return appendJSONValue(nil, r)
}

func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		// Outside RFC 3339: written as a quoted Go time string instead.
		return appendJSONString(b, t.String())
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendJSONBytes(b []byte, p []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// appendJSONValue writes one decoded value.
func appendJSONValue(b []byte, v any) ([]byte, error) {
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
			if b, err = appendJSONValue(b, f.Value); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSONValue(b, e); err != nil {
				return nil, err
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
			if b, err = appendJSONValue(b, x[k]); err != nil {
				return nil, err
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
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return appendJSONString(b, strconv.FormatFloat(x, 'g', -1, 64)), nil
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case Number:
		if !validNumber([]byte(x)) {
			return appendJSONString(b, string(x)), nil
		}
		return append(b, x...), nil
	case []byte:
		return appendJSONBytes(b, x), nil
	case time.Time:
		return appendJSONTime(b, x), nil
	case Decimal:
		return append(b, x.String()...), nil
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
	case json.Marshaler:
		p, err := x.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return append(b, p...), nil
	}
	p, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, p...), nil
}

func appendJSONString(b []byte, s string) []byte { return AppendJSONString(b, s, false) }
