// Package demo runs cdcsync's main job on the embedded default: an
// in-process Kafka broker and schema registry, a realistic Debezium data
// set from an ERP and a CRM that share customers, a Debezium Avro data set
// from a web shop whose table changes schema mid-stream, and two workers
// running the three topologies. `cdcsync demo` calls Run.
package demo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/route"
	"github.com/cdcsync/cdcsync/processor/saga"
	"github.com/cdcsync/cdcsync/topology"
)

//go:embed topologies/*.yaml
var topologyFiles embed.FS

// Topologies compiles the demo's topology files.
func Topologies() ([]*topology.Plan, error) { return TopologiesFor("") }

// TopologiesFor compiles the demo's topology files with the HTTP apply
// topology pointed at endpoint (host:port); "" keeps the file's address.
func TopologiesFor(endpoint string) ([]*topology.Plan, error) {
	entries, err := fs.ReadDir(topologyFiles, "topologies")
	if err != nil {
		return nil, err
	}
	var plans []*topology.Plan
	for _, e := range entries {
		name := path.Join("topologies", e.Name())
		data, err := topologyFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if endpoint != "" {
			data = []byte(strings.ReplaceAll(string(data), demoURLHost, endpoint))
		}
		p, err := topology.Parse(name, data)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// TopologyFiles returns the demo's topology files by name, for writing
// them out (`cdcsync demo --serve` prints where).
func TopologyFiles() map[string][]byte {
	out := map[string][]byte{}
	entries, _ := fs.ReadDir(topologyFiles, "topologies")
	for _, e := range entries {
		data, _ := topologyFiles.ReadFile(path.Join("topologies", e.Name()))
		out[e.Name()] = data
	}
	return out
}

// Options configures Run.
type Options struct {
	Contacts   int           // customers shared by ERP and CRM; default 200
	Customers  int           // rows of the shop's Avro customers table; default Contacts/2, at least 20
	Partitions int32         // partitions of every topic; default 4
	Workers    int           // workers; default 2
	Serve      bool          // keep the broker and registry up until ctx is done
	BrokerPort int           // 0 picks a free port
	RegPort    int           // 0 picks a free port
	Orders     int           // OrderPlaced events of the order saga; default 40
	Timeout    time.Duration // bound on processing the data set; default 60s
	Log        *zap.Logger
}

// Summary is what Run measured.
type Summary struct {
	Expect     Expect     // the JSON contacts data set
	AvroExpect AvroExpect // the Avro customers data set
	PerTopo    map[string]processor.StatsSnapshot
	Avro       AvroSink      // what the Avro sink topic holds
	CRM        EndpointStats // what the CRM endpoint applied (crm-apply)
	Orders     OrderSummary  // the order saga (order-saga)
}

// OrderSummary is how the order sagas ended.
type OrderSummary struct {
	Orders, Declines               int // triggers produced; payments the provider declines
	Completed, Compensated, Failed int
	Participants                   ParticipantStats
}

// Run starts the embedded stack, produces the data set, runs the workers
// until every record is processed, and prints a summary to w.
func Run(ctx context.Context, o Options, w io.Writer) (*Summary, error) {
	if o.Contacts == 0 {
		o.Contacts = 200
	}
	if o.Partitions == 0 {
		o.Partitions = 4
	}
	if o.Orders == 0 {
		o.Orders = 40
	}
	if o.Customers == 0 {
		o.Customers = max(o.Contacts/2, 20)
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	crm, err := StartEndpoint()
	if err != nil {
		return nil, err
	}
	defer crm.Close()
	plans, err := TopologiesFor(crm.Addr)
	if err != nil {
		return nil, err
	}
	records, expect := Contacts(o.Contacts)

	stack, err := embedded.Start(embedded.Options{
		BrokerPort: o.BrokerPort, RegistryPort: o.RegPort,
		Topics:     []string{"erp.public.contacts", "crm.public.contacts", AvroTopic, "sync.crm.contacts", OrdersTopic},
		Partitions: o.Partitions,
	})
	if err != nil {
		return nil, err
	}
	defer stack.Close()
	brokers := stack.Brokers()
	fmt.Fprintf(w, "embedded Kafka broker:   %s\n", strings.Join(brokers, ","))
	fmt.Fprintf(w, "embedded schema registry: %s\n", stack.RegistryURL())

	if err := Produce(brokers, records); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "produced %d Debezium records to erp.public.contacts and crm.public.contacts (%d partitions each)\n",
		len(records), o.Partitions)
	avroRecords, avroExpect, err := Customers(stack.Registry, o.Customers)
	if err != nil {
		return nil, err
	}
	if err := Produce(brokers, avroRecords); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "produced %d Debezium Avro records to %s (%d partitions): %d with value schema v1, %d with v2 (adds loyalty), registered in the embedded registry\n",
		len(avroRecords), AvroTopic, o.Partitions, avroExpect.V1, avroExpect.V2)

	orders, declines := Orders(o.Orders)
	if err := Produce(brokers, orders); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "produced %d OrderPlaced events to %s (%d partitions): the order saga's triggers\n", len(orders), OrdersTopic, o.Partitions)
	decline := map[string]bool{}
	for i := range orders {
		if declined(i) {
			decline[string(orders[i].Key)] = true
		}
	}

	// Two workers, each running every topology: they split the partitions.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var g errgroup.Group
	workers := make([]*processor.Worker, o.Workers)
	for i := range workers {
		cfg := processor.DefaultConfig()
		cfg.Brokers = brokers
		cfg.RegistryURL = stack.RegistryURL()
		cfg.ClientID = fmt.Sprintf("demo-worker-%d", i+1)
		cfg.HTTPAddr = ""
		cfg.CommitInterval = 200 * time.Millisecond
		wk, err := processor.New(cfg, plans, o.Log.With(zap.String("worker", cfg.ClientID)))
		if err != nil {
			return nil, err
		}
		workers[i] = wk
		g.Go(func() error { return wk.Run(runCtx) })
	}
	var flows, sagaPlans []*topology.Plan
	for _, p := range plans {
		if p.IsSaga() {
			sagaPlans = append(sagaPlans, p)
		} else {
			flows = append(flows, p)
		}
	}
	parts, stopParts, err := RunParticipants(runCtx, brokers, o.Partitions, decline, "")
	if err != nil {
		stop()
		_ = g.Wait()
		return nil, err
	}
	waitErr := WaitProcessed(ctx, brokers, flows, o.Timeout)
	var sagas []*saga.State
	if waitErr == nil {
		for _, p := range sagaPlans {
			sagas, waitErr = WaitSagas(ctx, brokers, string(p.SagaStateTopic()), len(orders), o.Timeout)
		}
	}
	stop()
	stopParts()
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if waitErr != nil {
		return nil, waitErr
	}

	sum := &Summary{Expect: expect, AvroExpect: avroExpect, PerTopo: map[string]processor.StatsSnapshot{}, CRM: crm.Stats(),
		Orders: OrderSummary{Orders: len(orders), Declines: declines, Participants: parts.Stats()}}
	for _, s := range sagas {
		switch s.Status {
		case saga.Completed:
			sum.Orders.Completed++
		case saga.Compensated:
			sum.Orders.Compensated++
		case saga.Failed:
			sum.Orders.Failed++
		}
	}
	for _, p := range flows {
		var t processor.StatsSnapshot
		for _, wk := range workers {
			s := wk.Stats(p.Name())
			t.In += s.In
			t.Out += s.Out
			t.Duplicates += s.Duplicates
			t.AuthorityFields += s.AuthorityFields
			t.AuthorityEvents += s.AuthorityEvents
			t.DLQ += s.DLQ
			t.Tombstones += s.Tombstones
			t.LedgerWrites += s.LedgerWrites
		}
		sum.PerTopo[p.Name()] = t
	}
	printSummary(w, flows, sum)
	if err := printSamples(ctx, w, brokers, plans, sum); err != nil {
		return sum, err
	}
	if o.Serve {
		fmt.Fprintf(w, "\nserving until interrupted:\n  brokers  %s\n  registry %s\n  CRM endpoint http://%s (crm-apply; secret in %s)\n",
			strings.Join(brokers, ","), stack.RegistryURL(), crm.Addr, DemoSecretEnv)
		fmt.Fprintf(w, "  try: cdcsync dlq inspect --brokers %s dlq.contacts-erp-to-crm\n", brokers[0])
		fmt.Fprintf(w, "       kcat -b %s -C -t sync.crm.contacts -e -f '%%k %%s\\n'\n", brokers[0])
		fmt.Fprintf(w, "       kcat -b %s -C -t %s -e -s value=avro -r %s\n", brokers[0], avroSinkTopic, stack.RegistryURL())
		fmt.Fprintf(w, "       cdcsync schemas check --registry %s internal/demo/topologies/customers-avro.yaml\n", stack.RegistryURL())
		<-ctx.Done()
	}
	return sum, nil
}

