package processor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// tracker follows the records of one claimed partition from consumption
// until every output derived from them is acknowledged, and marks offsets
// strictly in order: an offset is marked only when it and every offset
// before it are done. One tracker exists per claim and session.
//
// The claim goroutine calls add, retract, rewind and restart; the
// producers' acknowledgement goroutines call complete and fail. slots
// bounds how many records may be in flight: the claim goroutine takes a
// slot before it reads a record, so the partition stops being read when
// MaxInFlight records are outstanding.
//
// A record whose output or ledger entry failed transiently stays in the
// queue, not done, so nothing after it is marked. rewind hands the claim
// goroutine every record from it on, in offset order, once none is in
// flight any more; the claim goroutine sends them again (restart) before
// it reads anything new. See DESIGN.md, "Circuit breaker".
type tracker struct {
	sess      sarama.ConsumerGroupSession
	topic     string
	partition int32
	slots     chan struct{}
	inflight  *inflight     // the session-wide count, waited on in Cleanup
	notify    chan struct{} // a record failed, or settled while the claim goroutine watches

	mu         sync.Mutex
	queue      []*record // in offset order; head is queue[head]
	head       int
	marked     int64 // next offset marked, -1 before the first
	unresolved int   // records sent and neither complete nor failed
	failed     bool  // a record failed since the last rewind
	watch      bool  // the claim goroutine waits for a record to settle
	bytes      int   // source bytes (key + value) of the records in the queue
	maxBytes   int   // Config.MaxInFlightBytes
	byteWait   int   // > 0: the claim goroutine waits until a record of this size fits
}

// record is one consumed source record on its way through the pipeline.
// outs and ledger are what the stages made of it: the outputs (sink or DLQ
// records) and the ledger entry written once every output is acknowledged
// (nil when the record leaves none). They are kept until the record is
// done, so a record that failed transiently is sent again unchanged.
type record struct {
	t      *tracker
	offset int64
	src    *sarama.ConsumerMessage
	start  time.Time
	outs   []*sarama.ProducerMessage
	ledger *ledgerEntry // nil, or &led
	led    ledgerEntry
	cur    *attempt   // the current sending of outs and ledger
	first  attempt    // the first sending, allocated with the record
	dlqCut bool       // the broker refused its DLQ record once; it was sent again cut (outAcks only)
	err    error      // why the last attempt failed; read by the claim goroutine after it settled
	counts bool       // Completed was counted (ack goroutines, ordered by t.mu)
	blk    *sinkBlock // the block of outs[0], when route built it; recycled once done (sinkBlock)
	buf    *srcBuf    // src's key and value, when detachPooled copied them; recycled once done

	// Guarded by t.mu.
	done    bool
	failure bool
	waiting bool // handed back by rewind and not sent again yet
}

// attempt is one sending of a record's outputs and ledger entry; it is the
// Metadata of each of those producer messages. An acknowledgement or error
// of an earlier attempt (an output still in flight when another failed)
// finds its attempt resolved already and is ignored.
type attempt struct {
	r        *record
	pending  atomic.Int32 // outstanding output acknowledgements
	resolved atomic.Bool  // set once, by finish or on failure
}

func newTracker(sess sarama.ConsumerGroupSession, topic string, partition int32, maxInFlight, maxBytes int, wg *inflight) *tracker {
	return &tracker{
		sess: sess, topic: topic, partition: partition, maxBytes: maxBytes,
		slots:    make(chan struct{}, maxInFlight),
		inflight: wg,
		notify:   make(chan struct{}, 1),
		marked:   -1,
	}
}

// add registers a consumed record. The caller has already taken a slot.
func (t *tracker) add(msg *sarama.ConsumerMessage, start time.Time) *record {
	r := &record{t: t, offset: msg.Offset, src: msg, start: start}
	r.first.r = r
	r.cur = &r.first
	t.inflight.Add(1)
	t.mu.Lock()
	t.queue = append(t.queue, r)
	t.unresolved++
	t.bytes += srcBytes(msg)
	t.mu.Unlock()
	return r
}

func srcBytes(m *sarama.ConsumerMessage) int { return len(m.Key) + len(m.Value) }

// fits reports whether a record of n source bytes may be added; the
// caller holds t.mu.
func (t *tracker) fits(n int) bool { return t.bytes == 0 || t.bytes+n <= t.maxBytes }

