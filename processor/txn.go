package processor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/ledger"
)

// txnProducer is the transactional producer of one claimed partition under
// exactly_once, with transactional.id = <group>-<topic>-<partition>: the
// next owner of the partition fences this one when it initialises its own.
type txnProducer struct {
	id       string
	client   sarama.Client
	producer sarama.AsyncProducer
}

func (p *pipeline) newTxnProducer(c topicPartition) (*txnProducer, error) {
	sc, err := p.cfg.saramaConfig(p.plan.Name() + "-txn")
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%s-%s-%d", p.plan.Group(), c.topic, c.partition)
	sc.Producer.Transaction.ID = id
	sc.Producer.Transaction.Timeout = p.cfg.TransactionTimeout
	// A transaction that starts right after the previous commit often
	// meets CONCURRENT_TRANSACTIONS while the broker writes the commit
	// markers; sarama's default 100 ms retry backoff then adds 100 ms to
	// the end-to-end latency. Retry sooner, growing from 5 ms.
	sc.Producer.Transaction.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(5*time.Millisecond<<min(retries, 5), 100*time.Millisecond)
	}
	sc.Producer.Return.Successes = false
	sc.Producer.Partitioner = partitionerFor(string(p.plan.LedgerTopic()))
	client, err := sarama.NewClient(p.cfg.Brokers, sc)
	if err != nil {
		return nil, err
	}
	// Creating the producer initialises the transactional ID: it fences
	// the previous producer with this ID and waits until its open
	// transaction is completed or aborted.
	prod, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		client.Close()
		if isFenced(err) {
			return nil, fatal(fmt.Errorf("%w: %s: %v", ErrFenced, id, err))
		}
		return nil, fmt.Errorf("initialising transactional producer %s: %w", id, err)
	}
	return &txnProducer{id: id, client: client, producer: prod}, nil
}

// close aborts an open transaction and closes the producer and its
// client. It returns every error met, so a producer that could not abort
// or close is reported, not dropped.
func (t *txnProducer) close() error {
	var errs []error
	st := t.producer.TxnStatus()
	// A fenced (or otherwise fatal) producer cannot abort: the broker
	// aborts its open transaction when the next owner initialises.
	if st&sarama.ProducerTxnFlagInTransaction != 0 && st&sarama.ProducerTxnFlagFatalError == 0 {
		// Produce errors met while aborting belong to the aborted
		// transaction, whose records are redelivered: not a close error.
		if err := draining(t.producer, t.producer.AbortTxn, func(*sarama.ProducerError) {}); err != nil {
			errs = append(errs, fmt.Errorf("aborting the open transaction: %w", err))
		}
	}
	if err := t.producer.Close(); err != nil && !isFenced(err) {
		errs = append(errs, fmt.Errorf("closing the producer: %w", err))
	}
	if err := t.client.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the client: %w", err))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("transactional producer %s: %w", t.id, errors.Join(errs...))
}

func isFenced(err error) bool {
	return errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch)
}

// txnEmitter writes a claim's outputs, DLQ records and ledger entries into
// its open transaction. Nothing is acknowledged record by record: the
// commit makes them visible together with the consumer offset.
type txnEmitter struct {
	p    *pipeline
	tp   *txnProducer
	sess sarama.ConsumerGroupSession
	ps   *partState

	open     bool
	failed   error // the first produce error or transient failure in this transaction
	fenced   error // set once the producer was fenced or hit a fatal error: never write again
	records  int   // source records in the open transaction
	outs     int
	dlqs     []string // the stage of each DLQ record in the open transaction
	ledgers  int
	next     int64 // offset to commit: last record + 1
	rec      record
	opened   time.Time
	dlqTopic string

	// Group commit: the open transaction's ledger entries, written as
	// batch records (one per BatchMaxBytes) before the commit.
	batch  ledger.Batch
	led    int32 // the ledger partition: the claim's
	ledID  uint64
	ledSeq uint64
}

