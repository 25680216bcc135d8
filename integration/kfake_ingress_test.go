package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/internal/webhookload"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/topology"
)

const stripeIngressTopology = `name: %s
systems: [stripe, erp]
source:
  topics: [%s]
  system: stripe
  format: webhook
  webhook:
    path: /webhooks/stripe
    scheme: stripe
    secrets: [env:CDCSYNC_IT_STRIPE_OLD, env:CDCSYNC_IT_STRIPE_NEW]
    partitions: 4
    map:
      id: id
      type: type
      entity: data.object.object
      key: [data.object.id]
      after: data.object
      before: data.previous_attributes
      occurred_at: created
      ops: {'*.created': c, '*.updated': u, '*.deleted': d}
sink: {topic: %s, key: [id]}
`

// startIngressWorker is startWorker with the webhook ingress on a
// loopback port.
func startIngressWorker(t *testing.T, brokers []string, name string, doc string) (*worker, string) {
	t.Helper()
	plan := mustPlan(t, doc)
	cfg := processor.DefaultConfig()
	cfg.Brokers = brokers
	cfg.ClientID = name
	cfg.HTTPAddr = ""
	cfg.IngressAddr = "127.0.0.1:0"
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.Heartbeat = 500 * time.Millisecond
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)).With(zap.String("worker", name))
	w, err := processor.New(cfg, []*topology.Plan{plan}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { _ = wk.stop() })
	deadline := time.Now().Add(10 * time.Second)
	for w.IngressAddr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("ingress did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return wk, "http://" + w.IngressAddr() + "/webhooks/stripe"
}

// 10k signed Stripe-style deliveries from 16 concurrent senders, 10% sent
// twice, some of a customer's sent out of order, half signed with the old
// secret and half with the new (a rotation in progress); the broker is
// unreachable for 8 s in the middle. The outage answered 503 and the
// senders retried; every acknowledged delivery reaches the sink, in the
// order the ingress acknowledged it per key; redeliveries are counted as
// duplicates. Under exactly_once every unique event is in the sink once.
// Under at_least_once an output whose acknowledgement the outage cut is
// written again (the same event ID): the guarantee is at least once, so
// that run checks that every event is there and the first copies' order.
func TestKfakeIngressStripe(t *testing.T) {
	for _, g := range []string{"exactly_once", "at_least_once"} {
		t.Run(g, func(t *testing.T) { ingressStripeRun(t, g) })
	}
}

