package topology

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// headersDoc is a valid topology whose sink section ends on line 8, so a
// case appends its sink.headers lines after it.
const headersDoc = `name: t
systems: [a, b]
source:
  topics: [a.s.x]
  system: a
  format: debezium-json
sink:
  topic: out
  key: [id]
`

func TestSinkHeadersPropagate(t *testing.T) {
	p, err := Parse("t.yaml", []byte(headersDoc+"  headers:\n    propagate: [traceparent, tracestate, X-Custom]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.PropagateHeaders(); !slices.Equal(got, []string{"traceparent", "tracestate", "X-Custom"}) {
		t.Errorf("PropagateHeaders = %q", got)
	}
	for key, want := range map[string]bool{
		"traceparent": true, "tracestate": true, "X-Custom": true,
		"x-custom": false, "Traceparent": false, "traceparent ": false, "baggage": false, "": false,
	} {
		if got := p.PropagatesHeader([]byte(key)); got != want {
			t.Errorf("PropagatesHeader(%q) = %v, want %v (names match exactly)", key, got, want)
		}
	}
	if !strings.Contains(p.Describe(), "  sink.headers.propagate       traceparent, tracestate, X-Custom\n") {
		t.Errorf("Describe does not show the list:\n%s", p.Describe())
	}
	// The accessor returns a copy: the plan is immutable.
	p.PropagateHeaders()[0] = "changed"
	if !p.PropagatesHeader([]byte("traceparent")) {
		t.Error("changing PropagateHeaders' result changed the plan")
	}
}

// The default copies nothing, and says so in Describe.
func TestSinkHeadersDefault(t *testing.T) {
	for _, doc := range []string{headersDoc, headersDoc + "  headers: {}\n", headersDoc + "  headers:\n    propagate: []\n"} {
		p, err := Parse("t.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if got := p.PropagateHeaders(); len(got) != 0 {
			t.Errorf("PropagateHeaders = %q, want none", got)
		}
		if p.PropagatesHeader([]byte("traceparent")) {
			t.Error("traceparent propagates by default")
		}
	}
	p, _ := Parse("t.yaml", []byte(headersDoc))
	if !strings.Contains(p.Describe(), "  sink.headers.propagate       none  (default)\n") {
		t.Errorf("Describe lacks the default:\n%s", p.Describe())
	}
}

// TestSinkHeadersInvalid breaks sink.headers one way at a time and checks
// the one problem reported: field, line, kind and reason.
func TestSinkHeadersInvalid(t *testing.T) {
	cases := []struct {
		name, add string
		field     string
		line      int
		kind      error
		reason    string
	}{
		{"empty name", "  headers:\n    propagate: [traceparent, '']\n",
			"sink.headers.propagate[1]", 11, ErrMissing, "empty header name"},
		{"null name", "  headers:\n    propagate:\n      - traceparent\n      -\n",
			"sink.headers.propagate[1]", 13, ErrMissing, "empty header name"},
		{"duplicate", "  headers:\n    propagate: [traceparent, tracestate, traceparent]\n",
			"sink.headers.propagate[2]", 11, ErrInvalid, `duplicate header "traceparent" (also sink.headers.propagate[0])`},
		{"ours", "  headers:\n    propagate: [cdcsync.event.id]\n",
			"sink.headers.propagate[0]", 11, ErrInvalid, `"cdcsync.event.id" starts with "cdcsync.": cdcsync writes those headers itself`},
		{"ours, replay link", "  headers:\n    propagate: [traceparent, cdcsync.replay.of]\n",
			"sink.headers.propagate[1]", 11, ErrInvalid, `starts with "cdcsync."`},
		{"not a list", "  headers:\n    propagate: traceparent\n",
			"sink.headers.propagate", 11, ErrInvalid, `must be a list`},
		{"not a mapping", "  headers: [traceparent]\n",
			"sink.headers", 10, ErrInvalid, ``},
		{"unknown key", "  headers:\n    copy: [traceparent]\n",
			"sink.headers.copy", 11, ErrUnknownField, "known here: propagate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(headersDoc+tc.add))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("want exactly one problem, got %v", err)
			}
			e := errs[0]
			if e.Field != tc.field || e.Line != tc.line || !errors.Is(e, tc.kind) || !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("got %v (line %d, field %s, kind %v); want line %d, field %s, kind %v, reason containing %q",
					e, e.Line, e.Field, e.Err, tc.line, tc.field, tc.kind, tc.reason)
			}
		})
	}
}
