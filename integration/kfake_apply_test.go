package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor/apply/httpapply"
	"github.com/cdcsync/cdcsync/processor/dlq"
)

// Issue 14: HTTP apply topologies, end to end on kfake. A sink topology
// turns Debezium changes into sync records on sync.contacts; an apply
// topology (apply.kind http) in the same worker delivers them to an
// in-process endpoint that verifies every Standard Webhooks signature with
// the reference library.

const applySecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"

// delivery is one request the endpoint accepted (2xx).
type delivery struct {
	id, method, path string
	key              int64
	n                int // the change number of its key (phone seq-<key>-<n>)
	at               time.Time
}

// endpoint is a real HTTP server on a fixed local address that can be
// stopped and started again (the target going down).
type endpoint struct {
	t        *testing.T
	addr     string
	verifier *standardwebhooks.Webhook

	delay       time.Duration // how long each request takes, outside the lock
	inflight    atomic.Int32
	maxInflight atomic.Int32

	mu       sync.Mutex
	srv      *http.Server
	accepted []delivery
	attempts map[string][]time.Time // every request that arrived, by webhook-id
	badSig   int
	respond  func(id string, phone string, attempt int) (status int, header http.Header, body string) // nil: 204
	// downAfter > 0: the endpoint goes down (stop) right after it has
	// accepted that many requests, and down is closed.
	downAfter int
	down      chan struct{}
}

func newEndpoint(t *testing.T) *endpoint {
	t.Helper()
	v, err := standardwebhooks.NewWebhook(applySecret)
	if err != nil {
		t.Fatal(err)
	}
	e := &endpoint{t: t, verifier: v, attempts: map[string][]time.Time{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.serve(ln)
	t.Cleanup(e.stop)
	return e
}

func (e *endpoint) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(e.handle)}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection: requests fail with
// network errors until start.
func (e *endpoint) stop() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (e *endpoint) start() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("listening on %s again: %v", e.addr, err)
	}
	e.serve(ln)
}

func (e *endpoint) handle(w http.ResponseWriter, r *http.Request) {
	n := e.inflight.Add(1)
	defer e.inflight.Add(-1)
	for m := e.maxInflight.Load(); n > m && !e.maxInflight.CompareAndSwap(m, n); m = e.maxInflight.Load() {
	}
	time.Sleep(e.delay)
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.verifier.Verify(body, r.Header); err != nil || r.Header.Get("Idempotency-Key") != id {
		e.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var rec struct {
		Fields struct {
			Phone string `json:"phone"`
		} `json:"fields"`
	}
	_ = json.Unmarshal(body, &rec)
	e.attempts[id] = append(e.attempts[id], time.Now())
	if e.respond != nil {
		if status, hdr, text := e.respond(id, rec.Fields.Phone, len(e.attempts[id])); status != 0 {
			for k, v := range hdr {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, text)
			return
		}
	}
	d := delivery{id: id, method: r.Method, path: r.URL.Path, at: time.Now()}
	if parts := strings.Split(rec.Fields.Phone, "-"); len(parts) == 3 {
		d.key, _ = strconv.ParseInt(parts[1], 10, 64)
		d.n, _ = strconv.Atoi(parts[2])
	}
	e.accepted = append(e.accepted, d)
	w.WriteHeader(http.StatusNoContent)
	if e.downAfter > 0 && len(e.accepted) == e.downAfter {
		go func() { e.stop(); close(e.down) }() // stop takes e.mu, held here
	}
}

func (e *endpoint) snapshot() ([]delivery, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]delivery(nil), e.accepted...), e.badSig
}

// distinct is the number of distinct events accepted.
func distinct(ds []delivery) int {
	seen := map[string]bool{}
	for _, d := range ds {
		seen[d.id] = true
	}
	return len(seen)
}