func ingressStripeRun(t *testing.T, guarantee string) {
	t.Setenv("CDCSYNC_IT_STRIPE_OLD", "whsec_it_old_secret")
	t.Setenv("CDCSYNC_IT_STRIPE_NEW", "whsec_it_new_secret")
	st := cluster(t, 4)
	brokers := st.Brokers()
	doc := fmt.Sprintf(stripeIngressTopology, "stripe-it", "stripe.raw", "sync.stripe") + "guarantee: " + guarantee + "\n"
	plan := mustPlan(t, doc)
	wk, url := startIngressWorker(t, brokers, "w1", doc)

	var down atomic.Bool
	var refused atomic.Int64
	st.Kafka.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		st.Kafka.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return nil, errors.New("broker down"), true
	})

	n := 10_000
	if testing.Short() {
		n = 2_000 // the race-detector run
	}
	wl := webhookload.NewWorkload(n, 500, 16, 0.10, 0.05, 7)
	stats := &webhookload.Stats{}
	s := &webhookload.Sender{URL: url, Client: &http.Client{Timeout: 30 * time.Second}, Stats: stats,
		Secret: func(i int) string {
			if i%2 == 0 {
				return "whsec_it_old_secret"
			}
			return "whsec_it_new_secret"
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- s.Run(ctx, wl) }()
	total := int64(wl.Unique + wl.Dups)
	for stats.Acked.Load() < total/2 {
		time.Sleep(20 * time.Millisecond)
	}
	down.Store(true)
	t.Logf("broker down after %d acknowledged deliveries", stats.Acked.Load())
	time.Sleep(8 * time.Second)
	down.Store(false)
	if err := <-sent; err != nil {
		t.Fatalf("senders: %v", err)
	}
	if stats.Acked.Load() != total {
		t.Fatalf("%d acknowledged, want %d", stats.Acked.Load(), total)
	}
	if stats.Status503.Load() == 0 || refused.Load() == 0 {
		t.Errorf("the outage gave %d 503s (%d refused requests): the test did not test it", stats.Status503.Load(), refused.Load())
	}
	if stats.Other.Load() != 0 {
		t.Errorf("%d answers other than 2xx and 503 to signed deliveries", stats.Other.Load())
	}
	waitProcessed(t, brokers, 3*time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}

	// The raw topic: every acknowledged delivery, in acknowledgement
	// order per key (one partition per key).
	raw := readAll(t, brokers, "stripe.raw")
	rawOrder := map[string][]string{} // customer -> first-seen delivery IDs in raw order
	seenRaw := map[string]bool{}
	for _, m := range raw {
		id, cus := gjson.GetBytes(m.Value, "id").Str, gjson.GetBytes(m.Value, "data.object.id").Str
		if seenRaw[id] {
			continue
		}
		seenRaw[id] = true
		rawOrder[cus] = append(rawOrder[cus], id)
	}
	for _, id := range stats.AckedIDs() {
		if !seenRaw[id] {
			t.Fatalf("delivery %s was acknowledged but is not in the raw topic", id)
		}
	}
	if len(seenRaw) != wl.Unique {
		t.Fatalf("raw topic holds %d distinct deliveries, want %d", len(seenRaw), wl.Unique)
	}

	// The sink: each unique event once, per key in raw-topic order.
	byID := map[string]string{} // event ID hex -> delivery ID
	for id := range seenRaw {
		eid := cdc.WebhookID("stripe", id)
		byID[hex.EncodeToString(eid[:])] = id
	}
	eos := guarantee == "exactly_once"
	var sink []*sarama.ConsumerMessage
	if eos {
		sink = readCommitted(t, brokers, "sync.stripe")
	} else {
		sink = readAll(t, brokers, "sync.stripe")
	}
	sinkOrder := map[string][]string{}
	count := map[string]int{}
	for _, m := range sink {
		r := decodeSink(t, m)
		id, ok := byID[r.ID]
		if !ok {
			t.Fatalf("sink record %s is no delivery", r.ID)
		}
		count[id]++
		var cus string
		if err := json.Unmarshal(r.Key["id"], &cus); err != nil {
			t.Fatalf("sink key %s: %v", m.Key, err)
		}
		if count[id] == 1 {
			sinkOrder[cus] = append(sinkOrder[cus], id)
		}
	}
	again := 0
	for id, n := range count {
		again += n - 1
		if n != 1 && eos {
			t.Errorf("delivery %s is %d times in the sink", id, n)
		}
	}
	if len(count) != wl.Unique {
		t.Errorf("sink holds %d distinct events, want %d", len(count), wl.Unique)
	}
	for cus, want := range rawOrder {
		got := sinkOrder[cus]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("customer %s: sink order %v, raw order %v", cus, got, want)
			break
		}
	}
	st2 := wk.w.Stats(plan.Name())
	// Every raw redelivery is dropped and counted; the outage's session
	// restart re-consumes some records too, which count again.
	if st2.Duplicates < int64(len(raw)-wl.Unique) || len(raw)-wl.Unique < wl.Dups {
		t.Errorf("duplicates counted %d; raw records %d for %d unique (%d sent twice by the workload)", st2.Duplicates, len(raw), wl.Unique, wl.Dups)
	}
	if st2.DLQ != 0 {
		t.Errorf("%d records in the DLQ", st2.DLQ)
	}
	lat := stats.Latencies()
	t.Logf("%s: acknowledged %d (unique %d, sent twice %d); 503s %d, retries %d, conn errors %d; raw %d; duplicates dropped %d; sink copies beyond the first %d; p50 %v p99 %v",
		guarantee, stats.Acked.Load(), wl.Unique, wl.Dups, stats.Status503.Load(), stats.Retries.Load(), stats.ConnErrs.Load(), len(raw), st2.Duplicates, again,
		webhookload.Quantile(lat, 0.5), webhookload.Quantile(lat, 0.99))
}

