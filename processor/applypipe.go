package processor

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cdcsync/cdcsync/processor/apply"
	"github.com/cdcsync/cdcsync/processor/apply/httpapply"
	"github.com/cdcsync/cdcsync/processor/apply/pgapply"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// depApply is the dependency of an apply topology's target (the
// PostgreSQL database, the HTTP endpoint) in cdcsync_breaker_state.
const depApply = "apply"

// stageApply is the DLQ stage of an event the target refused permanently.
const stageApply = "apply"

// Outcomes of cdcsync_apply_events_total.
const (
	applyApplied  = "applied"  // the target applied it (or had already: a replay)
	applyRejected = "rejected" // refused permanently: sent to the DLQ, stage apply
	applySkipped  = "skipped"  // tombstones, logical decoding messages, ignored truncates
)

// applyPipe runs an apply topology (issue 14): it consumes the sync topics
// in the topology's consumer group, reads each record as an apply.Event,
// and hands each partition's events, in order and in batches, to the
// topology's Applier. A Kafka offset is marked only after Apply returned
// the event at it (applied or sent to the DLQ).
//
// Goroutines, all started and waited for by run: the consume loop (run
// itself), one goroutine per claim (sarama's ConsumeClaim; Apply runs on
// it, at most apply.max_concurrency at once across the claims), and the
// group-error logger.
type applyPipe struct {
	p       *pipeline
	cfg     topology.Apply
	reader  *apply.Reader
	applier apply.Applier                                    // nil until open succeeds
	open    func(ctx context.Context) (apply.Applier, error) // postgres: connects and reads the catalog
	brk     *breaker                                         // dependency "apply"
	sem     chan struct{}
	dlqProd sarama.SyncProducer

	events *prometheus.CounterVec // curried by topology: outcome
	batch  prometheus.Observer
}

// applyMetrics are the framework's apply collectors of one worker (doc.go).
type applyMetrics struct {
	events    *prometheus.CounterVec
	batch     *prometheus.HistogramVec
	conflicts *prometheus.CounterVec // pgapply counts into it (it finds it registered)
}

func newApplyMetrics(reg prometheus.Registerer) *applyMetrics {
	m := &applyMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcsync_apply_events_total", Help: "Events of apply topologies by outcome: applied, rejected (to the DLQ, stage apply) or skipped.",
		}, []string{"topology", "outcome"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cdcsync_apply_batch_seconds", Help: "Time of one Apply call: a partition's batch written into the target.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
		}, []string{"topology"}),
		// The same descriptor pgapply registers, so it finds this one.
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcsync_apply_conflicts_total",
			Help: "Fields an apply topology found changed in the target since the event's before value (the target changed them itself), by topology and field.",
		}, []string{"topology", "field"}),
	}
	reg.MustRegister(m.events, m.batch, m.conflicts)
	return m
}

