package topology

// A topology with source.format debezium-outbox reads a transactional
// outbox table (docs/outbox.md). Its events are not row changes: the
// event ID is the outbox id, the key the aggregate ID, the entity the
// aggregate type, and there are no fields of a system of record to own.
// The options that only make sense for row changes are refused with the
// reason, so nobody believes they do something.

// IsOutbox reports whether the topology reads a transactional outbox.
func (p *Plan) IsOutbox() bool { return p.cfg.Source.Format == DebeziumOutbox }

// uses reports whether the template has the placeholder.
func (t template) uses(ph placeholder) bool {
	for _, p := range t.parts {
		if p.ph == ph {
			return true
		}
	}
	return false
}

// outbox checks the options that concern outbox topologies: the ones an
// outbox topology refuses, and the ones only an outbox topology has.
func (v *validator) outbox() {
	c := v.c
	t, reason := parseTemplate(c.Sink.Topic)
	parsed := c.Sink.Topic != "" && reason == ""
	if c.Source.Format != DebeziumOutbox {
		if c.Sink.Format == SinkPayload {
			v.add("sink.format", ErrInvalid, "payload only applies to source.format: debezium-outbox (source.format is %v): a row change has no single payload", c.Source.Format)
		}
		if parsed && t.uses(phAggregateType) {
			v.add("sink.topic", ErrInvalid, "{aggregatetype} only applies to source.format: debezium-outbox (source.format is %v); use {entity}", c.Source.Format)
		}
		return
	}
	for _, s := range []struct{ path, why string }{
		{"dedup.key", "the event ID of an outbox event is its outbox id, so a redelivery and a business retry reusing the id are dropped"},
		{"dedup.field", "the event ID of an outbox event is its outbox id"},
		{"authority", "outbox events are not row changes of a system of record: there are no owned fields to filter"},
		{"sink.key", "the key of an outbox event is its aggregateid, so one aggregate's events stay in order on one partition"},
		{"source.tombstones", "tombstones of an outbox topic are the table's cleanup and are always ignored (counted in cdcsync_outbox_ignored_total)"},
		{"source.truncate", "a truncate of the outbox table is its cleanup and is always ignored (counted in cdcsync_outbox_ignored_total)"},
	} {
		if c.written[s.path] {
			v.add(s.path, ErrInvalid, "has no meaning for source.format: debezium-outbox: %s", s.why)
		}
	}
	if parsed {
		for _, ph := range []struct {
			ph   placeholder
			name string
		}{{phDB, "db"}, {phSchema, "schema"}, {phTable, "table"}} {
			if t.uses(ph.ph) {
				v.add("sink.topic", ErrInvalid, "{%s} has no meaning for source.format: debezium-outbox (a record transformed by the EventRouter has no table); use {aggregatetype}, e.g. outbox.event.{aggregatetype}", ph.name)
			}
		}
	}
}
