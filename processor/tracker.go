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
// The claim goroutine calls add; the producers' acknowledgement goroutines
// call done. slots bounds how many records may be in flight: add blocks
// (in the claim goroutine, which selects on it) when the partition has
// MaxInFlight records outstanding, which pauses the partition.
type tracker struct {
	sess      sarama.ConsumerGroupSession
	topic     string
	partition int32
	slots     chan struct{}
	inflight  *inflight // the session-wide count, waited on in Cleanup

	mu     sync.Mutex
	queue  []*record // in offset order; head is queue[head]
	head   int
	marked int64 // next offset marked, -1 before the first
}

// record is one consumed source record on its way through the pipeline.
// pending counts outstanding output acknowledgements; ledger is the ledger
// entry to write once every output is acknowledged (nil when the record
// leaves no ledger entry).
type record struct {
	t        *tracker
	offset   int64
	src      *sarama.ConsumerMessage
	start    time.Time
	pending  atomic.Int32
	resolved atomic.Bool // set once, by finish or on failure
	ledger   *sarama.ProducerMessage
	dlqCut   bool // the broker refused its DLQ record once; it was sent again cut (outAcks only)
	done     bool // guarded by t.mu
}

func newTracker(sess sarama.ConsumerGroupSession, topic string, partition int32, maxInFlight int, wg *inflight) *tracker {
	return &tracker{
		sess: sess, topic: topic, partition: partition,
		slots:    make(chan struct{}, maxInFlight),
		inflight: wg,
		marked:   -1,
	}
}

// add registers a consumed record. The caller has already taken a slot.
func (t *tracker) add(msg *sarama.ConsumerMessage, start time.Time) *record {
	r := &record{t: t, offset: msg.Offset, src: msg, start: start}
	t.inflight.Add(1)
	t.mu.Lock()
	t.queue = append(t.queue, r)
	t.mu.Unlock()
	return r
}

// complete marks r done and advances the committed position over every
// done record at the head of the queue.
func (t *tracker) complete(r *record) {
	t.mu.Lock()
	r.done = true
	var last int64 = -1
	n := 0
	for t.head < len(t.queue) && t.queue[t.head].done {
		last = t.queue[t.head].offset
		t.queue[t.head] = nil
		t.head++
		n++
	}
	if t.head > 1024 && t.head*2 > len(t.queue) {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
	// A failed record never completes, so it stays at the head and
	// nothing after it is marked; records before it are safe to mark.
	if last >= 0 {
		t.sess.MarkOffset(t.topic, t.partition, last+1, "")
		t.marked = last + 1
	}
	t.mu.Unlock()
	for i := 0; i < n; i++ {
		<-t.slots
	}
	t.inflight.Add(-1)
}

// fail records that an output of r could not be written. The record never
// completes, so its offset and every later one stay unmarked and are
// consumed again after the session restarts.
func (t *tracker) fail(r *record) {
	t.inflight.Add(-1)
}
