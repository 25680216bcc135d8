package topology

import (
	"encoding/json"
	"strings"
	"testing"
)

// The JSON form and Describe's text list the same options with the same
// values and default marks.
func TestPlanJSONMatchesDescribe(t *testing.T) {
	p, err := Parse("t.yaml", []byte(`name: orders
systems: [erp, crm]
source: {topics: [erp.public.orders], system: erp, format: debezium-json}
authority: {owners: {email: crm}}
sink: {topic: 'sync.{table}', key: [id]}
guarantee: exactly_once
`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var j PlanJSON
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if j.Name != "orders" || j.Group != "cdcsync.orders" || j.LedgerTopic != "orders.ledger" || j.DLQTopic != "dlq.orders" ||
		j.Guarantee != "exactly_once" || len(j.SourceTopics) != 1 || j.SinkTopic != "sync.{table}" {
		t.Errorf("plan JSON = %s", b)
	}
	text := strings.Split(strings.TrimSpace(p.Describe()), "\n")[1:]
	if len(text) != len(j.Options) {
		t.Fatalf("Describe has %d option lines, JSON %d", len(text), len(j.Options))
	}
	var sawNote bool
	for i, o := range j.Options {
		want := o.Value
		if o.Default {
			want += "  (default"
			if o.DefaultNote != "" {
				want += ": " + o.DefaultNote
				sawNote = true
			}
			want += ")"
		}
		f := strings.Fields(text[i])
		if !strings.HasPrefix(strings.TrimSpace(text[i]), o.Key) || !strings.HasSuffix(text[i], want) || len(f) < 2 {
			t.Errorf("line %d: %q, JSON option %+v", i, text[i], o)
		}
	}
	if !sawNote {
		t.Error("no option with a default note (authority.default_owner should have one)")
	}
}
