package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/topology"
)

func writeTopology(t *testing.T, doc string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "topology.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sumHWM(t *testing.T, c sarama.Client, topic string) int64 {
	t.Helper()
	if err := c.RefreshMetadata(topic); err != nil {
		return 0
	}
	parts, err := c.Partitions(topic)
	if err != nil {
		return 0
	}
	var n int64
	for _, p := range parts {
		// Right after a topic is created, a real broker may answer
		// NOT_LEADER until leadership settles: retry for a while.
		off, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
			if !errors.Is(err, sarama.ErrNotLeaderForPartition) && !errors.Is(err, sarama.ErrLeaderNotAvailable) &&
				!errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				break
			}
			time.Sleep(200 * time.Millisecond)
			_ = c.RefreshMetadata(topic)
			off, err = c.GetOffset(topic, p, sarama.OffsetNewest)
		}
		if err != nil {
			t.Fatal(err)
		}
		n += off
	}
	return n
}

// ledgerEntries counts the event entries in a ledger topic: one per
// single-ID record, and every entry of a batch record (group commit), so
// not the high-water mark.
func ledgerEntries(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	var n int64
	var entries []ledger.BatchEntry
	for _, m := range readAll(t, brokers, topic) {
		if !ledger.IsBatchKey(m.Key) {
			n++
			continue
		}
		var err error
		if entries, err = ledger.DecodeBatch(entries[:0], m.Value); err != nil {
			t.Fatalf("ledger %s/%d@%d: %v", topic, m.Partition, m.Offset, err)
		}
		n += int64(len(entries))
	}
	return n
}

// A worker process is killed with SIGKILL mid-stream, before it committed
// any offset. The restarted worker restores the ledger and drops every
// redelivered record whose output was already written and recorded; only
// records in flight at the kill may repeat, and nothing is lost.
func TestKfakeCrashRestart(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	doc := fmt.Sprintf(contactsTopology, "crash", src.Topic(), "sync.crash")
	plan := mustPlan(t, doc)
	dir := writeTopology(t, doc)
	w := makeWorkload(src, 500, 30_000, 0.10, 4)
	produce(t, brokers, w.Records)
	client := newClient(t, brokers)

	// No offset commit before the kill: everything is redelivered.
	a := startProcess(t, "worker-a", brokers, dir, "CDCSYNC_COMMIT_INTERVAL=1h")
	deadline := time.Now().Add(2 * time.Minute)
	for sumHWM(t, client, "sync.crash") < 8000 {
		if time.Now().After(deadline) {
			t.Fatal("worker A produced too little before the deadline")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill()
	sinkAtKill := sumHWM(t, client, "sync.crash")
	ledgered := ledgerEntries(t, brokers, string(plan.LedgerTopic()))
	if ledgered == 0 || sinkAtKill < ledgered {
		t.Fatalf("at the kill: %d sink records, %d ledger entries", sinkAtKill, ledgered)
	}

	b := startProcess(t, "worker-b", brokers, dir)
	if err := demo.WaitProcessed(context.Background(), brokers, []*topology.Plan{plan}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	dups, err := b.metric("cdcsync_duplicates_total", `topology="crash"`)
	if err != nil {
		t.Fatal(err)
	}
	// Every redelivered record that A had written and recorded is dropped.
	if want := float64(int64(w.Dups) + ledgered); dups != want {
		t.Errorf("worker B dropped %v duplicates, want %v (%d in the data + %d already applied by A)", dups, want, w.Dups, ledgered)
	}
	if err := b.terminate(time.Minute); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	msgs := readAll(t, brokers, "sync.crash")
	seen := map[string]int{}
	for _, m := range msgs {
		seen[decodeSink(t, m).ID]++
	}
	if len(seen) != w.Unique {
		t.Errorf("sink holds %d distinct events, want %d: changes were lost", len(seen), w.Unique)
	}
	repeats := int64(len(msgs) - len(seen))
	if max := sinkAtKill - ledgered; repeats > max {
		t.Errorf("%d sink records repeat; only the %d outputs written without a ledger entry at the kill may", repeats, max)
	}
	t.Logf("at kill: %d outputs, %d ledgered; after restart: %d duplicates dropped, %d repeats in the sink", sinkAtKill, ledgered, int64(dups), repeats)
}

// SIGTERM shuts a worker down softly: it finishes in-flight records,
// commits, leaves the group and exits 0; a restart then has nothing to
// redo.
func TestKfakeGracefulShutdown(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	doc := fmt.Sprintf(contactsTopology, "graceful", src.Topic(), "sync.graceful")
	plan := mustPlan(t, doc)
	dir := writeTopology(t, doc)
	w := makeWorkload(src, 200, 5000, 0, 5)
	produce(t, brokers, w.Records)

	a := startProcess(t, "worker-a", brokers, dir, "CDCSYNC_COMMIT_INTERVAL=1h")
	if err := a.waitReady(time.Minute); err != nil {
		t.Fatal(err)
	}
	// Wait until every output is written; with a one-hour commit
	// interval, only the soft shutdown can commit the offsets.
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := a.metric("cdcsync_records_out_total", `topology="graceful"`)
		if err == nil && int(out) == w.Unique {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outputs not written in time: %v %v", out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := a.terminate(time.Minute); err != nil {
		t.Fatalf("SIGTERM: exit %v", err)
	}
	if err := demo.WaitProcessed(context.Background(), brokers, []*topology.Plan{plan}, 5*time.Second); err != nil {
		t.Fatalf("after SIGTERM the offsets are not committed: %v", err)
	}
	checkExactlyOnce(t, readAll(t, brokers, "sync.graceful"), w)
}
