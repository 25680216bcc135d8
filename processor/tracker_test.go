package processor

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// fakeSession records MarkOffset calls. It is the part of
// sarama.ConsumerGroupSession the tracker uses; the rest does nothing.
type fakeSession struct {
	t     *testing.T
	mu    sync.Mutex
	marks []int64
}

var _ sarama.ConsumerGroupSession = (*fakeSession)(nil)

func (s *fakeSession) Claims() map[string][]int32 { return nil }
func (s *fakeSession) MemberID() string           { return "m" }
func (s *fakeSession) GenerationID() int32        { return 1 }
func (s *fakeSession) MarkOffset(topic string, partition int32, offset int64, metadata string) {
	if topic != "src" || partition != 3 {
		s.t.Errorf("MarkOffset(%q, %d, %d): wrong topic or partition", topic, partition, offset)
	}
	s.mu.Lock()
	s.marks = append(s.marks, offset)
	s.mu.Unlock()
}
func (s *fakeSession) Commit()                                     {}
func (s *fakeSession) ResetOffset(string, int32, int64, string)    {}
func (s *fakeSession) MarkMessage(*sarama.ConsumerMessage, string) {}
func (s *fakeSession) Context() context.Context                    { return context.Background() }
func (s *fakeSession) Marks() []int64                              { s.mu.Lock(); defer s.mu.Unlock(); return slices.Clone(s.marks) }

type trackerFixture struct {
	sess *fakeSession
	wg   *inflight
	t    *tracker
}

func newTrackerFixture(t *testing.T, maxInFlight int) *trackerFixture {
	sess := &fakeSession{t: t}
	wg := &inflight{}
	return &trackerFixture{sess: sess, wg: wg, t: newTracker(sess, "src", 3, maxInFlight, 8<<20, wg)}
}

// consume does what ConsumeClaim does: take a slot, then add the record.
func (f *trackerFixture) consume(offsets ...int64) []*record {
	var rs []*record
	for _, o := range offsets {
		f.t.slots <- struct{}{}
		rs = append(rs, f.t.add(&sarama.ConsumerMessage{Topic: "src", Partition: 3, Offset: o}, time.Now()))
	}
	return rs
}

func (f *trackerFixture) wantMarks(t *testing.T, want ...int64) {
	t.Helper()
	if got := f.sess.Marks(); !slices.Equal(got, want) {
		t.Errorf("MarkOffset calls %v, want %v", got, want)
	}
}

func (f *trackerFixture) wantSlots(t *testing.T, want int) {
	t.Helper()
	if got := len(f.t.slots); got != want {
		t.Errorf("%d slots taken, want %d", got, want)
	}
}

func TestTrackerInOrder(t *testing.T) {
	f := newTrackerFixture(t, 8)
	rs := f.consume(10, 11, 12, 15) // offsets may have gaps (compaction, txn markers)
	f.wantMarks(t)
	f.wantSlots(t, 4)
	for _, r := range rs {
		f.t.complete(r)
	}
	f.wantMarks(t, 11, 12, 13, 16) // the next offset to consume
	f.wantSlots(t, 0)
	f.wg.Wait()
}

func TestTrackerOutOfOrder(t *testing.T) {
	f := newTrackerFixture(t, 8)
	rs := f.consume(0, 1, 2, 3, 4)
	f.t.complete(rs[2])
	f.t.complete(rs[4])
	f.wantMarks(t) // 0 is not done: nothing may be marked
	f.wantSlots(t, 5)

	f.t.complete(rs[0])
	f.wantMarks(t, 1)
	f.wantSlots(t, 4)

	f.t.complete(rs[1]) // 1 and the done 2 go together
	f.wantMarks(t, 1, 3)
	f.wantSlots(t, 2)

	f.t.complete(rs[3])
	f.wantMarks(t, 1, 3, 5)
	f.wantSlots(t, 0)
	f.wg.Wait()
}

// TestTrackerSlotsPausePartition checks that MaxInFlight outstanding
// records use every slot, so the claim loop's slot send blocks, and that a
// completion frees one.
func TestTrackerSlotsPausePartition(t *testing.T) {
	f := newTrackerFixture(t, 2)
	rs := f.consume(0, 1)
	select {
	case f.t.slots <- struct{}{}:
		t.Fatal("took a third slot with MaxInFlight 2")
	default:
	}
	f.t.complete(rs[1]) // out of order: its slot stays taken until 0 is done
	select {
	case f.t.slots <- struct{}{}:
		t.Fatal("a slot was freed before the head of the queue completed")
	default:
	}
	f.t.complete(rs[0])
	f.wantSlots(t, 0)
	f.wantMarks(t, 2)
}

