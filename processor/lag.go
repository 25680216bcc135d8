package processor

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Lag of a claimed partition, as cdcsync_lag_records and
// cdcsync_lag_seconds export it:
//
//   - lag_records is the partition's end (the high-water mark; under
//     exactly_once, read_committed, what a probe answers is the last
//     stable offset) minus the next offset not yet done (at_least_once:
//     acknowledged and marked; exactly_once: committed). It is 0 once the
//     claim is caught up, and NaN while it is unknown (see Silence).
//   - lag_seconds is the age of the oldest record not yet done: by its
//     Kafka timestamp for a fetched record (see Silence for the others).
//     It grows while a partition is stuck or silent, and is 0 when caught
//     up.
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
// high-water mark of the last fetched batch, or nothing was fetched for
// lagIdle while the partition was not paused and a probe sent after the
// last fetch found nothing beyond the high-water mark the consumer last
// saw (that batch's, or a later fetch response's that brought only
// transaction markers or aborted records: sarama keeps it in
// claim.HighWaterMarkOffset): the consumer has then been given everything
// there is, and the rest of the gap is offsets it is never given.
//
// Silence. "Nothing fetched" does not mean "nothing there": when fetch
// responses stop (a leader stopped or cut off holds every request until
// the group client's Net.ReadTimeout, 30 s, before sarama looks up the
// new leader), records
// pile up while the claim sees nothing. So once nothing was fetched for
// lagIdle, the refresh goroutine probes the partition's end (ListOffsets,
// newest, at the consumer's isolation level) at most every lagProbeEvery,
// one probe in flight per claim, on a client of its own: a probe on the
// consumer's connection would queue behind the very fetch that hangs. No
// request is sent for a claim that keeps fetching.
//
//   - A probe that finds records beyond the high-water mark the consumer
//     last saw makes lag_records the probed end minus the next offset not
//     done, and lag_seconds at least the time since that probe answered:
//     those records' timestamps are not known without reading them, but
//     they were in the log when it answered, so the age since then is a
//     lower bound that grows with the wall clock, not an invented figure.
//     (When fetched records are not done either, the age of the oldest of
//     them counts if it is larger.)
//   - Until a probe answers, the figures of the last fetch stand, for up
//     to lagProbeWait after the last fetch or the last answer. After it
//     (the probe hangs or fails, as it does against the same silent
//     leader) the figure is unknown: lag_records is NaN (the REST status
//     says lag_unknown, with the records known to be not done), and
//     lag_seconds is at least the time since the last fetch. That is not
//     a record's age but how long the partition has told the worker
//     nothing; it keeps growing, so the stalled-partition alert fires.
//     Never 0: silence is not proof of being caught up.
const (
	lagRefresh = 250 * time.Millisecond
	lagIdle    = time.Second
	// lagProbeEvery is the least time between two probes of one claim.
	lagProbeEvery = time.Second
	// lagProbeWait is how long after the last fetch, or after the last
	// answered probe, a silent claim's figure stands without a probe's
	// answer; after it the figure is unknown.
	lagProbeWait = 3 * time.Second
	// lagStampEvery is the resolution of the timestamps kept for
	// lag_seconds: one per this much record time, not one per record.
	lagStampEvery = 10 * time.Millisecond
	lagMaxStamps  = 4096
)

