package topology

import (
	"errors"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestReferenceDoc keeps docs/topology.md, the topology reference, true to
// the code: every option the decoder accepts has a row, every row is an
// option the decoder accepts, each default is what Describe prints for a
// file that leaves the option out, and each option's accepted values are
// named in its row. Regression: the reference existed twice (README and
// doc.go) and the copies disagreed with the code (errors.tolerance: none
// "stops the worker", errors.retry.max_elapsed "counts as permanent").
func TestReferenceDoc(t *testing.T) {
	data, err := os.ReadFile("../docs/topology.md")
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ def, meaning string }
	rows := map[string]row{}
	for _, l := range strings.Split(string(data), "\n") {
		cells := strings.Split(l, " | ")
		if !strings.HasPrefix(l, "| `") || len(cells) < 3 {
			continue
		}
		opt := strings.Trim(strings.TrimPrefix(cells[0], "| "), "`")
		rows[opt] = row{def: strings.ReplaceAll(cells[1], "`", ""), meaning: strings.Join(cells[2:], " | ")}
	}
	if len(rows) == 0 {
		t.Fatal("docs/topology.md has no option table")
	}

	accepted := acceptedOptions(t)
	for _, opt := range accepted {
		if _, ok := rows[opt]; !ok {
			t.Errorf("option %s is accepted by the decoder but has no row in docs/topology.md", opt)
		}
	}
	for opt := range rows {
		if !slices.Contains(accepted, opt) {
			t.Errorf("docs/topology.md documents %s, which the decoder does not accept", opt)
		}
	}

	// Defaults, as Describe prints them for files that leave them out:
	// one JSON at_least_once topology and one Avro exactly_once topology
	// between them print every option.
	defaults := map[string]string{}
	for _, src := range []string{
		"name: t\nsystems: [a, b]\nsource: {topics: [a.s.x], system: a, format: debezium-json}\nsink: {topic: out, key: [id]}\n",
		"name: t\nsystems: [a, b]\nsource: {topics: [a.s.x], system: a, format: debezium-avro}\nsink: {topic: out, key: [id], format: avro}\nguarantee: exactly_once\n",
		// Apply topologies (issue 14): one of each kind prints the apply options.
		"name: t\nsystems: [a, b]\nsource: {topics: [sync.x], system: a, format: cdcsync-json}\napply: {kind: http, http: {url: 'http://h/{entity}', secrets_env: [S]}}\n",
		"name: t\nsystems: [a, b]\nsource: {topics: [sync.x], system: a, format: cdcsync-avro}\napply: {kind: postgres, postgres: {dsn_env: D, table: t, key: [id]}}\n",
		// A saga topology (issue 17) prints the saga options.
		"name: t\nsaga: {trigger: {topic: orders}, steps: [{name: a, command: {topic: a.cmd, type: A}, reply_topic: a.reply}]}\n",
	} {
		p, err := Parse("t.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(p.Describe(), "\n")[1:] {
			opt, rest, _ := strings.Cut(strings.TrimSpace(l), " ")
			value, mark, isDefault := strings.Cut(strings.TrimSpace(rest), "  (default")
			if !isDefault {
				continue
			}
			if note, ok := strings.CutPrefix(strings.TrimSuffix(mark, ")"), ": "); ok {
				value = note // a default derived from another option: source.system, dlq.<name>
			}
			defaults[opt] = value
		}
	}
	for opt, r := range rows {
		want, ok := defaults[opt]
		switch {
		case !ok && r.def != "required" && r.def != "—":
			t.Errorf("docs/topology.md: %s: default %q, but the code gives it no default (write required or —)", opt, r.def)
		case ok && !strings.HasPrefix(r.def, want):
			t.Errorf("docs/topology.md: %s: default %q, but the code's default is %q", opt, r.def, want)
		}
	}

	for opt, names := range map[string][]string{
		"source.format":              formatNames,
		"source.tombstones":          tombstonesNames,
		"source.truncate":            truncateNames,
		"dedup.key":                  dedupKeyNames,
		"authority.on_violation":     onViolationNames,
		"sink.format":                sinkFormatNames,
		"sink.subject_strategy":      subjectStrategyNames,
		"errors.tolerance":           toleranceNames,
		"guarantee":                  guaranteeNames,
		"apply.kind":                 applyKindNames,
		"apply.truncate":             applyTruncateNames,
		"apply.postgres.on_conflict": onConflictNames,
	} {
		for _, n := range names {
			if n != "" && !strings.Contains(rows[opt].meaning, "`"+n+"`") {
				t.Errorf("docs/topology.md: %s: the value %q is not named in its row", opt, n)
			}
		}
	}
}

// acceptedOptions lists the dotted options the decoder accepts, found by
// asking it: an unknown key in a mapping is reported with the keys known
// there, and an option is a section when an unknown key inside it is
// reported that way too.
func acceptedOptions(t *testing.T) []string {
	t.Helper()
	const probe = "zzqqxxprobe"
	known := func(path []string) ([]string, bool) {
		var b strings.Builder
		for i, p := range path {
			b.WriteString(strings.Repeat("  ", i) + p + ":\n")
		}
		b.WriteString(strings.Repeat("  ", len(path)) + probe + ": 1\n")
		_, errs, _ := decodeFile("probe.yaml", []byte(b.String()))
		want := strings.Join(append(slices.Clone(path), probe), ".")
		for _, e := range errs {
			if e.Field == want && errors.Is(e, ErrUnknownField) {
				_, list, ok := strings.Cut(e.Reason, "(known here: ")
				if !ok {
					t.Fatalf("unknown field %s: %q lists no known fields", want, e.Reason)
				}
				return strings.Split(strings.TrimSuffix(list, ")"), ", "), true
			}
		}
		return nil, false
	}
	var out []string
	var walk func(path []string)
	walk = func(path []string) {
		names, section := known(path)
		if !section {
			out = append(out, strings.Join(path, "."))
			return
		}
		for _, n := range names {
			walk(append(slices.Clone(path), n))
		}
	}
	walk(nil)
	sort.Strings(out)
	if len(out) < 20 {
		t.Fatalf("found only %d options: %v", len(out), out)
	}
	return out
}
