package processor

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/topology"
)

// Dependencies a topology's circuit breakers stand for (the dependency
// label of cdcsync_breaker_state).
const (
	// depProducer is the path to the brokers of the sink, DLQ and ledger
	// records: the producers, and the admin and metadata calls that make
	// sure a sink topic exists.
	depProducer = "producer"
	// depRegistry is the schema registry (Avro decode and encode).
	depRegistry = "registry"
)

// dependencyOf names the dependency a transient failure belongs to.
func dependencyOf(err error) string {
	if errors.Is(err, cdc.ErrRegistryUnavailable) {
		return depRegistry
	}
	return depProducer
}

// breakerState is a breaker's state; its value is the value of the
// cdcsync_breaker_state gauge.
type breakerState int32

const (
	breakerClosed   breakerState = 0
	breakerHalfOpen breakerState = 1
	breakerOpen     breakerState = 2
)

func (s breakerState) String() string {
	switch s {
	case breakerClosed:
		return "closed"
	case breakerHalfOpen:
		return "half_open"
	case breakerOpen:
		return "open"
	}
	return "unknown"
}

// breakerMetrics are the breaker collectors of one worker:
//
//	cdcsync_breaker_state{topology,dependency}            0 closed, 1 half-open, 2 open
//	cdcsync_breaker_transitions_total{topology,dependency,to}
//	cdcsync_breaker_probes_total{topology,dependency}     probes admitted in half-open periods
type breakerMetrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	probes      *prometheus.CounterVec
}

func newBreakerMetrics(reg prometheus.Registerer) *breakerMetrics {
	m := &breakerMetrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cdcsync_breaker_state", Help: "Circuit breaker state of a dependency: 0 closed, 1 half-open, 2 open.",
		}, []string{"topology", "dependency"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcsync_breaker_transitions_total", Help: "Circuit breaker transitions, by the state entered.",
		}, []string{"topology", "dependency", "to"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcsync_breaker_probes_total", Help: "Probes a half-open circuit breaker let through (one per half-open period).",
		}, []string{"topology", "dependency"}),
	}
	reg.MustRegister(m.state, m.transitions, m.probes)
	return m
}

// breaker is the circuit breaker of one dependency of one topology in this
// worker. Every claim of the topology asks it before it uses the
// dependency (acquire) and reports the outcome (success, failure).
//
//	CLOSED ── failures consecutive transient failures ──► OPEN
//	OPEN ── open period over, first acquire ──► HALF_OPEN (that caller holds the one probe)
//	HALF_OPEN ── probe succeeded ──► CLOSED;  probe failed ──► OPEN (longer period)
//
// While it is not CLOSED the claims pause their partitions (see
// aloClaim.gate). Outcomes of uses that started before it opened are
// ignored: only the probe decides a half-open period.
type breaker struct {
	topology, dep string
	threshold     int
	open          time.Duration // first open period
	retry         topology.Retry
	now           func() time.Time
	log           *zap.Logger
	gauge         prometheus.Gauge
	transitions   *prometheus.CounterVec // curried by topology and dependency
	probes        prometheus.Counter

	state atomic.Int32 // breakerState; read without the lock on the hot path
	fails atomic.Int32 // consecutive failures while closed

	mu      sync.Mutex
	reopens int       // probes failed in a row: the open period grows with it
	until   time.Time // end of the open period
	probing bool      // the probe of the current half-open period is out
	since   time.Time // first failure since the dependency last worked
	changed chan struct{}
}

func newBreaker(plan *topology.Plan, dep string, m *breakerMetrics, now func() time.Time, log *zap.Logger) *breaker {
	cfg := plan.Breaker()
	b := &breaker{
		topology: plan.Name(), dep: dep,
		threshold: cfg.Failures, open: cfg.Open, retry: plan.Retry(),
		now: now, log: log.With(zap.String("dependency", dep)),
		changed: make(chan struct{}),
	}
	if m != nil {
		b.gauge = m.state.WithLabelValues(plan.Name(), dep)
		b.gauge.Set(0)
		b.transitions = m.transitions.MustCurryWith(prometheus.Labels{"topology": plan.Name(), "dependency": dep})
		b.probes = m.probes.WithLabelValues(plan.Name(), dep)
	}
	return b
}