// claimLag follows the lag of one claim (see the comment above).
type claimLag struct {
	p         *pipeline
	tp        topicPartition
	labels    []string // topology, topic, partition
	done      func() int64
	paused    func() bool
	live      func() int64 // the high-water mark of the consumer's last fetch response with records, read or not
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
	// Probes of a silent claim (see Silence above).
	probing    bool      // a probe is in flight
	probeSent  time.Time // when the last probe was sent
	answerSent time.Time // when the last answered probe was sent; zero if none
	answerAt   time.Time // when its answer came
	answer     int64     // the partition's end it answered
	probeErr   bool      // the last probe failed (logged once per run of failures)
	beyondAt   time.Time // when a probe first answered more than the consumer saw since the last fetch; zero if none
	// The figures of the last refresh, for the REST API's status.
	lastRecords int64
	lastSeconds float64
	lastUnknown bool
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
		tp:        topicPartition{claim.Topic(), claim.Partition()},
		labels:    []string{p.plan.Name(), claim.Topic(), partitionLabel(claim.Partition())},
		done:      done,
		paused:    func() bool { return false },
		live:      claim.HighWaterMarkOffset,
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
	live := l.live()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revoked {
		return
	}
	if l.fetches != l.seen {
		l.seen, l.lastFetch = l.fetches, now
		l.beyondAt = time.Time{}
	}
	if done < l.start {
		done = l.start
	}
	allDone := l.next < 0 || (done >= 0 && done >= l.next)
	silent := now.Sub(l.lastFetch)
	idle := silent >= lagIdle
	// answered: a probe sent after the last fetch answered, recently.
	answered := idle && !l.answerSent.IsZero() && !l.answerSent.Before(l.lastFetch) &&
		now.Sub(l.answerSent) < lagProbeWait
	hwm := l.hwm
	beyond := answered && l.answer > max(hwm, live)
	if beyond {
		hwm = l.answer
		if l.beyondAt.IsZero() {
			l.beyondAt = l.answerAt
		}
	}
	unknown := idle && !answered && silent >= lagProbeWait
	caughtUp := allDone && !beyond && !unknown &&
		((l.next >= 0 && l.hwm <= l.next) || (answered && !paused))

	var records int64
	var age time.Duration
	switch {
	case caughtUp:
		l.stamps = l.stamps[:0]
	case done < 0:
		// Nothing fetched yet and the start offset unknown: no figure yet.
		return
	default:
		records = max(hwm-done, 0)
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
		case beyond || unknown:
			// Every fetched record is done and the records not done
			// were not fetched: their age is the lower bound below.
			l.stamps = l.stamps[:0]
		case !l.lastTS.IsZero():
			// Every fetched record is done; the oldest one not done is
			// not fetched yet, and no older than the last fetched.
			age = now.Sub(l.lastTS)
			l.stamps = l.stamps[:0]
		}
		if beyond {
			age = max(age, now.Sub(l.beyondAt))
		}
		if unknown {
			age = max(age, silent)
		}
	}
	if l.records == nil {
		l.records = l.p.metrics.lag.WithLabelValues(l.labels...)
		l.seconds = l.p.metrics.lagSeconds.WithLabelValues(l.labels...)
	}
	if unknown {
		l.records.Set(math.NaN())
	} else {
		l.records.Set(float64(records))
	}
	l.seconds.Set(max(age, 0).Seconds())
	l.lastRecords, l.lastSeconds, l.lastUnknown = records, max(age, 0).Seconds(), unknown
	if keys >= 0 {
		l.p.metrics.ledgerKeys.WithLabelValues(l.labels[0], l.labels[2]).Set(float64(keys))
	}
}

// probeDue reports whether a probe of the claim's end is to be sent at now
// (it has been silent for lagIdle, no probe is in flight, and none was sent
// within lagProbeEvery), and if so records it as sent.
func (l *claimLag) probeDue(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revoked || l.probing || now.Sub(l.lastFetch) < lagIdle || now.Sub(l.probeSent) < lagProbeEvery {
		return false
	}
	l.probing, l.probeSent = true, now
	return true
}

// probed records the answer of the probe sent at sent, received at at:
// the partition's end, or err.
func (l *claimLag) probed(sent, at time.Time, end int64, err error) {
	l.mu.Lock()
	was := l.probeErr
	l.probing, l.probeErr = false, err != nil
	if err == nil {
		l.answerSent, l.answerAt, l.answer = sent, at, end
	}
	l.mu.Unlock()
	switch {
	case err != nil && !was:
		l.p.log.Warn("cannot read the end of a silent partition; its lag is unknown until an answer comes",
			zap.String("topic", l.tp.topic), zap.Int32("partition", l.tp.partition), zap.Error(err))
	case err == nil && was:
		l.p.log.Info("read the end of a silent partition again",
			zap.String("topic", l.tp.topic), zap.Int32("partition", l.tp.partition))
	}
}

// refreshLag recomputes every live claim's lag every lagRefresh until ctx
// is done, and probes the silent ones (see Silence above). pipeline.run
// starts it and waits for it; it waits for its probes, each bounded by
// Net.ReadTimeout.
func (p *pipeline) refreshLag(ctx context.Context) {
	t := time.NewTicker(lagRefresh)
	defer t.Stop()
	pr := &lagProber{p: p}
	defer pr.close()
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
		var due []*claimLag
		for _, l := range claims {
			l.refresh(now)
			if p.client != nil && l.probeDue(now) {
				due = append(due, l)
			}
		}
		if len(due) > 0 {
			pr.probe(now, due)
		}
	}
}

