package processor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/api"
)

// lifecycle is what the REST API and the control topic change in a
// pipeline without restarting the process: pause, resume and restart.
//
// Pause ends the current session (as a rebalance does: in-flight records
// are finished and their offsets committed) and the consume loop joins
// again at once; in the new session every claim holds (holdWhilePaused):
// its partition's fetching is paused and nothing is read from it, while
// sarama's heartbeats keep the worker in the group, so a paused group does
// not rebalance. Resume releases the held claims, which read on from the
// committed offsets: no rebalance, nothing skipped, nothing read twice.
//
// Restart cancels the pipeline's run (a soft stop, as at shutdown) and
// runs it again with a fresh client; a failed pipeline is run again the
// same way (Worker.supervise).
type lifecycle struct {
	mu      sync.Mutex
	paused  bool
	changed chan struct{} // closed and replaced when paused changes
	held    map[topicPartition]*heldClaim
	cancel  context.CancelFunc // the current run's
	restart chan struct{}      // one pending restart request
	seen    int64              // the highest restart count applied
}

// heldClaim is a claim held while the topology is paused, for status.
type heldClaim struct {
	client sarama.Client // the run's client, for the lag
	next   int64         // the committed offset the claim starts from; <0: unknown yet
	tsDone bool          // ts is known (the record at next was read)
	ts     time.Time
}

func (l *lifecycle) init() {
	l.changed = make(chan struct{})
	l.held = map[topicPartition]*heldClaim{}
	l.restart = make(chan struct{}, 1)
}

// setPaused changes the paused state; it reports whether it changed.
func (p *pipeline) setPaused(on bool) bool {
	l := &p.life
	l.mu.Lock()
	if l.paused == on {
		l.mu.Unlock()
		return false
	}
	l.paused = on
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	if on {
		p.log.Info("topology paused: ending the session; the next one holds its partitions until resumed")
		p.mu.Lock()
		cancel := p.cancel
		p.mu.Unlock()
		if cancel != nil {
			cancel(nil) // a clean session end: the consume loop joins again at once
		}
	} else {
		p.log.Info("topology resumed: the held partitions read on from their committed offsets")
	}
	return true
}

func (p *pipeline) isPaused() (bool, <-chan struct{}) {
	p.life.mu.Lock()
	defer p.life.mu.Unlock()
	return p.life.paused, p.life.changed
}

// holdWhilePaused holds a claim while the topology is paused: its
// partition's fetching is paused and nothing is read. It returns true
// when the claim may be consumed, false when the session ended first.
// Called by ConsumeClaim, in the claim's goroutine.
func (p *pipeline) holdWhilePaused(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) bool {
	paused, changed := p.isPaused()
	if !paused {
		return true
	}
	tp := topicPartition{claim.Topic(), claim.Partition()}
	parts := map[string][]int32{tp.topic: {tp.partition}}
	p.group.Pause(parts)
	p.life.mu.Lock()
	p.life.held[tp] = &heldClaim{client: p.client, next: claim.InitialOffset()}
	p.life.mu.Unlock()
	defer func() {
		p.life.mu.Lock()
		delete(p.life.held, tp)
		p.life.mu.Unlock()
	}()
	for paused {
		select {
		case <-sess.Context().Done():
			return false
		case <-changed:
		}
		paused, changed = p.isPaused()
	}
	p.group.Resume(parts)
	return true
}

