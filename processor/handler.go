package processor

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cdcsync/cdcsync/processor/authority"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/processor/route"
	"github.com/cdcsync/cdcsync/topology"
)

// handler is the sarama.ConsumerGroupHandler of one pipeline. A new
// session calls Setup (restore the ledger of every claimed partition),
// then ConsumeClaim once per claim, then Cleanup (wait for in-flight
// records, so their offsets are marked before the session commits).
type handler struct {
	p        *pipeline
	inflight sync.WaitGroup
}

var _ sarama.ConsumerGroupHandler = (*handler)(nil)

// Setup restores the ledger partitions of the claimed partitions, in
// parallel, before any record of them is processed.
func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	p := h.p
	parts := map[int32]bool{}
	for _, ps := range sess.Claims() {
		for _, n := range ps {
			parts[n] = true
		}
	}
	if len(parts) == 0 {
		p.log.Info("no partitions assigned: this worker is idle for this topology (more workers than partitions)",
			zap.Int32("partitions", p.partitions), zap.String("member", sess.MemberID()),
			zap.Int32("generation", sess.GenerationID()))
		p.ready.Store(true)
		return nil
	}
	nums := make([]int32, 0, len(parts))
	for n := range parts {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })

	fresh := make(map[int32]*partState, len(nums))
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(sess.Context())
	g.SetLimit(4)
	for _, n := range nums {
		g.Go(func() error {
			idx := ledger.NewIndex(p.plan.Dedup().Window)
			st, err := ledger.Restore(ctx, p.client, string(p.plan.LedgerTopic()), n, idx, false)
			if err != nil {
				return fmt.Errorf("restoring ledger %s/%d: %w", p.plan.LedgerTopic(), n, err)
			}
			p.metrics.restore.WithLabelValues(p.plan.Name()).Observe(st.Duration.Seconds())
			p.metrics.ledgerKeys.WithLabelValues(p.plan.Name(), partitionLabel(n)).Set(float64(idx.Len()))
			p.log.Info("ledger restored", zap.Int32("partition", n), zap.Int("keys", idx.Len()),
				zap.Int("records", st.Records), zap.Duration("took", st.Duration))
			mu.Lock()
			fresh[n] = &partState{idx: idx}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	p.mu.Lock()
	p.ledgers = fresh
	p.mu.Unlock()
	p.claimed.Store(int32(len(nums)))
	p.ready.Store(true)
	p.log.Info("partitions assigned", zap.Int32s("partitions", nums),
		zap.String("member", sess.MemberID()), zap.Int32("generation", sess.GenerationID()))
	return nil
}

// Cleanup waits until every record of the session is acknowledged (or has
// failed), so that their offsets are marked before sarama commits and
// leaves the partitions, bounded by ShutdownTimeout.
func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	done := make(chan struct{})
	go func() { h.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(h.p.cfg.ShutdownTimeout):
		h.p.log.Error("records still unacknowledged after shutdown_timeout; their offsets stay uncommitted and will be redelivered",
			zap.Duration("shutdown_timeout", h.p.cfg.ShutdownTimeout))
	}
	h.p.ready.Store(false)
	return nil
}

// ConsumeClaim processes one partition. It starts no goroutines: it takes
// an in-flight slot, reads the next record and processes it, until the
// session ends.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := h.p
	p.mu.Lock()
	ps := p.ledgers[claim.Partition()]
	p.mu.Unlock()
	if ps == nil {
		return fmt.Errorf("processor: no ledger state for %s/%d", claim.Topic(), claim.Partition())
	}
	t := newTracker(sess, claim.Topic(), claim.Partition(), p.cfg.MaxInFlight, &h.inflight)
	c := &claimCtx{p: p, t: t, ps: ps, ctx: sess.Context(),
		lag:        p.metrics.lag.WithLabelValues(p.plan.Name(), claim.Topic(), partitionLabel(claim.Partition())),
		lagSeconds: p.metrics.lagSeconds.WithLabelValues(p.plan.Name(), claim.Topic(), partitionLabel(claim.Partition())),
		keys:       p.metrics.ledgerKeys.WithLabelValues(p.plan.Name(), partitionLabel(claim.Partition())),
		process:    p.metrics.process.WithLabelValues(p.plan.Name()),
		log:        p.log.With(zap.String("topic", claim.Topic()), zap.Int32("partition", claim.Partition())),
	}
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()
	ctx := sess.Context()
	for {
		// Take a slot first: when MaxInFlight records are unacknowledged
		// the partition pauses here.
		select {
		case t.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				<-t.slots
				return nil
			}
			c.handle(msg)
			if msg.Offset&255 == 0 {
				c.observeLag(msg, claim.HighWaterMarkOffset())
			}
		case <-expire.C:
			<-t.slots
			ps.mu.Lock()
			n := ps.idx.Expire(p.now())
			keys := ps.idx.Len()
			ps.mu.Unlock()
			c.keys.Set(float64(keys))
			if n > 0 {
				c.log.Debug("expired ledger entries", zap.Int("expired", n))
			}
		case <-ctx.Done():
			<-t.slots
			return nil
		}
	}
}

