package topology

import (
	"os"
	"strings"
	"testing"
)

// TestDocExample checks that the example topology in doc.go is valid, so
// the package doc cannot drift from the code. The option reference itself
// is docs/topology.md only (TestReferenceDoc); doc.go points to it.
// Regression (issue 13): the reference existed twice, in the README and in
// doc.go, and the two disagreed.
func TestDocExample(t *testing.T) {
	data, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	start := strings.Index(src, "// # Example\n")
	end := strings.Index(src, "// # Reference\n")
	if start < 0 || end < start {
		t.Fatal("doc.go has no # Example section before # Reference")
	}
	var b strings.Builder
	for _, l := range strings.Split(src[start:end], "\n") {
		if y, ok := strings.CutPrefix(l, "//\t"); ok {
			b.WriteString(y + "\n")
		}
	}
	if b.Len() == 0 {
		t.Fatal("doc.go's example is empty")
	}
	if _, err := Parse("doc.go example", []byte(b.String())); err != nil {
		t.Errorf("doc.go's example topology is invalid: %v\n%s", err, b.String())
	}
	// doc.go must not grow an option table of its own.
	if strings.Contains(src, "| option |") || strings.Count(src, "(default") > 0 {
		t.Error("doc.go documents options itself; the reference is docs/topology.md")
	}
	if !strings.Contains(src, "docs/topology.md") {
		t.Error("doc.go does not point to docs/topology.md")
	}
}