// noteErr records a failure of the open transaction.
func (e *txnEmitter) noteErr(err error) {
	if e.failed == nil {
		e.failed = err
	}
	if e.fenced == nil && (isFenced(err) || e.tp.producer.TxnStatus()&sarama.ProducerTxnFlagFatalError != 0) {
		e.fenced = err
	}
}

func (e *txnEmitter) beginTxn() {
	if e.open {
		return
	}
	if err := e.tp.producer.BeginTxn(); err != nil {
		e.noteErr(err)
	}
	e.ps.mu.Lock()
	e.ps.idx.Mark()
	e.ps.mu.Unlock()
	e.open, e.records, e.outs, e.dlqs, e.ledgers, e.opened = true, 0, 0, e.dlqs[:0], 0, time.Now()
	e.batch.Reset() // empty unless an aborted transaction left entries; flushLedger hands written buffers over
}

func (e *txnEmitter) begin(msg *sarama.ConsumerMessage, start time.Time) *record {
	e.beginTxn()
	e.records++
	e.next = msg.Offset + 1
	e.rec = record{offset: msg.Offset, src: msg, start: start}
	return &e.rec
}

func (e *txnEmitter) skip(*record) {}

func (e *txnEmitter) emit(r *record, led *ledgerEntry, outs ...*sarama.ProducerMessage) {
	if e.fenced != nil || e.failed != nil {
		return // the transaction will abort; writing more is pointless
	}
	for _, out := range outs {
		out.Metadata = r.src // for producerErr: which record a refused output belongs to
		if out.Topic == e.dlqTopic {
			e.dlqs = append(e.dlqs, dlqStageOf(out))
		} else {
			e.outs++
		}
		e.send(out)
	}
	if led != nil {
		e.ledgers++
		if err := e.batch.Append(led.key(), led.value()); err != nil {
			e.noteErr(err) // not an entry the stages build: a bug; the transaction aborts
			return
		}
		e.led = led.partition
		if !e.batch.Fits() {
			e.flushLedger()
		}
	}
}

// flushLedger writes the pending ledger entries into the transaction as
// one batch record.
func (e *txnEmitter) flushLedger() {
	if e.batch.Len() == 0 {
		return
	}
	if e.ledID == 0 {
		e.ledID = rand.Uint64()
	}
	e.ledSeq++
	e.send(&sarama.ProducerMessage{Topic: e.p.ledgerTopic, Partition: e.led,
		Key: sarama.ByteEncoder(ledger.BatchKey(e.ledID, e.ledSeq)), Value: sarama.ByteEncoder(e.batch.Value())})
	size := e.batch.Size()
	e.batch = ledger.Batch{} // the written buffer belongs to the producer now
	e.batch.Grow(size)
}

// producerErr notes a produce error. When the broker refused an output or
// DLQ record for good, the record is remembered (pipeline.reject), so that
// after the abort it goes to the DLQ instead of failing again.
func (e *txnEmitter) producerErr(pe *sarama.ProducerError) {
	if src, ok := pe.Msg.Metadata.(*sarama.ConsumerMessage); ok && classify(pe.Err) == Permanent {
		e.p.reject(src, pe.Msg.Topic == e.dlqTopic, pe.Err)
	}
	e.noteErr(pe.Err)
}

// send hands a message to the producer, collecting produce errors while it
// waits so the producer never blocks on its error channel.
func (e *txnEmitter) send(m *sarama.ProducerMessage) {
	for {
		select {
		case e.tp.producer.Input() <- m:
			return
		case pe := <-e.tp.producer.Errors():
			e.producerErr(pe)
		}
	}
}

// retract takes r out of the open transaction. After a transient failure
// the claim holds r and hands it again (consumeTxn), so the transaction
// commits up to the record before it. A fatal failure aborts the
// transaction.
func (e *txnEmitter) retract(r *record, err error) {
	e.p.tries.fail(r.src)
	if classify(err) != Transient {
		e.noteErr(err)
		return
	}
	e.records--
	e.next = r.offset
}

