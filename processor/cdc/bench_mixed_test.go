package cdc

import (
	"strings"
	"testing"
)

// BenchmarkDecodeBareMixed decodes every bare fixture in turn on one
// decoder, as a worker reading many tables does: rows of different
// widths and connectors one after another (the fast path sizes rows and
// guesses names from the last record). Per op: one record.
func BenchmarkDecodeBareMixed(b *testing.B) {
	var recs []record
	for _, r := range loadRecords(b) {
		if strings.HasSuffix(r.name, ".bare") && len(r.value) > 0 {
			recs = append(recs, r)
		}
	}
	d := NewJSONDecoder(Options{SourceSystem: "erp"})
	b.ReportAllocs()
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		r := recs[i%len(recs)]
		if _, err := d.Decode(r.topic, r.key, r.value); err != nil {
			b.Fatal(r.name, err)
		}
	}
	cpu.report(b)
}
