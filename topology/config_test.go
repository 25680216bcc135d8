package topology

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validDoc is the document every table case starts from. Line numbers in
// the cases below refer to it.
const validDoc = `name: contacts-erp-to-crm
systems: [erp, crm]
source:
  topics: [erp.public.contacts]
  system: erp
  format: debezium-json
  tombstones: pass
dedup:
  key: position
  window: 168h
authority:
  owners:
    email: crm
    phone: erp
    address: erp
  default_owner: crm
  on_violation: drop_field
sink:
  topic: sync.{entity}
  key: [contact_id, region]
  format: json
dlq:
  topic: dlq.contacts
errors:
  retry: {initial: 100ms, max: 30s, multiplier: 2, max_elapsed: 0s}
  tolerance: all
guarantee: at_least_once
`

// withLine returns validDoc with line n (1-based) replaced by text, which
// may hold several lines, or be empty to delete the line.
func withLine(n int, text string) string {
	lines := strings.Split(validDoc, "\n")
	if text == "" {
		lines = append(lines[:n-1], lines[n:]...)
	} else {
		lines[n-1] = text
	}
	return strings.Join(lines, "\n")
}

func TestValidDoc(t *testing.T) {
	p, err := Parse("contacts.yaml", []byte(validDoc))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "contacts-erp-to-crm" || p.File() != "contacts.yaml" {
		t.Errorf("name %q file %q", p.Name(), p.File())
	}
	if got := p.Owner("email"); got != "crm" {
		t.Errorf("Owner(email) = %q", got)
	}
	if got := p.Owner("phone"); got != "erp" {
		t.Errorf("Owner(phone) = %q", got)
	}
	if got := p.Owner("unlisted"); got != "crm" {
		t.Errorf("Owner(unlisted) = %q, want the default owner crm", got)
	}
	if got := p.DLQTopic(); got != "dlq.contacts" {
		t.Errorf("DLQTopic = %q", got)
	}
	if got := strings.Join(p.SinkKey(), ","); got != "contact_id,region" {
		t.Errorf("SinkKey = %q", got)
	}
}