// claimCtx is what the claim goroutine needs to process a record.
type claimCtx struct {
	p          *pipeline
	t          *tracker
	ps         *partState
	ctx        context.Context
	log        *zap.Logger
	lag        interface{ Set(float64) }
	lagSeconds interface{ Set(float64) }
	keys       interface{ Set(float64) }
	process    interface{ Observe(float64) }
	decision   authority.Decision // reused: its slices are consumed before the next record
}

func (c *claimCtx) observeLag(msg *sarama.ConsumerMessage, hwm int64) {
	c.lag.Set(float64(hwm - msg.Offset - 1))
	if !msg.Timestamp.IsZero() {
		c.lagSeconds.Set(time.Since(msg.Timestamp).Seconds())
	}
	c.ps.mu.Lock()
	n := c.ps.idx.Len()
	c.ps.mu.Unlock()
	c.keys.Set(float64(n))
}

// handle runs one record through decode, dedup, authority and route, and
// hands its outputs to the producer. It never blocks on acknowledgements.
func (c *claimCtx) handle(msg *sarama.ConsumerMessage) {
	p := c.p
	start := p.now()
	p.stats.In.Add(1)
	r := c.t.add(msg, start)

	ev, err := p.dec.Decode(msg.Topic, msg.Key, msg.Value)
	if err != nil {
		c.toDLQ(r, "decode", err)
		return
	}
	if ev.Tombstone {
		c.tombstone(r, ev)
		return
	}

	c.ps.mu.Lock()
	seen := c.ps.idx.Seen(ev.ID)
	c.ps.mu.Unlock()
	if seen {
		p.stats.Duplicates.Add(1)
		p.finish(r)
		return
	}

	d := &c.decision
	p.rules.ApplyInto(ev, d)
	if len(d.Dropped) > 0 {
		p.stats.AuthorityFields.Add(int64(len(d.Dropped)))
	}
	if d.Violation {
		c.toDLQWithEvent(r, "authority", fmt.Errorf("%w: %s changed fields it does not own: %v",
			ErrAuthorityViolation, ev.SourceSystem, d.Dropped), ev)
		return
	}
	if !d.Keep {
		p.stats.AuthorityEvents.Add(1)
		p.finish(r)
		return
	}

	key, err := route.Key(ev, p.plan.SinkKey())
	if err != nil {
		c.toDLQWithEvent(r, "route", err, ev)
		return
	}
	topic := p.plan.SinkTopic(ev.Source.Database, ev.Source.Schema, ev.Source.Table, ev.Entity)
	if err := p.ensureTopic(topic); err != nil {
		c.transient(r, err)
		return
	}
	value := appendSinkValue(make([]byte, 0, 512), ev, d.Fields)

	now := p.now()
	r.ledger = &sarama.ProducerMessage{
		Topic:     string(p.plan.LedgerTopic()),
		Partition: msg.Partition,
		Key:       sarama.ByteEncoder(ledger.EncodeKey(ev.ID)),
		Value:     sarama.ByteEncoder(ledger.EncodeValue(ledger.Entry{FirstSeen: now, SourceOffset: msg.Offset})),
		Metadata:  r,
	}
	c.ps.mu.Lock()
	c.ps.idx.Add(ev.ID, now)
	c.ps.mu.Unlock()

	r.pending.Store(1)
	out := &sarama.ProducerMessage{
		Topic:    topic,
		Key:      sarama.ByteEncoder(key),
		Value:    sarama.ByteEncoder(value),
		Headers:  c.sinkHeaders(ev),
		Metadata: r,
	}
	c.process.Observe(since(start))
	c.send(r, out)
}

