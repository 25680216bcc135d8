package processor

import (
	"math"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
)

// lagRig drives one claimLag's rule with a clock of its own: the claim
// goroutine's fetched, the probes' answers and the refresh are called
// directly, at chosen times. The Kafka side (fetches held, probes on the
// wire) is tested in integration/kfake_lag_test.go.
type lagRig struct {
	t    *testing.T
	l    *claimLag
	t0   time.Time
	done int64
	live int64
}

func newLagRig(t *testing.T) *lagRig {
	r := &lagRig{t: t, t0: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), done: -1, live: -1}
	p := &pipeline{metrics: newMetrics(prometheus.NewRegistry()), log: zaptest.NewLogger(t)}
	r.l = &claimLag{
		p:      p,
		tp:     topicPartition{"src", 0},
		labels: []string{"t", "src", "0"},
		done:   func() int64 { return r.done },
		paused: func() bool { return false },
		live:   func() int64 { return r.live },
		start:  -1,
		next:   -1,
	}
	r.l.lastFetch = r.t0
	return r
}

func (r *lagRig) at(d time.Duration) time.Time { return r.t0.Add(d) }

// fetch reads records [from, to) from a batch with high-water mark hwm,
// and the refresh at d sees them.
func (r *lagRig) fetch(d time.Duration, from, to, hwm int64) {
	for o := from; o < to; o++ {
		r.l.fetched(&sarama.ConsumerMessage{Offset: o, Timestamp: r.at(d)}, hwm)
	}
	r.live = hwm
	r.l.refresh(r.at(d))
}

// want refreshes at d and checks the gauges and the status figures.
func (r *lagRig) want(d time.Duration, records, seconds float64, unknown bool) {
	r.t.Helper()
	r.l.refresh(r.at(d))
	rec, sec := testutil.ToFloat64(r.l.records), testutil.ToFloat64(r.l.seconds)
	if !(rec == records || math.IsNaN(rec) && math.IsNaN(records)) || math.Abs(sec-seconds) > 1e-9 {
		r.t.Errorf("at %v: lag_records %v, lag_seconds %v; want %v, %v", d, rec, sec, records, seconds)
	}
	if r.l.lastUnknown != unknown || r.l.lastSeconds != sec || (!unknown && float64(r.l.lastRecords) != rec) {
		r.t.Errorf("at %v: status %d records, %v s, unknown %v; the gauges say %v, %v", d, r.l.lastRecords, r.l.lastSeconds, r.l.lastUnknown, rec, sec)
	}
}

// probe sends a probe at d if one is due, and answers end at d+rtt.
func (r *lagRig) probe(d, rtt time.Duration, end int64) {
	r.t.Helper()
	if !r.l.probeDue(r.at(d)) {
		r.t.Fatalf("at %v: no probe due", d)
	}
	r.l.probed(r.at(d), r.at(d+rtt), end, nil)
}

const ms = time.Millisecond

// Regression: a claim from which nothing was fetched for a second counted
// as caught up, so a silent leader (fetches held) showed lag 0 while
// records piled up. Now silence alone proves nothing: 0 needs a probe's
// answer, records a probe finds are lag aged from its answer, and no
// answer for lagProbeWait makes lag_records NaN with lag_seconds growing
// from the last fetch.
func TestLagSilenceIsNotCaughtUp(t *testing.T) {
	r := newLagRig(t)
	r.fetch(0, 0, 10, 10)
	r.done = 10
	r.want(250*ms, 0, 0, false) // next reached the batch's high-water mark

	// Silent, no answer yet: the last fetch's figures stand...
	r.want(2*time.Second, 0, 0, false)
	// ...until lagProbeWait after the last fetch: unknown, never 0.
	r.want(3*time.Second, math.NaN(), 3, true)
	r.want(5*time.Second, math.NaN(), 5, true)

	// A probe answers: 40 records beyond what the consumer saw.
	r.probe(5*time.Second, 100*ms, 50)
	r.want(5250*ms, 40, 0.15, false)
	r.want(6*time.Second, 40, 0.9, false)

	// The answers stop: after lagProbeWait the figure is unknown again,
	// aged from the last fetch.
	r.want(8*time.Second, math.NaN(), 8, true)

	// Fetching resumes: the records are read and done.
	r.fetch(9*time.Second, 10, 50, 50)
	r.done = 50
	r.want(9250*ms, 0, 0, false)
}

// Regression: the transaction-marker case must still reach 0. The last
// record read is offset 8 and the batch's high-water mark 10 (a marker at
// 9 and one more the consumer saw in a response without records): caught
// up once a probe sent after the last fetch answers no more than that.
func TestLagMarkersCaughtUpByProbe(t *testing.T) {
	r := newLagRig(t)
	r.fetch(0, 0, 9, 10)
	r.live = 11 // a later response brought only a commit marker
	r.done = 9
	// Not caught up yet: the gap may be records still to come; the
	// age is bounded by the last record fetched.
	r.want(250*ms, 1, 0.25, false)
	if r.l.probeDue(r.at(500 * ms)) {
		t.Fatal("probe due while the claim fetched within lagIdle")
	}
	r.probe(time.Second, 10*ms, 11)
	r.want(1250*ms, 0, 0, false)
	// A probe sent before the last fetch proves nothing about after it.
	r.fetch(1500*ms, 9, 10, 12)
	r.live = 12
	r.done = 10
	r.l.probed(r.at(1400*ms), r.at(1600*ms), 12, nil)
	if r.l.probeDue(r.at(2 * time.Second)) {
		t.Fatal("probe due within lagIdle of the last fetch")
	}
	r.want(2600*ms, 2, 1.1, false)
	r.probe(2600*ms, 10*ms, 12)
	r.want(2750*ms, 0, 0, false)
}

// One probe in flight per claim, at most one per lagProbeEvery.
func TestLagProbeSchedule(t *testing.T) {
	r := newLagRig(t)
	r.fetch(0, 0, 10, 10)
	r.done = 10
	if r.l.probeDue(r.at(750 * ms)) {
		t.Error("probe due before lagIdle of silence")
	}
	if !r.l.probeDue(r.at(time.Second)) {
		t.Fatal("no probe due after lagIdle of silence")
	}
	if r.l.probeDue(r.at(3 * time.Second)) {
		t.Error("second probe due while the first is in flight")
	}
	r.l.probed(r.at(time.Second), r.at(3*time.Second), 10, nil)
	if !r.l.probeDue(r.at(3 * time.Second)) {
		t.Error("no probe due once the first answered, lagProbeEvery later")
	}
	r.l.probed(r.at(3*time.Second), r.at(3*time.Second), 10, nil)
	if r.l.probeDue(r.at(3500 * ms)) {
		t.Error("probe due within lagProbeEvery of the last")
	}
	r.want(3500*ms, 0, 0, false)

	// A failed probe is no answer: the next is due a second later, and
	// without an answer the figure is unknown lagProbeWait after the last.
	if !r.l.probeDue(r.at(4 * time.Second)) {
		t.Fatal("no probe due lagProbeEvery after the last")
	}
	r.l.probed(r.at(4*time.Second), r.at(4100*ms), 0, sarama.ErrNotLeaderForPartition)
	r.want(5900*ms, 0, 0, false)
	r.want(6*time.Second, math.NaN(), 6, true)
	if !r.l.probeDue(r.at(6 * time.Second)) {
		t.Error("no probe due after a failed one")
	}
}