func TestTrackerFailureBlocksLaterMarks(t *testing.T) {
	f := newTrackerFixture(t, 8)
	rs := f.consume(0, 1, 2, 3)
	f.t.complete(rs[0])
	f.wantMarks(t, 1)
	f.t.fail(rs[1])
	f.t.complete(rs[2])
	f.t.complete(rs[3])
	// 1 never completes: 2 and 3 stay unmarked and are redelivered after
	// the session restarts.
	f.wantMarks(t, 1)
	// The failed record and those behind it keep their slots: the
	// partition pauses until the session ends.
	f.wantSlots(t, 3)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done: // Cleanup does not wait for a failed record
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight count never reached zero after a failure")
	}
}

// Regression: a record that completes after a later record failed is never
// marked, although it and every record before it are done: complete skips
// MarkOffset whenever t.failed is set. The record is then redelivered and
// reprocessed (the ledger drops it, but it is wasted work and contradicts
// the tracker's doc). The failed record itself is never done, so the head
// can never pass it; complete should mark without the t.failed check.
func TestTrackerMarksRecordsBeforeAFailure(t *testing.T) {
	f := newTrackerFixture(t, 8)
	rs := f.consume(0, 1, 2)
	f.t.fail(rs[1])
	f.t.complete(rs[2])
	f.t.complete(rs[0]) // acknowledged after 1 failed
	f.wantMarks(t, 1)
}

// TestTrackerConcurrentCompletions completes records from many goroutines
// in random order, as the producers' acknowledgement goroutines do. Run
// with -race.
func TestTrackerConcurrentCompletions(t *testing.T) {
	const n = 20000
	f := newTrackerFixture(t, n)
	offsets := make([]int64, n)
	var o int64 = 1000
	for i := range offsets {
		offsets[i] = o
		o += 1 + int64(i%3/2) // some gaps
	}
	rs := f.consume(offsets...)
	order := rand.Perm(n)
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				f.t.complete(rs[order[i]])
			}
		}()
	}
	wg.Wait()
	f.wg.Wait()
	marks := f.sess.Marks()
	if len(marks) == 0 {
		t.Fatal("nothing marked")
	}
	for i := 1; i < len(marks); i++ {
		if marks[i] <= marks[i-1] {
			t.Fatalf("MarkOffset went %d then %d: not strictly increasing", marks[i-1], marks[i])
		}
	}
	if last, want := marks[len(marks)-1], offsets[n-1]+1; last != want {
		t.Errorf("last mark %d, want %d", last, want)
	}
	f.wantSlots(t, 0)
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	if q := len(f.t.queue) - f.t.head; q != 0 {
		t.Errorf("%d records left in the queue", q)
	}
}

// TestTrackerConcurrentAddAndComplete runs the claim goroutine (take a
// slot, add) against completing goroutines with a small MaxInFlight, so
// the claim goroutine keeps blocking on slots.
func TestTrackerConcurrentAddAndComplete(t *testing.T) {
	const n = 5000
	f := newTrackerFixture(t, 16)
	ch := make(chan *record, 16)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range ch {
				if rand.IntN(4) == 0 {
					time.Sleep(time.Microsecond)
				}
				f.t.complete(r)
			}
		}()
	}
	for i := range n {
		ch <- f.consume(int64(i))[0]
	}
	close(ch)
	wg.Wait()
	f.wg.Wait()
	marks := f.sess.Marks()
	for i := 1; i < len(marks); i++ {
		if marks[i] <= marks[i-1] {
			t.Fatalf("MarkOffset went %d then %d", marks[i-1], marks[i])
		}
	}
	if len(marks) == 0 || marks[len(marks)-1] != n {
		t.Errorf("last mark %v, want %d", marks[len(marks)-1:], n)
	}
	f.wantSlots(t, 0)
}

// A record the stages did not handle is retracted: its slot is free and
// nothing after it waits for it.
func TestTrackerRetract(t *testing.T) {
	f := newTrackerFixture(t, 4)
	rs := f.consume(1, 2)
	f.t.retract(rs[1])
	f.wantSlots(t, 1)
	f.t.complete(rs[0])
	f.wantMarks(t, 2)
	f.wantSlots(t, 0)
	again := f.consume(2)
	f.t.complete(again[0])
	f.wantMarks(t, 2, 3)
}