// The worker process is SIGKILLed while senders deliver: nothing it had
// acknowledged is lost. The senders' retries (connection refused while
// no worker listens) go to a second worker process on the same address.
func TestKfakeIngressSIGKILL(t *testing.T) {
	st := cluster(t, 4)
	brokers := st.Brokers()
	doc := fmt.Sprintf(stripeIngressTopology, "stripe-kill", "stripe.kill.raw", "sync.stripe.kill")
	plan := mustPlan(t, doc)
	dir := writeTopology(t, doc)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := []string{"CDCSYNC_IT_STRIPE_OLD=whsec_kill_old", "CDCSYNC_IT_STRIPE_NEW=whsec_kill_new", "CDCSYNC_INGRESS_ADDR=" + addr}
	p1 := startProcess(t, "k1", brokers, dir, env...)

	wl := webhookload.NewWorkload(3000, 200, 8, 0.05, 0, 11)
	stats := &webhookload.Stats{}
	s := &webhookload.Sender{URL: "http://" + addr + "/webhooks/stripe", Client: &http.Client{Timeout: 30 * time.Second}, Stats: stats,
		Secret: func(int) string { return "whsec_kill_new" }}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- s.Run(ctx, wl) }()
	total := int64(wl.Unique + wl.Dups)
	for stats.Acked.Load() < total/3 {
		select {
		case err := <-sent:
			t.Fatalf("senders stopped early: %v (acknowledged %d)", err, stats.Acked.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
	p1.kill()
	acked := stats.Acked.Load()
	t.Logf("SIGKILL after %d acknowledged deliveries", acked)
	time.Sleep(time.Second)
	p2 := startProcess(t, "k2", brokers, dir, env...)
	if err := <-sent; err != nil {
		t.Fatalf("senders: %v", err)
	}
	if stats.ConnErrs.Load() == 0 {
		t.Error("no sender saw the worker gone: the kill was not mid-run")
	}
	waitProcessed(t, brokers, 2*time.Minute, plan)
	if err := p2.terminate(time.Minute); err != nil {
		t.Fatalf("second worker: %v", err)
	}
	sinkIDs := map[string]int{}
	for _, m := range readAll(t, brokers, "sync.stripe.kill") {
		sinkIDs[decodeSink(t, m).ID]++
	}
	lost := 0
	for _, id := range stats.AckedIDs() {
		eid := cdc.WebhookID("stripe", id)
		if sinkIDs[hex.EncodeToString(eid[:])] == 0 {
			lost++
		}
	}
	if lost != 0 {
		t.Errorf("%d acknowledged deliveries are not in the sink", lost)
	}
	if len(sinkIDs) != wl.Unique {
		t.Errorf("sink holds %d distinct events, want %d", len(sinkIDs), wl.Unique)
	}
	again := 0
	for _, n := range sinkIDs {
		again += n - 1
	}
	t.Logf("acknowledged %d; connection errors %d; sink %d distinct, %d written again after the kill", stats.Acked.Load(), stats.ConnErrs.Load(), len(sinkIDs), again)
}

// Authority and the DLQ work on webhook changes as on any source: the
// changed fields of an update are the keys of previous_attributes, so an
// update of a field stripe does not own is dropped, one of a field it owns
// passes with that field only; a raw record that is not a delivery goes to
// the DLQ (stage decode).
func TestKfakeIngressAuthorityDLQ(t *testing.T) {
	t.Setenv("CDCSYNC_IT_STRIPE_OLD", "whsec_auth_old")
	t.Setenv("CDCSYNC_IT_STRIPE_NEW", "whsec_auth_new")
	st := cluster(t, 4)
	brokers := st.Brokers()
	doc := strings.Replace(fmt.Sprintf(stripeIngressTopology, "stripe-auth", "stripe.auth.raw", "sync.stripe.auth"),
		"sink:", "authority:\n  owners: {description: erp}\nsink:", 1)
	plan := mustPlan(t, doc)
	wk, url := startIngressWorker(t, brokers, "w1", doc)
	now := time.Now()
	emailUpdate := []byte(`{"id":"evt_email","object":"event","created":1,"type":"customer.updated","data":{"object":{"id":"cus_A","object":"customer","email":"new@example.com","description":"seq-cus_A-2"},"previous_attributes":{"email":"old@example.com"}}}`)
	deleted := []byte(`{"id":"evt_del","object":"event","created":1,"type":"customer.deleted","data":{"object":{"id":"cus_A","object":"customer","deleted":true}}}`)
	ds := []webhookload.Delivery{
		{ID: "evt_c", Body: webhookload.StripeEvent("evt_c", "cus_A", 1, now)},
		{ID: "evt_desc", Body: webhookload.StripeEvent("evt_desc", "cus_A", 2, now)},
		{ID: "evt_email", Body: emailUpdate},
		{ID: "evt_del", Body: deleted},
	}
	stats := &webhookload.Stats{}
	s := &webhookload.Sender{URL: url, Client: http.DefaultClient, Stats: stats, Secret: func(int) string { return "whsec_auth_new" }}
	for _, d := range ds {
		if err := s.Send(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "stripe.auth.raw", Key: sarama.StringEncoder("x"), Value: sarama.StringEncoder(`{"not":"a delivery"}`)}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range readAll(t, brokers, "sync.stripe.auth") {
		r := decodeSink(t, m)
		names := make([]string, 0, len(r.Fields))
		for f := range r.Fields {
			names = append(names, f)
		}
		sort.Strings(names)
		got = append(got, r.Type+" "+strings.Join(names, ","))
	}
	want := []string{"customer.created balance,email,metadata,object", "customer.updated email", "customer.deleted "}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sink:\n got %q\nwant %q", got, want)
	}
	s2 := wk.w.Stats(plan.Name())
	if s2.AuthorityEvents != 1 || s2.DLQ != 1 {
		t.Errorf("authority-dropped events %d (want 1: the description update), DLQ %d (want 1: the junk record)", s2.AuthorityEvents, s2.DLQ)
	}
	dlqMsgs := readAll(t, brokers, string(plan.DLQTopic()))
	if len(dlqMsgs) != 1 {
		t.Fatalf("DLQ holds %d records", len(dlqMsgs))
	}
}

const standardIngressTopology = `name: sw
systems: [billing]
source:
  topics: [sw.raw]
  system: billing
  format: webhook
  webhook:
    path: /hooks/billing
    scheme: standard-webhooks
    secrets: [env:CDCSYNC_IT_SW_SECRET]
    map:
      id: header:webhook-id
      type: type
      entity: data.object
      key: [data.id]
      after: data
      ops: {'*.created': c, '*.updated': u, '*.deleted': d}
sink: {topic: sync.sw, key: [id]}
`

// Standard Webhooks, signed by the reference library: the message ID is
// in the webhook-id header, read by the map as header:webhook-id through
// the raw record's headers. A redelivery (same ID, new timestamp and
// signature) is dropped by the ledger.
func TestKfakeIngressStandardWebhooks(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks test secret 32"))
	t.Setenv("CDCSYNC_IT_SW_SECRET", secret)
	st := cluster(t, 4)
	brokers := st.Brokers()
	plan := mustPlan(t, standardIngressTopology)
	wk, url := startIngressWorker(t, brokers, "w1", standardIngressTopology)
	url = strings.Replace(url, "/webhooks/stripe", "/hooks/billing", 1)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	send := func(msgID string, body []byte, at time.Time) int {
		sig, err := wh.Sign(msgID, at, body)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("webhook-id", msgID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	b1 := []byte(`{"type":"invoice.created","timestamp":"2026-11-30T05:00:00Z","data":{"object":"invoice","id":"in_1","amount":100}}`)
	b2 := []byte(`{"type":"invoice.updated","timestamp":"2026-11-30T05:01:00Z","data":{"object":"invoice","id":"in_1","amount":120}}`)
	now := time.Now()
	for _, c := range []struct {
		id   string
		body []byte
		at   time.Time
	}{{"msg_1", b1, now}, {"msg_2", b2, now}, {"msg_1", b1, now.Add(time.Second)}} {
		if code := send(c.id, c.body, c.at); code != 200 {
			t.Fatalf("%s: status %d", c.id, code)
		}
	}
	if code := send("msg_3", b2, now.Add(-time.Hour)); code != 400 {
		t.Errorf("stale: status %d, want 400", code)
	}
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range readAll(t, brokers, "sync.sw") {
		r := decodeSink(t, m)
		got = append(got, r.Type+" "+string(r.Fields["amount"]))
	}
	if fmt.Sprint(got) != "[invoice.created 100 invoice.updated 120]" {
		t.Errorf("sink %q", got)
	}
	if s := wk.w.Stats(plan.Name()); s.Duplicates != 1 {
		t.Errorf("duplicates %d, want 1 (msg_1 redelivered)", s.Duplicates)
	}
}
