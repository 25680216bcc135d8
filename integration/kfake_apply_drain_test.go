package integration

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/topology"
)

// Issue 14, the apply drain: when an apply session ends in the middle of a
// batch (a second worker joins the group, or the worker shuts down softly),
// the claim still applies the batch it read (up to applyDrainGrace) and its
// offsets are committed with the session, so the next owner starts after
// it. Regression: Apply ran on the session's context, so the request in
// flight was cancelled after the endpoint had taken it, and the next owner
// delivered that event a second time (the demo's crm-apply read 510
// records instead of 394 when a second worker joined mid-stream).

// drainRig is a sync topic full of events (written by a sink topology in
// its own worker) and an apply topology on a slow endpoint: each request
// takes 25 ms, so a batch of 40 takes about 1 s.
type drainRig struct {
	st   *embedded.Stack
	ep   *endpoint
	w    *workload
	plan *topology.Plan
}

func startDrainRig(t *testing.T) *drainRig {
	t.Helper()
	src := demo.NewSource("erp", "erp", false)
	st, err := embedded.Start(embedded.Options{Topics: []string{src.Topic(), "sync.contacts"}, Partitions: 2, NoRegistry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	t.Setenv("KFAKE_APPLY_SECRET", applySecret)
	ep := newEndpoint(t)
	ep.delay = 25 * time.Millisecond
	sink := mustPlan(t, fmt.Sprintf(contactsTopology, "contacts-sync", src.Topic(), "sync.contacts"))
	w := makeWorkload(src, 20, 360, 0.1, 15)
	startWorker(t, st.Brokers(), "sink", sink)
	produce(t, st.Brokers(), w.Records)
	waitProcessed(t, st.Brokers(), 30*time.Second, sink)
	plan := mustPlan(t, fmt.Sprintf(`name: crm-apply
systems: [erp, crm]
source: {topics: [sync.contacts], system: erp, format: cdcsync-json}
apply:
  kind: http
  batch: {max_events: 40, max_wait: 200ms}
  max_concurrency: 2
  http:
    url: "http://%s/api/{entity}/{key.id}"
    timeout: 5s
    secrets_env: [KFAKE_APPLY_SECRET]
errors:
  retry: {initial: 50ms, max: 1s}
`, ep.addr))
	return &drainRig{st: st, ep: ep, w: w, plan: plan}
}

// waitMidBatch waits until the endpoint accepted some events and a request
// is in flight: the claims are in the middle of a batch.
func (r *drainRig) waitMidBatch(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ds, _ := r.ep.snapshot()
		if distinct(ds) >= 40 && r.ep.inflight.Load() > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint accepted %d events within 30 s, want 40 and a request in flight", distinct(ds))
		}
	}
}

// startNext starts a worker after the first stopped, and waits until the
// group settled with it alone.
func (r *drainRig) startNext(t *testing.T) *worker {
	t.Helper()
	wk := startWorker(t, r.st.Brokers(), "apply-2", r.plan)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := r.st.Kafka.WaitGroupStable(ctx, string(r.plan.Group()), 1); err != nil {
		gi := r.st.Kafka.GroupInfo(string(r.plan.Group()))
		t.Fatalf("the apply group did not settle with the new worker alone: %v; %s, members %+v", err, gi.State, gi.Members)
	}
	return wk
}

// checkOnce asserts every event reached the endpoint, in per-key order,
// and that the endpoint received exactly one request per Idempotency-Key:
// no session end in these tests outlasts the grace, so at_least_once
// allows no redelivery.
func (r *drainRig) checkOnce(t *testing.T) {
	t.Helper()
	r.checkOnceBut(t, "")
}

// checkOnceBut is checkOnce, but the event with Idempotency-Key refused
// may have been requested more than once (the endpoint refused it).
func (r *drainRig) checkOnceBut(t *testing.T, refused string) {
	t.Helper()
	r.ep.waitDelivered(t, r.w.Unique, 60*time.Second)
	time.Sleep(300 * time.Millisecond) // a late duplicate would show now
	ds, bad := r.ep.snapshot()
	if bad != 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	checkOrder(t, ds, r.w, nil, false)
	r.ep.mu.Lock()
	defer r.ep.mu.Unlock()
	twice := 0
	for id, ts := range r.ep.attempts {
		if len(ts) != 1 && id != refused {
			twice++
			if twice <= 5 {
				t.Errorf("Idempotency-Key %s: %d requests, want 1", id, len(ts))
			}
		}
	}
	if twice > 0 || len(r.ep.attempts) != r.w.Unique {
		t.Errorf("%d events received, %d of them more than once; want %d, each once", len(r.ep.attempts), twice, r.w.Unique)
	}
}

