package processor

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/topology"
)

// at_least_once, owned here: the emitter (aloEmitter) hands outputs to the
// pipeline's shared async producer; the acknowledgement goroutines
// (aloWriter.outAcks, aloWriter.ledAcks) write a record's ledger entry once
// every output is acknowledged, and complete it once the ledger entry is;
// the tracker marks an offset only when it and every offset before it are
// complete; the claim loop (aloClaim) reads the partition, holds and
// re-sends records that failed transiently, and pauses the partition while
// a circuit breaker is open. A crash between output and ledger entry
// repeats the output; a redelivery after the ledger entry landed is
// dropped as a duplicate.

// aloWriter owns the at_least_once producers of one pipeline: out (sink
// and DLQ records) and led (ledger entries), each on a client of its own,
// and the two goroutines that read their acknowledgements. openWriter
// starts them; close flushes and waits for them.
type aloWriter struct {
	p                    *pipeline
	out, led             sarama.AsyncProducer
	outClient, ledClient sarama.Client
	acks                 sync.WaitGroup
	outDone              chan struct{}
	ack                  prometheus.Observer // cdcsync_ack_seconds of the topology, looked up once

	// Group commit (outAcks only): the ledger entries of records whose
	// outputs are acknowledged, by ledger partition, waiting to be
	// written as one batch record. A batch is written when it is full or
	// ledgerLinger after its first entry; its records complete when it
	// is acknowledged.
	pend   map[int32]*ledgerBatch
	linger *time.Timer
	armed  bool
	ledID  uint64 // this writer's random ID in batch keys
	ledSeq uint64
}

// ledgerLinger bounds how long a ledger entry waits for others to share
// its batch record. The outputs of one produce response are acknowledged
// together, so most batches fill in far less.
const ledgerLinger = 5 * time.Millisecond

// ledgerBatch is one batch record being built, then in flight: the
// records it completes once acknowledged.
type ledgerBatch struct {
	part int32
	b    ledger.Batch
	atts []*attempt
}

// writer is what pipeline.run opens before consuming and closes after.
type writer interface{ close() }

type txnWriter struct{} // exactly_once writes through each claim's producer (txn.go)

func (txnWriter) close() {}

// openWriter opens the writer of the topology's guarantee.
func (p *pipeline) openWriter() (writer, error) {
	if p.plan.Guarantee() == topology.ExactlyOnce {
		return txnWriter{}, nil
	}
	// Each producer gets its own client, so its own connections: with
	// idempotence only one request may be in flight per connection, and
	// sharing one with the consumer's fetches (or the other producer)
	// would serialise them.
	w := &aloWriter{p: p, outDone: make(chan struct{}), pend: map[int32]*ledgerBatch{}, ledID: rand.Uint64(),
		ack: p.metrics.ack.WithLabelValues(p.plan.Name())}
	w.linger = time.NewTimer(time.Hour)
	w.linger.Stop()
	var err error
	if w.out, w.outClient, err = p.newProducer(); err != nil {
		return nil, err
	}
	if w.led, w.ledClient, err = p.newProducer(); err != nil {
		w.out.Close()
		w.outClient.Close()
		return nil, err
	}
	w.acks.Add(2)
	go func() { defer w.acks.Done(); defer close(w.outDone); w.outAcks() }()
	go func() { defer w.acks.Done(); w.ledAcks() }()
	p.alo = w
	return w, nil
}

// close flushes both producers (the ledger entries of the last outputs
// are forwarded before the ledger producer closes) and waits for the
// acknowledgement goroutines.
func (w *aloWriter) close() {
	w.out.AsyncClose()
	<-w.outDone
	w.led.AsyncClose()
	w.acks.Wait()
	w.outClient.Close()
	w.ledClient.Close()
}

// outAcks handles acknowledgements of sink and DLQ records. A record
// whose outputs are all acknowledged gets its ledger entry written next;
// only then is it complete.
func (w *aloWriter) outAcks() {
	p := w.p
	succ, errs := w.out.Successes(), w.out.Errors()
	dlqTopic := string(p.plan.DLQTopic())
	defer w.flushLedger() // the entries of the last outputs, before led closes
	for succ != nil || errs != nil {
		select {
		case <-w.linger.C:
			w.armed = false
			w.flushLedger()
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			a := m.Metadata.(*attempt)
			if m.Topic == dlqTopic {
				p.countDLQ(dlqStageOf(m), 1)
			} else {
				p.stats.Out.Add(1)
			}
			w.outputAcked(a)
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.outputFailed(pe)
		}
	}
}

