package topology

import (
	"maps"
	"regexp"
	"slices"
	"time"
)

// Plan is a compiled, validated topology. It is immutable and safe for
// concurrent use: accessors return copies of slices and maps.
type Plan struct {
	cfg     *Config        // private copy, derived defaults filled in
	pattern *regexp.Regexp // anchored source.topic_pattern; nil when topics are listed
	sink    template
}

// Compile validates c and compiles it into a Plan. It fills in the derived
// defaults (dlq.topic, authority.default_owner) on a copy, so c is left
// unchanged. The error, if any, is an Errors listing every problem.
func (c *Config) Compile() (*Plan, error) {
	return c.compile()
}

func (c *Config) compile() (*Plan, error) {
	p, errs := c.compileErrs()
	if len(errs) > 0 {
		errs.sortByLine()
		return nil, errs
	}
	return p, nil
}

func (c *Config) compileErrs() (*Plan, Errors) {
	cfg := c.withDerivedDefaults()
	if errs := cfg.validate(); len(errs) > 0 {
		return nil, errs
	}
	p := &Plan{cfg: cfg}
	if cfg.Source.TopicPattern != "" {
		p.pattern, _ = compilePattern(cfg.Source.TopicPattern) // validated
	}
	p.sink, _ = parseTemplate(cfg.Sink.Topic) // validated
	return p, nil
}

// Name is the topology name.
func (p *Plan) Name() string { return p.cfg.Name }

// File is the file the topology was loaded from, as named to Load,
// LoadFile or Parse; empty for a Config compiled in code.
func (p *Plan) File() string { return p.cfg.file }

// Group is the consumer group, "cdcsync.<name>". Each topology has its own
// group so pipelines scale and fail independently.
func (p *Plan) Group() GroupID { return GroupID("cdcsync." + p.cfg.Name) }

// LedgerTopic is the compacted dedup ledger topic, "<name>.ledger".
func (p *Plan) LedgerTopic() Topic { return Topic(p.cfg.Name + ".ledger") }

// DLQTopic is the dead-letter topic, "dlq.<name>" unless dlq.topic is set.
func (p *Plan) DLQTopic() Topic { return p.cfg.DLQ.Topic }

// Systems are the declared systems of record, in file order.
func (p *Plan) Systems() []System { return slices.Clone(p.cfg.Systems) }

// SourceTopics are the listed source topics, or nil when the topology uses
// a topic pattern.
func (p *Plan) SourceTopics() []Topic { return slices.Clone(p.cfg.Source.Topics) }

// SourcePattern is source.topic_pattern as written, or "" when topics are
// listed. The pattern matches whole topic names; use MatchesTopic.
func (p *Plan) SourcePattern() string { return p.cfg.Source.TopicPattern }

// MatchesTopic reports whether the topology consumes topic t: t is listed,
// or the pattern matches all of t.
func (p *Plan) MatchesTopic(t string) bool {
	if p.pattern != nil {
		return p.pattern.MatchString(t)
	}
	return slices.Contains(p.cfg.Source.Topics, Topic(t))
}

// SourceSystem is the system of record the source topics come from.
func (p *Plan) SourceSystem() System { return p.cfg.Source.System }

// Format is the encoding of the source topics.
func (p *Plan) Format() Format { return p.cfg.Source.Format }

// Tombstones is the tombstone policy.
func (p *Plan) Tombstones() Tombstones { return p.cfg.Source.Tombstones }

// Truncate is the truncate policy.
func (p *Plan) Truncate() Truncate { return p.cfg.Source.Truncate }

// Dedup is how event IDs are derived and how long the ledger keeps them.
func (p *Plan) Dedup() Dedup { return p.cfg.Dedup }

// Owner is the system that owns field: its entry in authority.owners, or
// the default owner.
func (p *Plan) Owner(field string) System {
	if s, ok := p.cfg.Authority.Owners[field]; ok {
		return s
	}
	return p.cfg.Authority.DefaultOwner
}

// Owners is a copy of authority.owners (never nil).
func (p *Plan) Owners() map[string]System {
	if p.cfg.Authority.Owners == nil {
		return map[string]System{}
	}
	return maps.Clone(p.cfg.Authority.Owners)
}

// DefaultOwner owns every field not in Owners; source.system unless
// authority.default_owner is set.
func (p *Plan) DefaultOwner() System { return p.cfg.Authority.DefaultOwner }

// OnViolation is what happens to changed fields the source does not own.
func (p *Plan) OnViolation() OnViolation { return p.cfg.Authority.OnViolation }

// SinkTopicTemplate is sink.topic as written.
func (p *Plan) SinkTopicTemplate() string { return p.cfg.Sink.Topic }

// SinkTopic expands the sink topic template for one event. It allocates at
// most once and does not check that the result is a legal topic name: a
// database, schema or table name with characters Kafka forbids gives a
// topic the producer rejects, a permanent failure for that record.
func (p *Plan) SinkTopic(db, schema, table, entity string) string {
	return p.sink.expand(db, schema, table, entity)
}

// SinkKey are the partition-key fields, in order.
func (p *Plan) SinkKey() []string { return slices.Clone(p.cfg.Sink.Key) }

// SinkFormat is the encoding of output records.
func (p *Plan) SinkFormat() SinkFormat { return p.cfg.Sink.Format }

// SubjectStrategy is the schema registry subject naming strategy for Avro
// output.
func (p *Plan) SubjectStrategy() SubjectStrategy { return p.cfg.Sink.SubjectStrategy }

// PropagateHeaders names the source record headers copied onto sink
// records (sink.headers.propagate); empty copies none.
func (p *Plan) PropagateHeaders() []string { return slices.Clone(p.cfg.Sink.Headers.Propagate) }

// PropagatesHeader reports whether a source header named key is copied
// onto sink records. It does not allocate: the processor asks it for
// every header of every record.
func (p *Plan) PropagatesHeader(key []byte) bool {
	for _, h := range p.cfg.Sink.Headers.Propagate {
		if string(key) == h {
			return true
		}
	}
	return false
}

// Retry is the backoff for transient failures.
func (p *Plan) Retry() Retry { return p.cfg.Errors.Retry }

// Breaker is the circuit breaker setting of each dependency.
func (p *Plan) Breaker() Breaker { return p.cfg.Errors.Breaker }

// Tolerance is what a permanent failure does.
func (p *Plan) Tolerance() Tolerance { return p.cfg.Errors.Tolerance }

// Guarantee is the processing guarantee.
func (p *Plan) Guarantee() Guarantee { return p.cfg.Guarantee }

// CommitInterval is how often an exactly-once transaction commits. It has
// no effect under at-least-once.
func (p *Plan) CommitInterval() time.Duration { return p.cfg.CommitInterval }