// commit adds the claim's next offset to the transaction and commits it.
// On failure it aborts, rolls the in-memory ledger back to the committed
// state and reports the error: the session restarts from the committed
// offset. A fenced producer returns ErrFenced: the partition must not be
// written again by this worker.
func (e *txnEmitter) commit(topic string, partition int32) error {
	if !e.open {
		return nil
	}
	e.open = false
	if e.failed == nil && e.fenced == nil {
		e.flushLedger()
	}
	e.drainErrors()
	err := e.failed
	if err == nil {
		err = e.tp.producer.AddOffsetsToTxnWithGroupMetadata(map[string][]*sarama.PartitionOffsetMetadata{
			topic: {{Partition: partition, Offset: e.next, LeaderEpoch: -1}},
		}, sarama.NewConsumerGroupMetadataFromSession(e.sess, string(e.p.plan.Group()), nil))
	}
	if err == nil {
		err = draining(e.tp.producer, e.tp.producer.CommitTxn, e.producerErr)
	}
	if err == nil {
		e.ps.mu.Lock()
		e.ps.idx.Commit()
		e.ps.mu.Unlock()
		st := e.p.stats
		st.Out.Add(int64(e.outs))
		for _, stage := range e.dlqs {
			e.p.countDLQ(stage, 1)
		}
		st.LedgerWrites.Add(int64(e.ledgers))
		st.Completed.Add(int64(e.records))
		st.TxnCommits.Add(1)
		e.p.metrics.ack.WithLabelValues(e.p.plan.Name()).Observe(since(e.opened))
		return nil
	}
	e.noteErr(err)
	e.drainErrors()
	e.failed = nil
	e.ps.mu.Lock()
	e.ps.idx.Rollback()
	e.ps.mu.Unlock()
	e.p.stats.TxnAborts.Add(1)
	if e.fenced == nil {
		if aerr := draining(e.tp.producer, e.tp.producer.AbortTxn, e.producerErr); aerr != nil {
			e.noteErr(aerr)
		}
	}
	if e.fenced != nil {
		return fmt.Errorf("%w: %s: %v", ErrFenced, e.tp.id, e.fenced)
	}
	return fmt.Errorf("transaction %s aborted: %w", e.tp.id, err)
}

// draining runs end (CommitTxn or AbortTxn) while it hands the producer's
// errors to onErr. Both wait until every message in flight is answered,
// and sarama's Errors channel is unbuffered: a produce error answered
// during the wait (a record the broker refused, say) blocks sarama until
// someone reads it, so calling end alone deadlocked the claim. The
// goroutine is waited for here; it ends because end ends once the errors
// are read.
func draining(prod sarama.AsyncProducer, end func() error, onErr func(*sarama.ProducerError)) error {
	done := make(chan error, 1)
	go func() { done <- end() }()
	for {
		select {
		case err := <-done:
			return err
		case pe := <-prod.Errors():
			onErr(pe)
		}
	}
}

// drainErrors collects produce errors already reported.
func (e *txnEmitter) drainErrors() {
	for {
		select {
		case pe := <-e.tp.producer.Errors():
			e.producerErr(pe)
		default:
			return
		}
	}
}

