package schemas

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/cdcsync/cdcsync/topology"
)

// Finding is one line of a pre-deploy check: what was checked and whether
// it passed.
type Finding struct {
	OK      bool
	Subject string // the registry subject checked, if any
	Key     string // the topology key concerned, e.g. "authority.owners.email"
	Message string
}

func (f Finding) String() string {
	status := "ok  "
	if !f.OK {
		status = "FAIL"
	}
	var b strings.Builder
	b.WriteString(status)
	if f.Subject != "" {
		b.WriteString("  " + f.Subject)
	}
	if f.Key != "" {
		b.WriteString("  " + f.Key)
	}
	b.WriteString(": " + f.Message)
	return b.String()
}

// CheckPlan is the pre-deploy gate of `cdcsync schemas check`. Against the
// live registry it verifies that every field the topology references
// (authority owners, sink key fields, a dedup ID field) exists in the
// latest version of each source topic's subjects ("<topic>-value" and
// "<topic>-key", Debezium's default), and, for sink.format: avro, that
// EventSchema may be registered under each output subject at the
// subject's compatibility level. Problems are Findings with OK false; the
// error is only for a registry that cannot answer (wrapping
// cdc.ErrRegistryUnavailable).
func CheckPlan(c *Client, p *topology.Plan) ([]Finding, error) {
	var out []Finding
	topics := p.SourceTopics()
	if len(topics) == 0 {
		out = append(out, Finding{OK: true, Key: "source.topic_pattern",
			Message: "a topic pattern names no subjects; source fields and output subjects are not checked (list source.topics to check them)"})
		return out, nil
	}
	refs := referencedFields(p)
	for _, topic := range topics {
		if p.Format() == topology.DebeziumAvro {
			fs, err := checkSourceFields(c, string(topic), refs)
			if err != nil {
				return out, err
			}
			out = append(out, fs...)
		} else if len(refs) > 0 {
			out = append(out, Finding{OK: true, Key: "source.format",
				Message: fmt.Sprintf("%s is not Avro: source fields of %s are not in the registry, not checked", p.Format(), topic)})
		}
		if p.SinkFormat() == topology.SinkAvro {
			f, err := checkOutput(c, p, string(topic))
			if err != nil {
				return out, err
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// referencedFields maps each field the topology names to the key that
// names it, sorted by key.
func referencedFields(p *topology.Plan) [][2]string {
	var refs [][2]string
	for f := range p.Owners() {
		refs = append(refs, [2]string{"authority.owners." + f, f})
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i][0] < refs[j][0] })
	for i, f := range p.SinkKey() {
		refs = append(refs, [2]string{fmt.Sprintf("sink.key[%d]", i), f})
	}
	if d := p.Dedup(); d.Key == topology.DedupField {
		refs = append(refs, [2]string{"dedup.field", d.Field})
	}
	return refs
}

func checkSourceFields(c *Client, topic string, refs [][2]string) ([]Finding, error) {
	valueSubject, keySubject := topic+"-value", KeySubject(topic)
	value, vver, err := c.Latest(valueSubject)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return []Finding{{Subject: valueSubject, Key: "source.topics", Message: "subject not in the registry (has the connector written to " + topic + " yet?)"}}, nil
		}
		return nil, err
	}
	names, err := rowFields(value)
	if err != nil {
		return []Finding{{Subject: valueSubject, Message: "latest schema unreadable: " + err.Error()}}, nil
	}
	if key, _, err := c.Latest(keySubject); err == nil {
		if kn, err := rowFields(key); err == nil {
			for _, k := range kn {
				if !slices.Contains(names, k) {
					names = append(names, k)
				}
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	var out []Finding
	var found []string
	for _, r := range refs {
		if slices.Contains(names, r[1]) {
			found = append(found, r[1])
			continue
		}
		out = append(out, Finding{Subject: valueSubject, Key: r[0],
			Message: fmt.Sprintf("field %q not in version %d (fields: %s)", r[1], vver, strings.Join(names, ", "))})
	}
	if len(out) == 0 {
		msg := fmt.Sprintf("version %d has every referenced field", vver)
		if len(found) > 0 {
			msg += " (" + strings.Join(slices.Compact(slices.Sorted(slices.Values(found))), ", ") + ")"
		}
		out = append(out, Finding{OK: true, Subject: valueSubject, Message: msg})
	}
	return out, nil
}

// rowFields lists the column names of a Debezium value schema (the fields
// of the after/before record) or, for any other record, its own fields.
func rowFields(text string) ([]string, error) {
	s, err := parse(text)
	if err != nil {
		return nil, err
	}
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("not a record but %s", s.Type())
	}
	for _, name := range []string{"after", "before"} {
		for _, f := range rec.Fields() {
			if f.Name() != name {
				continue
			}
			if r := recordOf(f.Type()); r != nil {
				return fieldNames(r), nil
			}
		}
	}
	return fieldNames(rec), nil
}

func recordOf(s avro.Schema) *avro.RecordSchema {
	switch x := s.(type) {
	case *avro.RecordSchema:
		return x
	case *avro.RefSchema:
		return recordOf(x.Schema())
	case *avro.UnionSchema:
		for _, t := range x.Types() {
			if r := recordOf(t); r != nil {
				return r
			}
		}
	}
	return nil
}

func fieldNames(r *avro.RecordSchema) []string {
	out := make([]string, 0, len(r.Fields()))
	for _, f := range r.Fields() {
		out = append(out, f.Name())
	}
	return out
}

// topicParts reads a Debezium topic name, prefix.schema.table or
// prefix.db.schema.table, for the sink topic template.
func topicParts(topic string) (db, schema, table string) {
	parts := strings.Split(topic, ".")
	switch len(parts) {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", "", parts[1]
	case 3:
		return "", parts[1], parts[2]
	}
	return parts[1], strings.Join(parts[2:len(parts)-1], "."), parts[len(parts)-1]
}

func checkOutput(c *Client, p *topology.Plan, source string) (Finding, error) {
	db, schema, table := topicParts(source)
	sink := p.SinkTopic(db, schema, table, table)
	subject := Subject(p.SubjectStrategy(), sink, EventRecordName)
	f := Finding{Subject: subject, Key: "sink.format"}
	if r, err := c.Lookup(subject, EventSchema); err == nil {
		f.OK, f.Message = true, fmt.Sprintf("output schema registered as ID %d version %d", r.ID, r.Version)
		return f, nil
	} else if !errors.Is(err, ErrNotFound) {
		return f, err
	}
	err := c.CheckSubject(subject, EventSchema)
	var ie *IncompatibleError
	switch {
	case err == nil:
		f.OK, f.Message = true, "output schema is compatible; it will be registered at start"
	case errors.As(err, &ie):
		f.Message = fmt.Sprintf("output schema is incompatible under %s with version %d: %s", ie.Level, ie.Version, ie.Reason)
	case errors.Is(err, ErrInvalidSchema):
		f.Message = err.Error()
	default:
		return f, err
	}
	return f, nil
}