// waitDelivered waits until the endpoint accepted want distinct events.
func (e *endpoint) waitDelivered(t *testing.T, want int, timeout time.Duration) []delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ds, _ := e.snapshot()
		if distinct(ds) >= want {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint accepted %d distinct events within %v, want %d", distinct(ds), timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOrder asserts every change reached the endpoint, in per-key order,
// with the right method and URL; once, unless redeliveries are allowed: a
// request the endpoint accepted but whose response was lost (the endpoint
// went down) is sent again with the same Idempotency-Key, right after.
func checkOrder(t *testing.T, ds []delivery, w *workload, skip map[string]bool, redeliveries bool) {
	t.Helper()
	last := map[int64]int{}
	seen := map[string]int{}
	for _, d := range ds {
		seen[d.id]++
		if seen[d.id] > 1 {
			if !redeliveries {
				t.Errorf("event %s accepted %d times", d.id, seen[d.id])
			} else if d.n != last[d.key] {
				t.Errorf("event %s (change %d of key %d) accepted again after change %d", d.id, d.n, d.key, last[d.key])
			}
			continue
		}
		if d.n <= last[d.key] {
			t.Errorf("key %d: change %d accepted after change %d: per-key order broken", d.key, d.n, last[d.key])
		}
		last[d.key] = d.n
		wantMethod := "PATCH"
		if d.n == 1 {
			wantMethod = "POST"
		}
		if d.method != wantMethod || d.path != fmt.Sprintf("/api/contacts/%d", d.key) {
			t.Errorf("change %d of key %d: %s %s", d.n, d.key, d.method, d.path)
		}
	}
	for key, n := range w.PerKey {
		if last[key] != n && !skip[fmt.Sprintf("seq-%d-%d", key, n)] {
			t.Errorf("key %d: last change accepted is %d, want %d", key, last[key], n)
		}
	}
}

type applyRig struct {
	brokers []string
	ep      *endpoint
	w       *workload
	wk      *worker
	dlqName string
}

// startApply runs the sink topology and the HTTP apply topology in one
// worker and produces the workload.
func startApply(t *testing.T, partitions int32, keys, n int, ep *endpoint) *applyRig {
	return startApplyConc(t, partitions, 4, keys, n, ep)
}

func startApplyConc(t *testing.T, partitions int32, maxConcurrency, keys, n int, ep *endpoint) *applyRig {
	return startApplyWith(t, partitions, maxConcurrency, keys, n, ep, false)
}

// startApplyWith is startApply with the sink writing Avro (sink.format
// avro, the embedded registry) and the apply topology reading
// cdcsync-avro when avro is true.
func startApplyWith(t *testing.T, partitions int32, maxConcurrency, keys, n int, ep *endpoint, avro bool) *applyRig {
	t.Helper()
	src := demo.NewSource("erp", "erp", false)
	st, err := embedded.Start(embedded.Options{Topics: []string{src.Topic(), "sync.contacts"}, Partitions: partitions, NoRegistry: !avro})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	t.Setenv("KFAKE_APPLY_SECRET", applySecret)
	sinkDoc, format, regURL := fmt.Sprintf(contactsTopology, "contacts-sync", src.Topic(), "sync.contacts"), "cdcsync-json", ""
	if avro {
		sinkDoc = strings.Replace(sinkDoc, "key: [id]}", "key: [id], format: avro}", 1)
		format, regURL = "cdcsync-avro", st.RegistryURL()
	}
	sink := mustPlan(t, sinkDoc)
	applyPlan := mustPlan(t, fmt.Sprintf(`name: crm-apply
systems: [erp, crm]
source: {topics: [sync.contacts], system: erp, format: `+format+`}
apply:
  kind: http
  batch: {max_events: 50, max_wait: 20ms}
  max_concurrency: %d
  http:
    url: "http://%s/api/{entity}/{key.id}"
    timeout: 2s
    secrets_env: [KFAKE_APPLY_SECRET]
errors:
  retry: {initial: 50ms, max: 1s}
  breaker: {failures: 3, open: 500ms}
`, maxConcurrency, ep.addr))
	w := makeWorkload(src, keys, n, 0.1, 14)
	wk := startWorkerWithRegistry(t, st.Brokers(), regURL, "apply-1", sink, applyPlan)
	produce(t, st.Brokers(), w.Records)
	return &applyRig{brokers: st.Brokers(), ep: ep, w: w, wk: wk, dlqName: string(applyPlan.DLQTopic())}
}

func (r *applyRig) dlq(t *testing.T) []dlq.Entry {
	t.Helper()
	entries, err := dlq.Read(t.Context(), newClient(t, r.brokers), r.dlqName, dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestKfakeApplyHTTPDelivers: every event reaches the endpoint once, in
// per-key order, with a signature the reference library verifies; four
// partitions are applied at most apply.max_concurrency (2) at a time, and
// the lag gauges of the apply topology's partitions end at 0.
func TestKfakeApplyHTTPDelivers(t *testing.T) {
	ep := newEndpoint(t)
	ep.delay = 2 * time.Millisecond
	r := startApplyConc(t, 4, 2, 25, 400, ep)
	ds := r.ep.waitDelivered(t, r.w.Unique, 60*time.Second)
	time.Sleep(500 * time.Millisecond) // a late duplicate would show now
	ds, bad := r.ep.snapshot()
	if bad != 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	checkOrder(t, ds, r.w, nil, false)
	if e := r.dlq(t); len(e) != 0 {
		t.Errorf("%d DLQ records, want none: first %s %s", len(e), e[0].Stage, e[0].Message)
	}
	if s := r.wk.w.Stats("crm-apply"); s.Out != int64(r.w.Unique) {
		t.Errorf("stats: %d applied, want %d", s.Out, r.w.Unique)
	}
	if m := ep.maxInflight.Load(); m != 2 {
		t.Errorf("at most %d requests in flight at once, want max_concurrency 2", m)
	}
	// Lag: one series per claimed partition, 0 once everything is done.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lags := applyLag(t, r.wk)
		total := 0.0
		for _, v := range lags {
			total += v
		}
		if len(lags) == 4 && total == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crm-apply lag %v, want 4 partitions at 0", lags)
		}
	}
}

// applyLag reads cdcsync_lag_records of crm-apply by partition.
func applyLag(t *testing.T, wk *worker) map[string]float64 {
	t.Helper()
	mfs, err := wk.w.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "cdcsync_lag_records" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var top, part string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "topology":
					top = l.GetValue()
				case "partition":
					part = l.GetValue()
				}
			}
			if top == "crm-apply" {
				out[part] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestKfakeApplyHTTPAvro: the same loop with Avro sync records
// (sink.format avro, source.format cdcsync-avro, the embedded registry):
// every event is delivered in per-key order, its body the JSON event.
func TestKfakeApplyHTTPAvro(t *testing.T) {
	ep := newEndpoint(t)
	r := startApplyWith(t, 4, 4, 20, 300, ep, true)
	ds := ep.waitDelivered(t, r.w.Unique, 60*time.Second)
	checkOrder(t, ds, r.w, nil, false)
	if _, bad := ep.snapshot(); bad != 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	if e := r.dlq(t); len(e) != 0 {
		t.Errorf("%d DLQ records, want none: %s", len(e), e[0].Message)
	}
}

// TestKfakeApplyHTTPEndpointDown: the endpoint is down for 10 s mid-stream.
// Nothing goes to the DLQ, nothing is lost, order holds, and the breaker of
// dependency "apply" opens and closes again.
//
// The endpoint goes down by itself once it has accepted 50 requests.
// Regression: the test stopped it after a 50 ms poll saw 50 deliveries,
// but that poll already saw 450–518 of the 538 events, and 50 ms later
// all of them; in a CI run the stop came after the last one, the breaker
// never saw a failure, and the test failed.
func TestKfakeApplyHTTPEndpointDown(t *testing.T) {
	ep := newEndpoint(t)
	ep.downAfter, ep.down = 50, make(chan struct{})
	r := startApply(t, 4, 25, 600, ep)
	select {
	case <-ep.down:
	case <-time.After(30 * time.Second):
		t.Fatal("the endpoint did not accept 50 requests within 30 s")
	}
	time.Sleep(10 * time.Second)
	if c := readBreaker(t, r.wk, "crm-apply", "apply"); c.open == 0 || c.state == 0 {
		t.Errorf("endpoint down 10 s: breaker %+v, want it open", c)
	}
	ep.start()
	ds := ep.waitDelivered(t, r.w.Unique, 60*time.Second)
	checkOrder(t, ds, r.w, nil, true)
	if e := r.dlq(t); len(e) != 0 {
		t.Errorf("%d DLQ records after the outage, want none: %s", len(e), e[0].Message)
	}
	deadline := time.Now().Add(5 * time.Second)
	c := readBreaker(t, r.wk, "crm-apply", "apply")
	for c.state != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		c = readBreaker(t, r.wk, "crm-apply", "apply")
	}
	checkBreakerCycled(t, "apply", c)
	if c.state != 0 {
		t.Errorf("breaker state %v after the endpoint came back, want 0 (closed)", c.state)
	}
}

