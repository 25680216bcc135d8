package processor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Lag of a claimed partition, as cdcsync_lag_records and
// cdcsync_lag_seconds export it:
//
//   - lag_records is the claim's high-water mark minus the next offset not
//     yet done (at_least_once: acknowledged and marked; exactly_once:
//     committed). It is 0 once the claim is caught up.
//   - lag_seconds is the age, by its Kafka timestamp, of the oldest record
//     not yet done: it grows while a partition is stuck, and is 0 when
//     caught up.
//
// The claim goroutine calls fetched for every record it reads (the
// high-water mark comes with each fetched batch); the pipeline's refresh
// goroutine recomputes the gauges every lagRefresh, so the age grows even
// when no record arrives; the claim deletes its series when it ends
// (revoke), so a partition that moved to another worker is exported by
// that worker only.
//
// Caught up. Transaction markers (and, under read_committed, aborted
// records) take offsets that are never delivered, so the last delivered
// offset is not always the high-water mark minus one. A claim is caught up
// when every fetched record is done and either the next offset reaches the
// high-water mark, or nothing was fetched for lagIdle while the partition
// was not paused: the consumer has then been given everything there is,
// and the rest of the gap is offsets it is never given.
const (
	lagRefresh = 250 * time.Millisecond
	lagIdle    = time.Second
	// lagStampEvery is the resolution of the timestamps kept for
	// lag_seconds: one per this much record time, not one per record.
	lagStampEvery = 10 * time.Millisecond
	lagMaxStamps  = 4096
)

// claimLag follows the lag of one claim (see the comment above).
type claimLag struct {
	p         *pipeline
	labels    []string // topology, topic, partition
	done      func() int64
	paused    func() bool
	committed atomic.Int64 // exactly_once: the offset after the last committed transaction

	mu        sync.Mutex
	records   prometheus.Gauge // nil until the first refresh
	seconds   prometheus.Gauge
	keys      func() int
	start     int64 // the first offset of the claim; -1 until known
	hwm       int64
	next      int64     // the last fetched offset + 1; -1 before the first
	fetches   int64     // records fetched, so the refresh sees whether any arrived
	seen      int64     // fetches at the last refresh that saw it change
	lastFetch time.Time // the refresh at which a fetch was last seen (no clock read per record)
	lastTS    time.Time // timestamp of the last fetched record
	stamps    []lagStamp
	revoked   bool
	// The figures of the last refresh, for the REST API's status.
	lastRecords int64
	lastSeconds float64
}

// lagStamp is the timestamp of the record at offset (and, approximately,
// of those after it up to the next stamp).
type lagStamp struct {
	offset int64
	ts     time.Time
}

// lagSet holds the live claims of a pipeline, for the refresh goroutine.
type lagSet struct {
	mu     sync.Mutex
	claims map[*claimLag]struct{}
}

// newClaimLag starts following the lag of claim. done returns the next
// offset not yet done, or -1 before the first; nil means the claim reports
// it through committed (exactly_once). The caller calls revoke when the
// claim ends.
func (p *pipeline) newClaimLag(claim sarama.ConsumerGroupClaim, ps *partState, done func() int64) *claimLag {
	l := &claimLag{
		p:         p,
		labels:    []string{p.plan.Name(), claim.Topic(), partitionLabel(claim.Partition())},
		done:      done,
		paused:    func() bool { return false },
		start:     claim.InitialOffset(),
		hwm:       claim.HighWaterMarkOffset(),
		next:      -1,
		lastFetch: p.now(),
	}
	l.committed.Store(-1)
	if l.start < 0 {
		l.start = -1 // OffsetOldest or OffsetNewest: known at the first fetch
	}
	if pc, ok := claim.(interface{ IsPaused() bool }); ok {
		l.paused = pc.IsPaused
	}
	if ps != nil {
		l.keys = func() int {
			ps.mu.Lock()
			defer ps.mu.Unlock()
			return ps.idx.Len()
		}
	}
	if l.done == nil {
		l.done = l.committed.Load
	}
	p.lags.mu.Lock()
	if p.lags.claims == nil {
		p.lags.claims = map[*claimLag]struct{}{}
	}
	p.lags.claims[l] = struct{}{}
	p.lags.mu.Unlock()
	return l
}

