package cdc

import (
	"encoding/json"
	"errors"
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