// consumeTxn is the exactly_once claim loop: records go into one open
// transaction, committed with the consumer offset every commit interval or
// when TxnMaxRecords is reached. A record that fails transiently in the
// stages is held behind the circuit breakers (handleTxn), with no session
// restart. An aborted transaction restarts the session, which resumes from the committed offset with the ledger
// restored to the committed state. A fenced producer never writes again:
// the session restarts too, and a new producer takes the partition if this
// worker still owns it.
func (h *handler) consumeTxn(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, ps *partState, tp *txnProducer) error {
	p := h.p
	em := &txnEmitter{p: p, tp: tp, sess: sess, ps: ps, dlqTopic: string(p.plan.DLQTopic())}
	c := p.newClaimCtx(sess, claim, ps, em)
	c.owned = true // every record is detached before handleTxn
	// No event outlives handle: each record's is decoded in the memory of
	// the previous one (the audit is at the decode in stages).
	c.scratch = new(cdc.Scratch)
	lag := p.newClaimLag(claim, ps, nil)
	defer lag.revoke()
	ctx := sess.Context()
	tick := time.NewTicker(p.plan.CommitInterval())
	defer tick.Stop()
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()

	g := &claimGate{p: p, claim: claim, c: c, expire: expire}
	defer g.setPaused(false) // sarama keeps a pause across sessions
	commit := func() bool {
		err := em.commit(claim.Topic(), claim.Partition())
		if err == nil {
			lag.markCommitted(em.next)
			return true
		}
		if errors.Is(err, ErrFenced) {
			// Either another worker owns the partition now (a rebalance
			// this one has not seen yet), or the transaction coordinator
			// bumped the producer's epoch itself: it does so when it
			// aborts a transaction after a broker failover, and then no
			// rebalance follows. The fenced producer never writes again;
			// the session restarts, so this worker rejoins the group and,
			// if it still owns the partition, a new producer resumes from
			// the last committed offset. (It stayed idle until the next
			// rebalance, and on a leader kill under exactly_once a
			// partition stalled for good: TestRealStackClusterFaults.)
			c.log.Warn("producer fenced (another owner, or the transaction coordinator bumped its epoch after a failover); rejoining the group without writing again",
				zap.String("transactional_id", tp.id), zap.Error(err))
			// Not wrapped: ErrFenced is fatal, and this failure is not.
			p.failSession(fmt.Errorf("transactional producer %s fenced: %v", tp.id, err))
			return false
		}
		c.log.Warn("transaction aborted; resuming from the last committed offset", zap.Error(err))
		p.failSession(err)
		return false
	}
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				commit()
				return nil
			}
			lag.fetched(msg, claim.HighWaterMarkOffset())
			detach(msg)
			if !h.handleTxn(c, g, msg, commit) {
				return nil
			}
			if em.records >= p.cfg.TxnMaxRecords && !commit() {
				return nil
			}
		case pe := <-tp.producer.Errors():
			em.producerErr(pe)
		case <-tick.C:
			if !commit() {
				return nil
			}
		case <-expire.C:
			c.expire()
		case <-ctx.Done():
			// Rebalance or shutdown: commit what is done so the next
			// owner starts after it.
			commit()
			return nil
		}
	}
}

// handleTxn runs msg through the stages. A record that fails transiently
// (the registry or a sink topic's metadata unavailable) is held: the open
// transaction commits up to the record before it, so it is not held open
// through the outage, and the record is handed again, with backoff while
// the breaker is closed, paused behind it while it is open, or as its
// probe. It returns false when the claim must stop (session over, an
// aborted or fenced transaction).
func (h *handler) handleTxn(c *claimCtx, g *claimGate, msg *sarama.ConsumerMessage, commit func() bool) bool {
	p := h.p
	for attempt := 0; ; attempt++ {
		probe, ok := g.gate(p.breakers)
		if !ok {
			return false
		}
		err := c.handle(msg)
		if err == nil {
			g.setPaused(false)
			p.registryBrk.success(probe == p.registryBrk)
			p.producerBrk.success(probe == p.producerBrk)
			return true
		}
		if classify(err) == Fatal {
			g.release(probe)
			p.stopFatal(err) // the transaction aborts at the next commit
			return true
		}
		b := p.breakerFor(err)
		if probe != nil && probe != b {
			probe.release()
		}
		if ferr := b.failure(err, probe == b); ferr != nil {
			p.stopFatal(ferr)
			return true
		}
		if !commit() {
			return false
		}
		if b.closed() && !g.wait(nil, time.Now().Add(p.retryDelay(attempt))) {
			return false
		}
	}
}
