package processor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cdcsync/cdcsync/processor/authority"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// pipeline runs one topology in this worker: one consumer group,
// cdcsync.<name>, and the producers its records flow into.
//
// Goroutines, all started and waited for by run:
//   - the consume loop (run itself): Consume, then again after every
//     rebalance or transient failure;
//   - one goroutine per claim, owned by sarama (ConsumeClaim);
//   - outAcks: reads the output producer's successes and errors and
//     forwards ledger entries of fully acknowledged records;
//   - ledAcks: reads the ledger producer's successes and errors and
//     completes records;
//   - groupErrors: logs the consumer group's errors.
type pipeline struct {
	plan    *topology.Plan
	cfg     Config
	log     *zap.Logger
	stats   *Stats
	metrics *metrics
	dec     cdc.Decoder
	enc     *schemas.Encoder // sink.format avro; nil for JSON

	nameBytes   []byte // the topology name, shared by every sink record's header
	ledgerTopic string
	rules       *authority.Rules
	now         func() time.Time

	client sarama.Client
	admin  sarama.ClusterAdmin
	out    sarama.AsyncProducer // sink and DLQ records
	led    sarama.AsyncProducer // ledger entries

	topics     []string
	partitions int32
	sinks      sync.Map // sink topic -> struct{}, topics known to exist

	mu       sync.Mutex
	ledgers  map[topicPartition]*partState // by claim, rebuilt in Setup
	cancel   context.CancelCauseFunc
	fatalErr error

	ready   atomic.Bool
	claimed atomic.Int32
}

// partState is the dedup state of one claim: the in-memory ledger index,
// restored from the ledger partition with the claim's partition number.
// The claim goroutine owns it; the mutex guards the few reads from
// elsewhere (metrics).
type partState struct {
	mu  sync.Mutex
	idx *ledger.Index
}

// errSessionFailed is the cause given to a session cancelled because an
// output could not be written.
var errSessionFailed = errors.New("processor: output failed")

func newPipeline(plan *topology.Plan, cfg Config, client sarama.Client, registry *schemas.Client, m *metrics, log *zap.Logger) (*pipeline, error) {
	dec, err := newDecoder(plan, registry)
	if err != nil {
		return nil, fatal(err)
	}
	p := &pipeline{
		plan:    plan,
		cfg:     cfg,
		log:     log.With(zap.String("topology", plan.Name())),
		stats:   m.forTopology(plan.Name()),
		metrics: m,
		dec:     dec,
		rules:   newRules(plan),
		now:     time.Now,
		client:  client,
		ledgers: map[topicPartition]*partState{},

		nameBytes:   []byte(plan.Name()),
		ledgerTopic: string(plan.LedgerTopic()),
	}
	if plan.SinkFormat() == topology.SinkAvro {
		p.enc = schemas.NewEncoder(registry, schemas.EncoderOptions{Strategy: plan.SubjectStrategy()})
	}
	return p, nil
}

func newRules(plan *topology.Plan) *authority.Rules {
	owners := map[string]string{}
	for f, s := range plan.Owners() {
		owners[f] = string(s)
	}
	policy := authority.DropField
	if plan.OnViolation() == topology.ViolationDLQ {
		policy = authority.DLQ
	}
	return authority.New(owners, string(plan.DefaultOwner()), policy)
}

func newDecoder(plan *topology.Plan, registry *schemas.Client) (cdc.Decoder, error) {
	opts := cdc.Options{SourceSystem: string(plan.SourceSystem())}
	switch plan.Dedup().Key {
	case topology.DedupContent:
		opts.IDMode = cdc.IDContent
	case topology.DedupField:
		opts.IDMode = cdc.IDField
		opts.IDField = plan.Dedup().Field
	}
	switch plan.Format() {
	case topology.DebeziumJSON:
		return cdc.NewJSONDecoder(opts), nil
	case topology.DebeziumAvro:
		return cdc.NewAvroDecoder(opts, registry), nil
	}
	return nil, fmt.Errorf("%w: topology %s: source.format %s is not supported by this worker yet", ErrConfig, plan.Name(), plan.Format())
}

