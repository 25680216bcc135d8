package cdc

import (
	"encoding/json"
	"testing"
)

// The workload: a PostgreSQL update of a 9-column customers row, before
// and after present, full source block and transaction.
func benchDecode(b *testing.B, name string) {
	r := loadRecord(b, name)
	d := NewJSONDecoder(Options{SourceSystem: "erp"})
	if _, err := d.Decode(r.topic, r.key, r.value); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(r.key) + len(r.value)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	for b.Loop() {
		ev, err := d.Decode(r.topic, r.key, r.value)
		if err != nil || ev.ID.IsZero() {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

func BenchmarkDecodeBare(b *testing.B) { benchDecode(b, "pg_update.bare") }

// BenchmarkDecodeBareOwned is the worker's decode: DecodeOwned of a
// record it detached (processor/alo.go). Each op decodes a fresh copy,
// as the worker does; the copy is made outside the timer's view only in
// part, so the benchmark copies in both modes (BenchmarkDecodeBareCopy).
func BenchmarkDecodeBareOwned(b *testing.B) { benchDetached(b, true) }

// BenchmarkDecodeBareCopy is BenchmarkDecodeBareOwned with Decode.
func BenchmarkDecodeBareCopy(b *testing.B) { benchDetached(b, false) }

// BenchmarkDecodeBareOwnedReuse is BenchmarkDecodeBareOwned in one
// Scratch, as a claim decodes (claimCtx.scratch).
func BenchmarkDecodeBareOwnedReuse(b *testing.B) {
	var sc Scratch
	benchDetachedWith(b, func(d *JSONDecoder) func(string, []byte, []byte) (*Event, error) {
		return func(topic string, key, value []byte) (*Event, error) {
			return d.DecodeOwnedReuse(&sc, topic, key, value)
		}
	})
}

func benchDetached(b *testing.B, owned bool) {
	benchDetachedWith(b, func(d *JSONDecoder) func(string, []byte, []byte) (*Event, error) {
		if owned {
			return d.DecodeOwned
		}
		return d.Decode
	})
}

func benchDetachedWith(b *testing.B, with func(*JSONDecoder) func(string, []byte, []byte) (*Event, error)) {
	r := loadRecord(b, "pg_update.bare")
	d := NewJSONDecoder(Options{SourceSystem: "erp"})
	decode := with(d)
	b.SetBytes(int64(len(r.key) + len(r.value)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		// detach: key and value in one fresh allocation.
		buf := make([]byte, len(r.key)+len(r.value))
		k := copy(buf, r.key)
		copy(buf[k:], r.value)
		ev, err := decode(r.topic, buf[:k:k], buf[k:])
		if err != nil || ev.ID.IsZero() {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}
func BenchmarkDecodeEnvelope(b *testing.B) { benchDecode(b, "pg_update.env") }

// BenchmarkStdlibMaps is the baseline: encoding/json into maps, no typing.
func BenchmarkStdlibMapsBare(b *testing.B)     { benchStdlib(b, "pg_update.bare") }
func BenchmarkStdlibMapsEnvelope(b *testing.B) { benchStdlib(b, "pg_update.env") }

func benchStdlib(b *testing.B, name string) {
	r := loadRecord(b, name)
	b.ReportAllocs()
	for b.Loop() {
		var k, v map[string]any
		if err := json.Unmarshal(r.key, &k); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(r.value, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContentID is the ledger stage's after-state content ID of an
// emitted change (processor's rowChange.resolve): the workload's update,
// with the caller's scratch buffer.
func BenchmarkContentID(b *testing.B) {
	r := loadRecord(b, "pg_update.bare")
	ev, err := NewJSONDecoder(Options{SourceSystem: "erp"}).Decode(r.topic, r.key, r.value)
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if id, err := ComputeIDBuf(ev, IDContent, "", &buf); err != nil || id.IsZero() {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}
