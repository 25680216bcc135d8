package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/authority"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/route"
	"github.com/cdcsync/cdcsync/topology"
)

// emitter takes what the stages make of one source record. The stages do
// not know how outputs are written or acknowledged: under at_least_once
// the emitter hands them to the shared async producer and tracks their
// acknowledgements (aloEmitter); under exactly_once it writes them into
// the claim's open transaction (txnEmitter).
type emitter interface {
	// begin registers a consumed record.
	begin(msg *sarama.ConsumerMessage, start time.Time) *record
	// skip finishes a record that writes nothing (a duplicate, an event
	// dropped by authority, a dropped tombstone).
	skip(r *record)
	// emit writes the outputs of a record (sink or DLQ records) and, when
	// ledger is not nil, the ledger entry that records them as applied.
	emit(r *record, ledger *ledgerEntry, outs ...*sarama.ProducerMessage)
	// retract takes back the record begin registered last, which the
	// stages did not handle because of err (transient or fatal): nothing
	// of it was emitted, and the claim loop decides what happens to it.
	retract(r *record, err error)
}

// claimCtx is what the claim goroutine needs to process records.
type claimCtx struct {
	p         *pipeline
	em        emitter
	ps        *partState
	ctx       context.Context
	log       *zap.Logger
	keys      interface{ Set(float64) }
	process   interface{ Observe(float64) }
	sinks     sinkTopics
	decision  authority.Decision // reused: its slices are consumed before the next record
	idBuf     []byte             // scratch of the row-state content ID (dedup.go), reused
	topic     topicMemo          // the last sink topic (sinkTopic)
	keyPlan   *topology.Plan     // the plan keyFields was read from (sinkKey)
	keyFields []string
	// owned: the claim loop hands the stages private copies of the
	// records (detach), which nothing writes to, so the decoder may keep
	// the event's strings in them instead of copying (cdc.OwnedDecoder).
	owned bool
	// scratch, when not nil, is the memory each record's event is
	// decoded in, reused from record to record (cdc.ReusingDecoder): the
	// at_least_once and exactly_once claim loops set it, with owned. See
	// stages for why no event outlives handle.
	scratch *cdc.Scratch
}

func (p *pipeline) newClaimCtx(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, ps *partState, em emitter) *claimCtx {
	name, part := p.plan.Name(), partitionLabel(claim.Partition())
	return &claimCtx{p: p, em: em, ps: ps, ctx: sess.Context(), sinks: p,
		keys:    p.metrics.ledgerKeys.WithLabelValues(name, part),
		process: p.metrics.process.WithLabelValues(name),
		log:     p.log.With(zap.String("topic", claim.Topic()), zap.Int32("partition", claim.Partition())),
	}
}

// expire drops ledger entries older than the dedup window.
func (c *claimCtx) expire() {
	c.ps.mu.Lock()
	n := c.ps.idx.Expire(c.p.now())
	keys := c.ps.idx.Len()
	c.ps.mu.Unlock()
	c.keys.Set(float64(keys))
	if n > 0 {
		c.log.Debug("expired ledger entries", zap.Int("expired", n))
	}
}

// outcome is what the stages decided for one consumed record.
type outcome uint8

const (
	// outEmit: write the outputs, and the ledger entry when the decision
	// says so.
	outEmit outcome = iota
	// outSkip: write nothing (a duplicate, an echo, a dropped tombstone or
	// truncate); the offset completes.
	outSkip
	// outDLQ: send the source record to the DLQ with the stage and error.
	outDLQ
	// outRetry: a dependency failed (transient) or the topology must stop
	// (fatal); nothing is written, the claim loop decides.
	outRetry
)

// skipReason says why a record writes nothing; each has its counter.
type skipReason uint8

const (
	skipDuplicate      skipReason = iota + 1 // the ledger has it (cdcsync_duplicates_total)
	skipAuthority                            // nothing owned changed (cdcsync_authority_dropped_events_total)
	skipTombstoneDrop                        // source.tombstones: drop
	skipTombstoneNoKey                       // the sink key is not part of the record key
	skipTruncateDrop                         // source.truncate: drop
	skipOutboxIgnored                        // debezium-outbox: not an event (outbox.go)
)

