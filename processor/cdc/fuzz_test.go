package cdc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// checkDecode decodes and checks the properties every input must have: a
// *DecodeError or an event that marshals to valid JSON and decodes to the
// same ID again.
func checkDecode(t *testing.T, d *JSONDecoder, topic string, key, value []byte) {
	ev, err := d.Decode(topic, key, value)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
		}
		if de.Part != "key" && de.Part != "value" || de.Err == nil || de.Reason == "" {
			t.Fatalf("incomplete error %#v", de)
		}
		return
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if !json.Valid(out) {
		t.Fatalf("invalid JSON output: %s", out)
	}
	again, err := d.Decode(topic, key, value)
	if err != nil || again.ID != ev.ID {
		t.Fatalf("second decode: %v, ID %v vs %v", err, again, ev.ID)
	}
}

func fuzzDecoders() []*JSONDecoder {
	return []*JSONDecoder{
		NewJSONDecoder(Options{}),
		NewJSONDecoder(Options{IDMode: IDContent}),
		NewJSONDecoder(Options{IDMode: IDField, IDField: "id"}),
	}
}

func FuzzDecodeValue(f *testing.F) {
	for _, r := range loadRecords(f) {
		f.Add(r.topic, r.value)
	}
	f.Add("a.b.c", []byte(`{"schema":null,"payload":{"op":"c","source":{},"after":{"x":1e999999999999}}}`))
	for _, v := range hostileValues {
		f.Add("a.b", []byte(v))
	}
	ds := fuzzDecoders()
	f.Fuzz(func(t *testing.T, topic string, value []byte) {
		for _, d := range ds {
			checkDecode(t, d, topic, []byte(`{"id":1}`), value)
		}
	})
}

func FuzzDecodeKey(f *testing.F) {
	recs := loadRecords(f)
	for _, r := range recs {
		if r.key != nil {
			f.Add(r.key)
		}
	}
	f.Add([]byte(`42`))
	f.Add([]byte(`"abc"`))
	value := loadRecord(f, "pg_update.env").value
	ds := fuzzDecoders()
	f.Fuzz(func(t *testing.T, key []byte) {
		for _, d := range ds {
			checkDecode(t, d, "pg.public.customers", key, value)
			checkDecode(t, d, "pg.public.customers", key, nil)
		}
	})
}

// hostileValues are inputs meant to make a decoder allocate without bound,
// recurse deeply or divide by nothing.
var hostileValues = []string{
	// Duplicate keys, malformed op sides, JSON null, a BOM (issue 9).
	`{"op":"c","op":"u","source":{"table":"a","table":"b"},"after":{"x":1,"y":2,"x":3},"after":{"x":4,"x":5}}`,
	`{"op":"c","source":{},"before":{"x":1}}`,
	`{"op":"u","source":{},"before":null,"after":null}`,
	`{"op":"d","source":{},"after":{"x":1}}`,
	`null`,
	`{"schema":null,"payload":null}`,
	"\xef\xbb\xbf{\"op\":\"c\"}",
	`{"op":"c","source":{"connector":"mongodb"},"after":"{\"a\":1,\"a\":{\"$oid\":\"x\"},\"a\":[1]}"}`,
	// Values PostgreSQL allows that Debezium writes in forms Go does not
	// parse: infinities, expanded and BC years, sentinels (issue 9).
	`{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"string","name":"io.debezium.time.ZonedTimestamp","field":"z"},{"type":"int64","name":"io.debezium.time.MicroTimestamp","field":"t"},{"type":"int32","name":"io.debezium.time.Date","field":"d"}],"field":"after"}]},"payload":{"op":"c","source":{},"after":{"z":"+9999999999-12-31T23:59:59.999999999-23:59","t":-9223372036832400000,"d":-2147472691}}}`,
	`{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"string","name":"io.debezium.time.ZonedTimestamp","field":"z"}],"field":"after"}]},"payload":{"op":"c","source":{},"after":{"z":"-infinity"}}}`,
	`{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"string","name":"io.debezium.time.ZonedTimestamp","field":"z"}],"field":"after"}]},"payload":{"op":"c","source":{},"after":{"z":"-0000-02-29T00:00:00Z"}}}`,
	// A scale of 2^31 would make Decimal.String write two billion zeros.
	`{"schema":{"type":"struct","fields":[{"type":"struct","name":"io.debezium.data.VariableScaleDecimal","fields":[],"field":"after"}]},"payload":{"op":"c","source":{},"after":{"scale":2147483647,"value":"AQ=="}}}`,
	`{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"999999999"},"field":"p"}],"field":"after"}]},"payload":{"op":"c","source":{},"after":{"p":"AQ=="}}}`,
	`{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","field":"p"}],"field":"after"}]},"payload":{"op":"c","source":{},"after":{"p":1e999999999}}}`,
	`{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int32","name":"io.debezium.time.Date","field":"d"}],"field":"after"}]},"payload":{"op":"c","source":{},"after":{"d":2147483647}}}`,
	`{"op":"c","source":{},"after":{"a":` + strings.Repeat("[", 290) + strings.Repeat("]", 290) + `}}`,
	`{"op":"c","source":{"connector":"mongodb"},"after":"{\"_id\":{\"$date\":{\"$numberLong\":\"99999999999999999999\"}}}"}`,
}

// TestHostileValues: each hostile input decodes or fails with a
// *DecodeError, quickly and without panicking.
func TestHostileValues(t *testing.T) {
	for _, d := range fuzzDecoders() {
		for _, v := range hostileValues {
			checkDecode(t, d, "a.b", nil, []byte(v))
		}
	}
}