// TestBreakOneField starts from validDoc, breaks one thing, and checks
// that exactly one problem is reported, with its field, line, kind and
// reason.
func TestBreakOneField(t *testing.T) {
	cases := []struct {
		name   string
		doc    string
		field  string
		line   int
		kind   error
		reason string // substring
	}{
		{"unknown field", withLine(21, "  format: json\n  partitions: 3"),
			"sink.partitions", 22, ErrUnknownField, "unknown field (known here: topic, key, format, subject_strategy, headers)"},
		{"misspelt field suggests", withLine(27, "guarante: at_least_once"),
			"guarante", 27, ErrUnknownField, `did you mean "guarantee"?`},
		{"owner not declared", withLine(13, "    email: crmx"),
			"authority.owners.email", 13, ErrInvalid, `owner "crmx" is not a declared system (systems: erp, crm)`},
		{"owner null", withLine(13, "    email:"),
			"authority.owners.email", 13, ErrMissing, "no owner given"},
		{"default owner not declared", withLine(16, "  default_owner: sap"),
			"authority.default_owner", 16, ErrInvalid, `"sap" is not a declared system (systems: erp, crm)`},
		{"empty sink key", withLine(20, "  key: []"),
			"sink.key", 20, ErrMissing, "at least one partition-key field"},
		{"missing sink key", withLine(20, ""),
			"sink.key", 18, ErrMissing, "required"},
		{"sink key not a list", withLine(20, "  key: contact_id"),
			"sink.key", 20, ErrInvalid, `must be a list, e.g. [a, b], not "contact_id"`},
		{"duplicate key field", withLine(20, "  key: [contact_id, region, contact_id]"),
			"sink.key[2]", 20, ErrInvalid, `duplicate key field "contact_id" (also sink.key[0])`},
		{"empty key field", withLine(20, "  key: [contact_id, '']"),
			"sink.key[1]", 20, ErrMissing, "empty field name"},
		{"bad placeholder", withLine(19, "  topic: sync.{tabel}"),
			"sink.topic", 19, ErrInvalid, `unknown placeholder "{tabel}"`},
		{"unclosed placeholder", withLine(19, "  topic: sync.{table"),
			"sink.topic", 19, ErrInvalid, `unclosed "{"`},
		{"illegal topic character in template", withLine(19, "  topic: sync/{table}"),
			"sink.topic", 19, ErrInvalid, `illegal character '/'`},
		{"sink topic is a source topic", withLine(19, "  topic: erp.public.contacts"),
			"sink.topic", 19, ErrInvalid, "consume its own output"},
		{"bad duration", withLine(10, "  window: 7d"),
			"dedup.window", 10, ErrInvalid, `invalid duration "7d"`},
		{"duration without unit", withLine(10, "  window: 3600"),
			"dedup.window", 10, ErrInvalid, `invalid duration "3600"`},
		{"zero window", withLine(10, "  window: 0s"),
			"dedup.window", 10, ErrInvalid, "must be greater than 0"},
		{"bad enum", withLine(6, "  format: debezium-protobuf"),
			"source.format", 6, ErrInvalid, `"debezium-protobuf" is not one of "debezium-json", "debezium-avro", "cdcsync-json", "cdcsync-avro", "webhook" or "debezium-outbox"`},
		{"bad guarantee", withLine(27, "guarantee: exactly-once"),
			"guarantee", 27, ErrInvalid, `"exactly-once" is not one of "at_least_once" or "exactly_once"`},
		{"bad tombstones", withLine(7, "  tombstones: keep"),
			"source.tombstones", 7, ErrInvalid, `"keep" is not one of "pass" or "drop"`},
		{"missing format", withLine(6, ""),
			"source.format", 3, ErrMissing, "required"},
		{"invalid regexp", withLine(4, `  topic_pattern: 'erp\.(public'`),
			"source.topic_pattern", 4, ErrInvalid, "invalid regexp"},
		{"both topics and topic_pattern", withLine(4, "  topics: [erp.public.contacts]\n  topic_pattern: 'erp\\..*'"),
			"source.topic_pattern", 5, ErrInvalid, "cannot be used together with source.topics"},
		{"neither topics nor topic_pattern", withLine(4, ""),
			"source", 3, ErrMissing, "one of source.topics or source.topic_pattern is required"},
		{"illegal source topic", withLine(4, "  topics: [erp/contacts]"),
			"source.topics[0]", 4, ErrInvalid, `illegal character '/'`},
		{"duplicate source topic", withLine(4, "  topics: [erp.a, erp.a]"),
			"source.topics[1]", 4, ErrInvalid, `duplicate topic "erp.a"`},
		{"source system not declared", withLine(5, "  system: sap"),
			"source.system", 5, ErrInvalid, `"sap" is not a declared system (systems: erp, crm)`},
		{"missing name", withLine(1, ""),
			"name", 0, ErrMissing, "required"},
		{"bad name", withLine(1, "name: Contacts ERP"),
			"name", 1, ErrInvalid, "must match [a-z0-9][a-z0-9._-]*"},
		{"duplicate system", withLine(2, "systems: [erp, crm, erp]"),
			"systems[2]", 2, ErrInvalid, `duplicate system "erp"`},
		{"dedup field without key field", withLine(9, "  key: position\n  field: id"),
			"dedup.field", 10, ErrInvalid, "only valid with dedup.key: field"},
		{"dedup key field without field", withLine(9, "  key: field"),
			"dedup.field", 8, ErrMissing, "required when dedup.key is field"},
		{"subject strategy with json", withLine(21, "  format: json\n  subject_strategy: record"),
			"sink.subject_strategy", 22, ErrInvalid, "only applies to sink.format: avro"},
		{"commit interval with at_least_once", validDoc + "commit_interval: 1s\n",
			"commit_interval", 28, ErrInvalid, "only applies to guarantee: exactly_once"},
		{"retry max below initial", withLine(25, "  retry: {initial: 1m, max: 30s}"),
			"errors.retry.max", 25, ErrInvalid, "30s is less than errors.retry.initial (1m0s)"},
		{"retry multiplier below 1", withLine(25, "  retry: {multiplier: 0.5}"),
			"errors.retry.multiplier", 25, ErrInvalid, "at least 1"},
		{"retry multiplier not a number", withLine(25, "  retry: {multiplier: fast}"),
			"errors.retry.multiplier", 25, ErrInvalid, `invalid number "fast"`},
		{"negative max elapsed", withLine(25, "  retry: {max_elapsed: -1s}"),
			"errors.retry.max_elapsed", 25, ErrInvalid, "must be 0 (retry forever) or greater"},
		{"breaker failures zero", withLine(25, "  breaker: {failures: 0}"),
			"errors.breaker.failures", 25, ErrInvalid, "must be at least 1, got 0"},
		{"breaker failures not a number", withLine(25, "  breaker: {failures: many}"),
			"errors.breaker.failures", 25, ErrInvalid, `invalid whole number "many"`},
		{"breaker open zero", withLine(25, "  breaker: {open: 0s}"),
			"errors.breaker.open", 25, ErrInvalid, "must be greater than 0, got 0s"},
		{"breaker open negative", withLine(25, "  breaker: {open: -1s}"),
			"errors.breaker.open", 25, ErrInvalid, "must be greater than 0"},
		{"breaker open not a duration", withLine(25, "  breaker: {open: soon}"),
			"errors.breaker.open", 25, ErrInvalid, `invalid duration "soon"`},
		{"bad tolerance", withLine(26, "  tolerance: some"),
			"errors.tolerance", 26, ErrInvalid, `"some" is not one of "all" or "none"`},
		{"dlq topic is a source topic", withLine(23, "  topic: erp.public.contacts"),
			"dlq.topic", 23, ErrInvalid, "consume its own dead letters"},
		// Regression (issue 9): sink.topic could be the DLQ topic, the
		// topology's own ledger or (up to Kafka's '.'/'_' collision) a
		// source topic, and dlq.topic could be the ledger: the topology
		// then wrote sync records into its ledger or counted good events
		// as dead letters. Each is refused at load time.
		{"sink topic is the dlq topic", withLine(19, "  topic: dlq.contacts"),
			"sink.topic", 19, ErrInvalid, `"dlq.contacts" is the DLQ topic "dlq.contacts": sync records would be counted as dead letters`},
		{"sink topic collides with the dlq topic", withLine(19, "  topic: dlq_contacts"),
			"sink.topic", 19, ErrInvalid, `"dlq_contacts" collides with the DLQ topic "dlq.contacts" (Kafka treats '.' and '_' in topic names as the same)`},
		{"sink topic is the default dlq topic", strings.Replace(withLine(19, "  topic: dlq.contacts-erp-to-crm"), "dlq:\n  topic: dlq.contacts\n", "", 1),
			"sink.topic", 19, ErrInvalid, `is the DLQ topic "dlq.contacts-erp-to-crm"`},
		{"sink topic is the ledger", withLine(19, "  topic: contacts-erp-to-crm.ledger"),
			"sink.topic", 19, ErrInvalid, `"contacts-erp-to-crm.ledger" is the topology's ledger topic "contacts-erp-to-crm.ledger": sync records would corrupt the dedup ledger`},
		{"sink topic collides with the ledger", withLine(19, "  topic: contacts-erp-to-crm_ledger"),
			"sink.topic", 19, ErrInvalid, `collides with the topology's ledger topic "contacts-erp-to-crm.ledger"`},
		{"sink topic collides with a source topic", withLine(19, "  topic: erp_public.contacts"),
			"sink.topic", 19, ErrInvalid, `"erp_public.contacts" collides with source.topics[0] "erp.public.contacts" (Kafka treats '.' and '_' in topic names as the same): the topology would consume its own output`},
		{"sink topic matched by the source pattern", strings.Replace(withLine(4, "  topic_pattern: 'erp\\..*'"), "topic: sync.{entity}", "topic: erp.sync.contacts", 1),
			"sink.topic", 19, ErrInvalid, `"erp.sync.contacts" is also a source topic: the topology would consume its own output`},
		{"sink template too long for any table", withLine(19, "  topic: "+strings.Repeat("s", 246)+".{db}.{table}"),
			"sink.topic", 19, ErrInvalid, "so every topic it gives is at least 250 bytes, longer than Kafka's topic name limit of 249"},
		{"dlq topic is the ledger", withLine(23, "  topic: contacts-erp-to-crm.ledger"),
			"dlq.topic", 23, ErrInvalid, `"contacts-erp-to-crm.ledger" is the topology's ledger topic "contacts-erp-to-crm.ledger": dead letters would corrupt the dedup ledger`},
		{"dlq topic collides with the ledger", withLine(23, "  topic: contacts-erp-to-crm_ledger"),
			"dlq.topic", 23, ErrInvalid, `collides with the topology's ledger topic`},
		{"dlq topic collides with a source topic", withLine(23, "  topic: erp_public_contacts"),
			"dlq.topic", 23, ErrInvalid, `"erp_public_contacts" collides with source.topics[0] "erp.public.contacts" (Kafka treats '.' and '_' in topic names as the same): the topology would consume its own dead letters`},
		{"source topic is the ledger", withLine(4, "  topics: [contacts-erp-to-crm.ledger]"),
			"source.topics[0]", 4, ErrInvalid, `is the topology's own ledger topic "contacts-erp-to-crm.ledger": the topology would consume its dedup ledger`},
		{"source pattern matches the ledger", withLine(4, "  topic_pattern: 'contacts-.*'"),
			"source.topic_pattern", 4, ErrInvalid, `"contacts-.*" matches the topology's own ledger topic "contacts-erp-to-crm.ledger"`},
		{"section not a mapping", strings.Replace(validDoc, "dlq:\n  topic: dlq.contacts\n", "dlq: dlq.contacts\n", 1),
			"dlq", 22, ErrInvalid, `must be a mapping, not "dlq.contacts"`},
		{"duplicate key in file", validDoc + "name: other\n",
			"name", 28, ErrSyntax, "duplicate key (first at line 1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("contacts.yaml", []byte(tc.doc))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not an Errors", err)
			}
			if len(errs) != 1 {
				t.Fatalf("want 1 problem, got %d:\n%v", len(errs), err)
			}
			e := errs[0]
			if e.File != "contacts.yaml" || e.Field != tc.field || e.Line != tc.line {
				t.Errorf("got %s:%d %s, want contacts.yaml:%d %s (%v)", e.File, e.Line, e.Field, tc.line, tc.field, e)
			}
			if !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", e.Reason, tc.reason)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error does not wrap %v: %v", tc.kind, e.Err)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse("contacts.yaml", []byte(withLine(13, "    email: crmx")))
	want := `contacts.yaml:13: authority.owners.email: owner "crmx" is not a declared system (systems: erp, crm)`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Field != "authority.owners.email" {
		t.Errorf("errors.As(*Error) = %v", e)
	}
}