// TestKfakeApplyHTTP400: a 400 sends that event alone to the DLQ (stage
// apply, with the status and the start of the body); its key's later
// changes and every other event are delivered.
func TestKfakeApplyHTTP400(t *testing.T) {
	ep := newEndpoint(t)
	const refused = "seq-3-2"
	ep.respond = func(_, phone string, _ int) (int, http.Header, string) {
		if phone == refused {
			return http.StatusBadRequest, nil, `{"error":"phone rejected"}` + strings.Repeat(".", 2000)
		}
		return 0, nil, ""
	}
	r := startApply(t, 4, 10, 200, ep)
	if r.w.PerKey[3] < 3 {
		t.Fatalf("workload: key 3 has %d changes, want at least 3", r.w.PerKey[3])
	}
	ds := ep.waitDelivered(t, r.w.Unique-1, 60*time.Second)
	checkOrder(t, ds, r.w, map[string]bool{refused: true}, false)
	var entries []dlq.Entry
	for deadline := time.Now().Add(10 * time.Second); len(entries) == 0 && time.Now().Before(deadline); {
		entries = r.dlq(t)
	}
	if len(entries) != 1 {
		t.Fatalf("%d DLQ records, want exactly the refused one", len(entries))
	}
	e := entries[0]
	hdr := map[string]string{}
	for _, h := range e.Headers {
		hdr[string(h.Key)] = string(h.Value)
	}
	var val struct {
		ID     string
		Fields struct{ Phone string }
	}
	_ = json.Unmarshal(e.Value, &val)
	if e.Stage != "apply" || val.Fields.Phone != refused || e.EventID != val.ID ||
		hdr[httpapply.HeaderStatus] != "400" || len(hdr[httpapply.HeaderBody]) != httpapply.BodyLimit ||
		!strings.HasPrefix(hdr[httpapply.HeaderBody], `{"error":"phone rejected"}`) || !strings.Contains(e.Message, "HTTP 400") {
		t.Errorf("DLQ record: stage %s event %s phone %s message %q headers %v", e.Stage, e.EventID, val.Fields.Phone, e.Message, hdr)
	}
}

