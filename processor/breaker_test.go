package processor

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/topology"
)

func breakerPlan(t *testing.T, extra string) *topology.Plan {
	t.Helper()
	p, err := topology.Parse("b.yaml", []byte(`name: b
systems: [erp]
source: {topics: [erp.public.t], system: erp, format: debezium-json}
sink: {topic: out, key: [id]}
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time            { return c.t }
func (c *fakeClock) add(d time.Duration)       { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock                 { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func gaugeOf(t *testing.T, b *breaker) float64 { t.Helper(); return metricValue(b.gauge) }

func TestBreakerStates(t *testing.T) {
	clk := newFakeClock()
	m := newBreakerMetrics(prometheus.NewRegistry())
	b := newBreaker(breakerPlan(t, "errors: {breaker: {failures: 3, open: 2s}, retry: {initial: 1s, max: 10s, multiplier: 2}}\n"),
		depRegistry, m, clk.now, zaptest.NewLogger(t))
	boom := errors.New("503")

	// CLOSED: failures below the threshold, a success resets the count.
	for range 2 {
		if err := b.failure(boom, false); err != nil {
			t.Fatal(err)
		}
	}
	b.success(false)
	if !b.closed() || b.fails.Load() != 0 {
		t.Fatalf("a success did not reset the count: state %d fails %d", b.state.Load(), b.fails.Load())
	}
	for range 3 {
		_ = b.failure(boom, false)
	}
	if s := breakerState(b.state.Load()); s != breakerOpen || gaugeOf(t, b) != 2 {
		t.Fatalf("after 3 consecutive failures: %v, gauge %v", s, gaugeOf(t, b))
	}

	// OPEN: nobody passes until the period is over; stale failures and
	// successes change nothing.
	ok, probe, changed, at := b.acquire()
	if ok || probe || changed == nil || !at.Equal(clk.t.Add(2*time.Second)) {
		t.Fatalf("open: acquire = %v %v %v %v", ok, probe, changed, at)
	}
	_ = b.failure(boom, false)
	b.success(false)
	if breakerState(b.state.Load()) != breakerOpen {
		t.Fatal("a stale outcome changed an open breaker")
	}

	// HALF_OPEN: exactly one caller gets the probe.
	clk.add(2 * time.Second)
	if ok, probe, _, _ := b.acquire(); !ok || !probe {
		t.Fatalf("period over: acquire = %v %v, want the probe", ok, probe)
	}
	select {
	case <-changed:
	default:
		t.Fatal("waiters were not woken by the transition")
	}
	if ok, probe, _, at := b.acquire(); ok || probe || !at.IsZero() {
		t.Fatalf("second caller in half-open: acquire = %v %v %v", ok, probe, at)
	}
	if gaugeOf(t, b) != 1 {
		t.Fatalf("gauge %v in half-open", gaugeOf(t, b))
	}
	b.success(false) // not the probe
	if breakerState(b.state.Load()) != breakerHalfOpen {
		t.Fatal("a success that was not the probe closed the breaker")
	}

	// A failed probe reopens for longer: at least the first period.
	_ = b.failure(boom, true)
	if s := breakerState(b.state.Load()); s != breakerOpen || b.reopens != 1 {
		t.Fatalf("failed probe: %v reopens %d", s, b.reopens)
	}
	if d := b.until.Sub(clk.t); d < 2*time.Second || d >= 2*time.Second+4*time.Second {
		t.Fatalf("second open period %v, want in [2s, 6s)", d)
	}
	clk.t = b.until
	if ok, probe, _, _ := b.acquire(); !ok || !probe {
		t.Fatal("no probe after the second period")
	}
	b.success(true)
	if !b.closed() || gaugeOf(t, b) != 0 || b.reopens != 0 {
		t.Fatalf("probe success: state %d gauge %v reopens %d", b.state.Load(), gaugeOf(t, b), b.reopens)
	}
	for to, want := range map[string]float64{"open": 2, "half_open": 2, "closed": 1} {
		if got := metricValue(m.transitions.WithLabelValues("b", depRegistry, to)); got != want {
			t.Errorf("transitions to %s = %v, want %v", to, got, want)
		}
	}
	if got := metricValue(m.probes.WithLabelValues("b", depRegistry)); got != 2 {
		t.Errorf("probes = %v, want 2", got)
	}
}

// Many claims ask a breaker whose open period is over at the same moment:
// exactly one of them holds the probe.
func TestBreakerOneProbe(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(breakerPlan(t, "errors: {breaker: {failures: 1}}\n"), depProducer, nil, clk.now, zaptest.NewLogger(t))
	_ = b.failure(errors.New("down"), false)
	clk.add(time.Second)
	var probes atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, probe, _, _ := b.acquire(); probe {
				probes.Add(1)
			}
		}()
	}
	wg.Wait()
	if probes.Load() != 1 {
		t.Fatalf("%d probes in one half-open period, want 1", probes.Load())
	}
	b.release()
	if _, probe, _, _ := b.acquire(); !probe {
		t.Fatal("a released probe was not given out again")
	}
}

// errors.retry.max_elapsed turns a dependency that never comes back into a
// fatal error.
func TestBreakerMaxElapsed(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(breakerPlan(t, "errors: {breaker: {failures: 1, open: 1s}, retry: {max_elapsed: 10s}}\n"),
		depRegistry, nil, clk.now, zaptest.NewLogger(t))
	down := fmt.Errorf("%w: 503", cdc.ErrRegistryUnavailable)
	if err := b.failure(down, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		clk.t = b.until
		if _, probe, _, _ := b.acquire(); !probe {
			t.Fatal("no probe")
		}
		err := b.failure(down, true)
		if clk.t.Sub(b.since) <= 10*time.Second {
			if err != nil {
				t.Fatalf("fatal after %v: %v", clk.t.Sub(b.since), err)
			}
			continue
		}
		if classify(err) != Fatal || !errors.Is(err, cdc.ErrRegistryUnavailable) {
			t.Fatalf("after %v: %v, want a fatal error wrapping the cause", clk.t.Sub(b.since), err)
		}
		return
	}
}

func TestDependencyOf(t *testing.T) {
	if d := dependencyOf(&cdc.RegistryError{Err: cdc.ErrRegistryUnavailable}); d != depRegistry {
		t.Errorf("registry error -> %s", d)
	}
	if d := dependencyOf(errors.New("EOF")); d != depProducer {
		t.Errorf("broker error -> %s", d)
	}
}

// metricValue reads a gauge or counter.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