// newApplyPipeline builds the pipeline of an apply topology and its
// Applier. A configuration problem the applier finds at start (a secret
// that is not set, a table or column that does not exist) is an ErrConfig
// naming the option's file and line.
func newApplyPipeline(plan *topology.Plan, cfg Config, registry *schemas.Client, m *metrics, log *zap.Logger) (*pipeline, error) {
	var reg apply.WriterSchemas
	if registry != nil {
		reg = registry
	}
	reader, err := apply.NewReader(plan.Format(), reg)
	if err != nil {
		return nil, fmt.Errorf("%w: topology %s: %v", ErrConfig, plan.Name(), err)
	}
	p := &pipeline{
		plan:        plan,
		cfg:         cfg,
		log:         log.With(zap.String("topology", plan.Name())),
		stats:       m.forTopology(plan.Name()),
		metrics:     m,
		now:         time.Now,
		ledgers:     map[topicPartition]*partState{},
		nameBytes:   []byte(plan.Name()),
		ledgerTopic: string(plan.LedgerTopic()),
	}
	now := func() time.Time { return p.now() }
	a := &applyPipe{
		p:      p,
		cfg:    plan.Apply(),
		reader: reader,
		brk:    newBreaker(plan, depApply, m.breaker, now, p.log),
		events: m.apply.events.MustCurryWith(prometheus.Labels{"topology": plan.Name()}),
		batch:  m.apply.batch.WithLabelValues(plan.Name()),
	}
	for _, o := range []string{applyApplied, applyRejected, applySkipped} {
		a.events.WithLabelValues(o)
	}
	m.dlq.WithLabelValues(plan.Name(), stageApply)
	p.registryBrk = newBreaker(plan, depRegistry, m.breaker, now, p.log)
	p.producerBrk = newBreaker(plan, depProducer, m.breaker, now, p.log)
	p.breakers = []*breaker{p.registryBrk, p.producerBrk, a.brk}
	a.sem = make(chan struct{}, a.cfg.MaxConcurrency)
	opts := apply.Options{
		Topology:   plan.Name(),
		Config:     a.cfg,
		Where:      plan.Where,
		Registerer: m.reg,
		Log:        p.log,
	}
	switch a.cfg.Kind {
	case topology.ApplyHTTP:
		h, err := httpapply.New(opts)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		a.applier = h
	case topology.ApplyPostgres:
		// The catalog is read at start so that an unknown table or column
		// refuses the start (exit 2). A database that cannot be reached
		// yet is a transient condition: run connects, retrying.
		a.open = func(ctx context.Context) (apply.Applier, error) {
			pg, err := pgapply.New(ctx, opts)
			if err != nil {
				var ce *pgapply.ConfigError
				if errors.As(err, &ce) {
					return nil, fmt.Errorf("%w: %v", ErrConfig, err)
				}
				return nil, fmt.Errorf("topology %s: connecting to the target database: %w", plan.Name(), err)
			}
			pg.PruneWindow = plan.Dedup().Window // dedup.window: how long a redelivery is possible
			return pg, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		a.applier, err = a.open(ctx)
		cancel()
		if errors.Is(err, ErrConfig) {
			return nil, err
		}
		if err != nil {
			p.log.Warn("the target database cannot be reached at start; the topology connects when it runs", zap.Error(err))
		}
	default:
		return nil, fmt.Errorf("%w: topology %s: apply.kind %v is not supported", ErrConfig, plan.Name(), a.cfg.Kind)
	}
	p.apply = a
	return p, nil
}

// run consumes until ctx is done or a fatal error happens.
func (a *applyPipe) run(ctx context.Context) error {
	p := a.p
	for attempt := 0; a.applier == nil; attempt++ {
		p.setPhase("connecting to the apply target")
		ap, err := a.open(ctx)
		if err == nil {
			a.applier = ap
			break
		}
		if errors.Is(err, ErrConfig) {
			return fatal(err)
		}
		d := p.retryDelay(attempt)
		p.log.Warn("cannot reach the apply target, retrying", zap.Error(err), zap.Duration("backoff", d))
		if !sleep(ctx, d) {
			return nil
		}
	}
	defer func() {
		if err := a.applier.Close(); err != nil {
			p.log.Warn("closing the applier", zap.Error(err))
		}
	}()
	var err error
	if p.admin, err = sarama.NewClusterAdminFromClient(p.client); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := a.prepare()
		if err == nil {
			break
		}
		if classify(err) == Fatal {
			return err
		}
		d := p.retryDelay(attempt)
		p.log.Warn("preparing apply pipeline failed, retrying", zap.Error(err), zap.Duration("backoff", d))
		p.setPhase("preparing failed, retrying: " + err.Error())
		if !sleep(ctx, d) {
			return nil
		}
	}
	prodClient, err := sarama.NewClient(p.cfg.Brokers, producerConfig(p.client.Config()))
	if err != nil {
		return err
	}
	defer prodClient.Close()
	if a.dlqProd, err = sarama.NewSyncProducerFromClient(prodClient); err != nil {
		return err
	}
	defer a.dlqProd.Close()
	group, err := sarama.NewConsumerGroupFromClient(string(p.plan.Group()), p.client)
	if err != nil {
		return err
	}
	p.group = group
	var g errgroup.Group
	g.Go(func() error {
		for err := range group.Errors() {
			p.log.Warn("consumer group error", zap.Error(err))
		}
		return nil
	})
	lagCtx, stopLag := context.WithCancel(ctx)
	g.Go(func() error { p.refreshLag(lagCtx); return nil })
	runErr := a.consume(ctx, group)
	stopLag()
	p.ready.Store(false)
	if err := group.Close(); err != nil {
		p.log.Warn("leaving the group", zap.Error(err))
	}
	_ = g.Wait()
	return runErr
}