func (c *claimCtx) sinkHeaders(ev *cdc.Event) []sarama.RecordHeader {
	h := []sarama.RecordHeader{
		{Key: []byte("cdcsync.event.id"), Value: []byte(ev.ID.String())},
		{Key: []byte("cdcsync.event.type"), Value: []byte(ev.Type)},
		{Key: []byte("cdcsync.source.system"), Value: []byte(ev.SourceSystem)},
		{Key: []byte("cdcsync.topology"), Value: []byte(c.p.plan.Name())},
	}
	if ev.Schema.Version != 0 {
		h = append(h, sarama.RecordHeader{Key: []byte("cdcsync.schema.version"), Value: fmt.Appendf(nil, "%d", ev.Schema.Version)})
	}
	return h
}

// tombstone passes a tombstone to the sink as a tombstone keyed by the
// sink key, or drops it when the topology says so or the sink key cannot
// be formed from the record key alone. Tombstones skip the ledger: they
// carry no position, and writing one twice is harmless.
func (c *claimCtx) tombstone(r *record, ev *cdc.Event) {
	p := c.p
	p.stats.Tombstones.Add(1)
	if p.plan.Tombstones() == topology.TombstonesDrop {
		p.finish(r)
		return
	}
	key, err := route.Key(ev, p.plan.SinkKey())
	if err != nil {
		c.log.Debug("tombstone dropped: the sink key is not part of the record key",
			zap.Int64("offset", r.offset), zap.Error(err))
		p.finish(r)
		return
	}
	topic := p.plan.SinkTopic(ev.Source.Database, ev.Source.Schema, ev.Source.Table, ev.Entity)
	if err := p.ensureTopic(topic); err != nil {
		c.transient(r, err)
		return
	}
	r.pending.Store(1)
	c.send(r, &sarama.ProducerMessage{
		Topic: topic, Key: sarama.ByteEncoder(key), Metadata: r,
		Headers: []sarama.RecordHeader{
			{Key: []byte("cdcsync.event.type"), Value: []byte(ev.Type)},
			{Key: []byte("cdcsync.topology"), Value: []byte(p.plan.Name())},
		},
	})
}

func (c *claimCtx) send(r *record, m *sarama.ProducerMessage) {
	select {
	case c.p.out.Input() <- m:
	case <-c.ctx.Done():
		if r.resolved.CompareAndSwap(false, true) {
			c.t.fail(r)
		}
	}
}

// transient fails the record and restarts the session after a backoff.
func (c *claimCtx) transient(r *record, err error) {
	if r.resolved.CompareAndSwap(false, true) {
		c.t.fail(r)
	}
	c.p.failSession(err)
}

func (c *claimCtx) toDLQ(r *record, stage string, err error) { c.toDLQWithEvent(r, stage, err, nil) }

// toDLQWithEvent sends the source record to the DLQ, unless the topology
// tolerates no errors, which stops the pipeline instead.
func (c *claimCtx) toDLQWithEvent(r *record, stage string, err error, ev *cdc.Event) {
	p := c.p
	if p.plan.Tolerance() == topology.TolerateNone {
		if r.resolved.CompareAndSwap(false, true) {
			c.t.fail(r)
		}
		p.stopFatal(fmt.Errorf("errors.tolerance is none and %s/%d@%d failed at %s: %w",
			r.src.Topic, r.src.Partition, r.src.Offset, stage, err))
		return
	}
	c.log.Warn("record sent to the DLQ", zap.Int64("offset", r.offset), zap.String("stage", stage), zap.Error(err))
	m := p.dlqRecordEvent(r, stage, err, ev)
	r.pending.Store(1)
	c.send(r, m)
}

func (p *pipeline) dlqRecord(r *record, stage string, err error) *sarama.ProducerMessage {
	return p.dlqRecordEvent(r, stage, err, nil)
}

func (p *pipeline) dlqRecordEvent(r *record, stage string, err error, ev *cdc.Event) *sarama.ProducerMessage {
	f := dlq.Failure{
		Topology:       p.plan.Name(),
		Topic:          r.src.Topic,
		Partition:      r.src.Partition,
		Offset:         r.src.Offset,
		Stage:          stage,
		Class:          Permanent.String(),
		ExceptionClass: exceptionClass(err),
		Message:        err.Error(),
		Attempts:       1,
		FirstFailure:   p.now(),
		TaskID:         p.cfg.ClientID,
	}
	if ev != nil {
		f.EventID = ev.ID.String()
	}
	m := dlq.Record(string(p.plan.DLQTopic()), r.src, f)
	m.Metadata = r
	return m
}
