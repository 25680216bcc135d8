package processor

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/topology"
)

func headersPlan(t testing.TB, propagate string) *topology.Plan {
	t.Helper()
	doc := "name: t\nsystems: [a]\nsource: {topics: [a.s.x], system: a, format: debezium-json}\nsink:\n  topic: out\n  key: [id]\n"
	if propagate != "" {
		doc += "  headers: {propagate: " + propagate + "}\n"
	}
	p, err := topology.Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// propagateHeaders copies the listed source headers after the sink
// record's own, every occurrence in source order, and nothing else.
func TestPropagateHeaders(t *testing.T) {
	src := []*sarama.RecordHeader{
		{Key: []byte("baggage"), Value: []byte("b")},
		{Key: []byte("traceparent"), Value: []byte("tp1")},
		nil,
		{Key: []byte("TraceParent"), Value: []byte("other case")},
		{Key: []byte("tracestate"), Value: []byte("ts")},
		{Key: []byte("traceparent"), Value: []byte("tp2")},
	}
	own := []sarama.RecordHeader{{Key: hdrTopology, Value: []byte("t")}}
	got := propagateHeaders(own, src, headersPlan(t, "[traceparent, tracestate]"))
	want := "cdcsync.topology=t traceparent=tp1 tracestate=ts traceparent=tp2"
	if s := headerString(got); s != want {
		t.Errorf("headers %q, want %q", s, want)
	}
	if s := headerString(propagateHeaders(own, src, headersPlan(t, ""))); s != "cdcsync.topology=t" {
		t.Errorf("default: headers %q, want only cdcsync's own", s)
	}
}

// Without sink.headers.propagate the hot path allocates nothing more.
func TestPropagateHeadersNoAllocByDefault(t *testing.T) {
	plan := headersPlan(t, "")
	src := []*sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte("x")}, {Key: []byte("b"), Value: []byte("y")}}
	own := make([]sarama.RecordHeader, 1, 5)
	if n := testing.AllocsPerRun(100, func() { _ = propagateHeaders(own, src, plan) }); n != 0 {
		t.Errorf("%v allocations per record with nothing to propagate", n)
	}
}

func headerString(hs []sarama.RecordHeader) string {
	s := ""
	for i, h := range hs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%s", h.Key, h.Value)
	}
	return s
}

// BenchmarkPropagateHeaders measures the per-record cost of
// sink.headers.propagate on a record with five headers, two of them
// listed, and with nothing listed (the default).
func BenchmarkPropagateHeaders(b *testing.B) {
	src := []*sarama.RecordHeader{
		{Key: []byte("id"), Value: []byte("1")},
		{Key: []byte("traceparent"), Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
		{Key: []byte("baggage"), Value: []byte("a=b")},
		{Key: []byte("tracestate"), Value: []byte("cdc=1")},
		{Key: []byte("x-other"), Value: []byte("y")},
	}
	for _, bc := range []struct{ name, list string }{{"none", ""}, {"two", "[traceparent, tracestate]"}} {
		b.Run(bc.name, func(b *testing.B) {
			plan := headersPlan(b, bc.list)
			own := make([]sarama.RecordHeader, 4, 5)
			b.ReportAllocs()
			for b.Loop() {
				_ = propagateHeaders(own, src, plan)
			}
		})
	}
}
