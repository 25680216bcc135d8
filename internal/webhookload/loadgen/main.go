// Command loadgen measures the webhook ingress: a cdcsync worker with one
// Stripe webhook topology (ingress and pipeline both running) on
// loopback, in front of a broker in its own process, fed by concurrent
// senders of signed deliveries. It prints the acknowledged deliveries per
// second and the latency quantiles from request to 2xx.
//
//	go build -o /tmp/cdcsync ./cmd/cdcsync
//	/tmp/cdcsync broker > /tmp/broker.out &
//	go run ./internal/webhookload/loadgen -brokers "$(sed -n 's/^brokers=//p' /tmp/broker.out)"
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/internal/webhookload"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/topology"
)

const topo = `name: %s
systems: [stripe]
source:
  topics: [%s.raw]
  system: stripe
  format: webhook
  webhook:
    path: /webhooks/stripe
    scheme: stripe
    secrets: [env:LOADGEN_STRIPE_SECRET]
    partitions: 8
    map:
      id: id
      type: type
      entity: data.object.object
      key: [data.object.id]
      after: data.object
      before: data.previous_attributes
      ops: {'*.created': c, '*.updated': u, '*.deleted': d}
sink: {topic: %s.sync, key: [id]}
`

var profile string

func main() {
	brokers := flag.String("brokers", "", "broker HOST:PORT (cdcsync broker in its own process)")
	n := flag.Int("n", 60000, "unique deliveries")
	senders := flag.Int("senders", 64, "concurrent senders (connections)")
	keys := flag.Int("keys", 5000, "customers")
	warm := flag.Int("warmup", 3000, "deliveries sent first and not measured")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the measured run")
	flag.Parse()
	profile = *prof
	if err := run(*brokers, *n, *senders, *keys, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(brokers string, n, senders, keys, warm int) error {
	if brokers == "" {
		return fmt.Errorf("-brokers is required")
	}
	const secret = "whsec_loadgen_secret"
	os.Setenv("LOADGEN_STRIPE_SECRET", secret)
	name := fmt.Sprintf("loadgen-%d", time.Now().UnixNano())
	plan, err := topology.Parse("loadgen.yaml", fmt.Appendf(nil, topo, name, name, name))
	if err != nil {
		return err
	}
	cfg := processor.DefaultConfig()
	cfg.Brokers = strings.Split(brokers, ",")
	cfg.HTTPAddr = ""
	cfg.IngressAddr = "127.0.0.1:0"
	log, _ := zap.NewProduction(zap.IncreaseLevel(zap.ErrorLevel))
	w, err := processor.New(cfg, []*topology.Plan{plan}, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for w.IngressAddr() == "" {
		time.Sleep(10 * time.Millisecond)
	}
	url := "http://" + w.IngressAddr() + "/webhooks/stripe"
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}
	send := func(wl *webhookload.Workload) (*webhookload.Stats, time.Duration, error) {
		st := &webhookload.Stats{}
		s := &webhookload.Sender{URL: url, Client: client, Stats: st, Secret: func(int) string { return secret }}
		start := time.Now()
		err := s.Run(ctx, wl)
		return st, time.Since(start), err
	}
	// Warm-up: connects, creates the raw topic, fills the pools.
	if _, _, err := send(webhookload.NewWorkload(warm, keys, senders, 0, 0, 1)); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	st, took, err := send(webhookload.NewWorkload(n, keys, senders, 0.10, 0.05, 2))
	if err != nil {
		return err
	}
	lat := st.Latencies()
	fmt.Printf("cores %d, senders %d, deliveries %d acknowledged in %v: %.0f verified deliveries/s; latency p50 %v p90 %v p99 %v max %v; 503s %d, other errors %d\n",
		runtime.NumCPU(), senders, st.Acked.Load(), took.Round(time.Millisecond), float64(st.Acked.Load())/took.Seconds(),
		webhookload.Quantile(lat, 0.5).Round(10*time.Microsecond), webhookload.Quantile(lat, 0.9).Round(10*time.Microsecond),
		webhookload.Quantile(lat, 0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond),
		st.Status503.Load(), st.Other.Load()+st.ConnErrs.Load())
	return nil
}
