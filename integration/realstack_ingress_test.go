//go:build realstack

package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cdcsync/cdcsync/internal/webhookload"
	"github.com/cdcsync/cdcsync/processor/cdc"
)

// roundRobin spreads requests over several ingress addresses, as a load
// balancer in front of the workers does.
type roundRobin struct {
	mu    sync.Mutex
	addrs []string
	next  int
	base  http.RoundTripper
}

func (r *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	a := r.addrs[r.next%len(r.addrs)]
	r.next++
	r.mu.Unlock()
	req = req.Clone(req.Context())
	req.URL.Host = a
	req.Host = a
	return r.base.RoundTrip(req)
}

// Two worker processes on the real Kafka (4.x, KRaft) both serve the
// ingress behind a round-robin balancer: 2,000 signed deliveries from 8
// senders, 10% sent twice, each acknowledged only once the real broker
// stored it with acks=all; every unique event is once in the sink.
func TestRealStackIngress(t *testing.T) {
	s := loadStack(t)
	id := runID()
	name := "wh-" + id
	raw, sinkTopic := "wh."+id+".raw", "wh."+id+".sync"
	dir := writeTopology(t, fmt.Sprintf(stripeIngressTopology, name, raw, sinkTopic))
	plan := mustPlan(t, fmt.Sprintf(stripeIngressTopology, name, raw, sinkTopic))
	var addrs []string
	var ps []*proc
	for i := 0; i < 2; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		addrs = append(addrs, addr)
		ps = append(ps, startProcess(t, fmt.Sprintf("wh%d-%s", i, id), s.brokers, dir,
			"CDCSYNC_IT_STRIPE_OLD=whsec_rs_old", "CDCSYNC_IT_STRIPE_NEW=whsec_rs_new", "CDCSYNC_INGRESS_ADDR="+addr,
			"CDCSYNC_COMMIT_INTERVAL=200ms"))
	}
	for _, p := range ps {
		if err := p.waitReady(90 * time.Second); err != nil {
			t.Fatalf("worker not ready: %v\n%s", err, tail(p.log.String(), 40))
		}
	}
	wl := webhookload.NewWorkload(2000, 100, 8, 0.10, 0.05, 3)
	stats := &webhookload.Stats{}
	lb := &roundRobin{addrs: addrs, base: http.DefaultTransport}
	sender := &webhookload.Sender{URL: "http://" + addrs[0] + "/webhooks/stripe", Client: &http.Client{Transport: lb, Timeout: 30 * time.Second},
		Stats: stats, Secret: func(i int) string { return []string{"whsec_rs_old", "whsec_rs_new"}[i%2] }}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := sender.Run(ctx, wl); err != nil {
		t.Fatalf("senders: %v", err)
	}
	waitProcessed(t, s.brokers, 2*time.Minute, plan)
	accepted := sumMetric(t, ps, "cdcsync_ingress_accepted_total")
	for _, p := range ps {
		if err := p.terminate(time.Minute); err != nil {
			t.Errorf("worker exit: %v", err)
		}
	}
	if int(accepted) != wl.Unique+wl.Dups {
		t.Errorf("accepted %v, sent %d", accepted, wl.Unique+wl.Dups)
	}
	_, all := sinkState(t, s, sinkTopic)
	count := map[string]int{}
	for _, m := range all {
		count[decodeSink(t, m).ID]++
	}
	for _, d := range stats.AckedIDs() {
		eid := cdc.WebhookID("stripe", d)
		if count[hex.EncodeToString(eid[:])] != 1 {
			t.Errorf("delivery %s is %d times in the sink", d, count[hex.EncodeToString(eid[:])])
			break
		}
	}
	if len(count) != wl.Unique {
		t.Errorf("sink holds %d distinct events, want %d", len(count), wl.Unique)
	}
	lat := stats.Latencies()
	t.Logf("acknowledged %d over 2 workers; p50 %v p99 %v; sink %d records", stats.Acked.Load(),
		webhookload.Quantile(lat, 0.5), webhookload.Quantile(lat, 0.99), len(all))
}