// prepare resolves the source topics, checks that they are co-partitioned,
// and makes sure the ledger and DLQ topics exist with the same count.
func (p *pipeline) prepare(ctx context.Context) error {
	if err := p.client.RefreshMetadata(); err != nil {
		return err
	}
	all, err := p.client.Topics()
	if err != nil {
		return err
	}
	var topics []string
	for _, t := range all {
		if p.plan.MatchesTopic(t) {
			topics = append(topics, t)
		}
	}
	sort.Strings(topics)
	if len(topics) == 0 {
		// Debezium creates its topics with the first change, so a worker
		// deployed first waits for them (a transient condition).
		return fmt.Errorf("%w: topology %s (%s): %s matches no existing topic yet; waiting for Debezium to create it",
			ErrNoSourceTopics, p.plan.Name(), p.plan.File(), sourceDescription(p.plan))
	}
	var n int32 = -1
	counts := map[string]int{}
	for _, t := range topics {
		parts, err := p.client.Partitions(t)
		if err != nil {
			return err
		}
		counts[t] = len(parts)
		if n == -1 {
			n = int32(len(parts))
		} else if int32(len(parts)) != n {
			return fatal(fmt.Errorf("%w: topology %s: partition counts differ %v; every source topic of one topology needs the same count",
				ErrTopicLayout, p.plan.Name(), counts))
		}
	}
	p.topics, p.partitions = topics, n
	if err := ledger.Ensure(ctx, p.admin, string(p.plan.LedgerTopic()), n, p.plan.Dedup().Window, p.cfg.ReplicationFactor); err != nil {
		if errors.Is(err, ledger.ErrPartitionMismatch) {
			return fatal(err)
		}
		return err
	}
	if err := p.ensureTopic(string(p.plan.DLQTopic())); err != nil {
		return err
	}
	if p.enc != nil {
		// Register (or find) the output schema now, so an incompatible
		// schema stops the worker at start, not at the first record.
		var sinks []string
		for _, t := range topics {
			sinks = append(sinks, p.sinkTopicFor(t))
		}
		if err := p.enc.Prepare(sinks...); err != nil {
			if classify(err) == Transient {
				return err
			}
			return fatal(err)
		}
	}
	p.log.Info("pipeline prepared",
		zap.Strings("topics", topics), zap.Int32("partitions", n),
		zap.String("group", string(p.plan.Group())),
		zap.String("ledger", string(p.plan.LedgerTopic())),
		zap.String("dlq", string(p.plan.DLQTopic())))
	return nil
}

// ensureTopic creates topic with the source partition count if it does not
// exist. Known topics are cached.
func (p *pipeline) ensureTopic(topic string) error {
	if _, ok := p.sinks.Load(topic); ok {
		return nil
	}
	if parts, err := p.client.Partitions(topic); err == nil && len(parts) > 0 {
		p.sinks.Store(topic, struct{}{})
		return nil
	}
	err := p.admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: p.partitions, ReplicationFactor: p.cfg.ReplicationFactor}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		var te *sarama.TopicError
		if !errors.As(err, &te) || te.Err != sarama.ErrTopicAlreadyExists {
			return fmt.Errorf("creating topic %s: %w", topic, err)
		}
	}
	if err == nil {
		p.log.Info("created topic", zap.String("topic", topic), zap.Int32("partitions", p.partitions))
	}
	if err := p.client.RefreshMetadata(topic); err != nil {
		return err
	}
	p.sinks.Store(topic, struct{}{})
	return nil
}

