// Package bench measures the whole cdcsync pipeline — decode, ledger,
// authority, route, produce — against a raw sarama consumer-group →
// async-producer passthrough of the same records on the same broker, in
// the same run. The passthrough is the practical ceiling: it does no work
// on the records. `cdcsync bench` calls Run.
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/topology"
)

// Options configures a run. Zero values take the documented defaults.
type Options struct {
	Brokers    []string // required
	Events     int      // records in the workload; default 200000
	Partitions int32    // source partitions; default 8
	DupRatio   float64  // share of redelivered records; default 0.10
	Rounds     int      // measurements of each side, the median is reported; default 1
	// ExactlyOnce also measures the exactly_once guarantee on the same
	// workload, and its end-to-end latency at a fixed rate.
	ExactlyOnce bool
	Rate        int           // events/s for the latency run; default 10000
	LatencyFor  time.Duration // length of the latency run; default 10s
	Log         *zap.Logger
	// Security is applied to every client of the run (bench --brokers
	// against a secured cluster).
	Security processor.Security
}

// Result holds the measured rates in records per second.
type Result struct {
	Events       int
	Passthrough  float64 // default-settings passthrough
	Durable      float64 // durable passthrough (acks=all, idempotent, one request in flight)
	CDCSync      float64 // at_least_once
	Ratio        float64 // at_least_once / durable passthrough
	Duplicates   int64
	Out          int64
	Cores        int
	PassDuration time.Duration
	SyncDuration time.Duration
	EOS          float64 // exactly_once records/s
	EOSRatio     float64 // exactly_once / durable passthrough
	Latency      *Latency
}

const benchTopology = `name: bench-%d
systems: [shop, crm]
source: {topics: [%s], system: shop, format: debezium-json}
authority:
  owners: {email: crm}
  default_owner: shop
sink: {topic: 'bench-%d.sync.{table}', key: [id]}
guarantee: %s
`

// Workload builds the records: PostgreSQL updates of a 9-column customers
// row (bigint id, text columns, a decimal, a micro-timestamp) with a full
// source block, about 740 bytes each, and dupRatio of them redelivered.
func Workload(n int, dupRatio float64) [][2][]byte {
	src := demo.NewSource("shop", "shop", false)
	src.Table = "customers"
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][2][]byte, 0, n)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for len(out) < n {
		if len(out) > 0 && rng.Float64() < dupRatio {
			out = append(out, out[rng.IntN(len(out))])
			continue
		}
		id := int64(rng.IntN(1_000_000)) + 1_000_000_000
		before := demo.Contact{ID: id, FirstName: "Ada", LastName: "Liskov", Email: fmt.Sprintf("c%d@ex.com", id),
			Phone: "+49 30 1234567", Address: "12 Harbour Rd", City: "Utrecht", Balance: 123456, UpdatedAt: at}
		after := before
		after.Phone = fmt.Sprintf("+49 30 %07d", len(out))
		after.Balance += int64(len(out))
		after.UpdatedAt = at.Add(time.Duration(len(out)) * time.Millisecond)
		k, v := src.Change('u', &before, &after)
		out = append(out, [2][]byte{k, v})
	}
	return out
}