func (w *aloWriter) outputAcked(a *attempt) {
	if a.pending.Add(-1) != 0 || a.resolved.Load() {
		return
	}
	if a.r.ledger == nil {
		w.finish(a)
		return
	}
	w.addLedger(a)
}

// addLedger adds a's ledger entry to its partition's batch; a full batch
// is written at once, others when the linger timer fires.
func (w *aloWriter) addLedger(a *attempt) {
	m := a.r.ledger
	lb := w.pend[m.partition]
	if lb == nil {
		lb = &ledgerBatch{part: m.partition}
		w.pend[m.partition] = lb
	}
	if err := lb.b.Append(m.key(), m.value()); err != nil {
		// Not an entry the stages build; a bug, never bad input.
		w.failAttempt(a, err)
		w.p.stopFatal(err)
		return
	}
	lb.atts = append(lb.atts, a)
	if !lb.b.Fits() {
		w.writeBatch(lb)
		return
	}
	if !w.armed {
		w.armed = true
		w.linger.Reset(ledgerLinger)
	}
}

// flushLedger writes every pending batch.
func (w *aloWriter) flushLedger() {
	for _, lb := range w.pend {
		if lb.b.Len() > 0 {
			w.writeBatch(lb)
		}
	}
}

// writeBatch hands lb to the ledger producer as one record and starts a
// new batch for its partition.
func (w *aloWriter) writeBatch(lb *ledgerBatch) {
	next := &ledgerBatch{part: lb.part, atts: make([]*attempt, 0, len(lb.atts))}
	next.b.Grow(lb.b.Size()) // the next batch is likely the size of this one
	w.pend[lb.part] = next
	w.ledSeq++
	w.led.Input() <- &sarama.ProducerMessage{
		Topic:     w.p.ledgerTopic,
		Partition: lb.part,
		Key:       sarama.ByteEncoder(ledger.BatchKey(w.ledID, w.ledSeq)),
		Value:     sarama.ByteEncoder(lb.b.Value()),
		Metadata:  lb,
	}
}

// failAttempt resolves an attempt as failed: the record stays unmarked and
// is sent again after rewind (alo.go). The claim goroutine reads err once
// the record has settled.
func (w *aloWriter) failAttempt(a *attempt, err error) {
	if a.resolved.CompareAndSwap(false, true) {
		a.r.err = err
		a.r.t.fail(a.r)
	}
}

// transientOutput handles a transient produce failure: the record is
// sent again, and the producer breaker counts the failure.
func (w *aloWriter) transientOutput(a *attempt, err error) {
	p := w.p
	w.failAttempt(a, err)
	p.tries.fail(a.r.src)
	if ferr := p.producerBrk.failure(err, false); ferr != nil {
		p.stopFatal(ferr)
	}
}

func (w *aloWriter) outputFailed(pe *sarama.ProducerError) {
	p := w.p
	a := pe.Msg.Metadata.(*attempt)
	r := a.r
	if a.resolved.Load() {
		return // an earlier attempt's output, in flight when another failed
	}
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
			m.Metadata = a
			for i, o := range r.outs {
				if o == pe.Msg {
					r.outs[i] = m // what is sent again if the record is rewound
				}
			}
			w.out.Input() <- m
			return
		}
		if pe.Msg.Topic == string(p.plan.DLQTopic()) {
			if !r.dlqCut {
				// The DLQ topic's limit is below the producer's: send the
				// record again with only its error headers.
				r.dlqCut = true
				dlq.Fit(pe.Msg, 0)
				p.log.Warn("the broker refused a DLQ record; sending it again without its key, value and original headers",
					zap.String("dlq", pe.Msg.Topic), zap.Int("bytes", pe.Msg.ByteSize(2)), zap.Error(pe.Err))
				w.out.Input() <- pe.Msg
				return
			}
			w.failAttempt(a, pe.Err)
			p.stopFatal(p.dlqRefused(pe))
			return
		}
		w.transientOutput(a, pe.Err)
	case Transient:
		w.transientOutput(a, pe.Err)
	case Fatal:
		w.failAttempt(a, pe.Err)
		p.stopFatal(pe.Err)
	}
}

// ledAcks handles acknowledgements of ledger entries.
func (w *aloWriter) ledAcks() {
	p := w.p
	succ, errs := w.led.Successes(), w.led.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			lb := m.Metadata.(*ledgerBatch)
			p.stats.LedgerWrites.Add(int64(len(lb.atts)))
			w.finishAll(lb.atts...)
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Every record of the batch is sent again; the breaker
			// counts one failure, as for one output.
			lb := pe.Msg.Metadata.(*ledgerBatch)
			for _, a := range lb.atts {
				w.failAttempt(a, pe.Err)
				p.tries.fail(a.r.src)
			}
			if classify(pe.Err) == Fatal {
				p.stopFatal(pe.Err)
			} else if ferr := p.producerBrk.failure(pe.Err, false); ferr != nil {
				p.stopFatal(ferr)
			}
		}
	}
}