// decision is what the stages make of one consumed record. They compute
// it without side effects on the emitter, the ledger index or the stats:
// handle applies it.
type decision struct {
	outcome outcome
	skip    skipReason                // outSkip
	stage   string                    // outDLQ: the DLQ stage
	err     error                     // outDLQ: the failure; outRetry: transient or fatal
	ev      *cdc.Event                // nil when decode failed
	outs    []*sarama.ProducerMessage // outEmit
	blk     *sinkBlock                // outEmit of one keyed sink record: its block, recycled once done (sinkBlock)
	ledger  bool                      // outEmit: record the event in the ledger
	row     rowChange                 // outEmit with ledger: the row state it leaves
	dropped int                       // fields authority dropped
}

func skipped(reason skipReason, ev *cdc.Event) decision {
	return decision{outcome: outSkip, skip: reason, ev: ev}
}

func toDLQ(stage string, err error, ev *cdc.Event) decision {
	return decision{outcome: outDLQ, stage: stage, err: err, ev: ev}
}

func retry(err error) decision { return decision{outcome: outRetry, err: err} }

// sinkTopics makes sure an expanded sink topic may be written and exists,
// and knows its partition count. The pipeline implements it (ensureSink:
// checked and created once per topic, then a map lookup), so the stages
// call no admin client or metadata themselves. A permanent error means no
// retry can make the topic usable (a *SinkTopicError).
type sinkTopics interface {
	usable(topic string) (partitions int32, err error)
}

// usable implements sinkTopics.
func (p *pipeline) usable(topic string) (int32, error) {
	if err := p.ensureSink(topic); err != nil {
		return 0, err
	}
	return p.sinkPartitions(topic)
}

// handle runs one record through the stages and applies their decision
// through the emitter. It never waits for acknowledgements.
//
// It returns nil when the record was handled (emitted, skipped or sent to
// the DLQ). Otherwise nothing of it was emitted, the emitter has retracted
// it, and the error is transient (a dependency is unavailable: the claim
// loop holds the record and hands it again, see alo.go) or fatal (the
// topology stops). The in-memory ledger is changed only when the record
// is emitted: a retracted record left no trace in it.
func (c *claimCtx) handle(msg *sarama.ConsumerMessage) error {
	p := c.p
	start := p.now()
	p.stats.In.Add(1)
	r := c.em.begin(msg, start)
	d := c.stages(msg)
	if d.dropped > 0 {
		p.stats.AuthorityFields.Add(int64(d.dropped))
	}
	if d.ev != nil && d.ev.Tombstone {
		p.stats.Tombstones.Add(1)
	}
	if d.outcome == outDLQ && p.plan.Tolerance() == topology.TolerateNone {
		d = retry(fatal(fmt.Errorf("errors.tolerance is none and %s/%d@%d failed at %s: %w",
			msg.Topic, msg.Partition, msg.Offset, d.stage, d.err)))
	}
	switch d.outcome {
	case outSkip:
		switch d.skip {
		case skipDuplicate:
			p.stats.Duplicates.Add(1)
		case skipAuthority:
			p.stats.AuthorityEvents.Add(1)
		case skipOutboxIgnored:
			p.stats.OutboxIgnored.Add(1)
		case skipTruncateDrop:
			c.log.Info("truncate dropped (source.truncate: drop)", zap.Int64("offset", msg.Offset),
				zap.String("table", d.ev.Source.Table))
		case skipTombstoneNoKey:
			c.log.Debug("tombstone dropped: the sink key is not part of the record key", zap.Int64("offset", msg.Offset))
		}
		c.em.skip(r)
	case outDLQ:
		c.log.Warn("record sent to the DLQ", zap.Int64("offset", msg.Offset), zap.String("stage", d.stage), zap.Error(d.err))
		c.em.emit(r, nil, p.dlqRecord(msg, d.stage, d.err, d.ev))
	case outEmit:
		var led *ledgerEntry
		if d.ledger {
			c.ps.mu.Lock()
			led = c.ledgerRecord(d.ev, &d.row, msg, &r.led, start)
			c.ps.mu.Unlock()
		}
		c.process.Observe(since(start))
		r.blk = d.blk
		c.em.emit(r, led, d.outs...)
	case outRetry:
		c.em.retract(r, d.err)
		return d.err
	}
	return nil
}

