package integration

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcsync/cdcsync/internal/demo"
)

// The broker becomes unreachable for 8 seconds while events flow: every
// request's connection is closed, the consumer's own included. That is a
// transient failure: nothing goes to the DLQ and no change is lost. The
// consumer losing its group connection ends the session (sarama's doing,
// the one restart the circuit breaker cannot avoid; see DESIGN.md);
// TestKfakeProduceOutageBreaker covers an outage of the produce path
// alone, which costs no restart.
func TestKfakeBrokerOutage(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "outage", src.Topic(), "sync.outage"))
	w := makeWorkload(src, 300, 20_000, 0.05, 6)
	half := len(w.Records) / 2
	produce(t, brokers, w.Records[:half])

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

	wk := startWorker(t, brokers, "w1", plan)
	time.Sleep(1500 * time.Millisecond)
	down.Store(true)
	time.Sleep(8 * time.Second)
	down.Store(false)
	produce(t, brokers, w.Records[half:])
	waitProcessed(t, brokers, 2*time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	if refused.Load() == 0 {
		t.Fatal("the outage refused no request: the test did not test anything")
	}
	s := wk.w.Stats(plan.Name())
	if s.DLQ != 0 {
		t.Errorf("%d records went to the DLQ during a broker outage; transient failures must not", s.DLQ)
	}
	msgs := readAll(t, brokers, "sync.outage")
	seen := map[string]int{}
	for _, m := range msgs {
		seen[decodeSink(t, m).ID]++
	}
	if len(seen) != w.Unique {
		t.Errorf("sink holds %d distinct events, want %d", len(seen), w.Unique)
	}
	dlqMsgs := readAll(t, brokers, string(plan.DLQTopic()))
	if len(dlqMsgs) != 0 {
		t.Errorf("DLQ topic holds %d records", len(dlqMsgs))
	}
	t.Logf("refused %d requests; %d session restarts; %d sink records for %d events", refused.Load(), s.Restarts, len(msgs), w.Unique)
}