// run consumes until ctx is done or a fatal error happens.
func (p *pipeline) run(ctx context.Context) error {
	var err error
	if p.admin, err = sarama.NewClusterAdminFromClient(p.client); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := p.prepare(ctx)
		if err == nil {
			break
		}
		if classify(err) == Fatal {
			return err
		}
		d := p.retryDelay(attempt)
		p.log.Warn("preparing pipeline failed, retrying", zap.Error(err), zap.Duration("backoff", d))
		if !sleep(ctx, d) {
			return nil
		}
	}

	// Under at_least_once two shared async producers write outputs and
	// ledger entries; under exactly_once each claim has its own
	// transactional producer (see txn.go), opened in Setup.
	alo := p.plan.Guarantee() != topology.ExactlyOnce
	if alo {
		// Each producer gets its own client, so its own connections: with
		// idempotence only one request may be in flight per connection,
		// and sharing one with the consumer's fetches (or the other
		// producer) would serialise them.
		var outClient, ledClient sarama.Client
		if p.out, outClient, err = p.newProducer(); err != nil {
			return err
		}
		defer outClient.Close()
		if p.led, ledClient, err = p.newProducer(); err != nil {
			p.out.Close()
			return err
		}
		defer ledClient.Close()
	}
	group, err := sarama.NewConsumerGroupFromClient(string(p.plan.Group()), p.client)
	if err != nil {
		return err
	}

	var acks errgroup.Group
	outDone := make(chan struct{})
	if alo {
		acks.Go(func() error { defer close(outDone); p.outAcks(); return nil })
		acks.Go(func() error { p.ledAcks(); return nil })
	}
	acks.Go(func() error {
		for err := range group.Errors() {
			p.log.Warn("consumer group error", zap.Error(err))
		}
		return nil
	})

	runErr := p.consume(ctx, group)

	// Soft shutdown: the last session's Cleanup waited for in-flight
	// records and committed; now flush the producers and leave the group.
	p.ready.Store(false)
	if alo {
		p.out.AsyncClose()
		<-outDone // the ledger entries of the last outputs are forwarded first
		p.led.AsyncClose()
	}
	if err := group.Close(); err != nil {
		p.log.Warn("leaving the group", zap.Error(err))
	}
	_ = acks.Wait()
	return runErr
}

// consume calls Consume in a loop: sarama returns from it at every
// rebalance. A transient failure cancels the session; the loop backs off
// and joins again, resuming from the last committed offsets.
func (p *pipeline) consume(ctx context.Context, group sarama.ConsumerGroup) error {
	h := &handler{p: p}
	failures := 0
	var failingSince time.Time
	for {
		sctx, cancel := context.WithCancelCause(ctx)
		p.mu.Lock()
		p.cancel = cancel
		p.mu.Unlock()
		err := group.Consume(sctx, p.topics, h)
		cause := context.Cause(sctx)
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
		if err != nil && classify(err) == Fatal {
			return err
		}
		if err == nil && (cause == nil || errors.Is(cause, context.Canceled)) {
			failures, failingSince = 0, time.Time{}
			continue
		}
		if err == nil {
			err = cause
		}
		if IsAccessFailure(err) {
			return err // a refused ACL: retrying cannot help (security.go)
		}
		if failingSince.IsZero() {
			failingSince = p.now()
		}
		if max := p.plan.Retry().MaxElapsed; max > 0 && p.now().Sub(failingSince) > max {
			return fatal(fmt.Errorf("still failing after errors.retry.max_elapsed (%v): %w", max, err))
		}
		p.stats.Restarts.Add(1)
		d := p.retryDelay(failures)
		failures++
		p.log.Warn("session failed; pausing, then resuming from the last committed offsets",
			zap.Error(err), zap.Duration("backoff", d), zap.Int("attempt", failures))
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// failSession cancels the current session after a transient failure.
func (p *pipeline) failSession(err error) {
	p.mu.Lock()
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel(fmt.Errorf("%w: %w", errSessionFailed, err))
	}
}

// stopFatal records a fatal error and ends the session; run returns it.
func (p *pipeline) stopFatal(err error) {
	p.mu.Lock()
	if p.fatalErr == nil {
		p.fatalErr = err
	}
	cancel := p.cancel
	p.mu.Unlock()
	p.log.Error("fatal error, stopping the pipeline", zap.Error(err))
	if cancel != nil {
		cancel(err)
	}
}

func (p *pipeline) retryDelay(attempt int) time.Duration {
	r := p.plan.Retry()
	return backoffMult(attempt, r.Initial, r.Max, r.Multiplier)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// outAcks handles acknowledgements of sink and DLQ records. A record
// whose outputs are all acknowledged gets its ledger entry written next;
// only then is it complete.
func (p *pipeline) outAcks() {
	succ, errs := p.out.Successes(), p.out.Errors()
	dlqTopic := string(p.plan.DLQTopic())
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			r := m.Metadata.(*record)
			if m.Topic == dlqTopic {
				p.stats.DLQ.Add(1)
			} else {
				p.stats.Out.Add(1)
			}
			p.outputAcked(r)
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			p.outputFailed(pe)
		}
	}
}