// fetched records a record read from the claim and the claim's high-water
// mark. Called by the claim goroutine before the record is handled.
func (l *claimLag) fetched(msg *sarama.ConsumerMessage, hwm int64) {
	ts := msg.Timestamp
	if ts.IsZero() {
		ts = l.p.now() // a record without a timestamp ages from when it was fetched
	}
	l.mu.Lock()
	if l.start < 0 {
		l.start = msg.Offset
	}
	l.hwm, l.next, l.lastTS = hwm, msg.Offset+1, ts
	l.fetches++
	if n := len(l.stamps); n < lagMaxStamps && (n == 0 || absDuration(ts.Sub(l.stamps[n-1].ts)) >= lagStampEvery) {
		l.stamps = append(l.stamps, lagStamp{offset: msg.Offset, ts: ts})
	}
	l.mu.Unlock()
}

// markCommitted records, under exactly_once, that every offset before next
// is committed.
func (l *claimLag) markCommitted(next int64) { l.committed.Store(next) }

// revoke stops following the claim and deletes its series: the partition
// is no longer this worker's.
func (l *claimLag) revoke() {
	p := l.p
	p.lags.mu.Lock()
	delete(p.lags.claims, l)
	p.lags.mu.Unlock()
	l.mu.Lock()
	l.revoked = true
	l.mu.Unlock()
	p.metrics.lag.DeleteLabelValues(l.labels...)
	p.metrics.lagSeconds.DeleteLabelValues(l.labels...)
	p.metrics.ledgerKeys.DeleteLabelValues(l.labels[0], l.labels[2])
}

// refresh recomputes the claim's gauges at now.
func (l *claimLag) refresh(now time.Time) {
	done := l.done() // outside l.mu: it takes the tracker's lock
	var keys = -1
	if l.keys != nil {
		keys = l.keys()
	}
	paused := l.paused()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revoked {
		return
	}
	if l.fetches != l.seen {
		l.seen, l.lastFetch = l.fetches, now
	}
	if done < l.start {
		done = l.start
	}
	allDone := l.next < 0 || (done >= 0 && done >= l.next)
	caughtUp := allDone && ((l.next >= 0 && l.hwm <= l.next) || (now.Sub(l.lastFetch) >= lagIdle && !paused))

	var records int64
	var age time.Duration
	switch {
	case caughtUp:
		l.stamps = l.stamps[:0]
	case done < 0:
		// Nothing fetched yet and the start offset unknown: no figure yet.
		return
	default:
		records = max(l.hwm-done, 0)
		// Drop the stamps of done records, keeping the last one at or
		// before done: it carries the time of the oldest record not done.
		i := 0
		for i+1 < len(l.stamps) && l.stamps[i+1].offset <= done {
			i++
		}
		l.stamps = append(l.stamps[:0], l.stamps[i:]...)
		switch {
		case !allDone && len(l.stamps) > 0:
			age = now.Sub(l.stamps[0].ts)
		case !l.lastTS.IsZero():
			// Every fetched record is done; the oldest one not done is
			// not fetched yet, and no older than the last fetched.
			age = now.Sub(l.lastTS)
			l.stamps = l.stamps[:0]
		}
	}
	if l.records == nil {
		l.records = l.p.metrics.lag.WithLabelValues(l.labels...)
		l.seconds = l.p.metrics.lagSeconds.WithLabelValues(l.labels...)
	}
	l.records.Set(float64(records))
	l.seconds.Set(max(age, 0).Seconds())
	l.lastRecords, l.lastSeconds = records, max(age, 0).Seconds()
	if keys >= 0 {
		l.p.metrics.ledgerKeys.WithLabelValues(l.labels[0], l.labels[2]).Set(float64(keys))
	}
}

// refreshLag recomputes every live claim's lag every lagRefresh until ctx
// is done. pipeline.run starts it and waits for it.
func (p *pipeline) refreshLag(ctx context.Context) {
	t := time.NewTicker(lagRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.lags.mu.Lock()
		claims := make([]*claimLag, 0, len(p.lags.claims))
		for l := range p.lags.claims {
			claims = append(claims, l)
		}
		p.lags.mu.Unlock()
		now := p.now()
		for _, l := range claims {
			l.refresh(now)
		}
	}
}

// markedOffset is the next offset the tracker has marked, or -1 before
// the first: every offset before it is done.
func (t *tracker) markedOffset() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.marked
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