// TestKfakeApplyHTTPRetryAfter: a 429 with Retry-After: 2 holds that
// event's partition for at least 2 s, then it is delivered; nothing goes to
// the DLQ.
func TestKfakeApplyHTTPRetryAfter(t *testing.T) {
	ep := newEndpoint(t)
	const limited = "seq-2-2"
	ep.respond = func(_, phone string, attempt int) (int, http.Header, string) {
		if phone == limited && attempt == 1 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"2"}}, "slow down"
		}
		return 0, nil, ""
	}
	r := startApply(t, 2, 10, 100, ep)
	ds := ep.waitDelivered(t, r.w.Unique, 60*time.Second)
	checkOrder(t, ds, r.w, nil, false)
	ep.mu.Lock()
	var times []time.Time
	for _, d := range ds {
		if ts := ep.attempts[d.id]; len(ts) == 2 {
			times = ts
		}
	}
	ep.mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("no event was attempted exactly twice")
	}
	gap := times[1].Sub(times[0])
	t.Logf("429 Retry-After: 2 -> next attempt after %v", gap)
	if gap < 2*time.Second {
		t.Errorf("retried after %v, before the 2 s Retry-After", gap)
	}
	if e := r.dlq(t); len(e) != 0 {
		t.Errorf("%d DLQ records, want none", len(e))
	}
}

// TestKfakeApplyBadSyncRecord: bytes on a sync topic that are not a sync
// record go to the DLQ, stage decode; the partition keeps flowing.
func TestKfakeApplyBadSyncRecord(t *testing.T) {
	ep := newEndpoint(t)
	r := startApply(t, 1, 5, 30, ep)
	ep.waitDelivered(t, r.w.Unique, 60*time.Second)
	produce(t, r.brokers, []demo.Record{{Topic: "sync.contacts", Key: []byte(`{"id":1}`), Value: []byte("\x00garbage")}})
	var entries []dlq.Entry
	for deadline := time.Now().Add(15 * time.Second); len(entries) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		entries = r.dlq(t)
	}
	if len(entries) != 1 || entries[0].Stage != "decode" || string(entries[0].Value) != "\x00garbage" ||
		!strings.Contains(entries[0].Message, "not a cdcsync sync record") {
		t.Fatalf("DLQ: %+v", entries)
	}
}

