package topology

import (
	"strings"
	"testing"
)

func TestTemplate(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"sync.{entity}", "sync.contacts"},
		{"{db}.{schema}.{table}", "erp.public.contacts_t"},
		{"{db}{table}", "erpcontacts_t"},
		{"static", "static"},
		{"x.{schema}.y", "x.public.y"},
		{strings.Repeat("a", 248) + "{table}", strings.Repeat("a", 248) + "contacts_t"}, // the shortest expansion fits
		{strings.Repeat("a", 248) + "{schema}{table}", strings.Repeat("a", 248) + "publiccontacts_t"}, // {schema} may be empty
	} {
		tmpl, reason := parseTemplate(tc.tmpl)
		if reason != "" {
			t.Fatalf("%q: %s", tc.tmpl, reason)
		}
		if got := tmpl.expand("erp", "public", "contacts_t", "contacts"); got != tc.want {
			t.Errorf("%q expands to %q, want %q", tc.tmpl, got, tc.want)
		}
	}
	for _, tc := range []struct{ tmpl, reason string }{
		{"sync.{tabel}", `unknown placeholder "{tabel}"`},
		{"sync.{}", `unknown placeholder "{}"`},
		{"sync.{table", `unclosed "{"`},
		{"sync.{{table}}", `unclosed "{"`},
		{"sync.table}", `"}" without a matching "{"`},
		{"sync {table}", `illegal character ' '`},
		{"..", `".." is not a legal topic name`},
		{strings.Repeat("a", 250) + "{table}", "every topic it gives is at least 251 bytes, longer than Kafka's topic name limit of 249"},
		// Regression (issue 9): only literal text over 249 bytes was
		// refused, so these templates, which no table name can fit, were
		// accepted and every record failed at run time.
		{strings.Repeat("a", 249) + "{table}", "249 bytes of literal text and 1 placeholder(s) of at least 1 byte, so every topic it gives is at least 250 bytes"},
		{strings.Repeat("a", 246) + "{db}.{schema}.{table}", "248 bytes of literal text and 2 placeholder(s) of at least 1 byte, so every topic it gives is at least 250 bytes"},
	} {
		if _, reason := parseTemplate(tc.tmpl); !strings.Contains(reason, tc.reason) {
			t.Errorf("%q: reason %q, want it to contain %q", tc.tmpl, reason, tc.reason)
		}
	}
}

func TestSinkTopicAllocatesOnce(t *testing.T) {
	p, err := Parse("contacts.yaml", []byte(withLine(19, "  topic: sync.{db}.{schema}.{table}")))
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { p.SinkTopic("erp", "public", "contacts", "contacts") }); n != 1 {
		t.Errorf("SinkTopic allocates %v times, want 1", n)
	}
}

func BenchmarkSinkTopic(b *testing.B) {
	for _, tmpl := range []string{"sync.{entity}", "{db}.{schema}.{table}.synced", "static.topic"} {
		p, err := Parse("bench.yaml", []byte(withLine(19, "  topic: '"+tmpl+"'")))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tmpl, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = p.SinkTopic("erp", "public", "contacts", "contacts")
			}
		})
	}
}
