//go:build realstack

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor/saga"
)

// The demo's order saga on the real stack (Kafka 4 KRaft), run by two
// `cdcsync run` processes: the triggers come from a plain topic (the
// PostgreSQL outbox of issue 16 was being built at the same time), the
// demo's stock, payment and shipping participants answer, one payment in
// eight is declined. Every saga ends, the declined ones compensated
// (their stock released), and each command reaches a read_committed
// reader exactly once.
func TestRealStackOrderSaga(t *testing.T) {
	s := loadStack(t)
	id := runID()
	name := "order-saga-" + id
	trigger := "rs.orders." + id
	suffix := "." + id
	const parts = 3
	admin := newAdmin(t, s.brokers)
	if err := admin.CreateTopic(trigger, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	doc := string(demo.TopologyFiles()["order-saga.yaml"])
	doc = strings.ReplaceAll(doc, "name: order-saga", "name: "+name)
	doc = strings.ReplaceAll(doc, "topic: shop.orders", "topic: "+trigger)
	for _, svc := range []string{"stock", "payment", "shipping"} {
		doc = strings.ReplaceAll(doc, svc+".commands", svc+".commands"+suffix)
		doc = strings.ReplaceAll(doc, svc+".replies", svc+".replies"+suffix)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := mustPlan(t, doc)
	ps := startWorkers(t, s, dir, "saga-rs-1-"+id, "saga-rs-2-"+id)

	records, declines := demo.Orders(60)
	decline := map[string]bool{}
	for i := range records {
		records[i].Topic = trigger
		if i%8 == 5 { // the demo's payment provider declines one order in eight
			decline[string(records[i].Key)] = true
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, stopParts, err := demo.RunParticipants(ctx, s.brokers, parts, decline, suffix)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); stopParts() }()
	if err := demo.Produce(s.brokers, records); err != nil {
		t.Fatal(err)
	}
	states, err := demo.WaitSagas(ctx, s.brokers, string(plan.SagaStateTopic()), len(records), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	n := map[saga.Status]int{}
	for _, st := range states {
		n[st.Status]++
		if st.Status == saga.Compensated && (st.Steps[0].Status != saga.StepCompensated || st.Steps[1].Status != saga.StepFailed) {
			t.Errorf("saga %s: steps %+v", st.ID, st.Steps)
		}
	}
	if n[saga.Completed] != len(records)-declines || n[saga.Compensated] != declines || n[saga.Failed] != 0 {
		t.Fatalf("outcomes %v, want %d completed and %d compensated", n, len(records)-declines, declines)
	}
	stats := p.Stats()
	if stats.Reserved != len(records)-declines || stats.Released != declines || stats.Charged != len(records)-declines || stats.Shipped != len(records)-declines {
		t.Errorf("participants %+v", stats)
	}
	seen := map[string]int{}
	for _, svc := range []string{"stock", "payment", "shipping"} {
		for _, m := range readCommitted(t, s.brokers, svc+".commands"+suffix) {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[string(x.Key)] = string(x.Value)
			}
			seen[fmt.Sprint(h[saga.HeaderID], h[saga.HeaderStep], h[saga.HeaderKind], h[saga.HeaderAttempt])]++
		}
	}
	want := 3*(len(records)-declines) + 2*declines + declines // commands, plus one ReleaseStock each
	if len(seen) != want {
		t.Errorf("%d distinct commands, want %d", len(seen), want)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s: %d times to a read_committed reader", k, c)
		}
	}
	if v := sumMetric(t, ps, "cdcsync_saga_completed_total", `topology="`+name+`"`); v != float64(len(records)-declines) {
		t.Errorf("cdcsync_saga_completed_total = %v", v)
	}
	t.Logf("%d sagas on the real stack: %v; participants %+v", len(states), n, stats)
}

func newAdmin(t *testing.T, brokers []string) sarama.ClusterAdmin {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	a, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