// stages decodes, deduplicates, applies authority, routes and encodes one
// record, and returns the decision. It reads the ledger index but does
// not change it.
func (c *claimCtx) stages(msg *sarama.ConsumerMessage) decision {
	p := c.p
	if rj, ok := p.rejectedBefore(msg); ok {
		return c.rejectedBefore(msg, rj)
	}
	if p.outbox != nil {
		return c.outboxStages(msg) // outbox.go
	}

	// With c.scratch, ev is decoded in the memory of the previous
	// record's event, which nothing may reference any more. Audited:
	// what outlives handle is made of copies, never of ev's memory:
	//   - sink records: key, value and sinkHeaders' values are encoded
	//     into fresh buffers (a sinkBlock, or make when too long), the
	//     Avro encoder's headers are its registration's, propagated
	//     headers the detached record's;
	//   - DLQ records (dlqRecord): built from the record and a Failure of
	//     copies (ev.ID.String, err.Error); errors carry text formatted
	//     when made, or KeyError's Entity and Field (not ev's memory);
	//   - the ledger (rowOf, ledgerRecord, SetRow, Add): IDs are arrays;
	//   - c.decision's slices (authority.ApplyInto) have their own
	//     backing array and hold field names;
	//   - topicMemo, sinks.usable's and the Avro encoder's maps, the log
	//     fields: Source, Entity, Type, topic strings and field names,
	//     which the decoder interns or allocates on their own, never in
	//     the reused memory (cdc.ReusingDecoder lists what is);
	//   - heldTruncate and tombstone keep nothing across records; the
	//     outbox stages and the webhook decoder do not use the scratch.
	ev, err := p.decode(msg, c.owned, c.scratch)
	if err != nil {
		if classify(err) != Permanent {
			// Transient: retried. Fatal (the registry refused our
			// credentials, say): the topology stops. Never the DLQ.
			return retry(err)
		}
		return toDLQ(dlq.StageDecode, err, nil)
	}
	if ev.Tombstone {
		return c.tombstone(msg, ev)
	}

	row := c.rowOf(msg.Topic, ev)
	c.ps.mu.Lock()
	seen := c.duplicate(ev, &row, msg.Offset)
	c.ps.mu.Unlock()
	if seen {
		return skipped(skipDuplicate, ev)
	}

	d := &c.decision
	p.rules.ApplyInto(ev, d)
	dropped := len(d.Dropped)
	if d.Violation {
		dec := toDLQ(dlq.StageAuthority, fmt.Errorf("%w: %s changed fields it does not own: %v",
			ErrAuthorityViolation, ev.SourceSystem, d.Dropped), ev)
		dec.dropped = dropped
		return dec
	}
	if !d.Keep {
		dec := skipped(skipAuthority, ev)
		dec.dropped = dropped
		return dec
	}
	if ev.Op == cdc.OpTruncate && p.plan.Truncate() != topology.TruncatePass {
		return c.heldTruncate(ev)
	}

	dec := c.route(msg, ev, d.Fields)
	dec.dropped = dropped
	if dec.outcome == outEmit {
		dec.ledger, dec.row = true, row
	}
	return dec
}