// prepare resolves the sync topics and makes sure the DLQ topic exists.
func (a *applyPipe) prepare() error {
	p := a.p
	if err := p.client.RefreshMetadata(); err != nil {
		return err
	}
	all, err := p.client.Topics()
	if err != nil {
		return err
	}
	var topics []string
	var n int32 = -1
	for _, t := range all {
		if !p.plan.MatchesTopic(t) {
			continue
		}
		topics = append(topics, t)
		parts, err := p.client.Partitions(t)
		if err != nil {
			return err
		}
		n = max(n, int32(len(parts)))
	}
	sort.Strings(topics)
	if len(topics) == 0 {
		return fmt.Errorf("%w: topology %s (%s): %s matches no existing topic yet; waiting for the sync topology to create it",
			ErrNoSourceTopics, p.plan.Name(), p.plan.File(), sourceDescription(p.plan))
	}
	p.topics, p.partitions = topics, n
	if err := p.ensureTopic(string(p.plan.DLQTopic()), kindDLQ); err != nil {
		if classify(err) == Permanent {
			return fatal(err)
		}
		return err
	}
	p.log.Info("apply pipeline prepared", zap.Strings("topics", topics), zap.String("kind", a.cfg.Kind.String()),
		zap.String("group", string(p.plan.Group())), zap.String("dlq", string(p.plan.DLQTopic())),
		zap.Int("max_events", a.cfg.Batch.MaxEvents), zap.Duration("max_wait", a.cfg.Batch.MaxWait),
		zap.Int("max_concurrency", a.cfg.MaxConcurrency))
	return nil
}

