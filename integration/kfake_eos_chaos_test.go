package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/topology"
)

// Exactly-once under chaos, with real `cdcsync run` processes: 200k events
// flow while a random worker is killed with SIGKILL at random moments (at
// least five times) and restarted, and workers are added and removed. At
// the end a read_committed consumer of the sink sees every expected event
// exactly once, in per-key order, and none is missing.
func TestKfakeExactlyOnceChaos(t *testing.T) {
	events := 200_000
	if testing.Short() {
		events = 40_000
	}
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 8, src.Topic())
	exactlyOnceChaos(t, st.Brokers(), src, "chaos", events)
}

// exactlyOnceChaos runs the chaos scenario against brokers, whose topic
// src.Topic() exists with 8 partitions: worker processes are killed and
// restarted, added and removed while events flow; the sink must hold every
// event exactly once for a read_committed reader.
func exactlyOnceChaos(t *testing.T, brokers []string, src *demo.Source, name string, events int) {
	doc := fmt.Sprintf(eosTopology, name, src.Topic(), "sync."+name)
	plan := mustPlan(t, doc)
	dir := writeTopology(t, doc)
	w := makeWorkload(src, 3000, events, 0.10, 8)

	// Producing takes a while; the chaos happens meanwhile.
	produced := make(chan error, 1)
	go func() {
		chunk := len(w.Records) / 20
		for i := 0; i < len(w.Records); i += chunk {
			if err := demo.Produce(brokers, w.Records[i:min(i+chunk, len(w.Records))]); err != nil {
				produced <- err
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		produced <- nil
	}()

	rng := rand.New(rand.NewPCG(9, 10))
	env := []string{"CDCSYNC_SESSION_TIMEOUT=6s", "CDCSYNC_HEARTBEAT=500ms"}
	n := 0
	start := func() *proc {
		n++
		return startProcess(t, fmt.Sprintf("%s-%d", name, n), brokers, dir, env...)
	}
	workers := []*proc{start(), start(), start()}
	kills := 0
	for i := 0; i < 7; i++ {
		time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
		switch i {
		case 2: // scale out
			workers = append(workers, start())
			t.Logf("added a worker (%d running)", len(workers))
		case 4: // scale in, softly
			j := rng.IntN(len(workers))
			if err := workers[j].terminate(time.Minute); err != nil {
				t.Errorf("SIGTERM: %v", err)
			}
			workers = append(workers[:j], workers[j+1:]...)
			t.Logf("removed a worker (%d running)", len(workers))
		default:
			j := rng.IntN(len(workers))
			workers[j].kill()
			kills++
			workers[j] = start()
			t.Logf("killed worker %d with SIGKILL and restarted it (kill %d)", j, kills)
		}
	}
	if kills < 5 {
		t.Fatalf("only %d kills", kills)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	workers = settleKfakeGroup(t, brokers, string(plan.Group()), workers, start)
	if err := demo.WaitProcessed(context.Background(), brokers, []*topology.Plan{plan}, 4*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, p := range workers {
		if err := p.terminate(time.Minute); err != nil {
			t.Errorf("SIGTERM: %v", err)
		}
	}
	msgs := readCommitted(t, brokers, "sync."+name)
	checkExactlyOnce(t, msgs, w)
	t.Logf("%d events, %d unique, %d committed sink records", len(w.Records), w.Unique, len(msgs))
}
