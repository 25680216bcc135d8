// Package bench measures the whole cdcsync pipeline — decode, ledger,
// authority, route, produce — against a raw sarama consumer-group →
// async-producer passthrough of the same records on the same broker, in
// the same run. The passthrough is the practical ceiling: it does no work
// on the records. `cdcsync bench` calls Run.
package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/membudget"
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
	// NewBroker, when set, starts a fresh broker for each round (and one
	// for the latency run).
	NewBroker func(context.Context) (*Broker, error)
	// Exec, when set, runs one side (in a process of its own); nil runs
	// it in this process with RunSide.
	Exec func(context.Context, Side, SideOptions) (SideResult, error)
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
	Sides        map[Side][]SideResult // every round's result, per side
	BrokerRSS    []int64               // each round's broker peak RSS, when the run started the brokers
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

// Side names one measured side of a round.
type Side string

// The sides of a round, in the order they run.
const (
	SideDefault     Side = "passthrough-default"
	SideDurable     Side = "passthrough-durable"
	SideAtLeastOnce Side = "at_least_once"
	SideExactlyOnce Side = "exactly_once"
)

// SideOptions is what one side needs: the broker, the round's source
// topic (already holding the workload) and the workload's size.
type SideOptions struct {
	Brokers    []string
	Topic      string
	Events     int
	Partitions int32
	Round      int
	Security   processor.Security
	Log        *zap.Logger
}

// SideResult is what one side measured. PeakRSS is the VmHWM of the
// process that ran the side (0 where /proc is not available); CPU is the
// user+system time that process used, when it ran alone in it.
type SideResult struct {
	Duration   time.Duration `json:"duration_ns"`
	Out        int64         `json:"out"`
	Duplicates int64         `json:"duplicates"`
	Txns       int64         `json:"transactions"`
	PeakRSS    int64         `json:"peak_rss_bytes"`
	CPU        time.Duration `json:"cpu_ns"`
	BrokerCPU  time.Duration `json:"broker_cpu_ns"` // the broker process's CPU time during the side
	// Startup is a cdcsync side's start-up before its clock starts: from
	// Worker.Run to its first group join (clients, its topics, the
	// control topic), which a passthrough does before its clock too.
	Startup time.Duration `json:"startup_ns"`
}

// RunSide measures one side in this process.
func RunSide(ctx context.Context, side Side, o SideOptions) (SideResult, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	var res SideResult
	var err error
	switch side {
	case SideDefault, SideDurable:
		// The passthrough gets the garbage collector policy a worker
		// sets for itself (processor.Worker.Run), so the ceiling is the
		// fastest honest one: GC is a tenth of its CPU too.
		membudget.Start(processor.DefaultConfig().MemoryBudgetBytes)
		res.Duration, err = passthrough(ctx, o, side == SideDurable)
		res.Out = int64(o.Events)
	case SideAtLeastOnce, SideExactlyOnce:
		var st processor.StatsSnapshot
		res.Duration, res.Startup, st, err = pipeline(ctx, o, string(side))
		res.Out, res.Duplicates, res.Txns = st.Out, st.Duplicates, st.TxnCommits
	default:
		return res, fmt.Errorf("unknown side %q", side)
	}
	res.PeakRSS = PeakRSS(0)
	return res, err
}

// Broker is a broker the run started: its addresses, and a stop that
// returns its peak RSS (VmHWM, 0 if unknown). CPU returns the CPU time
// the broker process has used so far (0 if unknown).
type Broker struct {
	Brokers []string
	Stop    func() (peakRSS int64)
	CPU     func() time.Duration
}

