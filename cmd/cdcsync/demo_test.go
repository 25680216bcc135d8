package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDemo runs the demo end to end on the embedded broker and registry
// (about six seconds) and reads its summary table.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes several seconds")
	}
	stdout, stderr, err := run(t, "", "demo")
	wantExit(t, err, 0)
	if !strings.Contains(stdout, "embedded Kafka broker:") || !strings.Contains(stdout, "produced ") {
		t.Errorf("demo output lacks its preamble:\n%s", stdout)
	}
	header := -1
	lines := strings.Split(stdout, "\n")
	for i, l := range lines {
		if f := strings.Fields(l); len(f) == 8 && f[0] == "topology" && f[1] == "in" && f[6] == "dlq" {
			header = i
		}
	}
	if header < 0 {
		t.Fatalf("no summary table in the output:\n%s\nstderr:\n%s", stdout, stderr)
	}
	rows := map[string][]int{}
	for _, l := range lines[header+1:] {
		f := strings.Fields(l)
		if len(f) != 8 {
			break
		}
		var nums []int
		for _, s := range f[1:] {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("row %q: %v", l, err)
			}
			nums = append(nums, n)
		}
		rows[f[0]] = nums
	}
	erp, ok := rows["contacts-erp-to-crm"]
	if !ok {
		t.Fatalf("no contacts-erp-to-crm row in:\n%s", stdout)
	}
	in, out, dup, dlqN := erp[0], erp[1], erp[2], erp[5]
	if in == 0 || out == 0 || dup == 0 || dlqN == 0 {
		t.Errorf("contacts-erp-to-crm: in %d, out %d, duplicate %d, dlq %d; want all nonzero:\n%s", in, out, dup, dlqN, stdout)
	}
	if out+dup+dlqN > in {
		t.Errorf("contacts-erp-to-crm: out %d + duplicate %d + dlq %d exceed in %d", out, dup, dlqN, in)
	}
	if _, ok := rows["contacts-crm-to-erp"]; !ok {
		t.Errorf("no contacts-crm-to-erp row in:\n%s", stdout)
	}
	if !strings.Contains(stdout, "expected from the data set:") {
		t.Errorf("no expectations line:\n%s", stdout)
	}
	checkReadmeDemo(t, stdout)
}

// checkReadmeDemo checks that every figure the docs state about the demo
// is what the demo prints: the record counts, the summary table, the
// expectations and the Avro sink counts, in the whole output on
// docs/demo.md and in the excerpt in the README. Regression: the README
// promised 95 duplicates after row-state dedup made the demo drop 174.
func checkReadmeDemo(t *testing.T, stdout string) {
	t.Helper()
	// docs/demo.md: the produced lines, the table (header and 4 rows), the
	// 2 expectation lines, the CRM endpoint line and the Avro sink line.
	// docs/demo.md: also the orders' produced line, the order saga's line
	// and its expectations (issue 17).
	checkDemoBlock(t, stdout, "../../docs/demo.md", "```\nembedded Kafka broker:", 14)
	// README.md: the table, the expectations and the order saga's line.
	checkDemoBlock(t, stdout, "../../README.md", "```\n$ go run ./cmd/cdcsync demo\n", 8)
}

// checkDemoBlock checks the figure lines of the fenced block of file that
// starts with opening against the demo's output, and that at least want
// lines were checked.
func checkDemoBlock(t *testing.T, stdout, file, opening string, want int) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, opening)
	if start < 0 {
		t.Fatalf("%s has no demo output block starting with %q", file, opening)
	}
	block := doc[start+4:]
	block = block[:strings.Index(block, "```")]
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	got := map[string]bool{}
	for _, l := range strings.Split(stdout, "\n") {
		got[norm(l)] = true
	}
	inTable, pinned := false, 0
	for _, l := range strings.Split(block, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 1 && f[0] == "topology" && f[1] == "in":
			inTable = true
		case len(f) == 0:
			inTable = false
			continue
		case !inTable && !strings.HasPrefix(l, "produced ") && !strings.HasPrefix(l, "expected from ") &&
			!strings.HasPrefix(l, "CRM endpoint ") && !strings.Contains(l, " events decoded (") &&
			!strings.HasPrefix(l, "order saga "):
			continue
		}
		pinned++
		if !got[norm(l)] {
			t.Errorf("%s states %q; the demo printed no such line:\n%s", file, strings.TrimSpace(l), stdout)
		}
	}
	if pinned < want {
		t.Errorf("%s demo block: %d figure lines found, want at least %d", file, pinned, want)
	}
}
