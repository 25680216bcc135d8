package cdc

import (
	"strings"
	"testing"
)

// BenchmarkDecodeBareMixed decodes every bare fixture in turn on one
// decoder, as a worker reading many tables does: rows of different
// widths and connectors one after another (the fast path sizes rows and
// guesses names from the last record). Per op: one record.
func BenchmarkDecodeBareMixed(b *testing.B) { benchMixed(b, false) }

// BenchmarkDecodeBareMixedReuse is BenchmarkDecodeBareMixed as a claim
// decodes: DecodeOwnedReuse in one Scratch, whose blocks records of
// different sizes keep, drop and regrow.
func BenchmarkDecodeBareMixedReuse(b *testing.B) { benchMixed(b, true) }

func benchMixed(b *testing.B, reuse bool) {
	var sc Scratch
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
		var err error
		if reuse {
			_, err = d.DecodeOwnedReuse(&sc, r.topic, r.key, r.value)
		} else {
			_, err = d.Decode(r.topic, r.key, r.value)
		}
		if err != nil {
			b.Fatal(r.name, err)
		}
	}
	cpu.report(b)
}
