package integration

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/topology"
)

// BenchmarkKfakeOutboxRouter runs the same raw Debezium outbox records
// (JSON, no schemas, 8 partitions, 10% redelivered, at_least_once)
// through a debezium-outbox topology with sink.format payload and through
// a plain debezium-json topology (sink.key [id]), end to end on kfake:
// consume, decode, ledger, route, produce, ledger write, commit.
//
//	go test -run '^$' -bench BenchmarkKfakeOutboxRouter -benchtime 3x ./integration/
var benchRun atomic.Int64

func BenchmarkKfakeOutboxRouter(b *testing.B) {
	const events, partitions = 50_000, 8
	const topic = "dbz.bench.outbox"
	st, err := embeddedStack(partitions, topic)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	recs := make([]demo.Record, 0, events)
	for i := 0; len(recs) < events; i++ {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		r := demo.Record{Topic: topic, Key: []byte(fmt.Sprintf(`{"id":%q}`, id)),
			Value: outboxRaw("c", id, fmt.Sprintf("order-%d", i%200), "OrderPlaced",
				fmt.Sprintf(`{"agg": "order-%d", "seq": %d, "note": "café", "lines": [{"sku": "A-%d", "qty": 2}], "total": %d.50}`, i%200, i, i%50, i%97), 24000000+i)}
		recs = append(recs, r)
		if i%10 == 9 && len(recs) < events {
			recs = append(recs, r) // a redelivery
		}
	}
	if err := demo.Produce(st.Brokers(), recs); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, doc string }{
		{"debezium-outbox", `source: {topics: [%s], system: shop, format: debezium-outbox}
sink:
  topic: bench.outbox.event.{aggregatetype}
  format: payload
`},
		{"debezium-json", `source: {topics: [%s], system: shop, format: debezium-json}
sink:
  topic: bench.json.{table}
  key: [id]
`},
	} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for j := 0; j < b.N; j++ {
				// A fresh consumer group each time: the framework runs the
				// benchmark once with b.N=1 before the measured runs.
				i := benchRun.Add(1)
				plan := mustPlanB(b, fmt.Sprintf("name: bench-%s-%d\nsystems: [shop]\n", c.name, i)+fmt.Sprintf(c.doc, topic))
				start := time.Now()
				wk := startWorkerB(b, st.Brokers(), fmt.Sprintf("bench-%s-%d", c.name, i), plan)
				if err := demo.WaitProcessed(context.Background(), st.Brokers(), []*topology.Plan{plan}, 5*time.Minute); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				_ = wk.stop()
				b.StartTimer()
			}
			b.ReportMetric(float64(events*b.N)/total.Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