// lagProber sends the probes of one pipeline's refresh goroutine, on a
// client of its own opened at the first probe: requests on a connection
// are answered in order, so a probe on the consumer's connection would
// wait behind the fetch that hangs.
type lagProber struct {
	p  *pipeline
	wg sync.WaitGroup // the probe goroutines

	mu     sync.Mutex
	client sarama.Client
}

// probe asks for the end of each claim's partition, sent at sent, in a
// goroutine: one ListOffsets request per leader, the leaders in parallel,
// so a leader that hangs holds up only its own claims' answers.
func (pr *lagProber) probe(sent time.Time, claims []*claimLag) {
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		client, err := pr.open()
		if err != nil {
			for _, l := range claims {
				l.probed(sent, time.Time{}, 0, err)
			}
			return
		}
		byLeader := map[*sarama.Broker][]*claimLag{}
		for _, l := range claims {
			b, err := client.Leader(l.tp.topic, l.tp.partition)
			if err != nil {
				l.probed(sent, time.Time{}, 0, err)
				continue
			}
			byLeader[b] = append(byLeader[b], l)
		}
		var wg sync.WaitGroup
		for b, ls := range byLeader {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pr.ask(client, b, sent, ls)
			}()
		}
		wg.Wait()
	}()
}

// errLagProbe is a probe's answer without the partition asked for.
var errLagProbe = errors.New("processor: lag probe: no answer for the partition")

// ask sends one ListOffsets request for claims to their leader b, at the
// consumer's isolation level: under read_committed the broker answers the
// last stable offset, the end of what the consumer can be given (sarama's
// Client.GetOffset always asks read_uncommitted).
func (pr *lagProber) ask(client sarama.Client, b *sarama.Broker, sent time.Time, claims []*claimLag) {
	conf := client.Config()
	req := sarama.NewOffsetRequest(conf.Version)
	if req.Version >= 2 {
		req.IsolationLevel = conf.Consumer.IsolationLevel
	}
	for _, l := range claims {
		req.AddBlock(l.tp.topic, l.tp.partition, sarama.OffsetNewest, 1)
	}
	resp, err := b.GetAvailableOffsets(req)
	at := pr.p.now()
	if err != nil {
		_ = b.Close() // as sarama's GetOffset does: the next probe reconnects
	}
	type result struct {
		end int64
		err error
	}
	results := make([]result, len(claims))
	stale := err != nil
	for i, l := range claims {
		if err != nil {
			results[i].err = err
			continue
		}
		blk := resp.GetBlock(l.tp.topic, l.tp.partition)
		switch {
		case blk == nil:
			results[i].err = errLagProbe
		case !errors.Is(blk.Err, sarama.ErrNoError):
			results[i].err = blk.Err // NOT_LEADER_OR_FOLLOWER and the like: the leader moved
		case req.Version == 0 && len(blk.Offsets) != 1:
			results[i].err = errLagProbe
		case req.Version == 0:
			results[i].end = blk.Offsets[0]
		default:
			results[i].end = blk.Offset
		}
		stale = stale || results[i].err != nil
	}
	if stale {
		// Before the answers, so that the claims' next probes (due once
		// these are answered) ask the new leader.
		topics := make([]string, 0, len(claims))
		for _, l := range claims {
			topics = append(topics, l.tp.topic)
		}
		_ = client.RefreshMetadata(topics...)
	}
	for i, l := range claims {
		l.probed(sent, at, results[i].end, results[i].err)
	}
}

// open returns the prober's client, opening it at the first call.
func (pr *lagProber) open() (sarama.Client, error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.client != nil {
		return pr.client, nil
	}
	c, err := sarama.NewClient(pr.p.cfg.Brokers, pr.p.client.Config())
	if err != nil {
		return nil, err
	}
	pr.client = c
	return c, nil
}

// close waits for the probes in flight and closes the client.
func (pr *lagProber) close() {
	pr.wg.Wait()
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.client != nil {
		_ = pr.client.Close()
		pr.client = nil
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