// finish completes a record whose outputs and ledger entry are acknowledged.
func (w *aloWriter) finish(a *attempt) { w.finishAll(a) }

// finishAll is finish for several records at once, those of one
// acknowledged ledger batch: the records of one tracker in a row complete
// together (one lock, one MarkOffset), one clock read times them all, and
// the breaker hears of one success. A batch normally holds one claim's
// records; after a rebalance it may also hold those of the partition's
// previous session.
func (w *aloWriter) finishAll(atts ...*attempt) {
	p := w.p
	now := time.Now()
	var buf [16]*record
	run := buf[:0]
	var t *tracker
	var first int64
	outs := false
	for _, a := range atts {
		if !a.resolved.CompareAndSwap(false, true) {
			continue
		}
		r := a.r
		if !r.counts {
			r.counts = true
			first++
			if !r.start.IsZero() {
				w.ack.Observe(now.Sub(r.start).Seconds())
			}
		}
		outs = outs || len(r.outs) > 0
		if r.t != t && len(run) > 0 {
			t.completeAll(run...)
			run = run[:0]
		}
		t = r.t
		run = append(run, r)
	}
	if outs {
		p.producerBrk.success(false)
	}
	if len(run) > 0 {
		t.completeAll(run...)
	}
	p.stats.Completed.Add(first)
}

// aloEmitter is the at_least_once emitter of one claim.
type aloEmitter struct {
	p    *pipeline
	t    *tracker
	last *record // the record begin registered last (claim goroutine only)
	buf  *srcBuf // the key and value of the record being handled (claim goroutine only)
}

func (e *aloEmitter) begin(msg *sarama.ConsumerMessage, start time.Time) *record {
	e.last = e.t.add(msg, start)
	e.last.buf = e.buf
	return e.last
}

func (e *aloEmitter) skip(r *record) { e.p.alo.finish(r.cur) }

func (e *aloEmitter) emit(r *record, ledger *ledgerEntry, outs ...*sarama.ProducerMessage) {
	r.ledger, r.outs = ledger, outs
	e.send(r.cur)
}

// send hands the outputs of a's record to the producer. A record without
// outputs (a skip sent again) completes at once.
func (e *aloEmitter) send(a *attempt) {
	r := a.r
	if len(r.outs) == 0 {
		e.p.alo.finish(a)
		return
	}
	a.pending.Store(int32(len(r.outs)))
	for _, out := range r.outs {
		out.Metadata = a
		// The producer's input usually has room: a non-blocking send
		// costs a fraction of the two-way select below.
		select {
		case e.p.alo.out.Input() <- out:
			continue
		default:
		}
		select {
		case e.p.alo.out.Input() <- out:
		case <-e.t.sess.Context().Done():
			// The session ends: the record stays unmarked and is
			// consumed again by the partition's next owner.
			if a.resolved.CompareAndSwap(false, true) {
				e.t.fail(r)
			}
			return
		}
	}
}

func (e *aloEmitter) retract(r *record, _ error) {
	e.p.tries.fail(r.src)
	e.t.retract(r)
}

// aloClaim is the at_least_once loop of one claim. It runs in the claim
// goroutine and starts no goroutine. Each step does one of:
//   - after an output or ledger entry failed: wait until none of the
//     partition's records is in flight, then take every record from the
//     failed one on (tracker.rewind) to send again, in offset order;
//   - wait, with the partition paused, while a circuit breaker is not
//     closed, unless this claim holds the breaker's one probe;
//   - send the next rewound record again, or run the stages on the held
//     record (one that failed transiently in the stages) or on the next
//     record of claim.Messages().
//
// The partition is never read past a record that is not handled: nothing
// is lost or reordered, and no session restart is needed.
type aloClaim struct {
	claimGate
	em  *aloEmitter
	t   *tracker
	log *zap.Logger
	lag *claimLag // fed with every record read from claim.Messages()

	held     *sarama.ConsumerMessage // failed transiently in the stages; handled again first
	heldBuf  *srcBuf                 // held's key and value (detachPooled), handed to its record
	resend   []*record               // rewound records not sent again yet, in offset order
	attempts int                     // consecutive transient failures of held, for the backoff
	fastRecv int                     // records taken by the non-blocking receive since the last select
}