// TestAllErrorsCollected checks that one file with many problems reports
// each of them, in line order.
func TestAllErrorsCollected(t *testing.T) {
	_, err := LoadFile("testdata/invalid/broken.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("not an Errors: %v", err)
	}
	want := []struct {
		line  int
		field string
	}{
		{1, "name"},
		{5, "source.topic_pattern"}, // both topics and pattern
		{5, "source.topic_pattern"}, // invalid regexp
		{7, "source.format"},
		{9, "dedup.window"},
		{11, "authority.owners.email"},
		{13, "sink.topic"},
		{14, "sink.key[1]"},
		{15, "sink.partitions"},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if errs[i].Line != w.line || errs[i].Field != w.field || errs[i].File != "testdata/invalid/broken.yaml" {
			t.Errorf("problem %d: got %v, want line %d field %s", i, errs[i], w.line, w.field)
		}
	}
}

func TestFileLevelErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		line      int
		kind      error
		reason    string
	}{
		{"empty file", "", 0, ErrMissing, "empty file"},
		{"only comments", "# nothing yet\n", 0, ErrMissing, "empty file"},
		{"unclosed list", "name: x\nsystems: [erp\nsource: {}\n", 2, ErrSyntax, "invalid YAML: did not find expected ',' or ']'"},
		{"missing colon", "name: x\nsystems\nsource: {}\n", 2, ErrSyntax, "invalid YAML: could not find expected ':'"},
		{"bad indentation", "name: x\n  systems: [erp]\n", 2, ErrSyntax, "invalid YAML: mapping values are not allowed"},
		{"tab indentation", "source:\n\tsystem: erp\n", 2, ErrSyntax, "found character that cannot start any token"},
		{"tab indentation on line 1", "\tname: x\n", 1, ErrSyntax, "YAML does not allow tabs for indentation"},
		{"top level list", "- name: x\n", 1, ErrSyntax, "must be a mapping"},
		{"two documents", validDoc + "---\nname: other\n", 28, ErrSyntax, "more than one YAML document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.doc))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			e := errs[0]
			if e.Line != tc.line || e.Field != "" || !strings.Contains(e.Reason, tc.reason) || !errors.Is(e, tc.kind) {
				t.Errorf("got %v (line %d, kind %v), want line %d, %v, reason containing %q", e, e.Line, e.Err, tc.line, tc.kind, tc.reason)
			}
		})
	}
}