// TestKfakeApplyDrainRebalance: a second worker joins the apply group
// while the first is in the middle of a batch on both partitions. The
// first finishes its batches before the group rebalances, the partition
// that moves continues at the committed offset, and no event is delivered
// twice.
func TestKfakeApplyDrainRebalance(t *testing.T) {
	r := startDrainRig(t)
	a := startWorker(t, r.st.Brokers(), "apply-1", r.plan)
	r.waitMidBatch(t)
	b := startWorker(t, r.st.Brokers(), "apply-2", r.plan)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := r.st.Kafka.WaitGroupStable(ctx, string(r.plan.Group()), 2); err != nil {
		t.Fatalf("the apply group did not settle with 2 members: %v", err)
	}
	r.checkOnce(t)
	sa, sb := a.w.Stats("crm-apply"), b.w.Stats("crm-apply")
	t.Logf("apply-1 applied %d (%d sessions), apply-2 applied %d (%d sessions), %d events", sa.Out, sa.Rebalances, sb.Out, sb.Rebalances, r.w.Unique)
	if sa.Rebalances < 2 || sb.Out == 0 {
		t.Errorf("apply-1 had %d sessions and apply-2 applied %d events: the rebalance did not move a partition mid-stream", sa.Rebalances, sb.Out)
	}
	if sa.Out+sb.Out != int64(r.w.Unique) {
		t.Errorf("the workers applied %d + %d events, want %d in all", sa.Out, sb.Out, r.w.Unique)
	}
}

// TestKfakeApplyDrainShutdown: the worker is shut down softly (its context
// cancelled, as on SIGTERM) in the middle of a batch; it finishes the batch
// within the grace and commits it, and a new worker delivers the rest:
// nothing twice, nothing lost.
func TestKfakeApplyDrainShutdown(t *testing.T) {
	r := startDrainRig(t)
	a := startWorker(t, r.st.Brokers(), "apply-1", r.plan)
	r.waitMidBatch(t)
	start := time.Now()
	if err := a.stop(); err != nil {
		t.Fatalf("soft shutdown: %v", err)
	}
	took := time.Since(start)
	sa := a.w.Stats("crm-apply")
	t.Logf("soft shutdown mid-batch took %v; apply-1 applied %d of %d events", took, sa.Out, r.w.Unique)
	if took > 8*time.Second {
		t.Errorf("soft shutdown took %v: a batch of 40 takes about 1 s, the drain should not wait out the grace", took)
	}
	if sa.Out == 0 || sa.Out >= int64(r.w.Unique) {
		t.Fatalf("apply-1 applied %d of %d events before it stopped: not a mid-stream shutdown", sa.Out, r.w.Unique)
	}
	b := r.startNext(t)
	r.checkOnce(t)
	if sb := b.w.Stats("crm-apply"); sa.Out+sb.Out != int64(r.w.Unique) {
		t.Errorf("the workers applied %d + %d events, want %d in all", sa.Out, sb.Out, r.w.Unique)
	}
}

// TestKfakeApplyDrainTargetRefusing: the endpoint refuses one event (503)
// while the worker is shut down softly. The drain finishes the other
// partition's batch but does not retry the refused event until the grace
// is over; a new worker delivers it once the endpoint takes it, and the
// rest, nothing twice. Regression: the drain's backoff ran on the drain
// context, so a shutdown (or a rebalance, which holds the whole group)
// with the target refusing waited out the 10 s grace.
func TestKfakeApplyDrainTargetRefusing(t *testing.T) {
	r := startDrainRig(t)
	const held = "seq-2-3"
	if r.w.PerKey[2] < 3 {
		t.Fatalf("workload: key 2 has %d changes, want at least 3", r.w.PerKey[2])
	}
	var accept atomic.Bool
	var refusals atomic.Int32
	var mu sync.Mutex
	var heldID string
	r.ep.respond = func(id, phone string, _ int) (int, http.Header, string) {
		if phone != held {
			return 0, nil, ""
		}
		mu.Lock()
		heldID = id
		mu.Unlock()
		if accept.Load() {
			return 0, nil, ""
		}
		refusals.Add(1)
		return http.StatusServiceUnavailable, nil, "maintenance"
	}
	a := startWorker(t, r.st.Brokers(), "apply-1", r.plan)
	for deadline := time.Now().Add(30 * time.Second); refusals.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint refused %s %d times within 30 s, want it retried", held, refusals.Load())
		}
	}
	start := time.Now()
	if err := a.stop(); err != nil {
		t.Fatalf("soft shutdown: %v", err)
	}
	took := time.Since(start)
	t.Logf("soft shutdown while %s was refused %d times took %v", held, refusals.Load(), took)
	if took > 5*time.Second {
		t.Errorf("soft shutdown took %v with the target refusing an event: the drain waited out the failure", took)
	}
	accept.Store(true)
	r.startNext(t)
	mu.Lock()
	id := heldID
	mu.Unlock()
	r.checkOnceBut(t, id)
}