// consume calls Consume in a loop, as pipeline.consume does.
func (a *applyPipe) consume(ctx context.Context, group sarama.ConsumerGroup) error {
	p := a.p
	h := &applyHandler{a: a}
	for attempt := 0; ; {
		sctx, cancel := context.WithCancelCause(ctx)
		p.mu.Lock()
		p.cancel = cancel
		p.mu.Unlock()
		err := group.Consume(sctx, p.topics, h)
		cancel(nil)
		if ctx.Err() != nil {
			return nil
		}
		p.mu.Lock()
		ferr := p.fatalErr
		p.mu.Unlock()
		if ferr != nil {
			return ferr
		}
		if err == nil {
			attempt = 0
			continue
		}
		if classify(err) == Fatal {
			return err
		}
		p.stats.Restarts.Add(1)
		d := p.retryDelay(attempt)
		attempt++
		p.log.Warn("session failed; resuming from the last committed offsets", zap.Error(err), zap.Duration("backoff", d))
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// applyHandler is the sarama handler of an apply topology.
type applyHandler struct{ a *applyPipe }

func (h *applyHandler) Setup(sess sarama.ConsumerGroupSession) error {
	p := h.a.p
	p.stats.Rebalances.Add(1)
	p.ready.Store(true)
	n := 0
	for _, parts := range sess.Claims() {
		n += len(parts)
	}
	p.log.Info("apply session started", zap.Int("partitions", n), zap.Int32("generation", sess.GenerationID()))
	return nil
}

func (h *applyHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim cuts the partition's records into batches of up to
// apply.batch.max_events, or what arrived within apply.batch.max_wait of
// the first, and applies each before reading on.
func (h *applyHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	a := h.a
	ctx := sess.Context()
	c := &applyClaim{a: a, sess: sess, claim: claim,
		log: a.p.log.With(zap.String("topic", claim.Topic()), zap.Int32("partition", claim.Partition()))}
	c.marked.Store(-1)
	lag := a.p.newClaimLag(claim, nil, c.marked.Load) // cdcsync_lag_records and _seconds (lag.go)
	defer lag.revoke()
	defer c.setPaused(false)
	// A batch read before the session ended is still applied, for up to
	// applyDrainGrace, as a Connect sink task flushes on revocation: its
	// offsets are marked and committed with the session, so the next owner
	// does not deliver it to the target a second time.
	work, stopWork := drainContext(ctx, applyDrainGrace)
	defer stopWork()
	msgs := claim.Messages()
	batch := make([]*sarama.ConsumerMessage, 0, a.cfg.Batch.MaxEvents)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			lag.fetched(m, claim.HighWaterMarkOffset())
			batch = append(batch, m)
		case <-ctx.Done():
			return nil
		}
		timer.Reset(a.cfg.Batch.MaxWait)
	fill:
		for len(batch) < a.cfg.Batch.MaxEvents {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				lag.fetched(m, claim.HighWaterMarkOffset())
				batch = append(batch, m)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		timer.Stop()
		if !c.process(work, batch) {
			return nil
		}
		clear(batch)
		batch = batch[:0]
	}
}

// applyDrainGrace bounds how long a claim keeps applying its batch after
// its session ended (a rebalance, a pause or a shutdown). It stays under
// the rebalance timeout (15 s), so a draining member rejoins in time and
// keeps its place in the group.
const applyDrainGrace = 10 * time.Second

// drainContext is parent, kept alive for grace after parent ends.
func drainContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	var mu sync.Mutex
	var t *time.Timer
	stop := context.AfterFunc(parent, func() {
		mu.Lock()
		t = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return ctx, func() {
		stop()
		mu.Lock()
		if t != nil {
			t.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// applyClaim is one claim's state, owned by its ConsumeClaim goroutine.
type applyClaim struct {
	a      *applyPipe
	sess   sarama.ConsumerGroupSession
	claim  sarama.ConsumerGroupClaim
	log    *zap.Logger
	paused bool
	marked atomic.Int64 // the next offset not yet done, -1 before the first: the lag's "done"
}

// mark marks every offset before next as done.
func (c *applyClaim) mark(next int64) {
	c.sess.MarkOffset(c.claim.Topic(), c.claim.Partition(), next, "")
	c.marked.Store(next)
}

// process reads a batch and applies its events; false when the session
// ended (or the pipeline stopped) before the batch was done. The work
// (Apply, waiting for a max_concurrency slot) runs on ctx, which outlives
// the session by the drain grace; the waits between attempts (backoff,
// Retry-After, an open breaker, the registry or the DLQ down) end with the
// session: a drain applies what the target takes but does not wait out a
// failure, which would hold the group's rebalance or the shutdown for the
// whole grace. The next owner resumes at the first event not done (the
// target refused it for now, or did not answer).
func (c *applyClaim) process(ctx context.Context, batch []*sarama.ConsumerMessage) bool {
	a, p := c.a, c.a.p
	wait := c.sess.Context()
	p.stats.In.Add(int64(len(batch)))
	events := make([]apply.Event, 0, len(batch))
	srcs := make([]*sarama.ConsumerMessage, 0, len(batch))
	skipped := 0
	for _, m := range batch {
		ev, err := c.read(wait, m)
		switch {
		case err == nil && ev.Op == 't' && a.cfg.Truncate == topology.ApplyTruncateIgnore:
			skipped++
		case err == nil:
			events = append(events, ev)
			srcs = append(srcs, m)
		case errors.Is(err, apply.ErrTombstone):
			p.stats.Tombstones.Add(1)
			skipped++
		case errors.Is(err, apply.ErrMessage):
			skipped++
		case errors.Is(err, apply.ErrBadRecord):
			if !c.reject(wait, m, dlq.StageDecode, err, "", nil) {
				return false
			}
		default: // the session ended while the registry was down
			return false
		}
	}
	if skipped > 0 {
		a.events.WithLabelValues(applySkipped).Add(float64(skipped))
	}
	for attempt := 0; len(events) > 0; {
		probe, ok := c.gate(wait)
		if !ok {
			return false
		}
		select {
		case a.sem <- struct{}{}:
		case <-ctx.Done():
			if probe {
				a.brk.release()
			}
			return false
		}
		start := time.Now()
		outs, err := a.applier.Apply(ctx, events)
		<-a.sem
		a.batch.Observe(time.Since(start).Seconds())
		n := min(len(outs), len(events))
		applied := 0
		for i := range n {
			if outs[i] == nil {
				applied++
				continue
			}
			var rej *apply.Rejected
			if !errors.As(outs[i], &rej) {
				rej = &apply.Rejected{Reason: outs[i].Error(), Err: outs[i]}
			}
			a.events.WithLabelValues(applyRejected).Inc()
			if !c.reject(wait, srcs[i], stageApply, rej, events[i].ID, rej.Headers) {
				return false
			}
		}
		if applied > 0 {
			a.events.WithLabelValues(applyApplied).Add(float64(applied))
			p.stats.Out.Add(int64(applied))
		}
		if n > 0 {
			p.stats.Completed.Add(int64(n))
			events, srcs = events[n:], srcs[n:]
			c.mark(srcs0(srcs, batch))
		}
		if err == nil && len(events) > 0 {
			err = fmt.Errorf("the applier finished %d of %d events without an error", n, n+len(events))
		}
		if err == nil {
			a.brk.success(probe)
			attempt = 0
			continue
		}
		if wait.Err() != nil {
			if probe {
				a.brk.release()
			}
			return false
		}
		if ferr := a.brk.failure(err, probe); ferr != nil {
			p.stopFatal(ferr)
			return false
		}
		d := p.retryDelay(attempt)
		attempt++
		var ra *apply.RetryAfter
		if errors.As(err, &ra) && ra.D > d {
			d = ra.D
		}
		c.log.Warn("applying failed; retrying (nothing goes to the DLQ for a transient failure)",
			zap.Error(err), zap.Int("pending", len(events)), zap.Int64("offset", srcs[0].Offset),
			zap.Duration("backoff", d), zap.Int("attempt", attempt))
		c.setPaused(true)
		if !sleep(wait, d) {
			return false
		}
	}
	c.setPaused(false)
	// Every record of the batch is done: applied, rejected or skipped.
	c.mark(batch[len(batch)-1].Offset + 1)
	return true
}

// srcs0 is the offset to mark after a partial Apply: the offset of the
// first event still pending, or past the batch when none is.
func srcs0(pending, batch []*sarama.ConsumerMessage) int64 {
	if len(pending) > 0 {
		return pending[0].Offset
	}
	return batch[len(batch)-1].Offset + 1
}

// read reads one record, waiting out a schema registry that is down
// (transient: the registry breaker pauses the partition, nothing goes to
// the DLQ).
func (c *applyClaim) read(ctx context.Context, m *sarama.ConsumerMessage) (apply.Event, error) {
	p := c.a.p
	for attempt := 0; ; attempt++ {
		ev, err := c.a.reader.Read(m.Topic, m.Partition, m.Offset, m.Value)
		if err == nil || !errors.Is(err, cdc.ErrRegistryUnavailable) {
			p.registryBrk.success(false)
			return ev, err
		}
		if ferr := p.registryBrk.failure(err, false); ferr != nil {
			p.stopFatal(ferr)
			return ev, err
		}
		d := p.retryDelay(attempt)
		c.log.Warn("schema registry unavailable; retrying", zap.Error(err), zap.Duration("backoff", d))
		c.setPaused(true)
		if !sleep(ctx, d) {
			return ev, err
		}
	}
}

// gate waits while the apply breaker is open, with the partition paused;
// probe is true when this claim holds the half-open breaker's probe.
func (c *applyClaim) gate(ctx context.Context) (probe, ok bool) {
	for {
		pass, isProbe, changed, at := c.a.brk.acquire()
		if pass {
			return isProbe, true
		}
		c.setPaused(true)
		var timer <-chan time.Time
		if !at.IsZero() {
			t := time.NewTimer(time.Until(at))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-changed:
		case <-timer:
		case <-ctx.Done():
			return false, false
		}
	}
}

// reject sends one record to the DLQ (stage decode or apply), waiting out
// a DLQ that cannot be written. With errors.tolerance none it stops the
// pipeline instead.
func (c *applyClaim) reject(ctx context.Context, src *sarama.ConsumerMessage, stage string, err error, eventID string, headers map[string]string) bool {
	p := c.a.p
	if p.plan.Tolerance() == topology.TolerateNone {
		p.stopFatal(fatal(fmt.Errorf("errors.tolerance none: %s/%d@%d failed in stage %s: %w", src.Topic, src.Partition, src.Offset, stage, err)))
		return false
	}
	var ev *cdc.Event
	if id, derr := hex.DecodeString(eventID); derr == nil && len(id) == len(cdc.ID{}) {
		ev = &cdc.Event{ID: cdc.ID(id)}
	}
	m := p.dlqRecord(src, stage, err, ev)
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(headers[k])})
	}
	p.fitDLQ(m, maxMessageBytes)
	c.log.Warn("record sent to the DLQ", zap.String("stage", stage), zap.Int64("offset", src.Offset), zap.String("event_id", eventID), zap.Error(err))
	for attempt := 0; ; attempt++ {
		_, _, perr := c.a.dlqProd.SendMessage(m)
		if perr == nil {
			p.countDLQ(stage, 1)
			return true
		}
		if classify(perr) == Permanent {
			p.stopFatal(fatal(fmt.Errorf("the DLQ topic %s refuses a record: %w", m.Topic, perr)))
			return false
		}
		d := p.retryDelay(attempt)
		c.log.Warn("writing to the DLQ failed; retrying", zap.Error(perr), zap.Duration("backoff", d))
		if !sleep(ctx, d) {
			return false
		}
	}
}

// setPaused pauses or resumes fetching of the claim's partition.
func (c *applyClaim) setPaused(on bool) {
	if c.paused == on || c.a.p.group == nil {
		return
	}
	c.paused = on
	tp := map[string][]int32{c.claim.Topic(): {c.claim.Partition()}}
	if on {
		c.a.p.group.Pause(tp)
	} else {
		c.a.p.group.Resume(tp)
	}
}
