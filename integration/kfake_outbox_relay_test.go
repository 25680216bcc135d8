package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/outbox"
	"github.com/cdcsync/cdcsync/processor/apply/pgapply/pgtest"
)

// TestKfakeOutboxRelay runs two polling relays side by side on a real
// PostgreSQL outbox table, one of which "crashes" three times (its first three rounds, before the other starts) after the
// broker acknowledged a batch and before deleting its rows. Every event
// is published at least once (some twice), the table ends empty, and the
// debezium-outbox topology downstream writes each event exactly once, in
// per-aggregate order.
func TestKfakeOutboxRelay(t *testing.T) {
	cl := pgtest.StartTB(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, cl.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, outbox.DDL); err != nil {
		t.Fatal(err)
	}
	const relayTopic = "outbox.relay.order"
	st, err := embedded.Start(embedded.Options{Topics: []string{relayTopic}, Partitions: 3, NoRegistry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	brokers := st.Brokers()

	w, _ := outbox.New(outbox.Config{})
	const n, aggs = 400, 20
	ids := make([]string, n)
	base := time.Now()
	for i := 0; i < n; i++ {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i], err = w.Write(ctx, outbox.PgxTx(tx), outbox.Event{AggregateType: "order", AggregateID: fmt.Sprintf("order-%d", i%aggs),
			Type: "OrderUpdated", Payload: []byte(fmt.Sprintf(`{"seq": %d}`, i)), Timestamp: base.Add(time.Duration(i) * time.Microsecond),
			Headers: map[string]string{"traceparent": fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var crashes atomic.Int32
	for _, i := range []int{1, 0} { // the crashing relay starts first
		prod, err := sarama.NewSyncProducer(brokers, outbox.RelayProducerConfig(fmt.Sprintf("relay-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		cfg := outbox.RelayConfig{Batch: 25, Poll: 20 * time.Millisecond}
		if i == 1 {
			cfg.AfterPublish = func() error {
				if crashes.Add(1) <= 3 {
					return errors.New("simulated crash after the publish")
				}
				return nil
			}
		}
		r, err := outbox.NewRelay(cfg, pool, prod, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(rctx) }()
		for i == 1 && crashes.Load() < 3 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still in the outbox after a minute", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if crashes.Load() < 3 {
		t.Fatalf("only %d simulated crashes", crashes.Load())
	}

	// At least once on the relay topic, some twice.
	published := map[string]int{}
	for _, m := range readAll(t, brokers, relayTopic) {
		for _, h := range m.Headers {
			if string(h.Key) == "id" {
				published[string(h.Value)]++
			}
		}
	}
	dups := 0
	for _, id := range ids {
		if published[id] == 0 {
			t.Fatalf("event %s never published", id)
		}
		dups += published[id] - 1
	}
	if dups == 0 {
		t.Fatal("no event was republished: the crash test tested nothing")
	}
	t.Logf("%d events, %d republished copies on %s", n, dups, relayTopic)

	// Downstream of the router: exactly once, in per-aggregate order.
	plan := mustPlan(t, fmt.Sprintf(`name: outbox-relay-router
systems: [shop]
source: {topics: [%s], system: shop, format: debezium-outbox}
sink:
  topic: outbox.event.{aggregatetype}
  format: payload
guarantee: exactly_once
`, relayTopic))
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	out := readOutputs(t, brokers, "outbox.event.order", "exactly_once")
	if len(out) != n {
		t.Fatalf("outbox.event.order holds %d records, want %d", len(out), n)
	}
	seen := map[string]bool{}
	last := map[string]int{}
	for _, m := range out {
		var id string
		for _, h := range m.Headers {
			if string(h.Key) == "id" {
				id = string(h.Value)
			}
		}
		if seen[id] {
			t.Fatalf("event %s twice downstream of the router", id)
		}
		seen[id] = true
		var body struct{ Seq int }
		if err := json.Unmarshal(m.Value, &body); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[string(m.Key)]; ok && body.Seq <= prev {
			t.Errorf("aggregate %s: seq %d after %d", m.Key, body.Seq, prev)
		}
		last[string(m.Key)] = body.Seq
	}
}

// TestKfakeOutboxRelaySIGKILL runs two `cdcsync outbox relay` processes on
// a real PostgreSQL outbox table and kills one with SIGKILL three times
// while it works (each time restarting it): every event is published at
// least once, the table ends empty, and downstream of the router each
// event appears exactly once, in per-aggregate order.
func TestKfakeOutboxRelaySIGKILL(t *testing.T) {
	bin := cdcsyncBinary(t)
	cl := pgtest.StartTB(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, cl.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, outbox.DDL); err != nil {
		t.Fatal(err)
	}
	const relayTopic = "outbox.relay.order"
	st, err := embedded.Start(embedded.Options{Topics: []string{relayTopic}, Partitions: 3, NoRegistry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	brokers := st.Brokers()

	w, _ := outbox.New(outbox.Config{})
	const n, aggs = 3000, 50
	ids := make([]string, n)
	base := time.Now()
	batch := &pgx.Batch{}
	for i := 0; i < n; i++ {
		ids[i] = outbox.NewID()
		batch.Queue(`INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, "timestamp") VALUES ($1::uuid, 'order', $2, 'OrderUpdated', $3::jsonb, $4)`,
			ids[i], fmt.Sprintf("order-%d", i%aggs), fmt.Sprintf(`{"seq": %d}`, i), base.Add(time.Duration(i)*time.Microsecond))
	}
	_ = w // the rows are written in bulk here; TestKfakeOutboxRelay uses the writer
	if err := pool.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}

	start := func(name string) *exec.Cmd {
		cmd := exec.Command(bin, "outbox", "relay", "--dsn-env", "RELAY_DSN", "--brokers", strings.Join(brokers, ","),
			"--batch", "50", "--poll", "20ms", "--log-level", "warn")
		cmd.Env = append(os.Environ(), "RELAY_DSN="+cl.DSN(""))
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
			if t.Failed() {
				t.Logf("relay %s log:\n%s", name, tail(out.String(), 20))
			}
		})
		return cmd
	}
	left := func() int {
		var k int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	victim := start("a0")
	start("b")
	for kill := 1; kill <= 3; kill++ {
		target := n - kill*n/5
		deadline := time.Now().Add(time.Minute)
		for left() > target {
			if time.Now().After(deadline) {
				t.Fatalf("relays stuck at %d rows", left())
			}
			time.Sleep(2 * time.Millisecond)
		}
		_ = victim.Process.Signal(syscall.SIGKILL)
		_, _ = victim.Process.Wait()
		victim = start(fmt.Sprintf("a%d", kill))
	}
	deadline := time.Now().Add(time.Minute)
	for left() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still in the outbox", left())
		}
		time.Sleep(20 * time.Millisecond)
	}

	published := map[string]int{}
	for _, m := range readAll(t, brokers, relayTopic) {
		for _, h := range m.Headers {
			if string(h.Key) == "id" {
				published[string(h.Value)]++
			}
		}
	}
	dups := 0
	for _, id := range ids {
		if published[id] == 0 {
			t.Fatalf("event %s never published", id)
		}
		dups += published[id] - 1
	}
	t.Logf("%d events, %d republished copies after 3 SIGKILLs", n, dups)
	// The relay's own promise: the first copies keep each aggregate's order.
	firstSeen := map[string]bool{}
	lastFirst := map[string]int{}
	for _, m := range readAll(t, brokers, relayTopic) {
		var body struct{ Seq int }
		_ = json.Unmarshal(m.Value, &body)
		id := ids[body.Seq]
		if firstSeen[id] {
			continue
		}
		firstSeen[id] = true
		if prev, ok := lastFirst[string(m.Key)]; ok && body.Seq <= prev {
			t.Errorf("relay topic %d@%d: aggregate %s: first copy of seq %d after %d", m.Partition, m.Offset, m.Key, body.Seq, prev)
		}
		lastFirst[string(m.Key)] = body.Seq
	}

	plan := mustPlan(t, fmt.Sprintf(`name: outbox-relay-kill
systems: [shop]
source: {topics: [%s], system: shop, format: debezium-outbox}
sink:
  topic: outbox.event.{aggregatetype}
  format: payload
guarantee: exactly_once
`, relayTopic))
	wk := startWorker(t, brokers, "w1", plan)
	waitProcessed(t, brokers, time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	out := readOutputs(t, brokers, "outbox.event.order", "exactly_once")
	if len(out) != n {
		t.Fatalf("outbox.event.order holds %d records, want %d", len(out), n)
	}
	seen := map[string]bool{}
	last := map[string]int{}
	for _, m := range out {
		var id string
		for _, h := range m.Headers {
			if string(h.Key) == "id" {
				id = string(h.Value)
			}
		}
		if seen[id] {
			t.Fatalf("event %s twice downstream of the router", id)
		}
		seen[id] = true
		var body struct{ Seq int }
		if err := json.Unmarshal(m.Value, &body); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[string(m.Key)]; ok && body.Seq <= prev {
			t.Errorf("aggregate %s: seq %d after %d", m.Key, body.Seq, prev)
		}
		last[string(m.Key)] = body.Seq
	}
}
