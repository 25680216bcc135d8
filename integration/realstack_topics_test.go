//go:build realstack

package integration

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/dlq"
)

// The real stack's broker runs with auto.create.topics.enable=true and
// num.partitions=1 (Kafka's defaults; see realstack/up.sh), one broker, so
// the only possible replication factor is 1: the test sets
// replication_factor 1 and checks it, which shows the setting is used but
// cannot tell it from the broker default.

// topicLayout returns the partition count and the replica count of
// partition 0 of topic.
func topicLayout(t *testing.T, s *stack, topic string) (partitions, replicas int) {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, s.brokers))
	if err != nil {
		t.Fatal(err)
	}
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range md {
		if m.Name == topic && len(m.Partitions) > 0 {
			return len(m.Partitions), len(m.Partitions[0].Replicas)
		}
	}
	return 0, 0
}

// Regression (issue 9, item 1 and 8a): with the broker's auto-creation on,
// sarama's metadata requests created the sink and DLQ topics with 1
// partition. Now both get the source's 3 partitions and replication factor
// 1, cdcsync logs their creation, and a row whose sink record is over the
// producer's limit goes to the DLQ (stage produce, its copy cut to fit)
// while later rows keep flowing.
func TestRealStackTopicsCreatedAndOversized(t *testing.T) {
	s := loadStack(t)
	run := runID()
	db, prefix := "topics_"+run, "tp"+run
	srcTopic, sink := prefix+".public.acct", "sync."+run+".acct"
	name := "topics-" + run
	s.psql(t, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { _, _ = s.psqlErr("postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	s.psql(t, db, `CREATE TABLE acct (id bigint PRIMARY KEY, note text); INSERT INTO acct VALUES (1, 'a'), (2, 'b');`)
	dir, plans := writeTopologies(t, fmt.Sprintf(`name: %s
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-json}
sink: {topic: %s, key: [id]}
`, name, srcTopic, sink))
	// The source topic accepts the 1.2 MB row; the sink and DLQ keep the
	// defaults.
	s.connector(t, "topics-"+run, db, prefix, map[string]string{
		"producer.override.max.request.size":       "4000000",
		"topic.creation.default.max.message.bytes": "4000000",
	})
	w := startProcess(t, "tp-w1-"+run, s.brokers, dir, "CDCSYNC_COMMIT_INTERVAL=200ms", "CDCSYNC_REPLICATION_FACTOR=1")
	if err := w.waitReady(60 * time.Second); err != nil {
		t.Fatalf("worker not ready: %v\n%s", err, tail(w.log.String(), 40))
	}
	eventually(t, 90*time.Second, "snapshot in the sink", func() string {
		if n := s.hwm(t, sink); n < 2 {
			return fmt.Sprintf("sink holds %d of 2", n)
		}
		return ""
	})
	for _, topic := range []string{sink, "dlq." + name} {
		if p, r := topicLayout(t, s, topic); p != 3 || r != 1 {
			t.Errorf("%s: %d partitions, replication factor %d; want the source's 3 and 1", topic, p, r)
		}
		if !strings.Contains(w.log.String(), "created topic") || !strings.Contains(w.log.String(), topic) {
			t.Errorf("the worker did not log the creation of %s", topic)
		}
	}

	big := bigText(1_200_000)
	s.psql(t, db, fmt.Sprintf("INSERT INTO acct VALUES (3, '%s')", big))
	s.psql(t, db, "INSERT INTO acct VALUES (4, 'after the big one')")
	eventually(t, 90*time.Second, "the big row in the DLQ and the next row in the sink", func() string {
		if d, n := s.hwm(t, "dlq."+name), s.hwm(t, sink); d < 1 || n < 3 {
			return fmt.Sprintf("DLQ %d of 1, sink %d of 3", d, n)
		}
		return ""
	})
	waitAll(t, s, plans)
	entries, err := dlq.Read(t.Context(), newClient(t, s.brokers), "dlq."+name, dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("DLQ holds %d records, want 1", len(entries))
	}
	e := entries[0]
	if e.Stage != dlq.StageProduce || e.ExceptionClass != "processor.ErrOutputTooLarge" || e.Topic != srcTopic {
		t.Errorf("DLQ: stage %q class %q origin %s; want produce, processor.ErrOutputTooLarge, %s", e.Stage, e.ExceptionClass, e.Topic, srcTopic)
	}
	if header(e, dlq.HeaderTruncated) != "value" || len(e.Value) == 0 || len(e.Value) > 1_000_000 {
		t.Errorf("DLQ copy: %s=%q, value %d bytes; want the value cut to fit", dlq.HeaderTruncated, header(e, dlq.HeaderTruncated), len(e.Value))
	}
	last, _ := sinkState(t, s, sink)
	if r := decodeSink(t, mustRecord(t, last, `{"id":4}`)); string(r.Fields["note"]) != `"after the big one"` {
		t.Errorf("row 4 in the sink: %s", r.Fields["note"])
	}
	if n, err := w.metric("cdcsync_dlq_records_total"); err != nil || n != 1 {
		t.Errorf("cdcsync_dlq_records_total = %v (%v), want 1", n, err)
	}
}

// Regression (issue 9, item 3): a TRUNCATE was written to every sink
// partition when consumed, so a change committed before it but read later
// from a lagging partition landed after it. With the default
// source.truncate: dlq, the truncate goes to the DLQ and every change
// reaches the sink. The backlog is real: worker B owns key K's partition
// and is stopped (SIGSTOP) while K is updated and then the table
// truncated; worker A handles the truncate first, then B resumes and
// delivers K's older update.
func TestRealStackTopicsTruncateBacklog(t *testing.T) {
	s := loadStack(t)
	run := runID()
	db, prefix := "trbl_"+run, "tb"+run
	srcTopic, sink := prefix+".public.acct", "sync."+run+".tracct"
	name := "trbl-" + run
	s.psql(t, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { _, _ = s.psqlErr("postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	s.psql(t, db, `CREATE TABLE acct (id bigint PRIMARY KEY, note text);
INSERT INTO acct SELECT g, 'v0' FROM generate_series(1, 12) g;`)
	dir, plans := writeTopologies(t, fmt.Sprintf(`name: %s
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-json}
sink: {topic: %s, key: [id]}
`, name, srcTopic, sink))
	s.connector(t, "trbl-"+run, db, prefix, nil)
	// A long session timeout, so that A does not take B's partitions while
	// B is stopped.
	w1 := startProcess(t, "tb-a-"+run, s.brokers, dir, "CDCSYNC_COMMIT_INTERVAL=200ms", "CDCSYNC_SESSION_TIMEOUT=60s", "CDCSYNC_HEARTBEAT=1s")
	w2 := startProcess(t, "tb-b-"+run, s.brokers, dir, "CDCSYNC_COMMIT_INTERVAL=200ms", "CDCSYNC_SESSION_TIMEOUT=60s", "CDCSYNC_HEARTBEAT=1s")
	for _, p := range []*proc{w1, w2} {
		if err := p.waitReady(60 * time.Second); err != nil {
			t.Fatalf("worker not ready: %v", err)
		}
	}
	eventually(t, 90*time.Second, "snapshot in the sink", func() string {
		if n := s.hwm(t, sink); n < 12 {
			return fmt.Sprintf("sink holds %d of 12", n)
		}
		return ""
	})
	waitAll(t, s, plans)

	// Kafka's producer keeps null-key records on one "sticky" partition
	// until 16 KB went there, so a first truncate shows where the next
	// ones go. The rows come back afterwards.
	truncatePartitions := func() map[int32]int {
		ps := map[int32]int{}
		for _, m := range readAll(t, s.brokers, srcTopic) {
			if bytes.Contains(m.Value, []byte(`"op":"t"`)) {
				ps[m.Partition]++
			}
		}
		return ps
	}
	truncate := func() {
		t.Helper()
		before := s.hwm(t, srcTopic)
		s.psql(t, db, "TRUNCATE acct")
		eventually(t, 60*time.Second, "truncate in the source topic", func() string {
			if s.hwm(t, srcTopic) <= before {
				return "not yet"
			}
			return ""
		})
	}
	truncate()
	var sticky int32 = -1
	for p := range truncatePartitions() {
		sticky = p
	}
	s.psql(t, db, "INSERT INTO acct SELECT g, 'v1' FROM generate_series(1, 12) g")
	eventually(t, 60*time.Second, "rows back in the sink", func() string {
		if n := s.hwm(t, sink); n < 24 {
			return fmt.Sprintf("sink holds %d of 24", n)
		}
		return ""
	})
	waitAll(t, s, plans)

	// The worker that does not own the sticky partition is B, the one
	// stopped; K is a key on one of its partitions.
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, s.brokers))
	if err != nil {
		t.Fatal(err)
	}
	var b *proc
	owned := map[int32]bool{}
	eventually(t, 30*time.Second, "both workers own partitions", func() string {
		groups, err := admin.DescribeConsumerGroups([]string{"cdcsync." + name})
		if err != nil || len(groups) != 1 || len(groups[0].Members) != 2 {
			return fmt.Sprintf("group: %v", err)
		}
		for _, m := range groups[0].Members {
			as, err := m.GetMemberAssignment()
			if err != nil {
				return err.Error()
			}
			mine := map[int32]bool{}
			for _, p := range as.Topics[srcTopic] {
				mine[p] = true
			}
			if len(mine) > 0 && !mine[sticky] {
				owned = mine
				b = w2
				if strings.HasPrefix(m.ClientId, "tb-a-"+run) {
					b = w1
				}
			}
		}
		if b == nil {
			return fmt.Sprintf("no worker without the sticky partition %d", sticky)
		}
		return ""
	})
	keyOf := map[string]int32{}
	for _, m := range readAll(t, s.brokers, srcTopic) {
		if i := bytes.Index(m.Key, []byte(`"payload":{"id":`)); i >= 0 {
			keyOf[string(m.Key[i+len(`"payload":{"id":`):len(m.Key)-2])] = m.Partition
		}
	}
	k := ""
	for id, p := range keyOf {
		if owned[p] {
			k = id
			break
		}
	}
	if k == "" {
		t.Fatalf("no key on B's partitions %v: %v", owned, keyOf)
	}

	// The backlog: B stops; K is updated, then the table is truncated,
	// again if needed until a truncate lands on a partition A owns.
	dlqBefore := s.hwm(t, "dlq."+name)
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = b.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	s.psql(t, db, "UPDATE acct SET note = 'before the truncate' WHERE id = "+k)
	onA := func() int {
		n := 0
		for p, c := range truncatePartitions() {
			if !owned[p] {
				n += c
			}
		}
		return n
	}
	firstOnA := onA()
	for try := 0; try < 5 && onA() == firstOnA; try++ {
		truncate()
	}
	if onA() == firstOnA {
		t.Fatalf("no truncate landed on A's partitions in 5 tries: B owns %v, truncates on %v", owned, truncatePartitions())
	}
	// A handles a truncate (to the DLQ) while K's older update waits in
	// B's backlog.
	eventually(t, 60*time.Second, "A sends the truncate to the DLQ", func() string {
		if n := s.hwm(t, "dlq."+name); n <= dlqBefore {
			return "no new DLQ record"
		}
		return ""
	})
	last, _ := sinkState(t, s, sink)
	if r := decodeSink(t, mustRecord(t, last, `{"id":`+k+`}`)); string(r.Fields["note"]) == `"before the truncate"` {
		t.Fatal("K's update reached the sink before the truncate was handled: there was no backlog")
	}
	resume()
	waitAll(t, s, plans)

	last, all := sinkState(t, s, sink)
	if r := decodeSink(t, mustRecord(t, last, `{"id":`+k+`}`)); string(r.Fields["note"]) != `"before the truncate"` {
		t.Errorf("K's update, committed before the truncate, is missing from the sink: %s", r.Fields["note"])
	}
	for _, m := range all {
		if m.Value != nil && decodeSink(t, m).Op == "t" {
			t.Errorf("a truncate reached the sink at %d/%d under the default source.truncate", m.Partition, m.Offset)
		}
	}
	entries, err := dlq.Read(t.Context(), newClient(t, s.brokers), "dlq."+name, dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no truncate in the DLQ")
	}
	for _, e := range entries {
		if e.Stage != dlq.StageRoute || e.ExceptionClass != "processor.ErrTruncateHeld" || !bytes.Contains(e.Value, []byte(`"op":"t"`)) {
			t.Errorf("DLQ %d/%d: stage %q class %q; want route, processor.ErrTruncateHeld, the truncate record", e.DLQPartition, e.DLQOffset, e.Stage, e.ExceptionClass)
		}
	}
}