// Produce writes records with the Java-compatible partitioner, as
// Debezium's Kafka producer does.
func Produce(brokers []string, records []Record) error {
	return ProduceWith(brokers, nil, records)
}

// ProduceWith is Produce with the client configuration passed through
// apply first (for TLS and SASL), when apply is not nil.
func ProduceWith(brokers []string, apply func(*sarama.Config) error, records []Record) error {
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = route.NewJavaPartitioner
	cfg.Producer.Flush.Messages = 500
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	if apply != nil {
		if err := apply(cfg); err != nil {
			return err
		}
	}
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, 0, 1000)
	for i, r := range records {
		m := &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.ByteEncoder(r.Key)}
		if r.Value != nil {
			m.Value = sarama.ByteEncoder(r.Value)
		}
		msgs = append(msgs, m)
		if len(msgs) == cap(msgs) || i == len(records)-1 {
			if err := p.SendMessages(msgs); err != nil {
				return err
			}
			msgs = msgs[:0]
		}
	}
	return nil
}

// WaitProcessed waits until every topology's consumer group has committed
// the high-water mark of every source partition.
func WaitProcessed(ctx context.Context, brokers []string, plans []*topology.Plan, timeout time.Duration) error {
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	// Twice in a row: an apply topology reads what a sink topology writes,
	// so its lag is final only once the sink's is 0 too.
	for zero := 0; ; {
		behind, err := lagOf(client, admin, plans)
		if err == nil && behind == 0 {
			if zero++; zero == 2 {
				return nil
			}
		} else {
			zero = 0
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("demo: records not processed within %v: %w", timeout, err)
			}
			return fmt.Errorf("demo: %d records still unprocessed after %v", behind, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func lagOf(client sarama.Client, admin sarama.ClusterAdmin, plans []*topology.Plan) (int64, error) {
	var behind int64
	if err := client.RefreshMetadata(); err != nil {
		return 0, err
	}
	topics, err := client.Topics()
	if err != nil {
		return 0, err
	}
	for _, p := range plans {
		want := map[string][]int32{}
		for _, t := range topics {
			if !p.MatchesTopic(t) {
				continue
			}
			parts, err := client.Partitions(t)
			if err != nil {
				return 0, err
			}
			want[t] = parts
		}
		resp, err := admin.ListConsumerGroupOffsets(string(p.Group()), want)
		if err != nil {
			return 0, err
		}
		for t, parts := range want {
			for _, n := range parts {
				hwm, err := client.GetOffset(t, n, sarama.OffsetNewest)
				if err != nil {
					return 0, err
				}
				blk := resp.GetBlock(t, n)
				committed := int64(0)
				if blk != nil && blk.Offset > 0 {
					committed = blk.Offset
				}
				if hwm > committed {
					behind += hwm - committed
				}
			}
		}
	}
	return behind, nil
}

func printSummary(w io.Writer, plans []*topology.Plan, s *Summary) {
	fmt.Fprintf(w, "\n%-22s %8s %8s %10s %16s %16s %6s %10s\n", "topology", "in", "out", "duplicate", "authority-fields", "authority-events", "dlq", "tombstone")
	for _, p := range plans {
		t := s.PerTopo[p.Name()]
		fmt.Fprintf(w, "%-22s %8d %8d %10d %16d %16d %6d %10d\n", p.Name(), t.In, t.Out, t.Duplicates,
			t.AuthorityFields, t.AuthorityEvents, t.DLQ, t.Tombstones)
	}
	fmt.Fprintf(w, "\nexpected from the data set: %d records, %d duplicates, %d echoes dropped by authority, %d poison records, %d tombstones\n",
		s.Expect.Records, s.Expect.Duplicates, s.Expect.Echoes, s.Expect.Poison, s.Expect.Tombstones)
	a := s.AvroExpect
	fmt.Fprintf(w, "expected from the Avro data set: %d records (%d v1, %d v2), %d duplicates, %d echoes, %d shop updates losing the CRM-owned first name, %d poison records, %d tombstones\n",
		a.Records, a.V1, a.V2, a.Duplicates, a.Echoes, a.Fields, a.Poison, a.Tombstones)
	os := s.Orders
	ps := os.Participants
	fmt.Fprintf(w, "order saga (order-saga): %d orders, %d completed, %d compensated (payment declined: stock released), %d failed; stock holds %d reservations (%d released), %d payments charged, %d declined, %d shipments\n",
		os.Orders, os.Completed, os.Compensated, os.Failed, ps.Reserved, ps.Released, ps.Charged, ps.Declined, ps.Shipped)
	fmt.Fprintf(w, "expected from the orders: %d orders, %d payments declined\n", os.Orders, os.Declines)
	c := s.CRM
	fmt.Fprintf(w, "CRM endpoint (crm-apply, HTTP): %d events applied (%d POST, %d PATCH, %d DELETE), every signature verified (Standard Webhooks), %d refused; it holds %d contacts\n",
		c.Applied, c.Post, c.Patch, c.Delete, c.Refused, c.Contacts)
}

func printSamples(ctx context.Context, w io.Writer, brokers []string, plans []*topology.Plan, sum *Summary) error {
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	fmt.Fprintln(w, "\nsample sync records (sync.crm.contacts):")
	recs, err := ReadTopic(ctx, client, "sync.crm.contacts", 3)
	if err != nil {
		return err
	}
	for _, m := range recs {
		fmt.Fprintf(w, "  p%d@%d key=%s\n    %s\n", m.Partition, m.Offset, m.Key, m.Value)
	}
	avro, err := ReadAvroSink(ctx, client, avroSinkTopic)
	if err != nil {
		return err
	}
	sum.Avro = *avro
	printAvroSink(w, avro)
	for _, p := range plans {
		entries, err := dlq.Read(ctx, client, string(p.DLQTopic()), dlq.Filter{}, 3)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nsample DLQ records (%s):\n", p.DLQTopic())
		dlq.WriteList(w, entries)
		for _, e := range entries {
			if e.SchemaID != 0 {
				fmt.Fprintf(w, "  %d/%d from %s/%d@%d: %s=%d\n", e.DLQPartition, e.DLQOffset, e.Topic, e.Partition, e.Offset, dlq.HeaderSchemaID, e.SchemaID)
			}
		}
	}
	return nil
}

// ReadTopic reads up to limit records from the start of every partition
// of topic, up to the high-water marks taken at the start.
func ReadTopic(ctx context.Context, client sarama.Client, topic string, limit int) ([]*sarama.ConsumerMessage, error) {
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	var out []*sarama.ConsumerMessage
	for _, n := range parts {
		hwm, err := client.GetOffset(topic, n, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		oldest, err := client.GetOffset(topic, n, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		if hwm <= oldest {
			continue
		}
		pc, err := c.ConsumePartition(topic, n, oldest)
		if err != nil {
			return nil, err
		}
		for {
			var m *sarama.ConsumerMessage
			select {
			case m = <-pc.Messages():
			case <-ctx.Done():
				pc.Close()
				return out, ctx.Err()
			case <-time.After(10 * time.Second):
				pc.Close()
				return out, errors.New("demo: timed out reading " + topic)
			}
			out = append(out, m)
			if (limit > 0 && len(out) >= limit) || m.Offset >= hwm-1 {
				break
			}
		}
		pc.Close()
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}