// route builds the sink records of a kept change: its sink topic and key,
// its value (JSON or Avro) and headers; a truncate goes to every sink
// partition, a message to the source partition's number.
func (c *claimCtx) route(msg *sarama.ConsumerMessage, ev *cdc.Event, fields []string) decision {
	p := c.p
	topic := c.sinkTopic(ev)
	var key sarama.Encoder
	keyless := (ev.Op == cdc.OpTruncate || ev.Op == cdc.OpMessage) && len(ev.Key) == 0
	// The sink record, its outputs slice, its headers and the encoders of
	// its key and value share one allocation (sinkBlock); a JSON sink
	// record's key and value share one buffer, the key first, capped.
	sinkKey := c.sinkKey()
	var kv []byte
	blk := getSinkBlock(512 + 16 + 16*len(sinkKey))
	if p.enc == nil {
		kv = blk.buf[:0]
	}
	if !keyless {
		var k []byte
		var err error
		if kv != nil {
			k, err = route.AppendKey(kv, ev, sinkKey)
		} else {
			k, err = route.Key(ev, sinkKey)
		}
		if err != nil {
			return toDLQ(dlq.StageRoute, err, ev)
		}
		kv = k[len(k):]
		blk.key.b = k[:len(k):len(k)]
		key = &blk.key
	}
	// Before encoding: an Avro encoder registers a subject for the topic.
	partitions, err := c.sinks.usable(topic)
	if err != nil {
		return c.sinkTopicFailed(err, ev)
	}
	var value []byte
	headers := c.sinkHeaders(blk, ev)
	if p.enc != nil {
		v, hs, err := p.enc.Encode(topic, ev, fields)
		if err != nil {
			if classify(err) != Permanent {
				return retry(err)
			}
			return toDLQ(stageEncode, err, ev)
		}
		value = v
		for _, h := range hs {
			headers = append(headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
	} else {
		value = appendSinkValue(kv, ev, fields)
	}
	headers = propagateHeaders(headers, msg.Headers, p.plan)
	blk.val.b = value
	blk.msg = sarama.ProducerMessage{Topic: topic, Key: key, Value: &blk.val, Headers: headers}
	if err := checkSize(&blk.msg); err != nil {
		return toDLQ(dlq.StageProduce, err, ev)
	}

	var outs []*sarama.ProducerMessage
	switch {
	case !keyless:
		blk.outs[0] = &blk.msg
		outs = blk.outs[:]
		return decision{outcome: outEmit, ev: ev, outs: outs, blk: blk}
	case ev.Op == cdc.OpTruncate:
		// A truncate concerns every key: it goes, keyless, to every sink
		// partition, so each partition's consumers see it in order with
		// the changes of their keys.
		for i := int32(0); i < partitions; i++ {
			outs = append(outs, &sarama.ProducerMessage{Topic: topic, Key: route.NullKey{Partition: i},
				Value: sarama.ByteEncoder(value), Headers: headers})
		}
	default:
		// A logical decoding message belongs to no key: it keeps the
		// source partition number.
		outs = []*sarama.ProducerMessage{{Topic: topic, Key: route.NullKey{Partition: msg.Partition},
			Value: sarama.ByteEncoder(value), Headers: headers}}
	}
	return decision{outcome: outEmit, ev: ev, outs: outs}
}

// Header keys of sink records; sarama only reads them.
var (
	hdrEventID       = []byte("cdcsync.event.id")
	hdrEventType     = []byte("cdcsync.event.type")
	hdrSourceSystem  = []byte("cdcsync.source.system")
	hdrTopology      = []byte("cdcsync.topology")
	hdrSchemaVersion = []byte("cdcsync.schema.version")
)

// propagateHeaders appends the source headers that sink.headers.propagate
// names to a sink record's headers, every occurrence in source order. The
// values are shared with the consumed record, which nothing modifies.
func propagateHeaders(dst []sarama.RecordHeader, src []*sarama.RecordHeader, plan *topology.Plan) []sarama.RecordHeader {
	for _, h := range src {
		if h != nil && plan.PropagatesHeader(h.Key) {
			dst = append(dst, sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	return dst
}

// sinkBlock is the memory of one keyed sink record, allocated at once:
// the message, the one-element outputs slice the emitter takes, room for
// its headers, and for the header values when they are short; buf is the
// buffer a JSON sink record's key and value are written into.
//
// Blocks are recycled (sinkBlocks): under at_least_once, the tracker puts
// a record's block back once the record is done and leaves the queue
// (tracker.complete). By then sarama has returned its one output as a
// success, after which it never touches the message, and no rewind can
// send it again. Nothing else holds the block's memory: the headers'
// values are copied into vals or a buffer of their own, and propagated
// headers point into the consumed record, not the block. A block whose
// record is not done that way (exactly_once, a session that ends, an
// output replaced by a DLQ record) is left to the garbage collector.
// About a sixth of what a worker allocated per record was these blocks
// (docs/bench-findings.md, step 5).
type sinkBlock struct {
	msg      sarama.ProducerMessage
	outs     [1]*sarama.ProducerMessage
	hdrs     [6]sarama.RecordHeader
	key, val blockBytes
	vals     [96]byte
	buf      []byte
}

var sinkBlocks = sync.Pool{New: func() any { return new(sinkBlock) }}

// getSinkBlock returns a block whose buf holds at least n bytes, with no
// message, key, value, outputs or headers (putSinkBlock cleared them);
// route writes every other byte it uses.
func getSinkBlock(n int) *sinkBlock {
	b := sinkBlocks.Get().(*sinkBlock)
	if cap(b.buf) < n {
		b.buf = make([]byte, 0, n)
	}
	b.buf = b.buf[:0]
	return b
}

// putSinkBlock recycles b; see sinkBlock for when that is safe. It drops
// every reference the block holds now, so the pool pins nothing.
func putSinkBlock(b *sinkBlock) {
	b.msg = sarama.ProducerMessage{}
	b.outs[0] = nil
	b.key.b, b.val.b = nil, nil
	b.hdrs = [6]sarama.RecordHeader{}
	sinkBlocks.Put(b)
}

// blockBytes is a sarama.Encoder of bytes, like sarama.ByteEncoder; as a
// pointer into a sinkBlock it goes into the message's Key or Value
// without allocating (a ByteEncoder in an interface allocates its slice
// header).
type blockBytes struct{ b []byte }

func (e *blockBytes) Encode() ([]byte, error) { return e.b, nil }
func (e *blockBytes) Length() int             { return len(e.b) }

// sinkTopic is the sink topic of ev. A claim reads one source topic,
// which holds one table, so the last expansion is kept: the template
// allocates its result.
func (c *claimCtx) sinkTopic(ev *cdc.Event) string {
	t := &c.topic
	src := &ev.Source
	if t.plan != c.p.plan || t.db != src.Database || t.schema != src.Schema || t.table != src.Table || t.entity != ev.Entity {
		*t = topicMemo{plan: c.p.plan, db: src.Database, schema: src.Schema, table: src.Table, entity: ev.Entity,
			topic: c.p.plan.SinkTopic(src.Database, src.Schema, src.Table, ev.Entity)}
	}
	return t.topic
}

// topicMemo is claimCtx's last sink topic expansion.
type topicMemo struct {
	plan                             *topology.Plan
	db, schema, table, entity, topic string
}

// sinkKey is the plan's sink key fields (Plan.SinkKey copies them at each
// call), kept per claim.
func (c *claimCtx) sinkKey() []string {
	if c.keyPlan != c.p.plan {
		c.keyPlan, c.keyFields = c.p.plan, c.p.plan.SinkKey()
	}
	return c.keyFields
}

// sinkHeaders builds the headers of a sink record in blk: the header
// slice, and the buffer all the values are cut from when they fit.
func (c *claimCtx) sinkHeaders(blk *sinkBlock, ev *cdc.Event) []sarama.RecordHeader {
	var buf []byte
	if n := 32 + len(ev.Type) + len(ev.SourceSystem) + 12; n <= len(blk.vals) {
		buf = blk.vals[:0]
	} else {
		buf = make([]byte, 0, n)
	}
	buf = appendHexID(buf, ev.ID)
	id := buf[0:32:32]
	buf = append(buf, ev.Type...)
	typ := buf[32:len(buf):len(buf)]
	n := len(buf)
	buf = append(buf, ev.SourceSystem...)
	sys := buf[n:len(buf):len(buf)]
	h := blk.hdrs[:4]
	h[0] = sarama.RecordHeader{Key: hdrEventID, Value: id}
	h[1] = sarama.RecordHeader{Key: hdrEventType, Value: typ}
	h[2] = sarama.RecordHeader{Key: hdrSourceSystem, Value: sys}
	h[3] = sarama.RecordHeader{Key: hdrTopology, Value: c.p.nameBytes}
	if ev.Schema.Version != 0 {
		n = len(buf)
		buf = strconv.AppendInt(buf, int64(ev.Schema.Version), 10)
		h = append(h, sarama.RecordHeader{Key: hdrSchemaVersion, Value: buf[n:len(buf):len(buf)]})
	}
	return h
}

// tombstone passes a tombstone to the sink as a tombstone keyed by the
// sink key, or drops it when the topology says so or the sink key cannot
// be formed from the record key alone. Tombstones skip the ledger: they
// carry no position, and writing one twice is harmless.
func (c *claimCtx) tombstone(msg *sarama.ConsumerMessage, ev *cdc.Event) decision {
	p := c.p
	if p.plan.Tombstones() == topology.TombstonesDrop {
		return skipped(skipTombstoneDrop, ev)
	}
	if c.staleTombstone(msg.Topic, ev, msg.Offset) {
		return skipped(skipDuplicate, ev)
	}
	// Like the delete before it, a tombstone passes only from the system
	// that owns the entity.
	if p.rules.ApplyInto(ev, &c.decision); !c.decision.Keep {
		return skipped(skipAuthority, ev)
	}
	key, err := route.Key(ev, p.plan.SinkKey())
	if err != nil {
		return skipped(skipTombstoneNoKey, ev)
	}
	topic := p.plan.SinkTopic(ev.Source.Database, ev.Source.Schema, ev.Source.Table, ev.Entity)
	if _, err := c.sinks.usable(topic); err != nil {
		return c.sinkTopicFailed(err, ev)
	}
	m := &sarama.ProducerMessage{
		Topic: topic, Key: sarama.ByteEncoder(key),
		Headers: propagateHeaders([]sarama.RecordHeader{
			{Key: hdrEventType, Value: []byte(ev.Type)},
			{Key: hdrTopology, Value: p.nameBytes},
		}, msg.Headers, p.plan),
	}
	if err := checkSize(m); err != nil {
		return toDLQ(dlq.StageProduce, err, ev)
	}
	return decision{outcome: outEmit, ev: ev, outs: []*sarama.ProducerMessage{m}}
}

// heldTruncate decides a truncate under source.truncate dlq or drop. A
// truncate goes to every sink partition the moment it is consumed, so
// changes committed before it but read later from other source partitions
// would land after it, and changes committed after it but read earlier
// before it; a consumer applying the truncate would then keep rows the
// database removed, or remove rows it kept. Only source.truncate: pass
// accepts that.
func (c *claimCtx) heldTruncate(ev *cdc.Event) decision {
	if c.p.plan.Truncate() == topology.TruncateDrop {
		return skipped(skipTruncateDrop, ev)
	}
	return toDLQ(dlq.StageRoute, fmt.Errorf("%w: truncate of %s is not forwarded, because it cannot be ordered with the changes of other source partitions; apply it by hand, or set source.truncate: pass and replay it",
		ErrTruncateHeld, ev.Entity), ev)
}

// rejectedBefore decides a record whose outputs the broker refused in an
// earlier, aborted transaction (see rejection).
func (c *claimCtx) rejectedBefore(msg *sarama.ConsumerMessage, rj rejection) decision {
	p := c.p
	switch rj.level {
	case 1:
		return toDLQ(dlq.StageProduce, fmt.Errorf("the broker refused the output: %w", rj.err), nil)
	case 2:
		m := p.dlqRecord(msg, dlq.StageProduce, fmt.Errorf("the broker refused the output and its DLQ record: %w", rj.err), nil)
		dlq.Fit(m, 0)
		c.log.Warn("record sent to the DLQ without its key, value and original headers, which the DLQ topic refused",
			zap.Int64("offset", msg.Offset), zap.Error(rj.err))
		return decision{outcome: outEmit, outs: []*sarama.ProducerMessage{m}}
	default:
		return retry(fatal(fmt.Errorf("DLQ topic %s refuses even a record with no key or value (check its max.message.bytes and cleanup.policy): %w",
			p.plan.DLQTopic(), rj.err)))
	}
}

// sinkTopicFailed decides a record whose sink topic is not usable: a topic
// no retry can make usable sends the record to the DLQ (stage route); any
// other failure is retried (a fatal one stops the pipeline).
func (c *claimCtx) sinkTopicFailed(err error, ev *cdc.Event) decision {
	if classify(err) == Permanent {
		return toDLQ(dlq.StageRoute, err, ev)
	}
	return retry(err)
}

// dlqRecord builds the DLQ record of src. A DLQ'd record leaves no ledger
// entry, so a replay applies it.
func (p *pipeline) dlqRecord(src *sarama.ConsumerMessage, stage string, err error, ev *cdc.Event) *sarama.ProducerMessage {
	f := dlq.Failure{
		Topology:       p.plan.Name(),
		Topic:          src.Topic,
		Partition:      src.Partition,
		Offset:         src.Offset,
		Stage:          stage,
		Class:          stageClass(stage),
		ExceptionClass: exceptionClass(err),
		Message:        err.Error(),
		Attempts:       p.tries.of(src),
		FirstFailure:   p.now(),
		TaskID:         p.cfg.ClientID,
	}
	if ev != nil {
		f.EventID = ev.ID.String()
		f.SchemaID = ev.Schema.ID
	}
	var de *cdc.DecodeError
	if errors.As(err, &de) && de.SchemaID != 0 {
		f.SchemaID = de.SchemaID
	}
	m := dlq.Record(string(p.plan.DLQTopic()), src, f)
	p.fitDLQ(m, maxMessageBytes)
	return m
}

// fitDLQ cuts a DLQ record that is larger than limit (see dlq.Fit), so
// that a record too large for the sink is not too large for the DLQ too,
// which would stall its partition.
func (p *pipeline) fitDLQ(m *sarama.ProducerMessage, limit int) {
	before := m.ByteSize(2)
	if before <= limit {
		return
	}
	fits := dlq.Fit(m, limit)
	var cut string
	for _, h := range m.Headers {
		if string(h.Key) == dlq.HeaderTruncated {
			cut = string(h.Value)
		}
	}
	p.log.Warn("the DLQ copy of a record is too large; cut to fit", zap.String("topic", m.Topic),
		zap.Int("bytes", before), zap.Int("limit", limit), zap.Int("cut_to", m.ByteSize(2)), zap.String("cut", cut), zap.Bool("fits", fits))
}

// checkSize refuses an output larger than the producer accepts, before it
// is produced: sarama would refuse it anyway (a ConfigurationError, or
// under exactly_once an aborted transaction), and no retry would change
// that. The error wraps ErrOutputTooLarge and sarama.ErrMessageSizeTooLarge;
// the source record goes to the DLQ, stage produce.
func checkSize(m *sarama.ProducerMessage) error {
	if n := m.ByteSize(2); n > maxMessageBytes {
		return &permanentError{stage: dlq.StageProduce, err: fmt.Errorf("%w: %w: the record for %s would be %d bytes (key %d, value %d), over the producer's limit of %d",
			ErrOutputTooLarge, sarama.ErrMessageSizeTooLarge, m.Topic, n, encLen(m.Key), encLen(m.Value), maxMessageBytes)}
	}
	return nil
}

func encLen(e sarama.Encoder) int {
	if e == nil {
		return 0
	}
	return e.Length()
}

// stageEncode is the DLQ stage of an event the Avro sink encoder refused.
const stageEncode = "encode"

// stageClass names the component that failed, for Connect's
// __connect.errors.class.name header.
func stageClass(stage string) string {
	switch stage {
	case dlq.StageDecode:
		return "github.com/cdcsync/cdcsync/processor/cdc.Decoder"
	case dlq.StageAuthority:
		return "github.com/cdcsync/cdcsync/processor/authority.Rules"
	case dlq.StageRoute:
		return "github.com/cdcsync/cdcsync/processor/route.Key"
	case dlq.StageProduce:
		return "github.com/IBM/sarama.AsyncProducer"
	case stageEncode:
		return "github.com/cdcsync/cdcsync/schemas.Encoder"
	case stageApply:
		return "github.com/cdcsync/cdcsync/processor/apply.Applier"
	}
	return "github.com/cdcsync/cdcsync/processor." + stage
}
