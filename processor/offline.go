package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// Offline runs source records through a topology's real stages (decode,
// dedup, authority, route, encode) with no broker (and for Avro, the
// registry it is given): what a worker would
// write is returned instead of produced. `cdcsync topology test` uses it
// to check fixtures. Each source partition number has its own in-memory
// ledger, as a worker's claims do, kept across calls to Process, so a
// record given twice is a duplicate the second time.
//
// An Offline is not safe for concurrent use.
type Offline struct {
	p      *pipeline
	claims map[int32]*claimCtx
	em     *offlineEmitter
}

// ErrOfflineFormat is returned by NewOffline for a topology whose source
// or sink format is Avro when no registry is given.
var ErrOfflineFormat = errors.New("processor: an Avro topology needs a schema registry, even offline")

// Outcomes of an offline run (OfflineResult.Outcome).
const (
	OutcomeSink          = "sink"           // sink records written (Records)
	OutcomeDLQ           = "dlq"            // the source record went to the DLQ (Stage, Err, Records: the DLQ record)
	OutcomeDuplicate     = "duplicate"      // dropped by the dedup ledger
	OutcomeAuthorityDrop = "authority_drop" // dropped: nothing the source system owns changed
	OutcomeTombstoneDrop = "tombstone_drop" // a tombstone dropped (source.tombstones: drop, or no sink key in the record key)
	OutcomeTruncateDrop  = "truncate_drop"  // a truncate dropped (source.truncate: drop)
	OutcomeNotHandled    = "not_handled"    // a transient or fatal failure (Err): a worker would retry or stop
)

// OfflineResult is what the stages made of one source record.
type OfflineResult struct {
	Outcome string
	Stage   string // OutcomeDLQ: the DLQ stage
	Err     error  // OutcomeDLQ and OutcomeNotHandled: why
	// Records are the sink records (OutcomeSink) or the DLQ record
	// (OutcomeDLQ), as the worker would produce them; the ledger entry is
	// not included.
	Records []*sarama.ProducerMessage
}

// NewOffline prepares an offline run of plan. Sink topics are taken to
// have sinkPartitions partitions (a truncate goes to each); 0 means 1.
// registry is needed by Avro topologies (debezium-avro sources read
// writer schemas from it, Avro sinks register theirs in it), and may be
// nil for JSON ones; `cdcsync topology test` gives an in-process one.
func NewOffline(plan *topology.Plan, sinkPartitions int32, registry *schemas.Client, log *zap.Logger) (*Offline, error) {
	if registry == nil && (plan.Format() != topology.DebeziumJSON || plan.SinkFormat() != topology.SinkJSON) {
		return nil, fmt.Errorf("%w: topology %s has source.format %s and sink.format %s", ErrOfflineFormat,
			plan.Name(), plan.Format(), plan.SinkFormat())
	}
	p, err := newPipeline(plan, DefaultConfig(), nil, registry, newMetrics(prometheus.NewRegistry()), log)
	if err != nil {
		return nil, err
	}
	for _, t := range plan.SourceTopics() {
		p.topics = append(p.topics, string(t))
	}
	p.partitions = max(sinkPartitions, 1)
	return &Offline{p: p, claims: map[int32]*claimCtx{}, em: &offlineEmitter{}}, nil
}

// Process runs msg through the stages, as the claim of its partition
// would, and returns the decision. msg.Topic must be a source topic of
// the topology.
func (o *Offline) Process(msg *sarama.ConsumerMessage) OfflineResult {
	c := o.claims[msg.Partition]
	if c == nil {
		c = &claimCtx{p: o.p, em: o.em, ps: &partState{idx: ledger.NewIndex(o.p.plan.Dedup().Window)}, ctx: context.Background(),
			log: o.p.log, process: o.p.metrics.process.WithLabelValues(o.p.plan.Name()), sinks: offlineSinks{o.p}}
		o.claims[msg.Partition] = c
	}
	s := o.p.stats
	dups, auth, tombs := s.Duplicates.Load(), s.AuthorityEvents.Load(), s.Tombstones.Load()
	o.em.last = offlineCall{}
	if err := c.handle(msg); err != nil {
		return OfflineResult{Outcome: OutcomeNotHandled, Err: err}
	}
	call := o.em.last
	switch {
	case call.kind == "emit" && len(call.outs) == 1 && call.outs[0].Topic == string(o.p.plan.DLQTopic()):
		m := call.outs[0]
		r := OfflineResult{Outcome: OutcomeDLQ, Records: call.outs}
		for _, h := range m.Headers {
			switch string(h.Key) {
			case "__connect.errors.stage":
				r.Stage = string(h.Value)
			case "__connect.errors.exception.message":
				r.Err = errors.New(string(h.Value))
			}
		}
		return r
	case call.kind == "emit":
		return OfflineResult{Outcome: OutcomeSink, Records: call.outs}
	case s.Duplicates.Load() > dups:
		return OfflineResult{Outcome: OutcomeDuplicate}
	case s.AuthorityEvents.Load() > auth:
		return OfflineResult{Outcome: OutcomeAuthorityDrop}
	case s.Tombstones.Load() > tombs:
		return OfflineResult{Outcome: OutcomeTombstoneDrop}
	}
	return OfflineResult{Outcome: OutcomeTruncateDrop}
}

// offlineSinks accepts every sink topic the pipeline's own check accepts,
// with the offline partition count.
type offlineSinks struct{ p *pipeline }

func (s offlineSinks) usable(topic string) (int32, error) {
	if err := s.p.checkSinkTopic(topic); err != nil {
		return 0, err
	}
	return s.p.partitions, nil
}

// offlineEmitter keeps the last thing the stages told it.
type offlineEmitter struct{ last offlineCall }

type offlineCall struct {
	kind string // skip, emit, retract
	outs []*sarama.ProducerMessage
}

func (e *offlineEmitter) begin(msg *sarama.ConsumerMessage, start time.Time) *record {
	r := &record{offset: msg.Offset, src: msg, start: start}
	r.first.r = r
	r.cur = &r.first
	return r
}
func (e *offlineEmitter) skip(*record) { e.last = offlineCall{kind: "skip"} }
func (e *offlineEmitter) emit(_ *record, _ *ledgerEntry, outs ...*sarama.ProducerMessage) {
	e.last = offlineCall{kind: "emit", outs: outs}
}
func (e *offlineEmitter) retract(*record, error) { e.last = offlineCall{kind: "retract"} }