// After a transient output failure, rewind waits until nothing is in
// flight, then hands back every record from the failed one on, done ones
// included (a key's later change must follow its earlier one again), and
// nothing is marked past the failed record until they complete again.
func TestTrackerRewind(t *testing.T) {
	f := newTrackerFixture(t, 8)
	rs := f.consume(10, 11, 12, 13)
	f.t.complete(rs[0])
	f.t.fail(rs[1])
	if list, ready := f.t.rewind(); ready || list != nil {
		t.Fatalf("rewind with records in flight: %v %v", list, ready)
	}
	f.t.complete(rs[2]) // done after the failure: sent again all the same
	f.t.fail(rs[3])
	list, ready := f.t.rewind()
	if !ready || len(list) != 3 || list[0] != rs[1] || list[1] != rs[2] || list[2] != rs[3] {
		t.Fatalf("rewind = %v %v, want records 11, 12, 13", list, ready)
	}
	if l2, ready := f.t.rewind(); !ready || l2 != nil {
		t.Fatal("a second rewind without a new failure returned records")
	}
	f.wantMarks(t, 11)
	f.wantSlots(t, 3)
	// Sent again in order; 12 completes first but 11 holds the mark.
	var as []*attempt
	for _, r := range list {
		as = append(as, f.t.restart(r))
	}
	f.t.complete(as[1].r)
	f.wantMarks(t, 11)
	if done, failed := f.t.settled(rs[1], false); done || failed {
		t.Fatal("record 11 settled before its new attempt did")
	}
	f.t.complete(as[0].r)
	f.t.complete(as[2].r)
	f.wantMarks(t, 11, 13, 14)
	f.wantSlots(t, 0)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("in-flight count never reached zero after the records were sent again")
	}
}

// A failure wakes the claim goroutine; a completion wakes it only while it
// watches (a probe) or after a failure.
func TestTrackerNotify(t *testing.T) {
	f := newTrackerFixture(t, 8)
	rs := f.consume(1, 2, 3)
	f.t.complete(rs[0])
	select {
	case <-f.t.notify:
		t.Fatal("a plain completion woke the claim goroutine")
	default:
	}
	f.t.settled(rs[1], true)
	f.t.complete(rs[1])
	select {
	case <-f.t.notify:
	default:
		t.Fatal("a watched completion did not wake the claim goroutine")
	}
	f.t.settled(rs[1], false)
	f.t.fail(rs[2])
	select {
	case <-f.t.notify:
	default:
		t.Fatal("a failure did not wake the claim goroutine")
	}
}

// detach copies a consumed record out of sarama's fetch response: the
// record then no longer keeps the response buffer alive (a worker held
// 140 MB of responses), a nil value (a tombstone) stays nil, and a change
// to the response buffer no longer shows.
func TestDetach(t *testing.T) {
	resp := []byte("keyvalue")
	m := &sarama.ConsumerMessage{Key: resp[:3], Value: resp[3:]}
	detach(m)
	resp[0], resp[3] = 'X', 'X'
	if string(m.Key) != "key" || string(m.Value) != "value" {
		t.Fatalf("key %q value %q", m.Key, m.Value)
	}
	m.Key = append(m.Key, '!') // must not overwrite the value
	if string(m.Value) != "value" {
		t.Fatalf("appending to the key changed the value: %q", m.Value)
	}
	tomb := &sarama.ConsumerMessage{Key: resp[:3]}
	detach(tomb)
	if tomb.Value != nil || string(tomb.Key) != "Xey" {
		t.Fatalf("tombstone: key %q value %v", tomb.Key, tomb.Value)
	}
}

// max_in_flight_bytes: a record count alone did not bound memory for
// large rows (1024 records of 100 KB per partition). A record that would
// take the source bytes in flight past the limit waits until completions
// bring them down, and wakes the claim goroutine then; one record larger
// than the limit passes alone.
func TestTrackerByteLimit(t *testing.T) {
	f := newTrackerFixture(t, 64)
	f.t.maxBytes = 100
	msg := func(o int64, n int) *sarama.ConsumerMessage {
		return &sarama.ConsumerMessage{Topic: "src", Partition: 3, Offset: o, Key: make([]byte, 10), Value: make([]byte, n-10)}
	}
	if f.t.overBytes(msg(1, 500)) {
		t.Fatal("a record larger than the limit must pass when nothing is in flight")
	}
	f.t.slots <- struct{}{}
	r1 := f.t.add(msg(1, 60), time.Now())
	f.t.slots <- struct{}{}
	r2 := f.t.add(msg(2, 30), time.Now())
	if !f.t.overBytes(msg(3, 20)) {
		t.Fatal("90 bytes in flight + 20 passed a limit of 100")
	}
	if f.t.overBytes(msg(3, 10)) {
		t.Fatal("90 + 10 bytes is within a limit of 100")
	}
	if !f.t.overBytes(msg(3, 20)) {
		t.Fatal("not over")
	}
	f.t.complete(r2) // not at the head: nothing is released yet
	select {
	case <-f.t.notify:
		t.Fatal("woken before any bytes were released")
	default:
	}
	f.t.complete(r1)
	select {
	case <-f.t.notify:
	default:
		t.Fatal("the claim goroutine was not woken when the bytes dropped below the limit")
	}
	if f.t.overBytes(msg(3, 20)) || f.t.bytes != 0 {
		t.Fatalf("after both completed: %d bytes in flight, still over", f.t.bytes)
	}
	f.wantMarks(t, 3)
}