// consumeALO is the at_least_once claim loop (see aloClaim).
func (h *handler) consumeALO(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, ps *partState) error {
	p := h.p
	t := newTracker(sess, claim.Topic(), claim.Partition(), p.cfg.MaxInFlight, p.cfg.MaxInFlightBytes, &h.inflight)
	em := &aloEmitter{p: p, t: t}
	l := &aloClaim{em: em, t: t, claimGate: claimGate{p: p, claim: claim, c: p.newClaimCtx(sess, claim, ps, em),
		notify: t.notify, expire: time.NewTicker(time.Minute)}}
	l.c.owned = true // take detaches every record
	// No event outlives handle: each record's is decoded in the memory of
	// the previous one (the audit is at the decode in stages).
	l.c.scratch = new(cdc.Scratch)
	l.log = l.c.log
	l.lag = p.newClaimLag(claim, ps, t.markedOffset)
	defer l.lag.revoke()
	defer l.expire.Stop()
	defer l.setPaused(false) // sarama keeps a pause across sessions
	for l.step() {
	}
	return nil
}

// step does one thing (see aloClaim); it returns false when the session
// is over.
func (l *aloClaim) step() bool {
	ctx := l.c.ctx
	if ctx.Err() != nil {
		return false
	}
	if list, ready := l.t.rewind(); !ready {
		return l.wait(nil, time.Time{}) // records in flight: wait until they settle
	} else if list != nil {
		l.resend = list
	}
	if len(l.resend) == 0 && l.held == nil {
		// Nothing to send again: read the next record. It is held until
		// the breakers let it through, so a claim asks for a probe only
		// when it has a record to probe with.
		// While a breaker is not closed the partition stays paused; only
		// records already fetched are read, and the next transition wakes
		// the claim to look again.
		changed := l.notClosed()
		if changed == nil {
			l.setPaused(false)
		}
		// The usual case, a record fetched already and nothing else to
		// do: a non-blocking receive, which costs a fraction of the
		// five-way select below. A pending notification takes the select;
		// so does every fastRecvMax-th record, which is how a pending
		// expiry tick gets its turn: since Go 1.23 a timer's channel has
		// no buffer, len(l.expire.C) is always 0, and a steady stream of
		// records (a backlog) starved the tick, so the ledger was never
		// expired while the backlog lasted.
		var m *sarama.ConsumerMessage
		var ok bool
		if changed == nil && len(l.t.notify) == 0 && l.fastRecv < fastRecvMax {
			select {
			case m, ok = <-l.claim.Messages():
				if !ok {
					return false
				}
			default:
			}
		}
		if m != nil {
			l.fastRecv++
			l.take(m)
		} else {
			l.fastRecv = 0
			select {
			case <-changed:
				return true
			case m, ok := <-l.claim.Messages():
				if !ok {
					return false
				}
				l.take(m)
			case <-l.expire.C:
				l.c.expire()
				return true
			case <-l.t.notify:
				return true
			case <-ctx.Done():
				return false
			}
		}
	}

	// Records sent again need only the producer path; new ones need every
	// dependency.
	gates := l.p.breakers
	if len(l.resend) > 0 {
		gates = []*breaker{l.p.producerBrk}
	}
	probe, ok := l.gate(gates)
	if !ok {
		return false
	}
	if len(l.resend) > 0 {
		r := l.resend[0]
		l.resend = l.resend[1:]
		a := l.t.restart(r)
		l.em.send(a)
		if probe != nil {
			return l.settleProbe(probe, r)
		}
		return true
	}

	// Take a slot (the partition is not read further while MaxInFlight
	// records, or MaxInFlightBytes of them, are in flight), then run the
	// stages.
	if l.t.overBytes(l.held) {
		l.release(probe)
		select {
		case <-l.t.notify:
			return true
		case <-ctx.Done():
			return false
		}
	}
	select {
	case l.t.slots <- struct{}{}: // a free slot, the usual case: no three-way select
	default:
		select {
		case l.t.slots <- struct{}{}:
		case <-l.t.notify:
			l.release(probe)
			return true
		case <-ctx.Done():
			l.release(probe)
			return false
		}
	}
	msg, buf := l.held, l.heldBuf
	l.held, l.heldBuf = nil, nil
	l.em.buf = buf
	err := l.c.handle(msg)
	l.em.buf = nil
	if err != nil {
		l.heldBuf = buf
		return l.failed(msg, err, probe)
	}
	l.attempts = 0
	l.p.registryBrk.success(probe == l.p.registryBrk)
	if probe == l.p.producerBrk {
		return l.settleProbe(probe, l.em.last)
	}
	return true
}

