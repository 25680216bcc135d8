package processor

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/topology"
)

func headersPlan(t *testing.T, propagate string) *topology.Plan {
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