// Run measures every side, Rounds times, and prints each rate, each ratio
// to the durable passthrough and each side's peak RSS.
//
// With o.NewBroker set, every round gets a fresh broker (kfake keeps every
// record in its heap, so later rounds on one broker slowed down 1.5–3×),
// and the workload is produced into it; otherwise each round produces it
// into a new topic on o.Brokers. With o.Exec set, each side runs through
// it (cdcsync bench runs every side in a process of its own); otherwise in
// this process.
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
	exec := o.Exec
	if exec == nil {
		exec = func(ctx context.Context, side Side, so SideOptions) (SideResult, error) {
			return RunSide(ctx, side, so)
		}
	}
	broker := func() (*Broker, error) {
		if o.NewBroker != nil {
			return o.NewBroker(ctx)
		}
		return &Broker{Brokers: o.Brokers, Stop: func() int64 { return 0 }, CPU: func() time.Duration { return 0 }}, nil
	}
	// The latency run goes first, on a broker that does not yet hold the
	// throughput workload: kfake keeps every record in its heap, and its
	// garbage collector competes for the two cores and shows in the tail.
	var lat *Latency
	var latLine string
	if o.ExactlyOnce {
		b, err := broker()
		if err != nil {
			return nil, err
		}
		lo := o
		lo.Brokers = b.Brokers
		var buf strings.Builder
		lat, err = latency(ctx, lo, &buf)
		b.Stop()
		if err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
		latLine = strings.TrimSpace(buf.String())
	}
	work := Workload(o.Events, o.DupRatio)
	size := 0
	for _, kv := range work {
		size += len(kv[1])
	}
	fmt.Fprintf(w, "workload: %d Debezium JSON updates, %d B average, %.0f%% redelivered, %d partitions, %d cores\n",
		o.Events, size/len(work), o.DupRatio*100, o.Partitions, runtime.NumCPU())

	sides := []Side{SideDefault, SideDurable, SideAtLeastOnce}
	if o.ExactlyOnce {
		sides = append(sides, SideExactlyOnce)
	}
	res := &Result{Events: o.Events, Cores: runtime.NumCPU(), Sides: map[Side][]SideResult{}}
	rate := func(d time.Duration) float64 { return float64(o.Events) / d.Seconds() }
	for round := 0; round < o.Rounds; round++ {
		b, err := broker()
		if err != nil {
			return nil, err
		}
		topic, err := produceWorkload(o, b.Brokers, work)
		if err != nil {
			b.Stop()
			return nil, err
		}
		for _, side := range sides {
			so := SideOptions{Brokers: b.Brokers, Topic: topic, Events: o.Events, Partitions: o.Partitions, Round: round,
				Security: o.Security, Log: o.Log}
			cpu0 := b.CPU()
			sr, err := exec(ctx, side, so)
			sr.BrokerCPU = b.CPU() - cpu0
			if err != nil {
				b.Stop()
				return nil, fmt.Errorf("round %d, %s: %w", round+1, side, err)
			}
			res.Sides[side] = append(res.Sides[side], sr)
			fmt.Fprintf(w, "round %d: %-20s %8.0f records/s (%v)%s\n", round+1, side, rate(sr.Duration), sr.Duration.Round(time.Millisecond), sideDetail(side, sr))
		}
		if hwm := b.Stop(); hwm > 0 {
			res.BrokerRSS = append(res.BrokerRSS, hwm)
			fmt.Fprintf(w, "round %d: broker peak RSS %s\n", round+1, mib(hwm))
		}
	}
	med := func(side Side) SideResult { return medianSide(res.Sides[side]) }
	res.PassDuration, res.SyncDuration = med(SideDefault).Duration, med(SideAtLeastOnce).Duration
	res.Passthrough = rate(res.PassDuration)
	res.Durable = rate(med(SideDurable).Duration)
	res.CDCSync = rate(res.SyncDuration)
	res.Ratio = res.CDCSync / res.Durable
	alo := med(SideAtLeastOnce)
	res.Duplicates, res.Out = alo.Duplicates, alo.Out
	fmt.Fprintf(w, "\nmedian of %d round(s), %d cores shared by broker and clients; each clock runs from the group join to the last acknowledgement; peak RSS is the side's process VmHWM, CPU its user+system time per record (medians)\n", o.Rounds, res.Cores)
	// CPU per record is the figure a shared machine disturbs least: the
	// rates follow whatever else runs on the cores, the work per record
	// much less.
	durCPU := medianCPU(res.Sides[SideDurable])
	line := func(label string, side Side, extra string) {
		m := med(side)
		cpu := ""
		if c := medianCPU(res.Sides[side]); c > 0 && durCPU > 0 {
			cpu = fmt.Sprintf("  CPU %.1f µs/record (%.1f× durable)", c.Seconds()*1e6/float64(o.Events), c.Seconds()/durCPU.Seconds())
		}
		fmt.Fprintf(w, "%-28s %8.0f records/s  %.2f× durable%s  peak RSS %s%s\n", label, rate(m.Duration), rate(m.Duration)/res.Durable, extra, mib(medianRSS(res.Sides[side])), cpu)
	}
	line("passthrough default", SideDefault, "")
	line("passthrough durable", SideDurable, "")
	line("cdcsync at_least_once", SideAtLeastOnce, "")
	if o.ExactlyOnce {
		eos := med(SideExactlyOnce)
		res.EOS = rate(eos.Duration)
		res.EOSRatio = res.EOS / res.Durable
		line("cdcsync exactly_once", SideExactlyOnce, fmt.Sprintf(", %.2f× at_least_once", res.EOS/res.CDCSync))
		res.Latency = lat
		fmt.Fprintln(w, latLine)
	}
	fmt.Fprintln(w, "passthrough: raw sarama group → async producer (durable: acks=all, idempotent, one request in flight); cdcsync: decode, ledger, authority, route, encode, produce + ledger write")
	return res, nil
}