func (p *pipeline) outputAcked(r *record) {
	if r.pending.Add(-1) != 0 || r.resolved.Load() {
		return
	}
	if r.ledger == nil {
		p.finish(r)
		return
	}
	p.led.Input() <- r.ledger
}

func (p *pipeline) outputFailed(pe *sarama.ProducerError) {
	r := pe.Msg.Metadata.(*record)
	switch classify(pe.Err) {
	case Permanent:
		if pe.Msg.Topic != string(p.plan.DLQTopic()) && r.src != nil {
			// The output itself is unwritable (too large, say): the
			// source record goes to the DLQ in its place, and leaves no
			// ledger entry so a replay can apply it later.
			r.ledger = nil
			p.log.Warn("output rejected by the broker, sending the source record to the DLQ",
				zap.String("topic", r.src.Topic), zap.Int32("partition", r.src.Partition),
				zap.Int64("offset", r.src.Offset), zap.Error(pe.Err))
			m := p.dlqRecord(r.src, dlq.StageProduce, pe.Err, nil)
			m.Metadata = r
			p.out.Input() <- m
			return
		}
		fallthrough
	case Transient:
		if r.resolved.CompareAndSwap(false, true) {
			r.t.fail(r)
		}
		p.failSession(pe.Err)
	case Fatal:
		if r.resolved.CompareAndSwap(false, true) {
			r.t.fail(r)
		}
		p.stopFatal(pe.Err)
	}
}

// ledAcks handles acknowledgements of ledger entries.
func (p *pipeline) ledAcks() {
	succ, errs := p.led.Successes(), p.led.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			p.stats.LedgerWrites.Add(1)
			p.finish(m.Metadata.(*record))
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			r := pe.Msg.Metadata.(*record)
			if r.resolved.CompareAndSwap(false, true) {
				r.t.fail(r)
			}
			if classify(pe.Err) == Fatal {
				p.stopFatal(pe.Err)
			} else {
				p.failSession(pe.Err)
			}
		}
	}
}

// finish completes a record whose outputs and ledger entry are acknowledged.
func (p *pipeline) finish(r *record) {
	if !r.resolved.CompareAndSwap(false, true) {
		return
	}
	if !r.start.IsZero() {
		p.metrics.ack.WithLabelValues(p.plan.Name()).Observe(since(r.start))
	}
	r.t.complete(r)
	p.stats.Completed.Add(1)
}

func partitionLabel(p int32) string { return strconv.FormatInt(int64(p), 10) }

func sourceDescription(p *topology.Plan) string {
	if pat := p.SourcePattern(); pat != "" {
		return fmt.Sprintf("source.topic_pattern %q", pat)
	}
	return fmt.Sprintf("source.topics %v", p.SourceTopics())
}

// sinkTopicFor expands the sink topic template for a Debezium source topic
// named prefix.schema.table (or prefix.db.table), as the records of that
// topic will.
func (p *pipeline) sinkTopicFor(source string) string {
	parts := strings.Split(source, ".")
	db, schema, table := "", "", parts[len(parts)-1]
	if len(parts) >= 3 {
		schema = parts[len(parts)-2]
		db = parts[len(parts)-2]
	}
	return p.plan.SinkTopic(db, schema, table, table)
}

// sinkPartitions is the partition count of a sink topic that exists.
func (p *pipeline) sinkPartitions(topic string) (int32, error) {
	parts, err := p.client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	return int32(len(parts)), nil
}

// newProducer opens an async producer on a client of its own, with the
// pipeline client's configuration. The caller closes the client after the
// producer has drained.
func (p *pipeline) newProducer() (sarama.AsyncProducer, sarama.Client, error) {
	c, err := sarama.NewClient(p.cfg.Brokers, p.client.Config())
	if err != nil {
		return nil, nil, err
	}
	prod, err := sarama.NewAsyncProducerFromClient(c)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return prod, c, nil
}
