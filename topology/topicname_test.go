package topology

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckTopicName(t *testing.T) {
	for _, name := range []string{"sync.contacts", "a", "A-b_c.9", strings.Repeat("x", 249)} {
		if err := CheckTopicName(name); err != nil {
			t.Errorf("CheckTopicName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "bad/name", "has space", "ünï", strings.Repeat("x", 250)} {
		if err := CheckTopicName(name); !errors.Is(err, ErrInvalidTopicName) {
			t.Errorf("CheckTopicName(%q) = %v, want ErrInvalidTopicName", name, err)
		}
	}
}

func TestTopicsCollide(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"sync.col_x", "sync.col.x", true},
		{"a.b", "a_b", true},
		{"a.b", "a.b", false}, // the same topic does not collide with itself
		{"a.b", "a.c", false},
		{"a.b", "a.bb", false},
	} {
		if got := TopicsCollide(c.a, c.b); got != c.want {
			t.Errorf("TopicsCollide(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// Regression (issue 9): a sink template could expand to the topology's
// DLQ, its ledger or a topic it consumes; CheckSinkTopic lets the runtime
// refuse each expanded name.
func TestPlanCheckSinkTopic(t *testing.T) {
	p, err := Parse("c.yaml", []byte(`name: contacts
systems: [erp]
source: {topics: [erp.public.contacts, erp.public.orders], system: erp, format: debezium-json}
sink: {topic: "{db}.{table}", key: [id]}
dlq: {topic: dlq.contacts}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"erp.contacts", "sync.orders"} {
		if err := p.CheckSinkTopic(ok); err != nil {
			t.Errorf("CheckSinkTopic(%q) = %v", ok, err)
		}
	}
	for topic, want := range map[string]string{
		"dlq.contacts":        `sink topic "dlq.contacts" is the DLQ topic "dlq.contacts"`,
		"dlq_contacts":        `sink topic "dlq_contacts" collides with the DLQ topic "dlq.contacts" (Kafka treats '.' and '_'`,
		"contacts.ledger":     `sink topic "contacts.ledger" is the ledger topic "contacts.ledger"`,
		"contacts_ledger":     `collides with the ledger topic "contacts.ledger"`,
		"erp.public.orders":   `sink topic "erp.public.orders" is also a source topic of topology "contacts"`,
		"erp_public.contacts": `sink topic "erp_public.contacts" collides with source topic "erp.public.contacts"`,
		"bad/name":            `illegal character '/'`,
	} {
		err := p.CheckSinkTopic(topic)
		if !errors.Is(err, ErrInvalidTopicName) || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSinkTopic(%q) = %v, want %q", topic, err, want)
		}
	}
}

// topo is a small valid topology with the given name and extra lines.
func topo(name, source, sink, dlqTopic string) string {
	doc := "name: " + name + "\nsystems: [erp]\nsource: {" + source + ", system: erp, format: debezium-json}\nsink: {topic: '" + sink + "', key: [id]}\n"
	if dlqTopic != "" {
		doc += "dlq: {topic: " + dlqTopic + "}\n"
	}
	return doc
}

// Regression (issue 9): topologies loaded together could write into each
// other's ledger or DLQ, or read another's ledger. Load refuses these and
// Kafka's '.'/'_' collisions between the topics they name; a shared DLQ,
// a shared sink and chaining are allowed.
func TestLoadCrossTopologyTopics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		file  string // the file blamed; "" when the set loads
		field string
		want  string
	}{
		{"sink is another's ledger", map[string]string{
			"a.yaml": topo("a", "topics: [erp.a]", "b.ledger", ""),
			"b.yaml": topo("b", "topics: [erp.b]", "sync.b", "")},
			"a.yaml", "sink.topic", `"b.ledger" is the ledger topic of topology "b" (`},
		{"sink is another's dlq", map[string]string{
			"a.yaml": topo("a", "topics: [erp.a]", "dlq.b", ""),
			"b.yaml": topo("b", "topics: [erp.b]", "sync.b", "")},
			"a.yaml", "sink.topic", `"dlq.b" is the DLQ topic of topology "b"`},
		{"dlq is another's ledger", map[string]string{
			"a.yaml": topo("a", "topics: [erp.a]", "sync.a", "b.ledger"),
			"b.yaml": topo("b", "topics: [erp.b]", "sync.b", "")},
			"a.yaml", "dlq.topic", `"b.ledger" is the ledger topic of topology "b"`},
		{"source lists another's ledger", map[string]string{
			"a.yaml": topo("a", "topics: [erp.a, b.ledger]", "sync.a", ""),
			"b.yaml": topo("b", "topics: [erp.b]", "sync.b", "")},
			"a.yaml", "source.topics[1]", `reads "b.ledger", the ledger topic of topology "b"`},
		{"source pattern reads another's ledger", map[string]string{
			"a.yaml": topo("a", `topic_pattern: 'b\..*'`, "sync.a", ""),
			"b.yaml": topo("b", "topics: [erp.b]", "sync.b", "")},
			"a.yaml", "source.topic_pattern", `reads "b.ledger", the ledger topic of topology "b"`},
		{"sinks collide", map[string]string{
			"a.yaml": topo("a", "topics: [erp.a]", "sync.x_y", ""),
			"b.yaml": topo("b", "topics: [erp.b]", "sync.x.y", "")},
			"b.yaml", "sink.topic", `"sync.x.y" collides with "sync.x_y" (sink.topic of topology "a"`},
		{"dlqs collide", map[string]string{
			"a.yaml": topo("a", "topics: [erp.a]", "sync.a", "dlq.all_x"),
			"b.yaml": topo("b", "topics: [erp.b]", "sync.b", "dlq.all.x")},
			"b.yaml", "dlq.topic", `collides with "dlq.all_x" (dlq.topic of topology "a"`},
		{"shared dlq, shared sink and chaining are fine", map[string]string{
			"a.yaml": topo("a", "topics: [erp.a]", "sync.all", "dlq.shared"),
			"b.yaml": topo("b", "topics: [sync.all]", "sync.all2", "dlq.shared"),
			"c.yaml": topo("c", "topics: [erp.c]", "sync.all", "dlq.shared")},
			"", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			plans, err := Load(dir)
			if tc.file == "" {
				if err != nil || len(plans) != len(tc.files) {
					t.Fatalf("Load = %d plans, %v", len(plans), err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			e := errs[0]
			line := map[string]int{"source.topics[1]": 3, "source.topic_pattern": 3, "sink.topic": 4, "dlq.topic": 5}[tc.field]
			if e.File != filepath.Join(dir, tc.file) || e.Field != tc.field || e.Line != line || !errors.Is(e, ErrInvalid) ||
				!strings.Contains(e.Reason, tc.want) {
				t.Errorf("got %v (line %d); want %s: %s: ...%s", e, e.Line, tc.file, tc.field, tc.want)
			}
		})
	}
}