// TestKfakeApplyToleranceNone: with errors.tolerance none, a record that
// would go to the DLQ stops the apply topology instead, naming it; nothing
// is written to the DLQ and its offset is not committed.
func TestKfakeApplyToleranceNone(t *testing.T) {
	ep := newEndpoint(t)
	st := cluster(t, 1, "sync.contacts")
	t.Setenv("KFAKE_APPLY_SECRET", applySecret)
	plan := mustPlan(t, fmt.Sprintf(`name: crm-apply
systems: [erp, crm]
source: {topics: [sync.contacts], system: erp, format: cdcsync-json}
apply:
  kind: http
  http: {url: "http://%s/api/{entity}/{key.id}", secrets_env: [KFAKE_APPLY_SECRET]}
errors: {tolerance: none}
`, ep.addr))
	wk := startWorker(t, st.Brokers(), "apply-none", plan)
	produce(t, st.Brokers(), []demo.Record{{Topic: "sync.contacts", Key: []byte(`{"id":1}`), Value: []byte("not a sync record")}})
	err, stopped := wk.wait(30 * time.Second)
	if !stopped || err == nil || !strings.Contains(err.Error(), "errors.tolerance none") || !strings.Contains(err.Error(), "sync.contacts/0@0") {
		t.Fatalf("worker: stopped %v, %v; want it stopped by errors.tolerance none at sync.contacts/0@0", stopped, err)
	}
	if e := readAll(t, st.Brokers(), string(plan.DLQTopic())); len(e) != 0 {
		t.Errorf("%d DLQ records, want none", len(e))
	}
}

// TestKfakeApplyCommitsOnlyApplied: offsets are committed only for events
// the target took. An event the endpoint keeps refusing as transient (503)
// holds its partition; after a soft shutdown the group's committed offset
// of that partition is exactly that event's offset. A new worker resumes
// there, and once the endpoint accepts, the event and the ones after it
// arrive, in per-key order.
func TestKfakeApplyCommitsOnlyApplied(t *testing.T) {
	ep := newEndpoint(t)
	const held = "seq-2-3"
	var accept atomic.Bool
	ep.respond = func(_, phone string, _ int) (int, http.Header, string) {
		if phone == held && !accept.Load() {
			return http.StatusServiceUnavailable, nil, "maintenance"
		}
		return 0, nil, ""
	}
	r := startApply(t, 2, 10, 200, ep)
	ep.waitDelivered(t, r.w.Unique/2, 60*time.Second)
	// Find the held event's record and wait until everything else that can be
	// applied was.
	var pos struct {
		partition int32
		offset    int64
	}
	found := false
	for _, m := range readAll(t, r.brokers, "sync.contacts") {
		if string(decodeSink(t, m).Fields["phone"]) == `"`+held+`"` {
			pos.partition, pos.offset, found = m.Partition, m.Offset, true
		}
	}
	if !found {
		t.Fatalf("no sync record with phone %s", held)
	}
	time.Sleep(time.Second) // the held partition keeps retrying meanwhile
	if err := r.wk.stop(); err != nil {
		t.Fatalf("soft shutdown: %v", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, r.brokers))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := admin.ListConsumerGroupOffsets("cdcsync.crm-apply", map[string][]int32{"sync.contacts": {pos.partition}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetBlock("sync.contacts", pos.partition).Offset; got != pos.offset {
		t.Fatalf("committed offset of partition %d is %d; the held event is at %d, and nothing at or after it was applied", pos.partition, got, pos.offset)
	}
	ds, _ := ep.snapshot()
	for _, d := range ds {
		if d.key == 2 && d.n >= 3 {
			t.Fatalf("change %d of key 2 accepted while change 3 was held", d.n)
		}
	}

	accept.Store(true)
	applyPlan := mustPlan(t, fmt.Sprintf(`name: crm-apply
systems: [erp, crm]
source: {topics: [sync.contacts], system: erp, format: cdcsync-json}
apply:
  kind: http
  http: {url: "http://%s/api/{entity}/{key.id}", secrets_env: [KFAKE_APPLY_SECRET]}
`, ep.addr))
	startWorker(t, r.brokers, "apply-2", applyPlan)
	ds = ep.waitDelivered(t, r.w.Unique, 60*time.Second)
	checkOrder(t, ds, r.w, nil, true)
}