// Run produces the workload and measures both sides.
func Run(ctx context.Context, o Options, w io.Writer) (*Result, error) {
	if o.Events == 0 {
		o.Events = 200_000
	}
	if o.Partitions == 0 {
		o.Partitions = 8
	}
	if o.DupRatio == 0 {
		o.DupRatio = 0.10
	}
	if o.Rounds == 0 {
		o.Rounds = 1
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	if err := o.Security.Apply(cfg); err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(o.Brokers, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, err
	}
	topic := fmt.Sprintf("bench.public.customers.%d", time.Now().UnixNano())
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: o.Partitions, ReplicationFactor: 1}, false); err != nil {
		return nil, err
	}
	// The latency run goes first, on a broker that does not yet hold the
	// throughput workload: kfake keeps every record in its heap, and after
	// the throughput rounds its garbage collector competes for the two
	// cores and shows in the tail.
	var lat *Latency
	var latLine string
	if o.ExactlyOnce {
		var buf strings.Builder
		if lat, err = latency(ctx, o, &buf); err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
		latLine = strings.TrimSpace(buf.String())
	}
	work := Workload(o.Events, o.DupRatio)
	recs := make([]demo.Record, len(work))
	size := 0
	for i, kv := range work {
		recs[i] = demo.Record{Topic: topic, Key: kv[0], Value: kv[1]}
		size += len(kv[1])
	}
	fmt.Fprintf(w, "workload: %d Debezium JSON updates, %d B average, %.0f%% redelivered, %d partitions, %d cores\n",
		o.Events, size/len(work), o.DupRatio*100, o.Partitions, runtime.NumCPU())
	if err := demo.ProduceWith(o.Brokers, o.Security.Apply, recs); err != nil {
		return nil, err
	}

	res := &Result{Events: o.Events, Cores: runtime.NumCPU()}
	rate := func(d time.Duration) float64 { return float64(o.Events) / d.Seconds() }
	var pass, dur, alo, eos []time.Duration
	for round := 0; round < o.Rounds; round++ {
		d, err := passthrough(ctx, o, topic, round, false)
		if err != nil {
			return nil, fmt.Errorf("passthrough: %w", err)
		}
		pass = append(pass, d)
		fmt.Fprintf(w, "round %d: passthrough default %8.0f records/s (%v)\n", round+1, rate(d), d.Round(time.Millisecond))
		d, err = passthrough(ctx, o, topic, round, true)
		if err != nil {
			return nil, fmt.Errorf("durable passthrough: %w", err)
		}
		dur = append(dur, d)
		fmt.Fprintf(w, "round %d: passthrough durable %8.0f records/s (%v)\n", round+1, rate(d), d.Round(time.Millisecond))
		d, st, err := pipeline(ctx, o, topic, round, "at_least_once")
		if err != nil {
			return nil, fmt.Errorf("cdcsync: %w", err)
		}
		alo = append(alo, d)
		res.Duplicates, res.Out = st.Duplicates, st.Out
		fmt.Fprintf(w, "round %d: at_least_once       %8.0f records/s (%v; %d out, %d duplicates dropped)\n", round+1,
			rate(d), d.Round(time.Millisecond), st.Out, st.Duplicates)
		if o.ExactlyOnce {
			d, st, err := pipeline(ctx, o, topic, round, "exactly_once")
			if err != nil {
				return nil, fmt.Errorf("cdcsync exactly_once: %w", err)
			}
			eos = append(eos, d)
			fmt.Fprintf(w, "round %d: exactly_once        %8.0f records/s (%v; %d out, %d duplicates dropped, %d transactions)\n", round+1,
				rate(d), d.Round(time.Millisecond), st.Out, st.Duplicates, st.TxnCommits)
		}
	}
	res.PassDuration, res.SyncDuration = median(pass), median(alo)
	res.Passthrough = rate(res.PassDuration)
	res.Durable = rate(median(dur))
	res.CDCSync = rate(res.SyncDuration)
	res.Ratio = res.CDCSync / res.Durable
	fmt.Fprintf(w, "\nmedian of %d round(s), %d cores shared by broker and clients; each clock runs from the group join to the last acknowledgement\n", o.Rounds, res.Cores)
	fmt.Fprintf(w, "passthrough default (raw sarama group → async producer, default settings): %8.0f records/s  %.2f× durable\n", res.Passthrough, res.Passthrough/res.Durable)
	fmt.Fprintf(w, "passthrough durable (acks=all, idempotent, one request in flight):         %8.0f records/s  1.00× durable\n", res.Durable)
	fmt.Fprintf(w, "cdcsync at_least_once (decode, ledger, authority, route, produce + ledger write): %8.0f records/s  %.2f× durable\n", res.CDCSync, res.Ratio)
	if o.ExactlyOnce {
		res.EOS = rate(median(eos))
		res.EOSRatio = res.EOS / res.Durable
		fmt.Fprintf(w, "cdcsync exactly_once (one transaction per partition per commit interval): %8.0f records/s  %.2f× durable, %.2f× at_least_once\n", res.EOS, res.EOSRatio, res.EOS/res.CDCSync)
		res.Latency = lat
		fmt.Fprintln(w, latLine)
	}
	return res, nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// passthrough consumes the topic with a fresh group and produces every