const minimalDoc = `name: minimal
systems: [erp]
source: {topics: [erp.public.t], system: erp, format: debezium-avro}
sink: {topic: out, key: [id]}
`

// TestDefaults pins every default.
func TestDefaults(t *testing.T) {
	for name, doc := range map[string]string{
		"omitted": minimalDoc,
		"null":    minimalDoc + "dedup:\nauthority:\ndlq:\nerrors: {retry: }\nguarantee:\ncommit_interval:\n",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := Parse("minimal.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}
			check("Group", p.Group(), GroupID("cdcsync.minimal"))
			check("LedgerTopic", p.LedgerTopic(), Topic("minimal.ledger"))
			check("DLQTopic", p.DLQTopic(), Topic("dlq.minimal"))
			check("Tombstones", p.Tombstones(), TombstonesPass)
			check("Dedup", p.Dedup(), Dedup{Key: DedupPosition, Window: 168 * time.Hour})
			check("len(Owners)", len(p.Owners()), 0)
			check("Owners nil", p.Owners() == nil, false)
			check("DefaultOwner", p.DefaultOwner(), System("erp"))
			check("Owner(any)", p.Owner("any"), System("erp"))
			check("OnViolation", p.OnViolation(), ViolationDropField)
			check("SinkFormat", p.SinkFormat(), SinkJSON)
			check("SubjectStrategy", p.SubjectStrategy(), SubjectTopic)
			check("Retry", p.Retry(), Retry{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, MaxElapsed: 0})
			check("Breaker", p.Breaker(), Breaker{Failures: 5, Open: time.Second})
			check("Tolerance", p.Tolerance(), TolerateAll)
			check("Guarantee", p.Guarantee(), AtLeastOnce)
			check("CommitInterval", p.CommitInterval(), 100*time.Millisecond)
		})
	}
}

