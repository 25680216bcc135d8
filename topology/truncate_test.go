package topology

import (
	"errors"
	"strings"
	"testing"
)

// source.truncate: dlq by default (issue 9 item 3), pass and drop on
// request, anything else refused with the key.
func TestSourceTruncate(t *testing.T) {
	doc := func(opt string) string {
		return "name: t\nsystems: [erp]\nsource: {topics: [a.b.c], system: erp, format: debezium-json" + opt + "}\nsink: {topic: s, key: [id]}\n"
	}
	for opt, want := range map[string]Truncate{"": TruncateDLQ, ", truncate: dlq": TruncateDLQ, ", truncate: pass": TruncatePass, ", truncate: drop": TruncateDrop} {
		p, err := Parse("t.yaml", []byte(doc(opt)))
		if err != nil {
			t.Fatalf("%q: %v", opt, err)
		}
		if p.Truncate() != want {
			t.Errorf("%q: Truncate() = %v, want %v", opt, p.Truncate(), want)
		}
	}
	_, err := Parse("t.yaml", []byte(doc(", truncate: keep")))
	if err == nil || !errors.Is(err, ErrInvalid) {
		t.Fatalf("truncate: keep: err = %v, want ErrInvalid", err)
	}
	if got := err.Error(); !strings.Contains(got, "source.truncate") {
		t.Errorf("message %q does not name source.truncate", got)
	}
}