// closed reports whether the breaker is closed, without locking.
func (b *breaker) closed() bool { return breakerState(b.state.Load()) == breakerClosed }

// acquire asks whether the dependency may be used now. ok is true when the
// breaker is closed, or when it just went half-open and the caller holds
// its one probe (probe true): the caller then reports the probe's outcome
// with success(true) or failure(err, true), or gives it back with
// release. When ok is false, the caller waits for changed (closed at the
// next transition) or until retryAt (non-zero while open), then asks again.
func (b *breaker) acquire() (ok, probe bool, changed <-chan struct{}, retryAt time.Time) {
	if b.closed() {
		return true, false, nil, time.Time{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch breakerState(b.state.Load()) {
	case breakerClosed:
		return true, false, nil, time.Time{}
	case breakerOpen:
		if now := b.now(); !now.Before(b.until) {
			b.probing = true
			if b.probes != nil {
				b.probes.Inc()
			}
			b.transition(breakerHalfOpen, "open period over; letting one probe through", nil)
			return true, true, nil, time.Time{}
		}
		return false, false, b.changed, b.until
	}
	return false, false, b.changed, time.Time{} // half-open: the probe is out
}

// next returns a channel closed at the next transition, or nil when the
// breaker is closed.
func (b *breaker) next() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if breakerState(b.state.Load()) == breakerClosed {
		return nil
	}
	return b.changed
}

// success reports that a use of the dependency succeeded. Only the probe
// closes a half-open breaker.
func (b *breaker) success(probe bool) {
	if !probe {
		if b.closed() && b.fails.Load() == 0 {
			return
		}
		b.mu.Lock()
		if b.closed() {
			b.fails.Store(0)
			b.since = time.Time{}
		}
		b.mu.Unlock()
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if breakerState(b.state.Load()) != breakerHalfOpen || !b.probing {
		return
	}
	outage := b.now().Sub(b.since)
	b.probing, b.reopens, b.since = false, 0, time.Time{}
	b.fails.Store(0)
	b.transition(breakerClosed, fmt.Sprintf("probe succeeded; the dependency was failing for %v", outage.Round(time.Millisecond)), nil)
}

// release gives the probe back without an outcome (the probe record never
// reached the dependency): the breaker goes back to open with a period
// already over, so the next acquire probes again.
func (b *breaker) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if breakerState(b.state.Load()) != breakerHalfOpen || !b.probing {
		return
	}
	b.probing = false
	b.until = b.now()
	b.transition(breakerOpen, "the probe did not reach the dependency; probing again", nil)
}

// failure reports a transient failure of the dependency. While closed it
// counts towards the threshold; a failed probe reopens the breaker for a
// longer period; other failures while open or half-open came from uses
// that started before it opened and are ignored. It returns a fatal error
// once the dependency has been failing for longer than
// errors.retry.max_elapsed: the topology must stop.
func (b *breaker) failure(err error, probe bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.since.IsZero() {
		b.since = now
	}
	switch breakerState(b.state.Load()) {
	case breakerClosed:
		if int(b.fails.Add(1)) >= b.threshold {
			b.reopens = 0
			b.until = now.Add(b.period())
			b.transition(breakerOpen, fmt.Sprintf("%d consecutive transient failures", b.fails.Load()), err)
		}
	case breakerHalfOpen:
		if probe && b.probing {
			b.probing = false
			b.reopens++
			b.until = now.Add(b.period())
			b.transition(breakerOpen, "probe failed", err)
		}
	}
	if max := b.retry.MaxElapsed; max > 0 && now.Sub(b.since) > max {
		return fatal(fmt.Errorf("%s still failing after errors.retry.max_elapsed (%v): %w", b.dep, max, err))
	}
	return nil
}

// period is the length of the next open period: errors.breaker.open the
// first time; after each failed probe, errors.breaker.open plus the
// topology's retry backoff (growing by errors.retry.multiplier from
// errors.breaker.open, full jitter, ceiling errors.retry.max).
func (b *breaker) period() time.Duration {
	if b.reopens == 0 {
		return b.open
	}
	return b.open + backoffMult(b.reopens, b.open, max(b.retry.Max, b.open), b.retry.Multiplier)
}

// transition enters state to, logs it once with its cause, updates the
// metrics and wakes every waiter. The caller holds b.mu.
func (b *breaker) transition(to breakerState, cause string, err error) {
	from := breakerState(b.state.Swap(int32(to)))
	if b.gauge != nil {
		b.gauge.Set(float64(to))
		b.transitions.WithLabelValues(to.String()).Inc()
	}
	fields := []zap.Field{zap.String("from", from.String()), zap.String("to", to.String()), zap.String("cause", cause)}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	if to == breakerOpen {
		fields = append(fields, zap.Duration("open_for", b.until.Sub(b.now()).Round(time.Millisecond)))
		b.log.Warn("circuit breaker open: pausing the topology's partitions", fields...)
	} else {
		b.log.Info("circuit breaker "+to.String(), fields...)
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// breakerFor returns the breaker of the dependency a transient failure
// belongs to.
func (p *pipeline) breakerFor(err error) *breaker {
	if dependencyOf(err) == depRegistry {
		return p.registryBrk
	}
	return p.producerBrk
}

// claimGate is how a claim goroutine waits for the topology's breakers:
// it pauses its partition while one is not closed and takes a probe when
// one goes half-open. aloClaim embeds it; consumeTxn uses it for records
// that fail in the stages.
type claimGate struct {
	p      *pipeline
	claim  sarama.ConsumerGroupClaim
	c      *claimCtx
	notify <-chan struct{} // at_least_once: the tracker's; nil under exactly_once
	expire *time.Ticker
	paused bool
}

// notClosed returns the transition channel of the first breaker that is
// not closed, nil when all are.
func (l *claimGate) notClosed() <-chan struct{} {
	for _, b := range l.p.breakers {
		if b.closed() {
			continue
		}
		if ch := b.next(); ch != nil {
			return ch
		}
	}
	return nil
}

// gate returns when every breaker is closed (nil), or when this claim holds
// the probe of one (that breaker). Meanwhile the partition is paused. ok
// is false when the session ended.
func (l *claimGate) gate(breakers []*breaker) (probe *breaker, ok bool) {
	for {
		var changed <-chan struct{}
		var at time.Time
		blocked := false
		for _, b := range breakers {
			pass, isProbe, ch, retryAt := b.acquire()
			if isProbe {
				return b, true
			}
			if !pass {
				blocked, changed, at = true, ch, retryAt
				break
			}
		}
		if !blocked {
			return nil, true
		}
		if !l.wait(changed, at) {
			return nil, false
		}
	}
}

// wait pauses the partition and waits for changed, until at (when not
// zero), or for the tracker's notify; false when the session ended.
func (l *claimGate) wait(changed <-chan struct{}, at time.Time) bool {
	l.setPaused(true)
	var timer <-chan time.Time
	if !at.IsZero() {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-changed:
	case <-timer:
	case <-l.notify:
	case <-l.expire.C:
		l.c.expire()
	case <-l.c.ctx.Done():
		return false
	}
	return true
}

// release gives a probe back that was not used.
func (l *claimGate) release(probe *breaker) {
	if probe != nil {
		probe.release()
	}
}

// setPaused pauses or resumes fetching of the claim's partition: while a
// breaker is open the claim reads nothing, and a paused partition stops
// its fetches instead of filling the claim's channel.
func (l *claimGate) setPaused(on bool) {
	if l.paused == on || l.p.group == nil {
		return
	}
	l.paused = on
	tp := map[string][]int32{l.claim.Topic(): {l.claim.Partition()}}
	if on {
		l.p.group.Pause(tp)
	} else {
		l.p.group.Resume(tp)
	}
}