// fastRecvMax bounds the records the claim loop takes without its full
// select, so a tick is never starved (step).
const fastRecvMax = 64

// take holds m, a record read from claim.Messages(), for the stages.
func (l *aloClaim) take(m *sarama.ConsumerMessage) {
	l.lag.fetched(m, l.claim.HighWaterMarkOffset())
	l.heldBuf = detachPooled(m)
	l.held = m
}

// failed handles a record the stages did not handle: a fatal error stops
// the topology; a transient one holds the record, counts the failure in
// its dependency's breaker, and backs off while the breaker stays closed.
func (l *aloClaim) failed(msg *sarama.ConsumerMessage, err error, probe *breaker) bool {
	if classify(err) == Fatal {
		l.release(probe)
		l.p.stopFatal(err)
		<-l.c.ctx.Done()
		return false
	}
	l.held = msg
	b := l.p.breakerFor(err)
	if probe != nil && probe != b {
		probe.release() // the probe never reached its dependency
	}
	if ferr := b.failure(err, probe == b); ferr != nil {
		l.p.stopFatal(ferr)
		<-l.c.ctx.Done()
		return false
	}
	l.attempts++
	if !b.closed() {
		return true // the gate waits
	}
	d := l.p.retryDelay(l.attempts - 1)
	l.log.Debug("transient failure, retrying the record", zap.Int64("offset", msg.Offset),
		zap.String("dependency", b.dep), zap.Duration("backoff", d), zap.Error(err))
	return l.wait(nil, time.Now().Add(d))
}

// settleProbe waits until the probe record r completed or failed, and
// reports the outcome to the probed breaker.
func (l *aloClaim) settleProbe(b *breaker, r *record) bool {
	defer l.t.settled(r, false)
	for {
		done, failed := l.t.settled(r, true)
		switch {
		case done:
			b.success(true)
			return true
		case failed && r.err == nil:
			b.release() // the session ended before the probe was written
			return l.c.ctx.Err() == nil
		case failed:
			if ferr := b.failure(r.err, true); ferr != nil {
				l.p.stopFatal(ferr)
			}
			return true
		}
		if !l.wait(nil, time.Time{}) {
			b.release()
			return false
		}
	}
}

// detach copies a consumed record's key and value out of sarama's fetch
// response. sarama slices them from the response buffer, so one record in
// flight kept a whole response (up to Consumer.Fetch.MaxBytes) in the
// heap: on 8 partitions a worker's live heap grew to 140 MB and its RSS
// to 300 MB; with the copy it stays near 45 MB live (docs/bench-findings.md).
// Key and value share one allocation; a nil key or value stays nil.
func detach(m *sarama.ConsumerMessage) { copyInto(m, make([]byte, len(m.Key)+len(m.Value))) }

// copyInto points m's key and value at copies in buf, which holds exactly
// both; a nil key or value stays nil.
func copyInto(m *sarama.ConsumerMessage, buf []byte) {
	k := copy(buf, m.Key)
	copy(buf[k:], m.Value)
	if m.Key != nil {
		m.Key = buf[:k:k]
	}
	if m.Value != nil {
		m.Value = buf[k:len(buf):len(buf)]
	}
}

// srcBuf holds a detached record's key and value (detachPooled).
type srcBuf struct{ b []byte }

var srcBufs = sync.Pool{New: func() any { return new(srcBuf) }}

// detachPooled is detach into a recycled buffer. Under at_least_once the
// buffer goes back (putSrcBuf) when the tracker pops the done record off
// its queue (tracker.complete): its outputs, a DLQ record that carries
// the source bytes among them, are acknowledged by then, and it is never
// sent again. The stages' event (cdc.DecodeOwned keeps its values in the
// record) is dead once the record is handled: nothing keeps it, or a
// string of it, past claimCtx.handle. A record that is retracted keeps its
// buffer with the held message, for its next handling.
func detachPooled(m *sarama.ConsumerMessage) *srcBuf {
	n := len(m.Key) + len(m.Value)
	sb := srcBufs.Get().(*srcBuf)
	if cap(sb.b) < n {
		sb.b = make([]byte, 0, (n+511)&^511) // whole 512s: a stream of similar records reuses them
	}
	copyInto(m, sb.b[:n])
	return sb
}

// putSrcBuf recycles the buffer of a record that is done; see detachPooled.
func putSrcBuf(sb *srcBuf) { srcBufs.Put(sb) }