// requestRestart asks the pipeline's supervisor to run it again: a
// running pipeline is stopped softly first; a failed one starts again.
func (p *pipeline) requestRestart() {
	select {
	case p.life.restart <- struct{}{}:
	default: // one is pending already
	}
	p.life.mu.Lock()
	cancel := p.life.cancel
	p.life.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// reset clears what a run leaves behind before the pipeline runs again.
func (p *pipeline) reset() {
	p.mu.Lock()
	p.fatalErr, p.cancel = nil, nil
	p.mu.Unlock()
	p.status.mu.Lock()
	p.status.stopped = nil
	p.status.phase = "restarting"
	p.status.mu.Unlock()
	p.ready.Store(false)
}

// supervise runs a pipeline until ctx is done, running it again on every
// restart request. A pipeline that stops with a fatal error is reported
// (/healthz, /readyz, status "failed") and, when the worker has an
// api_token (a restart can come over the API or the control topic),
// waits for a restart; without one it returns its error, as a worker
// without the API has no other way back than a process restart.
func (w *Worker) supervise(ctx context.Context, p *pipeline) error {
	for {
		runCtx, cancel := context.WithCancel(ctx)
		p.life.mu.Lock()
		p.life.cancel = cancel
		p.life.mu.Unlock()
		err := w.runPipeline(runCtx, p)
		p.life.mu.Lock()
		p.life.cancel = nil
		p.life.mu.Unlock()
		cancel()
		if ctx.Err() != nil {
			if err != nil {
				err = fmt.Errorf("topology %s: %w", p.plan.Name(), err)
				p.setStopped(err)
			}
			return err
		}
		select {
		case <-p.life.restart:
			p.log.Info("restarting the topology", zap.NamedError("last_error", err))
			p.reset()
			continue
		default:
		}
		if err == nil {
			// Only a cancelled run ends without an error, and only a
			// restart cancels it while ctx lives.
			p.reset()
			continue
		}
		err = fmt.Errorf("topology %s: %w", p.plan.Name(), err)
		p.setStopped(err)
		if !w.restartable {
			if len(w.pipelines) > 1 {
				p.log.Error("topology stopped; the worker's other topologies keep running", zap.Error(err))
			}
			return err
		}
		p.log.Error("topology failed; restart it with POST /topologies/"+p.plan.Name()+"/restart once the cause is fixed",
			zap.Error(err))
		select {
		case <-ctx.Done():
			return err
		case <-p.life.restart:
			p.log.Info("restarting the failed topology", zap.NamedError("last_error", err))
			p.reset()
		}
	}
}

// localStatus is this worker's report of the pipeline. measure false
// leaves out the held claims' lag, which asks the brokers.
func (p *pipeline) localStatus(ctx context.Context, id string, measure bool) api.Worker {
	now := p.now()
	r := api.Worker{ID: id, ReportedAt: now.UTC(), Breakers: map[string]string{}}
	for _, b := range p.breakers {
		r.Breakers[b.dep] = breakerState(b.state.Load()).String()
	}
	ok, why := p.readiness()
	paused, _ := p.isPaused()
	if !ok {
		r.Phase = why
	}

	// Live claims: the true lag as the refresh goroutine last measured it.
	p.lags.mu.Lock()
	claims := make([]*claimLag, 0, len(p.lags.claims))
	for l := range p.lags.claims {
		claims = append(claims, l)
	}
	p.lags.mu.Unlock()
	for _, l := range claims {
		part, _ := strconv.ParseInt(l.labels[2], 10, 32)
		keys := -1
		if l.keys != nil {
			keys = l.keys()
		}
		l.mu.Lock()
		rec, sec, unknown, revoked := l.lastRecords, l.lastSeconds, l.lastUnknown, l.revoked
		l.mu.Unlock()
		if revoked {
			continue
		}
		r.Partitions = append(r.Partitions, api.Partition{Topic: l.labels[1], Partition: int32(part), Worker: id,
			LagRecords: rec, LagSeconds: sec, LagUnknown: unknown, Breakers: r.Breakers, LedgerKeys: keys})
	}

	// Held claims: measured against the committed offset.
	p.life.mu.Lock()
	held := make(map[topicPartition]*heldClaim, len(p.life.held))
	for tp, h := range p.life.held {
		held[tp] = h
	}
	p.life.mu.Unlock()
	for tp, h := range held {
		part := api.Partition{Topic: tp.topic, Partition: tp.partition, Worker: id, Paused: true, Breakers: r.Breakers, LedgerKeys: -1}
		p.mu.Lock()
		ps := p.ledgers[tp]
		p.mu.Unlock()
		if ps != nil {
			ps.mu.Lock()
			part.LedgerKeys = ps.idx.Len()
			ps.mu.Unlock()
		}
		if measure {
			part.LagRecords, part.LagSeconds, part.LagUnknown = p.heldLag(ctx, tp, h, now)
		}
		r.Partitions = append(r.Partitions, part)
	}
	sort.Slice(r.Partitions, func(i, j int) bool {
		a, b := r.Partitions[i], r.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})

	switch {
	case p.stoppedErr() != nil:
		r.State, r.Error = api.StateFailed, p.stoppedErr().Error()
	case paused:
		r.State = api.StatePaused
	case ok && len(r.Partitions) == 0:
		r.State = api.StateIdle
	default:
		r.State = api.StateRunning
	}
	return r
}

// heldLag is the lag of a held claim: the high-water mark minus the
// committed offset, and the age of the record at the committed offset
// (read once: it does not change while the claim is held); unknown when
// the offsets cannot be read (a status of 0 then would claim caught up).
func (p *pipeline) heldLag(ctx context.Context, tp topicPartition, h *heldClaim, now time.Time) (records int64, seconds float64, unknown bool) {
	p.life.mu.Lock()
	client := h.client
	p.life.mu.Unlock()
	hwm, err := client.GetOffset(tp.topic, tp.partition, sarama.OffsetNewest)
	if err != nil {
		return 0, 0, true
	}
	p.life.mu.Lock()
	next, tsDone, ts := h.next, h.tsDone, h.ts
	p.life.mu.Unlock()
	if next < 0 {
		if next, err = client.GetOffset(tp.topic, tp.partition, sarama.OffsetOldest); err != nil {
			return 0, 0, true
		}
	}
	records = max(hwm-next, 0)
	if records == 0 {
		return 0, 0, false
	}
	if !tsDone {
		if t, err := recordTime(ctx, client, tp, next); err == nil {
			ts, tsDone = t, true
			p.life.mu.Lock()
			h.next, h.ts, h.tsDone = next, t, true
			p.life.mu.Unlock()
		}
	}
	if !tsDone {
		return records, 0, false
	}
	return records, max(now.Sub(ts), 0).Seconds(), false
}

// recordTime reads the timestamp of the first record at or after offset.
func recordTime(ctx context.Context, client sarama.Client, tp topicPartition, offset int64) (time.Time, error) {
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	pc, err := c.ConsumePartition(tp.topic, tp.partition, offset)
	if err != nil {
		return time.Time{}, err
	}
	defer pc.Close()
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case m := <-pc.Messages():
		return m.Timestamp, nil
	case <-t.C:
		return time.Time{}, errors.New("no record within 2s")
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}
