package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/topology"
)

// Latency is the end-to-end latency of exactly_once at a fixed rate: from
// the source record's append (its produce acknowledgement) to the moment a
// read_committed consumer of the sink sees the output.
type Latency struct {
	Rate          int
	Events        int
	P50, P99, Max time.Duration
}

// latency produces Rate events/s for LatencyFor into a fresh topic while
// one exactly_once worker runs, and measures when each output becomes
// visible to a read_committed consumer.
func latency(ctx context.Context, o Options, w io.Writer) (*Latency, error) {
	if o.Rate == 0 {
		o.Rate = 10_000
	}
	if o.LatencyFor == 0 {
		o.LatencyFor = 10 * time.Second
	}
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Flush.Frequency = time.Millisecond
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.MaxWaitTime = 10 * time.Millisecond
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
	id := time.Now().UnixNano() % 1_000_000
	topic := fmt.Sprintf("latency%d.public.customers", id) // <prefix>.<schema>.<table>, as Debezium names it
	sink := fmt.Sprintf("bench-lat-%d.sync.customers", id)
	for _, t := range []string{topic, sink} {
		if err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: o.Partitions, ReplicationFactor: 1}, false); err != nil {
			return nil, err
		}
	}
	plan, err := topology.Parse("latency.yaml", fmt.Appendf(nil, `name: bench-lat-%d
systems: [shop, crm]
source: {topics: [%s], system: shop, format: debezium-json}
authority: {owners: {email: crm}, default_owner: shop}
sink: {topic: '%s', key: [id]}
guarantee: exactly_once
`, id, topic, sink))
	if err != nil {
		return nil, err
	}
	wcfg := processor.DefaultConfig()
	wcfg.Brokers, wcfg.HTTPAddr, wcfg.ClientID = o.Brokers, "", "bench-latency"
	wcfg.Security = o.Security
	wk, err := processor.New(wcfg, []*topology.Plan{plan}, o.Log)
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	werr := make(chan error, 1)
	go func() { werr <- wk.Run(wctx) }()
	for !wk.Ready() {
		select {
		case err := <-werr:
			return nil, fmt.Errorf("worker: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}

	// The sink reader: one partition consumer per partition.
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lats []time.Duration
	total := int(o.LatencyFor.Seconds() * float64(o.Rate))
	done := make(chan struct{})
	var once sync.Once
	parts, _ := client.Partitions(sink)
	for _, p := range parts {
		pc, err := cons.ConsumePartition(sink, p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				now := time.Now()
				var v struct {
					Fields struct {
						Phone string `json:"phone"`
					} `json:"fields"`
				}
				if json.Unmarshal(m.Value, &v) != nil {
					continue
				}
				mu.Lock()
				if t0, ok := sent[v.Fields.Phone]; ok {
					lats = append(lats, now.Sub(t0))
					delete(sent, v.Fields.Phone)
				}
				n := len(lats)
				mu.Unlock()
				if n >= total {
					once.Do(func() { close(done) })
				}
			}
		}()
	}

	prod, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	go func() {
		for m := range prod.Successes() {
			mu.Lock()
			// The acknowledgement is when the record is appended and
			// visible to the worker.
			sent[m.Metadata.(string)] = time.Now()
			mu.Unlock()
		}
	}()
	go func() {
		for range prod.Errors() {
		}
	}()
	src := demo.NewSource("shop", "shop", false)
	src.Table = "customers"
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	interval := time.Second / time.Duration(o.Rate)
	begin := time.Now()
	for i := 0; i < total; i++ {
		if d := time.Until(begin.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		c := demo.Contact{ID: int64(i % 5000), FirstName: "Ada", LastName: "Liskov", Email: "a@ex.com",
			Phone: "lat-" + strconv.Itoa(i), Address: "12 Harbour Rd", City: "Utrecht", Balance: 100, UpdatedAt: at}
		k, v := src.Change('c', nil, &c)
		prod.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(k), Value: sarama.ByteEncoder(v), Metadata: c.Phone}
	}
	select {
	case <-done:
	case <-time.After(o.LatencyFor + time.Minute):
		mu.Lock()
		n := len(lats)
		mu.Unlock()
		return nil, fmt.Errorf("only %d of %d outputs seen", n, total)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lats)
	q := func(f float64) time.Duration { return lats[min(len(lats)-1, int(f*float64(len(lats))))] }
	l := &Latency{Rate: o.Rate, Events: len(lats), P50: q(0.50), P99: q(0.99), Max: lats[len(lats)-1]}
	fmt.Fprintf(w, "exactly_once end-to-end latency at %d events/s (%d events, commit interval %v): p50 %v, p99 %v, max %v\n",
		l.Rate, l.Events, plan.CommitInterval(), l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond), l.Max.Round(time.Millisecond))
	return l, nil
}
