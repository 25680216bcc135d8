package cdc

import (
	"encoding/json"
	"errors"
	"testing"
)

// checkAvroDecode decodes and checks what every input must give: a
// *DecodeError, or an event that marshals to valid JSON and decodes to the
// same ID again. The source never fails, so a *RegistryError is a bug.
func checkAvroDecode(t *testing.T, d *AvroDecoder, topic string, key, value []byte) {
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

// FuzzAvroDecode feeds arbitrary wire-format values and keys to the
// decoder with every fixture schema registered: headers, schema IDs and
// bodies are all mutated. An error is fine; a panic is not.
func FuzzAvroDecode(f *testing.F) {
	fs := loadAvroFixtures(f)
	for _, x := range fs {
		f.Add(x.key, x.value)
		if len(x.value) > 8 {
			f.Add(x.key, x.value[:len(x.value)/2])
		}
	}
	f.Add([]byte{0, 0, 0, 0, 100, 2}, []byte{0, 0, 0, 0, 101})
	f.Add([]byte(nil), []byte{0, 0, 0, 0, 101, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	src := fixtureSource(fs)
	decoders := []*AvroDecoder{
		NewAvroDecoder(Options{}, src),
		NewAvroDecoder(Options{IDMode: IDContent}, src),
		NewAvroDecoder(Options{IDMode: IDField, IDField: "id"}, src),
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		for _, d := range decoders {
			checkAvroDecode(t, d, "pg.public.customers", key, value)
		}
	})
}

// FuzzAvroSchema compiles arbitrary writer schemas and decodes a body
// with them, for the schema compiler and the recursive-type paths.
func FuzzAvroSchema(f *testing.F) {
	for _, x := range loadAvroFixtures(f) {
		if x.valSchema != "" {
			f.Add(x.valSchema, x.value[5:])
		}
	}
	f.Add(`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`, []byte{2, 2, 2, 0})
	f.Add(`{"type":"array","items":"null"}`, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0})
	f.Add(`{"type":"map","values":{"type":"fixed","name":"F","size":3}}`, []byte{2, 2, 'k', 1, 2, 3, 0})
	f.Add(`["null",{"type":"enum","name":"E","symbols":["A","B"]}]`, []byte{2, 4})
	f.Fuzz(func(t *testing.T, schema string, body []byte) {
		src := &memSource{schemas: map[int]string{1: schema}}
		d := NewAvroDecoder(Options{}, src)
		checkAvroDecode(t, d, "a.b.c", nil, appendWire(1, body))
		checkAvroDecode(t, d, "a.b.c", appendWire(1, body), nil)
	})
}

// TestSplitWire: the header written is the header read; short input and
// another magic byte are ErrWireFormat.
func TestSplitWire(t *testing.T) {
	for _, id := range []int{0, 1, 258, 1<<31 - 1} {
		b := append(AppendWireHeader(nil, id), 'x', 'y')
		got, body, err := SplitWire(b)
		if err != nil || got != id || string(body) != "xy" {
			t.Errorf("SplitWire(%v) = %d %q %v", b, got, body, err)
		}
	}
	if _, body, err := SplitWire(AppendWireHeader(nil, 7)); err != nil || len(body) != 0 {
		t.Errorf("header only: %q %v", body, err)
	}
	for _, bad := range [][]byte{nil, {}, {0, 0, 1}, {0, 0, 0, 0}, {1, 0, 0, 0, 1}, {0xff, 0, 0, 0, 0, 'x'}} {
		if _, _, err := SplitWire(bad); !errors.Is(err, ErrWireFormat) {
			t.Errorf("SplitWire(%v): %v, want ErrWireFormat", bad, err)
		}
	}
}

// FuzzSplitWire: no panic; a split that succeeds gives back the input
// when the header is written again.
func FuzzSplitWire(f *testing.F) {
	for _, s := range [][]byte{nil, {0}, {0, 0, 0, 0, 1}, {0, 0, 0, 1, 2, 'a'}, {1, 0, 0, 0, 1}, {0, 0xff, 0xff, 0xff, 0xff}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, body, err := SplitWire(b)
		if err != nil {
			if !errors.Is(err, ErrWireFormat) {
				t.Fatalf("%v: error %v", b, err)
			}
			return
		}
		if again := append(AppendWireHeader(nil, id), body...); string(again) != string(b) {
			t.Fatalf("%v: split to %d %v, joins to %v", b, id, body, again)
		}
	})
}