// record unchanged; it returns the time from the start of the group join
// until every record is acknowledged.
//
// The clients keep sarama's defaults, except what the run needs (version,
// oldest offset, successes, no auto-created topics) and, when durable, the
// producer settings a worker uses: RequiredAcks=WaitForAll,
// Idempotent=true, Net.MaxOpenRequests=1. The consumer group and the
// producer use two clients, as a worker does: one client holds one
// connection per broker, and a produce request sent behind a fetch that
// the broker holds for Consumer.MaxWaitTime (500 ms) waits for it, which
// stalled the tail of every round and made the passthrough 3–4× slower
// than sarama goes (docs/bench-findings.md).
func passthrough(ctx context.Context, o Options, topic string, round int, durable bool) (time.Duration, error) {
	sc := sarama.NewConfig()
	sc.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	sc.Version = sarama.V2_8_0_0
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Producer.Return.Successes = true
	kind := "default"
	if durable {
		kind = "durable"
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Idempotent = true
		sc.Net.MaxOpenRequests = 1
	}
	if err := o.Security.Apply(sc); err != nil {
		return 0, err
	}
	cclient, err := sarama.NewClient(o.Brokers, sc)
	if err != nil {
		return 0, err
	}
	defer cclient.Close()
	pclient, err := sarama.NewClient(o.Brokers, sc)
	if err != nil {
		return 0, err
	}
	defer pclient.Close()
	prod, err := sarama.NewAsyncProducerFromClient(pclient)
	if err != nil {
		return 0, err
	}
	defer prod.AsyncClose()
	group, err := sarama.NewConsumerGroupFromClient(fmt.Sprintf("bench-passthrough-%s-%d-%d", kind, round, time.Now().UnixNano()), cclient)
	if err != nil {
		return 0, err
	}
	defer group.Close()
	var acked atomic.Int64
	done := make(chan struct{})
	go func() {
		for range prod.Successes() {
			if acked.Add(1) == int64(o.Events) {
				close(done)
			}
		}
	}()
	go func() {
		for e := range prod.Errors() {
			o.Log.Warn("passthrough produce error", zap.Error(e.Err))
		}
	}()
	out := fmt.Sprintf("%s.passthrough-%s.%d", topic, kind, round)
	admin, err := sarama.NewClusterAdminFromClient(cclient)
	if err != nil {
		return 0, err
	}
	if err := admin.CreateTopic(out, &sarama.TopicDetail{NumPartitions: o.Partitions, ReplicationFactor: 1}, false); err != nil {
		return 0, err
	}
	h := &passHandler{prod: prod, out: out}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	go func() {
		for cctx.Err() == nil {
			if err := group.Consume(cctx, []string{topic}, h); err != nil {
				o.Log.Warn("passthrough consume", zap.Error(err))
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("timed out after %d of %d records", acked.Load(), o.Events)
	}
	return time.Since(start), nil
}

type passHandler struct {
	prod sarama.AsyncProducer
	out  string
}

func (*passHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*passHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *passHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.prod.Input() <- &sarama.ProducerMessage{Topic: h.out, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value)}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// pipeline runs one cdcsync worker with a fresh topology on the topic and
// returns the time until every record is complete (outputs and ledger
// entries acknowledged).
func pipeline(ctx context.Context, o Options, topic string, round int, guarantee string) (time.Duration, processor.StatsSnapshot, error) {
	id := time.Now().UnixNano()%1_000_000*10 + int64(round)
	plan, err := topology.Parse("bench.yaml", fmt.Appendf(nil, benchTopology, id, topic, id, guarantee))
	if err != nil {
		return 0, processor.StatsSnapshot{}, err
	}
	cfg := processor.DefaultConfig()
	cfg.Brokers = o.Brokers
	cfg.Security = o.Security
	cfg.HTTPAddr = ""
	cfg.ClientID = "bench"
	w, err := processor.New(cfg, []*topology.Plan{plan}, o.Log)
	if err != nil {
		return 0, processor.StatsSnapshot{}, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- w.Run(cctx) }()
	deadline := time.After(5 * time.Minute)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return 0, processor.StatsSnapshot{}, fmt.Errorf("worker stopped early: %v", err)
		case <-deadline:
			return 0, w.Stats(plan.Name()), fmt.Errorf("timed out: %+v", w.Stats(plan.Name()))
		case <-ctx.Done():
			return 0, processor.StatsSnapshot{}, ctx.Err()
		case <-tick.C:
		}
		if st := w.Stats(plan.Name()); st.Completed >= int64(o.Events) {
			d := time.Since(start)
			cancel()
			<-errc
			return d, st, nil
		}
	}
}