func TestNewConfigDefaults(t *testing.T) {
	c := NewConfig()
	if c.Dedup != (Dedup{Key: DedupPosition, Window: 168 * time.Hour}) ||
		c.Errors != (ErrorPolicy{Retry: Retry{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2},
			Breaker: Breaker{Failures: 5, Open: time.Second}, Tolerance: TolerateAll}) ||
		c.Guarantee != AtLeastOnce || c.CommitInterval != 100*time.Millisecond ||
		c.Source.Tombstones != TombstonesPass || c.Authority.OnViolation != ViolationDropField ||
		c.Sink.Format != SinkJSON || c.Sink.SubjectStrategy != SubjectTopic {
		t.Errorf("NewConfig() = %+v", c)
	}
}

// TestConfigInCode compiles a Config built in code: no file, no lines, and
// Compile leaves the Config unchanged.
func TestConfigInCode(t *testing.T) {
	c := NewConfig()
	c.Name = "in-code"
	c.Systems = []System{"erp", "crm"}
	c.Source = Source{Topics: []Topic{"erp.t"}, System: "erp", Format: DebeziumJSON}
	c.Sink = Sink{Topic: "out.{table}", Key: []string{"id"}}
	c.Authority.Owners = map[string]System{"email": "crm"}
	p, err := c.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if c.DLQ.Topic != "" || c.Authority.DefaultOwner != "" {
		t.Errorf("Compile changed the Config: %+v", c)
	}
	if p.DLQTopic() != "dlq.in-code" || p.DefaultOwner() != "erp" {
		t.Errorf("derived defaults: dlq %q owner %q", p.DLQTopic(), p.DefaultOwner())
	}

	c.Authority.Owners["email"] = "erp"
	c.Sink.Key[0] = "changed"
	if p.Owner("email") != "crm" || p.SinkKey()[0] != "id" {
		t.Error("changing the Config after Compile changed the Plan")
	}

	c.CommitInterval = time.Second // not the default, and at_least_once
	err = c.Validate()
	var e *Error
	if !errors.As(err, &e) || e.Field != "commit_interval" || e.Line != 0 || e.File != "" {
		t.Errorf("Validate = %v", err)
	}
	if want := "commit_interval: only applies to guarantee: exactly_once (guarantee is at_least_once)"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestPlanAccessorsReturnCopies(t *testing.T) {
	p, err := Parse("contacts.yaml", []byte(validDoc))
	if err != nil {
		t.Fatal(err)
	}
	p.SinkKey()[0] = "x"
	p.SourceTopics()[0] = "x"
	p.Systems()[0] = "x"
	p.Owners()["email"] = "erp"
	if p.SinkKey()[0] != "contact_id" || p.SourceTopics()[0] != "erp.public.contacts" ||
		p.Systems()[0] != "erp" || p.Owner("email") != "crm" {
		t.Error("a returned slice or map aliases the plan")
	}
}

func TestMatchesTopic(t *testing.T) {
	p, err := Parse("p.yaml", []byte(withLine(4, `  topic_pattern: 'erp\.public\..*'`)))
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{
		"erp.public.contacts":       true,
		"erp.public.":               true,
		"xerp.public.contacts":      false, // anchored at the start
		"erp.publicXcontacts":       false,
		"staging.erp.public.orders": false,
	} {
		if got := p.MatchesTopic(topic); got != want {
			t.Errorf("MatchesTopic(%q) = %v, want %v", topic, got, want)
		}
	}
	if p.SourceTopics() != nil || p.SourcePattern() != `erp\.public\..*` {
		t.Errorf("SourceTopics %v SourcePattern %q", p.SourceTopics(), p.SourcePattern())
	}
	// A pattern that only matches a prefix must not match a longer name.
	p, err = Parse("p.yaml", []byte(withLine(4, `  topic_pattern: 'erp\.a|erp\.b'`)))
	if err != nil {
		t.Fatal(err)
	}
	if p.MatchesTopic("erp.ab") || !p.MatchesTopic("erp.b") {
		t.Error("alternation is not anchored as a whole")
	}

	p, err = Parse("p.yaml", []byte(validDoc))
	if err != nil {
		t.Fatal(err)
	}
	if !p.MatchesTopic("erp.public.contacts") || p.MatchesTopic("erp.public.contacts2") {
		t.Error("listed topics")
	}
}

func TestEnumStrings(t *testing.T) {
	for _, tc := range []struct {
		v    interface{ String() string }
		want string
	}{
		{DebeziumJSON, "debezium-json"}, {DebeziumAvro, "debezium-avro"}, {FormatUnset, "Format(0)"},
		{TombstonesPass, "pass"}, {TombstonesDrop, "drop"},
		{DedupPosition, "position"}, {DedupContent, "content"}, {DedupField, "field"},
		{ViolationDropField, "drop_field"}, {ViolationDLQ, "dlq"},
		{SinkJSON, "json"}, {SinkAvro, "avro"},
		{SubjectTopic, "topic"}, {SubjectRecord, "record"}, {SubjectTopicRecord, "topic-record"},
		{TolerateAll, "all"}, {TolerateNone, "none"},
		{AtLeastOnce, "at_least_once"}, {ExactlyOnce, "exactly_once"}, {Guarantee(7), "Guarantee(7)"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.v, got, tc.want)
		}
	}
}