func sideDetail(side Side, sr SideResult) string {
	s := ""
	switch side {
	case SideAtLeastOnce:
		s = fmt.Sprintf("; %d out, %d duplicates dropped", sr.Out, sr.Duplicates)
	case SideExactlyOnce:
		s = fmt.Sprintf("; %d out, %d duplicates dropped, %d transactions", sr.Out, sr.Duplicates, sr.Txns)
	}
	if sr.Startup > 0 {
		s += fmt.Sprintf("; start-up before the join %v", sr.Startup.Round(time.Millisecond))
	}
	if sr.PeakRSS > 0 {
		s += "; peak RSS " + mib(sr.PeakRSS)
	}
	if sr.CPU > 0 {
		s += fmt.Sprintf("; CPU %v", sr.CPU.Round(time.Millisecond))
	}
	if sr.BrokerCPU > 0 {
		s += fmt.Sprintf(", broker CPU %v", sr.BrokerCPU.Round(time.Millisecond))
	}
	return s
}

func mib(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MB", float64(b)/1e6)
}

// produceWorkload creates a fresh source topic and writes the workload
// into it.
func produceWorkload(o Options, brokers []string, work [][2][]byte) (string, error) {
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	if err := o.Security.Apply(cfg); err != nil {
		return "", err
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return "", err
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return "", err
	}
	// Debezium names a table's topic <topic.prefix>.<schema>.<table>; the
	// worker takes the table from the last segment, so the unique part
	// goes into the prefix (in the last segment the worker created a sink
	// topic for a table named after it, and the real one on the first
	// record, inside the clock).
	topic := fmt.Sprintf("bench%d.public.customers", time.Now().UnixNano())
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: o.Partitions, ReplicationFactor: 1}, false); err != nil {
		return "", err
	}
	recs := make([]demo.Record, len(work))
	for i, kv := range work {
		recs[i] = demo.Record{Topic: topic, Key: kv[0], Value: kv[1]}
	}
	return topic, demo.ProduceWith(brokers, o.Security.Apply, recs)
}

func medianSide(rs []SideResult) SideResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b SideResult) int { return cmp.Compare(a.Duration, b.Duration) })
	return s[len(s)/2]
}

func medianCPU(rs []SideResult) time.Duration {
	v := make([]time.Duration, len(rs))
	for i, r := range rs {
		v[i] = r.CPU
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func medianRSS(rs []SideResult) int64 {
	v := make([]int64, len(rs))
	for i, r := range rs {
		v[i] = r.PeakRSS
	}
	slices.Sort(v)
	return v[len(v)/2]
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
func passthrough(ctx context.Context, o SideOptions, durable bool) (time.Duration, error) {
	topic, round := o.Topic, o.Round
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
// returns the time from its first group join until every record is
// complete (outputs and ledger entries acknowledged), and its start-up
// before that join.
func pipeline(ctx context.Context, o SideOptions, guarantee string) (time.Duration, time.Duration, processor.StatsSnapshot, error) {
	topic, round := o.Topic, o.Round
	id := time.Now().UnixNano()%1_000_000*10 + int64(round)
	plan, err := topology.Parse("bench.yaml", fmt.Appendf(nil, benchTopology, id, topic, id, guarantee))
	if err != nil {
		return 0, 0, processor.StatsSnapshot{}, err
	}
	cfg := processor.DefaultConfig()
	cfg.Brokers = o.Brokers
	cfg.Security = o.Security
	cfg.HTTPAddr = ""
	cfg.ClientID = "bench"
	w, err := processor.New(cfg, []*topology.Plan{plan}, o.Log)
	if err != nil {
		return 0, 0, processor.StatsSnapshot{}, err
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
			return 0, 0, processor.StatsSnapshot{}, fmt.Errorf("worker stopped early: %v", err)
		case <-deadline:
			return 0, 0, w.Stats(plan.Name()), fmt.Errorf("timed out: %+v", w.Stats(plan.Name()))
		case <-ctx.Done():
			return 0, 0, processor.StatsSnapshot{}, ctx.Err()
		case <-tick.C:
		}
		if st := w.Stats(plan.Name()); st.Completed >= int64(o.Events) {
			end := time.Now()
			cancel()
			<-errc
			if st.FirstJoin.IsZero() || st.FirstJoin.Before(start) {
				return 0, 0, st, fmt.Errorf("the worker completed every record but reported no group join")
			}
			return end.Sub(st.FirstJoin), st.FirstJoin.Sub(start), st, nil
		}
	}
}
