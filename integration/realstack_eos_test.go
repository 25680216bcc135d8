//go:build realstack

package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
)

// The exactly-once chaos test on real Apache Kafka: 200k events, worker
// processes killed with SIGKILL at random moments and restarted, workers
// added and removed; a read_committed reader of the sink sees every event
// exactly once.
func TestRealStackExactlyOnceChaos(t *testing.T) {
	s := loadStack(t)
	run := runID()
	src := demo.NewSource("eos"+run, "erp", false)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(s.brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(src.Topic(), &sarama.TopicDetail{NumPartitions: 8, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	exactlyOnceChaos(t, s.brokers, src, fmt.Sprintf("chaos-%s", run), 200_000)
}

// The re-snapshot test under exactly_once on the real stack: Debezium
// snapshots the table again after streaming changes; the ledger (restored
// read_committed) drops every re-emitted row, and the committed sink does
// not change.
func TestRealStackExactlyOnceResnapshot(t *testing.T) {
	s := loadStack(t)
	run := runID()
	db, prefix := "eos_"+run, "eo"+run
	topic, sink := prefix+".public.accounts", "sync.eos."+run+".accounts"
	s.psql(t, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { _, _ = s.psqlErr("postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	s.psql(t, db, `
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance numeric(12,2), opened date);
INSERT INTO accounts SELECT g, 'owner ' || g, g * 10.5, DATE '2026-01-01' + g FROM generate_series(1, 40) g;
`)
	dir, plans := writeTopologies(t, fmt.Sprintf(`name: eos-%[1]s
systems: [erp]
source: {topics: [%[2]s], system: erp, format: debezium-json}
sink: {topic: %[3]s, key: [id]}
guarantee: exactly_once
commit_interval: 100ms
`, run, topic, sink))
	conn := "eos-" + run
	s.connector(t, conn, db, prefix, map[string]string{"snapshot.mode": "always"})
	workers := startWorkers(t, s, dir, "eos-w1-"+run, "eos-w2-"+run)

	committed := func() int { return len(readCommitted(t, s.brokers, sink)) }
	eventually(t, 90*time.Second, "snapshot in the sink", func() string {
		if n := committed(); n != 40 {
			return fmt.Sprintf("%d/40 committed sink records", n)
		}
		return ""
	})
	// Streaming changes, then a re-snapshot of the changed and unchanged rows.
	s.psql(t, db, `UPDATE accounts SET balance = balance + 1 WHERE id <= 10; DELETE FROM accounts WHERE id = 40;`)
	eventually(t, 90*time.Second, "changes in the sink", func() string {
		// 10 updates, and the delete with its tombstone.
		if n := committed(); n != 40+10+2 {
			return fmt.Sprintf("%d/52 committed sink records", n)
		}
		return ""
	})
	waitAll(t, s, plans)
	srcBefore := s.hwm(t, topic)
	s.restartConnector(t, conn)
	eventually(t, 90*time.Second, "the re-snapshot in the source topic", func() string {
		if grown := s.hwm(t, topic) - srcBefore; grown < 39 {
			return fmt.Sprintf("source grew by %d of 39 rows", grown)
		}
		return ""
	})
	waitAll(t, s, plans)
	if n := committed(); n != 52 {
		t.Errorf("after the re-snapshot the committed sink holds %d records, want 52: re-snapshot rows got through", n)
	}
	if dups := sumMetric(t, workers, "cdcsync_duplicates_total"); dups < 39 {
		t.Errorf("duplicates dropped = %v, want at least the 39 re-snapshot rows", dups)
	}
}