// overBytes reports whether m would take the records in flight past
// maxBytes; then the completion after which it fits wakes the claim
// goroutine. With nothing in flight a record always fits, however
// large.
func (t *tracker) overBytes(m *sarama.ConsumerMessage) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := srcBytes(m)
	over := !t.fits(n)
	t.byteWait = 0
	if over {
		t.byteWait = n
	}
	return over
}

// retract takes back r, the last record added, which the stages did not
// handle (a transient or fatal failure), and gives back its slot: the
// claim goroutine hands the same source record again later, or never.
func (t *tracker) retract(r *record) {
	t.mu.Lock()
	if n := len(t.queue); n > t.head && t.queue[n-1] == r {
		t.queue[n-1] = nil
		t.queue = t.queue[:n-1]
		t.unresolved--
		t.bytes -= srcBytes(r.src)
	}
	t.mu.Unlock()
	t.inflight.Add(-1)
	<-t.slots
}

// complete marks r done and advances the committed position over every
// done record at the head of the queue.
func (t *tracker) complete(r *record) { t.completeAll(r) }

// completeAll is complete for several records of this tracker at once (a
// ledger batch's), with one lock, one MarkOffset and one wake-up.
func (t *tracker) completeAll(rs ...*record) {
	t.mu.Lock()
	for _, r := range rs {
		r.done = true
	}
	t.unresolved -= len(rs)
	var last int64 = -1
	n := 0
	for t.head < len(t.queue) && t.queue[t.head].done {
		q := t.queue[t.head]
		last = q.offset
		t.bytes -= srcBytes(q.src)
		if b := q.blk; b != nil && len(q.outs) == 1 && q.outs[0] == &b.msg {
			// Done and off the queue: its one output was acknowledged
			// and it is never sent again (sinkBlock).
			q.outs, q.blk = nil, nil
			putSinkBlock(b)
		}
		if q.buf != nil {
			putSrcBuf(q.buf)
			q.buf, q.src = nil, nil
		}
		t.queue[t.head] = nil
		t.head++
		n++
	}
	if t.head > 1024 && t.head*2 > len(t.queue) {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
	// A failed record is not done, so it stays at the head and nothing
	// after it is marked; records before it are safe to mark.
	if last >= 0 {
		t.sess.MarkOffset(t.topic, t.partition, last+1, "")
		t.marked = last + 1
	}
	wake := t.watch || t.failed
	if t.byteWait > 0 && t.fits(t.byteWait) {
		t.byteWait, wake = 0, true
	}
	t.mu.Unlock()
	for i := 0; i < n; i++ {
		<-t.slots
	}
	t.inflight.Add(-len(rs))
	if wake {
		t.wake()
	}
}

// fail records that an output or the ledger entry of r could not be
// written. The record stays in the queue, not done: its offset and every
// later one stay unmarked until rewind hands them back and they are sent
// again (or, if the session ends first, they are consumed again).
func (t *tracker) fail(r *record) {
	t.mu.Lock()
	r.failure = true
	t.unresolved--
	t.failed = true
	t.mu.Unlock()
	t.inflight.Add(-1)
	t.wake()
}

func (t *tracker) wake() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// rewind returns, after a failure, every record from the first one not
// done on, in offset order, to be sent again: done records after a failed
// one are sent again too, so that a key's later change is written after
// its earlier one again. ready is false while records are still in flight
// (wait for notify, then ask again); list is nil when nothing failed.
func (t *tracker) rewind() (list []*record, ready bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.failed {
		return nil, true
	}
	if t.unresolved > 0 {
		return nil, false
	}
	t.failed = false
	list = append([]*record(nil), t.queue[t.head:]...)
	for _, r := range list {
		r.done, r.failure, r.waiting = false, false, true
	}
	return list, true
}

// restart starts a new attempt of r, a record rewind handed back.
func (t *tracker) restart(r *record) *attempt {
	a := &attempt{r: r}
	t.inflight.Add(1)
	t.mu.Lock()
	r.waiting = false
	r.cur = a
	r.err = nil
	t.unresolved++
	t.mu.Unlock()
	return a
}

// settled reports whether r's current attempt completed or failed. While
// watching, completions wake the claim goroutine too.
func (t *tracker) settled(r *record, watch bool) (done, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watch = watch
	return r.done, r.failure
}
