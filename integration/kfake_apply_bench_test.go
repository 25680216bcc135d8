package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/topology"
)

// BenchmarkKfakeApplyHTTP measures HTTP apply end to end: an apply topology
// (apply.kind http, 8 partitions, max_concurrency 8) reads sync records
// from kfake and delivers each, signed, to a local endpoint that verifies
// every signature with the Standard Webhooks reference library and answers
// 204. Each iteration is a new consumer group reading the whole topic;
// events/s is events delivered over the time from the worker's start to
// the last delivery.
//
//	go test -run '^$' -bench BenchmarkKfakeApplyHTTP -benchtime 3x ./integration/
func BenchmarkKfakeApplyHTTP(b *testing.B) {
	const events, partitions = 20_000, 8
	st, err := embeddedStack(partitions, "sync.bench.contacts")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	recs := make([]demo.Record, events)
	at := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	for i := range recs {
		id := i%5000 + 1
		var eid cdc.ID
		copy(eid[:], fmt.Sprintf("%016d", i)) // 16 bytes: the ID is their hex
		v := fmt.Sprintf(`{"id":"%s","type":"contacts.updated","op":"u","entity":"contacts","source_system":"erp","key":{"id":%d},`+
			`"fields":{"phone":"+49 30 %07d","balance":"%d.50"},"before":{"phone":"+49 30 1234567","balance":"10.50"},`+
			`"position":{"lsn":%d,"txId":%d},"occurred_at":"%s"}`,
			eid, id, i, i, 24000000+i*88, 700+i, at.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
		recs[i] = demo.Record{Topic: "sync.bench.contacts", Key: []byte(fmt.Sprintf(`{"id":%d}`, id)), Value: []byte(v)}
	}
	if err := demo.Produce(st.Brokers(), recs); err != nil {
		b.Fatal(err)
	}

	wh, _ := standardwebhooks.NewWebhook(applySecret)
	var delivered, bad atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	b.Setenv("KFAKE_APPLY_SECRET", applySecret)

	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		delivered.Store(0)
		plan := mustPlanB(b, fmt.Sprintf(`name: bench-apply-%d
systems: [erp, crm]
source: {topics: [sync.bench.contacts], system: erp, format: cdcsync-json}
apply:
  kind: http
  batch: {max_events: 500, max_wait: 20ms}
  max_concurrency: 8
  http:
    url: "http://%s/api/{entity}/{key.id}"
    secrets_env: [KFAKE_APPLY_SECRET]
`, i, ln.Addr()))
		start := time.Now()
		wk := startWorkerB(b, st.Brokers(), fmt.Sprintf("bench-%d", i), plan)
		for delivered.Load() < events {
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("delivered %d of %d in 5 minutes", delivered.Load(), events)
			}
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		_ = wk.stop()
		b.StartTimer()
	}
	b.StopTimer()
	if bad.Load() != 0 {
		b.Fatalf("%d requests failed verification", bad.Load())
	}
	b.ReportMetric(float64(events*b.N)/total.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

func embeddedStack(partitions int32, topics ...string) (*embedded.Stack, error) {
	return embedded.Start(embedded.Options{Topics: topics, Partitions: partitions, NoRegistry: true})
}

func mustPlanB(b *testing.B, doc string) *topology.Plan {
	b.Helper()
	p, err := topology.Parse(b.Name()+".yaml", []byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// startWorkerB is startWorker for a benchmark: warnings only, to stderr.
func startWorkerB(b *testing.B, brokers []string, name string, plans ...*topology.Plan) *worker {
	b.Helper()
	cfg := processor.DefaultConfig()
	cfg.Brokers = brokers
	cfg.ClientID = name
	cfg.HTTPAddr = ""
	cfg.CommitInterval = 200 * time.Millisecond
	log, _ := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	w, err := processor.New(cfg, plans, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	return wk
}
