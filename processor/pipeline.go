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
//   - at_least_once: the aloWriter's acknowledgement goroutines (alo.go),
//     started by openWriter and waited for by its close;
//   - groupErrors: logs the consumer group's errors;
//   - refreshLag: recomputes the lag gauges of the live claims and probes
//     the silent ones' ends, in goroutines of its own that it waits for
//     (lag.go).
type pipeline struct {
	plan    *topology.Plan
	cfg     Config
	log     *zap.Logger
	stats   *Stats
	metrics *metrics
	dec     cdc.Decoder
	outbox  *cdc.OutboxDecoder // source.format debezium-outbox (outbox.go)
	enc     *schemas.Encoder   // sink.format avro; nil for JSON

	nameBytes   []byte // the topology name, shared by every sink record's header
	ledgerTopic string
	rules       *authority.Rules
	now         func() time.Time

	client sarama.Client
	admin  sarama.ClusterAdmin
	alo    *aloWriter           // at_least_once only; set in run
	apply  *applyPipe           // apply topologies only (applypipe.go)
	saga   *sagaPipe            // saga topologies only (sagapipe.go)
	group  sarama.ConsumerGroup // for Pause and Resume; set in run

	// Circuit breakers of the topology's dependencies (breaker.go), in the
	// order the claims ask them: registry, then producer.
	registryBrk, producerBrk *breaker
	breakers                 []*breaker

	topics     []string
	partitions int32
	sinks      sync.Map // sink or DLQ topic -> int32 partition count, topics checked by ensureTopic
	sinkOK     sync.Map // sink topic -> struct{}, expanded sink topics checked and ensured
	warned     sync.Map // topic -> struct{}, partition-count warnings given
	rejected   sync.Map // sourcePos -> rejection (exactly_once)
	nRejected  atomic.Int32

	mu       sync.Mutex
	ledgers  map[topicPartition]*partState // by claim, rebuilt in Setup
	cancel   context.CancelCauseFunc
	fatalErr error

	ready   atomic.Bool
	status  status   // for /healthz and /readyz (worker.go)
	lags    lagSet   // live claims, for the lag refresh (lag.go)
	tries   attempts // failed attempts per source record, for the DLQ header (attempts.go)
	claimed atomic.Int32

	life lifecycle // pause, resume and restart (lifecycle.go)
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
	if plan.IsApply() {
		return newApplyPipeline(plan, cfg, registry, m, log)
	}
	if plan.IsSaga() {
		return newSagaPipeline(plan, cfg, m, log)
	}
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
	p.outbox, _ = dec.(*cdc.OutboxDecoder)
	if plan.SinkFormat() == topology.SinkAvro {
		p.enc = schemas.NewEncoder(registry, schemas.EncoderOptions{Strategy: plan.SubjectStrategy()})
	}
	p.life.init()
	now := func() time.Time { return p.now() }
	p.registryBrk = newBreaker(plan, depRegistry, m.breaker, now, p.log)
	p.producerBrk = newBreaker(plan, depProducer, m.breaker, now, p.log)
	p.breakers = []*breaker{p.registryBrk, p.producerBrk}
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
	case topology.WebhookJSON:
		return cdc.NewWebhookDecoder(opts, WebhookMap(plan)), nil
	case topology.DebeziumOutbox:
		var src cdc.SchemaSource // Avro records need the registry, JSON ones not
		if registry != nil {
			src = registry
		}
		return cdc.NewOutboxDecoder(opts, src), nil
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
	if err := p.ensureTopic(string(p.plan.DLQTopic()), kindDLQ); err != nil {
		if classify(err) == Permanent {
			return fatal(err) // nothing can go to the DLQ
		}
		return err
	}
	if err := p.prepareSinks(topics); err != nil {
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

// Kinds of topics ensureTopic makes sure of, for its log lines and errors.
const (
	kindSink = "sink"
	kindDLQ  = "DLQ"
)

// ensureTopic makes sure a sink or DLQ topic exists. A missing topic is
// created with the source partition count and the configured replication
// factor, and the creation is logged. A topic that exists with another
// partition count is used as it is, with one warning that says what it
// costs. Checked topics are cached with their partition count.
//
// The metadata is read with DescribeTopics, which never asks the broker to
// auto-create the topic (and every client cdcsync opens has
// Metadata.AllowAutoTopicCreation off): with auto.create.topics.enable on,
// a plain metadata request would create it with the broker's
// num.partitions. A create error that no retry can fix (an invalid or
// colliding name, a policy refusal) is returned as is; classify sees it as
// permanent.
func (p *pipeline) ensureTopic(topic, kind string) error {
	if _, ok := p.sinks.Load(topic); ok {
		return nil
	}
	have, exists, err := p.describeTopic(topic)
	if err != nil {
		return fmt.Errorf("reading the metadata of %s topic %s: %w", kind, topic, err)
	}
	if !exists {
		err := p.admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: p.partitions, ReplicationFactor: p.cfg.ReplicationFactor}, false)
		switch {
		case err == nil:
			p.log.Info("created topic", zap.String("kind", kind), zap.String("topic", topic),
				zap.Int32("partitions", p.partitions), zap.Int16("replication_factor", p.cfg.ReplicationFactor))
		case errors.Is(err, sarama.ErrTopicAlreadyExists):
			// Another worker created it first; its count is checked below.
		default:
			return fmt.Errorf("creating %s topic %s (%d partitions, replication factor %d): %w",
				kind, topic, p.partitions, p.cfg.ReplicationFactor, err)
		}
		// A topic just created may take a moment to show in the metadata.
		for attempt := 0; ; attempt++ {
			if have, exists, err = p.describeTopic(topic); err != nil {
				return fmt.Errorf("reading the metadata of %s topic %s: %w", kind, topic, err)
			}
			if exists {
				break
			}
			if attempt == 50 {
				return fmt.Errorf("%s topic %s was created but is still missing from the metadata", kind, topic)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if have != p.partitions {
		p.warnPartitions(topic, kind, have)
	}
	// The producers' clients learn of the topic by themselves; the
	// pipeline's client needs it for sinkPartitions.
	if err := p.client.RefreshMetadata(topic); err != nil {
		return err
	}
	p.sinks.Store(topic, have)
	return nil
}

// ensureSink makes sure an expanded sink topic may be written and exists.
// An error that classify calls permanent means no retry can make the
// topic usable: the record goes to the DLQ, stage route.
func (p *pipeline) ensureSink(topic string) error {
	if _, ok := p.sinkOK.Load(topic); ok {
		return nil
	}
	if err := p.checkSinkTopic(topic); err != nil {
		return err
	}
	if err := p.ensureTopic(topic, kindSink); err != nil {
		if classify(err) == Permanent {
			return &SinkTopicError{Topic: topic, Reason: "the broker refused to create it", Err: err}
		}
		return err
	}
	p.sinkOK.Store(topic, struct{}{})
	return nil
}

// checkSinkTopic refuses an expanded sink topic that is not a legal Kafka
// topic name, that is or collides with the topology's DLQ or ledger topic
// or one of its source topics (present or matched by its pattern), or that
// collides with an existing topic ('.' and '_' are the same to Kafka's
// metric names, so the broker refuses the second of two such names). It
// runs before the topic is created or written. The error is a
// *SinkTopicError, which is permanent.
func (p *pipeline) checkSinkTopic(topic string) error {
	if err := topology.CheckTopicName(topic); err != nil {
		return &SinkTopicError{Topic: topic, Reason: "not a legal topic name", Err: err}
	}
	for _, own := range []struct{ name, what string }{
		{string(p.plan.DLQTopic()), "the topology's DLQ topic"},
		{p.ledgerTopic, "the topology's ledger topic"},
	} {
		if topic == own.name {
			return &SinkTopicError{Topic: topic, Reason: "it is " + own.what, Err: ErrSinkTopic}
		}
		if topology.TopicsCollide(topic, own.name) {
			return &SinkTopicError{Topic: topic, Reason: fmt.Sprintf("it collides with %s %s", own.what, own.name), Err: ErrSinkTopic}
		}
	}
	if p.plan.MatchesTopic(topic) {
		return &SinkTopicError{Topic: topic, Reason: "it is a source topic of this topology: sync records would be read back as changes", Err: ErrSinkTopic}
	}
	for _, src := range p.topics {
		if topology.TopicsCollide(topic, src) {
			return &SinkTopicError{Topic: topic, Reason: "it collides with source topic " + src, Err: ErrSinkTopic}
		}
	}
	if p.client == nil {
		return nil // an offline run (offline.go): no broker, no existing topics
	}
	existing, err := p.client.Topics()
	if err != nil {
		return err
	}
	for _, t := range existing {
		if topology.TopicsCollide(topic, t) {
			return &SinkTopicError{Topic: topic, Reason: "it collides with existing topic " + t, Err: ErrSinkTopic}
		}
	}
	return nil
}

// describeTopic returns the partition count of topic and whether it exists.
func (p *pipeline) describeTopic(topic string) (int32, bool, error) {
	md, err := p.admin.DescribeTopics([]string{topic})
	if err != nil {
		return 0, false, err
	}
	for _, t := range md {
		if t.Name != topic {
			continue
		}
		switch {
		case errors.Is(t.Err, sarama.ErrNoError):
			return int32(len(t.Partitions)), len(t.Partitions) > 0, nil
		case errors.Is(t.Err, sarama.ErrUnknownTopicOrPartition), errors.Is(t.Err, sarama.ErrLeaderNotAvailable):
			return 0, false, nil
		default:
			return 0, false, t.Err
		}
	}
	return 0, false, nil
}

// warnPartitions says, once per topic and pipeline, that an existing sink
// or DLQ topic does not have the source's partition count, and what that
// costs. The worker keeps running: the topic is usable, unlike a ledger
// with the wrong count, which refuses the start.
func (p *pipeline) warnPartitions(topic, kind string, have int32) {
	if _, done := p.warned.LoadOrStore(topic, struct{}{}); done {
		return
	}
	consequence := "keys are spread by Kafka's murmur2 over its partition count, so a key does not land on the partition " +
		"it would have with the source's count (consumers that expect the sink co-partitioned with the source or with " +
		"other sink topics are wrong), and if the count changed while the topic held records, a key's earlier and later " +
		"records sit in different partitions, so its per-key order across the change is lost"
	if kind == kindDLQ {
		consequence = "a key's DLQ records still stay together in one partition, but not in the partition the source's count would give"
	}
	p.log.Warn("existing topic does not have the source's partition count; cdcsync uses it as it is",
		zap.String("kind", kind), zap.String("topic", topic), zap.Int32("partitions", have),
		zap.Int32("source_partitions", p.partitions), zap.String("consequence", consequence),
		zap.String("fix", fmt.Sprintf("recreate the topic with %d partitions while no worker runs", p.partitions)))
}

// run consumes until ctx is done or a fatal error happens.
func (p *pipeline) run(ctx context.Context) error {
	if p.apply != nil {
		return p.apply.run(ctx)
	}
	if p.saga != nil {
		return p.saga.run(ctx)
	}
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
		p.setPhase("preparing failed, retrying: " + err.Error())
		if !sleep(ctx, d) {
			return nil
		}
	}

	// The guarantee's writer: at_least_once's shared producers and their
	// acknowledgement goroutines (alo.go); exactly_once writes through each
	// claim's transactional producer, opened in Setup (txn.go).
	w, err := p.openWriter()
	if err != nil {
		return err
	}
	group, err := sarama.NewConsumerGroupFromClient(string(p.plan.Group()), p.client)
	if err != nil {
		w.close()
		return err
	}
	p.group = group

	var groupErrs errgroup.Group // the group-error logger and the lag refresh
	groupErrs.Go(func() error {
		for err := range group.Errors() {
			p.log.Warn("consumer group error", zap.Error(err))
		}
		return nil
	})

	lagCtx, stopLag := context.WithCancel(ctx)
	groupErrs.Go(func() error { p.refreshLag(lagCtx); return nil })

	runErr := p.consume(ctx, group)
	stopLag()

	// Soft shutdown: the last session's Cleanup waited for in-flight
	// records and committed; now flush the producers and leave the group.
	p.ready.Store(false)
	w.close()
	if err := group.Close(); err != nil {
		p.log.Warn("leaving the group", zap.Error(err))
	}
	_ = groupErrs.Wait()
	return runErr
}

// consume calls Consume in a loop: sarama returns from it at every
// rebalance. Under at_least_once a transient failure of a dependency does
// not end the session (the circuit breakers pause the partitions instead,
// see alo.go); a session still ends when the consumer itself loses the
// group (its broker connection, a missed heartbeat) or, under
// exactly_once, when a transaction aborts. The loop then backs off and
// joins again, resuming from the last committed offsets.
func (p *pipeline) consume(ctx context.Context, group sarama.ConsumerGroup) error {
	h := &handler{p: p}
	failures := 0
	var failingSince time.Time
	for {
		sctx, cancel := context.WithCancelCause(ctx)
		p.mu.Lock()
		p.cancel = cancel
		p.mu.Unlock()
		p.stats.FirstJoin.CompareAndSwap(0, time.Now().UnixNano())
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
		if errors.Is(cause, context.Canceled) {
			// Only a pause ends a session without a cause (lifecycle.go);
			// one that came during Setup aborts the ledger restore, which
			// is no failure.
			continue
		}
		if err == nil {
			err = cause
		}
		if classify(err) == Fatal {
			// A claim gave up on a record because of a failure no retry
			// can fix (an authorization error, say).
			return err
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

// failSession cancels the current session after a transient failure
// (exactly_once: an aborted transaction).
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

// dlqRefused is the fatal error of a DLQ topic that refuses a record cut
// to its error headers: no record can go to the DLQ, so none may fail.
func (p *pipeline) dlqRefused(pe *sarama.ProducerError) error {
	return fatal(fmt.Errorf("DLQ topic %s refuses even a %d-byte record with no key or value (check its max.message.bytes and cleanup.policy): %w",
		pe.Msg.Topic, pe.Msg.ByteSize(2), pe.Err))
}

// rejection is a source record whose output (level 1) or DLQ record
// (level 2) the broker refused permanently inside an exactly_once
// transaction, which then aborted. When the record comes again, handle
// sends it to the DLQ (level 1), or a DLQ record cut to its error headers
// (level 2), instead of failing the same way forever; level 3 stops the
// pipeline.
type rejection struct {
	level int
	err   error
}

type sourcePos struct {
	topic     string
	partition int32
	offset    int64
}

// reject records a permanent produce failure of src's outputs (see rejection).
func (p *pipeline) reject(src *sarama.ConsumerMessage, toDLQ bool, err error) {
	level := 1
	if toDLQ {
		level = 2
	}
	pos := sourcePos{src.Topic, src.Partition, src.Offset}
	if old, ok := p.rejected.Load(pos); ok && old.(rejection).level >= level {
		level = old.(rejection).level + 1
	}
	p.rejected.Store(pos, rejection{level: level, err: err})
	p.tries.fail(src)
	p.nRejected.Add(1)
}

// rejectedBefore returns the rejection of src, if any.
func (p *pipeline) rejectedBefore(src *sarama.ConsumerMessage) (rejection, bool) {
	if p.nRejected.Load() == 0 {
		return rejection{}, false
	}
	v, ok := p.rejected.Load(sourcePos{src.Topic, src.Partition, src.Offset})
	if !ok {
		return rejection{}, false
	}
	return v.(rejection), true
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
	// No record has been read, so the connector is not known: the part
	// before the table is the database to MySQL and MongoDB and the
	// schema to PostgreSQL, and a template uses one or the other.
	tn, _ := cdc.ParseTopic(source, "")
	db := tn.Database
	if db == "" {
		db = tn.Schema
	}
	return p.plan.SinkTopic(db, tn.Schema, tn.Table, tn.Table)
}

// prepareSinks makes the sink topics that the source topics' names decide
// ready before any record is read, so the claim goroutines find them
// checked and created. A template with {db} or {schema} is left to the
// first record of each topic, since only the records' source blocks name
// those for sure (a PostgreSQL topic does not name its database), and a
// guess could create a topic nothing writes. A sink topic no retry can
// make usable is logged; its records go to the DLQ, stage route.
func (p *pipeline) prepareSinks(topics []string) error {
	tpl := p.plan.SinkTopicTemplate()
	if strings.Contains(tpl, "{db}") || strings.Contains(tpl, "{schema}") {
		return nil
	}
	for _, t := range topics {
		st := p.sinkTopicFor(t)
		if err := p.ensureSink(st); err != nil {
			if classify(err) != Permanent {
				return err
			}
			p.log.Warn("sink topic unusable; its records will go to the DLQ (stage route)",
				zap.String("source", t), zap.String("sink", st), zap.Error(err))
		}
	}
	return nil
}

// sinkPartitions is the partition count of a sink topic ensureTopic has
// checked.
func (p *pipeline) sinkPartitions(topic string) (int32, error) {
	if n, ok := p.sinks.Load(topic); ok {
		return n.(int32), nil
	}
	parts, err := p.client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	return int32(len(parts)), nil
}

// newProducer opens an async producer on a client of its own, with the
// pipeline client's configuration (and the producers' read timeout). The
// caller closes the client after the producer has drained.
func (p *pipeline) newProducer() (sarama.AsyncProducer, sarama.Client, error) {
	c, err := sarama.NewClient(p.cfg.Brokers, producerConfig(p.client.Config()))
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
