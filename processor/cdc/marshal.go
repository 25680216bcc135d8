package cdc

import "strconv"

// MarshalJSON writes the event as one JSON object. Rows keep their field
// order; values are written by AppendJSONValue, the writer the JSON sink
// uses too.
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
	for _, r := range [...]struct {
		name string
		row  Row
	}{{"key", ev.Key}, {"before", ev.Before}, {"after", ev.After}} {
		b = append(b, `,"`...)
		b = append(b, r.name...)
		b = append(b, `":`...)
		b = AppendJSONValue(b, r.row)
	}
	b = append(b, `,"changed":[`...)
	for i, c := range ev.Changed {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c)
	}
	b = append(b, `],"position":`...)
	b = AppendJSONValue(b, ev.Position)
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
		b = AppendJSONValue(b, ev.OccurredAt)
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
	return AppendJSONValue(nil, r), nil
}

func appendJSONString(b []byte, s string) []byte { return AppendJSONString(b, s) }
