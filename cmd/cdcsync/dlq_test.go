package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/route"
)

const (
	dlqSource = "erp.public.contacts"
	dlqTopic  = "dlq.contacts-erp-to-crm"
)

type dlqCase struct {
	key       []byte
	partition int32
	offset    int64
	stage     string
	exception string
	message   string
	failed    time.Time
}

// dlqCases are DLQ records like the demo's poison records: three decode
// failures (one with a null key), two authority violations, one route
// failure. Two of them failed three hours ago.
func dlqCases(now time.Time) []dlqCase {
	old := now.Add(-3 * time.Hour)
	return []dlqCase{
		{[]byte(`{"id":1}`), 0, 10, dlq.StageDecode, "cdc.ErrMalformed", "cdc: malformed record: value: cannot parse JSON", old},
		{[]byte(`{"id":2}`), 1, 11, dlq.StageDecode, "cdc.ErrMalformed", "cdc: malformed record: value: truncated", old},
		{nil, 2, 12, dlq.StageDecode, "cdc.ErrUnknownOp", `cdc: unknown op: value payload.op: unknown op "x"`, now},
		{[]byte(`{"id":3}`), 3, 13, dlq.StageAuthority, "processor.ErrAuthorityViolation", "processor: authority violation: erp changed fields it does not own: [email]", now},
		{[]byte(`{"id":4}`), 1, 14, dlq.StageAuthority, "processor.ErrAuthorityViolation", "processor: authority violation: erp changed fields it does not own: [first_name]", now},
		{[]byte(`{"id":5}`), 2, 15, dlq.StageRoute, "route.ErrMissingKeyField", `route: missing key field: "id" (entity contacts)`, now},
	}
}

// startDLQBroker starts an embedded broker and writes dlqCases to the DLQ
// topic with dlq.Record, as the pipeline does. The source topic has four
// partitions; the DLQ topic has one, because reading a partition costs
// about one fetch wait (500ms) when the consumer closes.
func startDLQBroker(t *testing.T) (string, []dlqCase) {
	t.Helper()
	st, err := embedded.Start(embedded.Options{NoRegistry: true, Topics: []string{dlqSource}, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	broker := st.Brokers()[0]

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(st.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = admin.CreateTopic(dlqTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	_ = admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = route.NewJavaPartitioner
	prod, err := sarama.NewSyncProducer(st.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cases := dlqCases(time.Now())
	for i, c := range cases {
		src := &sarama.ConsumerMessage{
			Topic: dlqSource, Partition: c.partition, Offset: c.offset, Key: c.key,
			Value:     []byte(fmt.Sprintf(`{"payload":{"op":"u","n":%d}}`, i)),
			Timestamp: c.failed.Add(-time.Second).Truncate(time.Millisecond),
			Headers:   []*sarama.RecordHeader{{Key: []byte("trace-id"), Value: []byte(fmt.Sprintf("t%d", i))}},
		}
		msg := dlq.Record(dlqTopic, src, dlq.Failure{
			Topology: "contacts-erp-to-crm", Stage: c.stage, Class: "permanent", ExceptionClass: c.exception,
			Message: c.message, Attempts: 1, FirstFailure: c.failed, TaskID: "demo-worker-1",
			EventID: fmt.Sprintf("%032x", i+1),
		})
		if _, _, err := prod.SendMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	return broker, cases
}

// runAll runs the commands concurrently; reads of the DLQ topic take
// about half a second each.
func runAll(cmds [][]string) (stdouts []string, errs []error) {
	stdouts, errs = make([]string, len(cmds)), make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, errb bytes.Buffer
			errs[i] = runMain(ctx, args, strings.NewReader(""), &out, &errb)
			stdouts[i] = out.String()
		}()
	}
	wg.Wait()
	return stdouts, errs
}

func TestDLQInspect(t *testing.T) {
	broker, cases := startDLQBroker(t)

	t.Run("summary", func(t *testing.T) {
		stdout, _, err := run(t, "", "dlq", "inspect", "--brokers", broker, dlqTopic)
		wantExit(t, err, 0)
		for _, want := range []string{
			"records:    6\n", "first seen: ", "last seen:  ",
			"by topology:\n        6  contacts-erp-to-crm\n",
			"by stage:\n        3  decode\n        2  authority\n        1  route\n",
			"by exception:\n        2  cdc.ErrMalformed\n        2  processor.ErrAuthorityViolation\n        1  cdc.ErrUnknownOp\n        1  route.ErrMissingKeyField\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, stdout)
			}
		}
	})

	var lines []string
	t.Run("list", func(t *testing.T) {
		stdout, _, err := run(t, "", "dlq", "inspect", "--brokers", broker, "--list", dlqTopic)
		wantExit(t, err, 0)
		lines = strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != len(cases) {
			t.Fatalf("%d lines, want %d:\n%s", len(lines), len(cases), stdout)
		}
		for _, c := range cases {
			key := "(null)"
			if c.key != nil {
				key = string(c.key)
			}
			found := false
			for _, l := range lines {
				f := strings.Split(l, "\t")
				if len(f) == 7 && f[3] == c.stage && f[4] == c.exception && f[5] == key && f[2] == "contacts-erp-to-crm" &&
					strings.HasPrefix(c.message, strings.TrimSuffix(f[6], "…")) {
					found = true
				}
			}
			if !found {
				t.Errorf("no line for %s %s key %s in:\n%s", c.stage, c.exception, key, stdout)
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		cases := []struct {
			args []string
			want int
		}{
			{[]string{"--reason", "authority"}, 2},
			{[]string{"--reason", "MALFORMED"}, 2},
			{[]string{"--reason", "decode"}, 3},
			{[]string{"--reason", "first_name"}, 1},
			{[]string{"--reason", "nothing-like-this"}, 0},
			{[]string{"--key", `{"id":3}`}, 1},
			{[]string{"--key", `{"id":99}`}, 0},
			{[]string{"--since", "1h"}, 4},
			{[]string{"--until", "1h"}, 2},
			{[]string{"--since", time.Now().Add(-5 * time.Hour).UTC().Format(time.RFC3339), "--until", time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)}, 2},
			{[]string{"--reason", "decode", "--since", "1h"}, 1},
			{[]string{"--limit", "2"}, 2},
		}
		var cmds [][]string
		for _, tc := range cases {
			cmds = append(cmds, append(append([]string{"dlq", "inspect", "--brokers", broker, "--list"}, tc.args...), dlqTopic))
		}
		cmds = append(cmds, []string{"dlq", "inspect", "--brokers", broker, "--reason", "authority", dlqTopic})
		stdouts, errs := runAll(cmds)
		for i, tc := range cases {
			if errs[i] != nil {
				t.Errorf("%v: %v", tc.args, errs[i])
			} else if got := strings.Count(stdouts[i], "\n"); got != tc.want {
				t.Errorf("%v: %d records, want %d:\n%s", tc.args, got, tc.want, stdouts[i])
			}
		}
		if sum := stdouts[len(cases)]; !strings.Contains(sum, "records:    2\n") || strings.Contains(sum, "decode") {
			t.Errorf("filtered summary:\n%s", sum)
		}
	})

	t.Run("show", func(t *testing.T) {
		if len(lines) == 0 {
			t.Skip("list failed")
		}
		var po string
		for _, l := range lines {
			if strings.Contains(l, `{"id":3}`) {
				po, _, _ = strings.Cut(l, "\t")
			}
		}
		stdout, _, err := run(t, "", "dlq", "inspect", "--brokers", broker, "--show", po, dlqTopic)
		wantExit(t, err, 0)
		p, o, _ := strings.Cut(po, "/")
		for _, want := range []string{
			"dlq:        " + dlqTopic + "/" + p + "@" + o + "\n",
			"origin:     " + dlqSource + "/3@13\n",
			"topology:   contacts-erp-to-crm\n",
			"stage:      authority\n",
			"exception:  processor.ErrAuthorityViolation\n",
			"attempts:   1\n",
			"event id:   " + fmt.Sprintf("%032x", 4) + "\n",
			"headers (1 original, ",
			"    trace-id: t3\n",
			"  * " + dlq.HeaderStage + ": authority\n",
			"  * " + dlq.HeaderTopic + ": " + dlqSource + "\n",
			"key:\n  {\n    \"id\": 3\n  }\n",
			"value:\n  {\n    \"payload\": {",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("show lacks %q:\n%s", want, stdout)
			}
		}
		_, _, err = run(t, "", "dlq", "inspect", "--brokers", broker, "--show", "3/9999", dlqTopic)
		wantExit(t, err, 1)
		_, _, err = run(t, "", "dlq", "inspect", "--brokers", broker, "--show", "three", dlqTopic)
		wantExit(t, err, 2)
		// --show honours the filters.
		_, _, err = run(t, "", "dlq", "inspect", "--brokers", broker, "--show", po, "--reason", "decode", dlqTopic)
		wantExit(t, err, 1)
	})

}

func TestDLQUsage(t *testing.T) {
	t.Setenv("CDCSYNC_BROKERS", "")
	broker, _ := startDLQBroker(t)
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"dlq"},
			{"dlq", "purge", dlqTopic},
			{"dlq", "inspect", "--brokers", broker},
			{"dlq", "inspect", dlqTopic}, // no brokers, CDCSYNC_BROKERS empty
			{"dlq", "inspect", "--brokers", broker, "--since", "yesterday", dlqTopic},
			{"dlq", "inspect", "--brokers", broker, "--until", "2024-13-01", dlqTopic},
			{"dlq", "inspect", "--brokers", broker, "--kafka-version", "x", dlqTopic},
		} {
			_, _, err := run(t, "", args...)
			wantExit(t, err, 2)
		}
		// CDCSYNC_BROKERS stands in for --brokers.
		t.Setenv("CDCSYNC_BROKERS", broker)
		stdout, _, err := run(t, "", "dlq", "inspect", dlqTopic)
		wantExit(t, err, 0)
		if !strings.Contains(stdout, "records:    6") {
			t.Errorf("CDCSYNC_BROKERS: %s", stdout)
		}
		_, _, err = run(t, "", "dlq", "inspect", "--brokers", broker, "no.such.topic")
		wantExit(t, err, 1)
	})
}

func TestDLQReplay(t *testing.T) {
	broker, cases := startDLQBroker(t)
	stdout, _, err := run(t, "", "dlq", "replay", "--brokers", broker, "--reason", "authority", dlqTopic)
	wantExit(t, err, 0)
	if !strings.Contains(stdout, "replayed 2 record(s)") {
		t.Errorf("replay output: %q", stdout)
	}

	// The originals are back on their source partitions, with their own
	// headers and the link to their DLQ record (the DLQ topic has one
	// partition, and case i is at offset i).
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var got []string
	for p := int32(0); p < 4; p++ {
		end, err := client.GetOffset(dlqSource, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(dlqSource, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for n := int64(0); n < end; n++ {
			select {
			case m := <-pc.Messages():
				var hs []string
				for _, h := range m.Headers {
					hs = append(hs, string(h.Key)+"="+string(h.Value))
				}
				got = append(got, fmt.Sprintf("p%d %s %s [%s]", m.Partition, m.Key, m.Value, strings.Join(hs, ",")))
			case <-time.After(10 * time.Second):
				t.Fatalf("partition %d: timed out reading %d records", p, end)
			}
		}
		pc.Close()
	}
	slices.Sort(got)
	var want []string
	for i, c := range cases {
		if c.stage == dlq.StageAuthority {
			want = append(want, fmt.Sprintf(`p%d %s {"payload":{"op":"u","n":%d}} [trace-id=t%d,cdcsync.replay.of=%s/0@%d]`, c.partition, c.key, i, i, dlqTopic, i))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("source topic after replay:\n got %q\nwant %q", got, want)
	}
}

// startMixedDLQBroker is startDLQBroker with two unreadable records in the
// middle of the DLQ topic (one partition): a plain record without error
// headers after the third case, and a record whose offset header is not a
// number after the fifth. It returns the broker and their offsets.
func startMixedDLQBroker(t *testing.T) (string, []int64) {
	t.Helper()
	st, err := embedded.Start(embedded.Options{NoRegistry: true, Topics: []string{dlqSource}, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(st.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = admin.CreateTopic(dlqTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	_ = admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(st.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var bad []int64
	for i, c := range dlqCases(time.Now()) {
		src := &sarama.ConsumerMessage{Topic: dlqSource, Partition: c.partition, Offset: c.offset, Key: c.key,
			Value: []byte(fmt.Sprintf(`{"n":%d}`, i)), Timestamp: c.failed}
		msg := dlq.Record(dlqTopic, src, dlq.Failure{Topology: "contacts-erp-to-crm", Stage: c.stage, ExceptionClass: c.exception,
			Message: c.message, Attempts: 1, FirstFailure: c.failed})
		if _, _, err := prod.SendMessage(msg); err != nil {
			t.Fatal(err)
		}
		var extra *sarama.ProducerMessage
		switch i {
		case 2:
			extra = &sarama.ProducerMessage{Topic: dlqTopic, Value: sarama.StringEncoder(`{"not":"a dead letter"}`)}
		case 4:
			extra = dlq.Record(dlqTopic, src, dlq.Failure{Topology: "contacts-erp-to-crm", Stage: c.stage})
			for j := range extra.Headers {
				if string(extra.Headers[j].Key) == dlq.HeaderOffset {
					extra.Headers[j].Value = []byte("NaN")
				}
			}
		}
		if extra != nil {
			_, off, err := prod.SendMessage(extra)
			if err != nil {
				t.Fatal(err)
			}
			bad = append(bad, off)
		}
	}
	return st.Brokers()[0], bad
}

// Regression (issue 9): one malformed record in a DLQ topic made `dlq
// inspect` fail for the whole topic, even --show of a good record. Good
// records are shown; the bad ones are counted and listed by offset on
// stderr, and the exit status is 3.
func TestDLQInspectSkipsMalformedRecords(t *testing.T) {
	broker, bad := startMixedDLQBroker(t)
	if !slices.Equal(bad, []int64{3, 6}) {
		t.Fatalf("bad records at %v, want [3 6]", bad)
	}
	skipReport := "dlq: skipped 2 record(s) of " + dlqTopic + " that are not readable DLQ records:\n" +
		"  0/3: not a dead-letter record (no __connect.errors.topic header)\n" +
		`  0/6: dlq: malformed error header: __connect.errors.offset="NaN"`
	stdouts, errs := runAll([][]string{
		{"dlq", "inspect", "--brokers", broker, dlqTopic},
		{"dlq", "inspect", "--brokers", broker, "--list", dlqTopic},
		{"dlq", "inspect", "--brokers", broker, "--show", "0/4", dlqTopic}, // the good record right after a bad one
		{"dlq", "inspect", "--brokers", broker, "--show", "0/3", dlqTopic}, // the bad record itself
	})
	// Summary: the six good records, the skip count, exit 3.
	if exitCode(errs[0]) != 3 || errs[0].Error() != skipReport {
		t.Errorf("summary: exit %d, err:\n%v\nwant exit 3 and\n%s", exitCode(errs[0]), errs[0], skipReport)
	}
	for _, want := range []string{"records:    6\n", "skipped:    2 record(s) that are not readable DLQ records (listed on stderr)\n"} {
		if !strings.Contains(stdouts[0], want) {
			t.Errorf("summary lacks %q:\n%s", want, stdouts[0])
		}
	}
	// List: one line per good record, nothing else on stdout.
	if exitCode(errs[1]) != 3 || strings.Count(stdouts[1], "\n") != 6 || strings.Contains(stdouts[1], "skipped") {
		t.Errorf("list: exit %d (%v):\n%s", exitCode(errs[1]), errs[1], stdouts[1])
	}
	// Show of a good record: exit 0.
	if errs[2] != nil || !strings.Contains(stdouts[2], "dlq:        "+dlqTopic+"/0@4\n") || !strings.Contains(stdouts[2], "stage:      authority\n") {
		t.Errorf("show 0/4: %v\n%s", errs[2], stdouts[2])
	}
	// Show of the bad record: exit 1, with the reason.
	if exitCode(errs[3]) != 1 || !strings.Contains(errs[3].Error(), "partition 0 offset 3 is not a readable DLQ record: not a dead-letter record") {
		t.Errorf("show 0/3: exit %d, %v", exitCode(errs[3]), errs[3])
	}
}

// Regression (issue 9): `dlq replay` could write into a DLQ topic. A
// record whose original topic is the DLQ itself, or a loaded topology's
// DLQ or ledger, makes the replay refuse before it writes anything.
func TestDLQReplayRefusesDLQTargets(t *testing.T) {
	t.Setenv("CDCSYNC_TOPOLOGIES", "")
	broker, _ := startDLQBroker(t)
	dir := t.TempDir()
	// Topology "other" uses the cases' source topic as its DLQ.
	writeFile(t, dir, "other.yaml", `name: other
systems: [erp]
source: {topics: [erp.public.other], system: erp, format: debezium-json}
sink: {topic: sync.other, key: [id]}
dlq: {topic: `+dlqSource+`}
`)
	stdout, _, err := run(t, "", "dlq", "replay", "--brokers", broker, "--topologies", dir, "--reason", "authority", dlqTopic)
	wantExit(t, err, 1)
	for _, want := range []string{"2 record(s) refused, nothing written",
		"its original topic " + dlqSource + " is the DLQ topic of topology other (" + filepath.Join(dir, "other.yaml") + ")"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if stdout != "" {
		t.Errorf("stdout: %q", stdout)
	}
	// CDCSYNC_TOPOLOGIES stands in for --topologies.
	t.Setenv("CDCSYNC_TOPOLOGIES", dir)
	_, _, err = run(t, "", "dlq", "replay", "--brokers", broker, "--reason", "route", dlqTopic)
	wantExit(t, err, 1)
	t.Setenv("CDCSYNC_TOPOLOGIES", "")
	// Nothing was written to the source topic.
	client, err := sarama.NewClient([]string{broker}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for p := int32(0); p < 4; p++ {
		if end, _ := client.GetOffset(dlqSource, p, sarama.OffsetNewest); end != 0 {
			t.Errorf("partition %d has %d records after a refused replay", p, end)
		}
	}
}

// Regression (issue 9): a replay that failed midway said nothing of what
// it had written. Here the second record's original topic was deleted:
// the first is written, the report names it, the third is not written.
func TestDLQReplayReportsWhatItWroteBeforeAFailure(t *testing.T) {
	st, err := embedded.Start(embedded.Options{NoRegistry: true, Topics: []string{dlqSource, dlqTopic, "gone.topic"}, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	broker := st.Brokers()[0]
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	client, err := sarama.NewClient(st.Brokers(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i, origin := range []string{dlqSource, "gone.topic", dlqSource} {
		src := &sarama.ConsumerMessage{Topic: origin, Offset: int64(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte("v")}
		if _, _, err := prod.SendMessage(dlq.Record(dlqTopic, src, dlq.Failure{Topology: "t", Stage: dlq.StageRoute})); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTopic("gone.topic"); err != nil {
		t.Fatal(err)
	}

	stdout, _, err := run(t, "", "dlq", "replay", "--brokers", broker, dlqTopic)
	wantExit(t, err, 1)
	if want := "replayed 1 of 3 record(s) before the failure; last written: " + dlqSource + "/0@0\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	for _, want := range []string{"replaying DLQ record 0/1:", "gone.topic", "the 1 record(s) before it were written"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if end, _ := client.GetOffset(dlqSource, 0, sarama.OffsetNewest); end != 1 {
		t.Errorf("source topic has %d records, want 1 (the record after the failure must not be written)", end)
	}
}

// Regression (issue 13): `dlq inspect --brokers B TOPIC --list` failed
// with bare usage, because flags after the topic were not read.
func TestDLQFlagsAfterTopic(t *testing.T) {
	broker, cases := startDLQBroker(t)
	stdouts, errs := runAll([][]string{
		{"dlq", "inspect", "--brokers", broker, dlqTopic, "--list"},
		{"dlq", "inspect", dlqTopic, "--brokers", broker, "--list", "--reason", "authority"},
	})
	for i, want := range []int{len(cases), 2} {
		if errs[i] != nil || strings.Count(stdouts[i], "\n") != want {
			t.Errorf("%d: %v, %d lines, want %d:\n%s", i, errs[i], strings.Count(stdouts[i], "\n"), want, stdouts[i])
		}
	}
}

func TestDLQInspectJSON(t *testing.T) {
	broker, cases := startDLQBroker(t)
	stdouts, errs := runAll([][]string{
		{"dlq", "inspect", "--brokers", broker, "--output", "json", dlqTopic},
		{"dlq", "inspect", "--brokers", broker, "--list", "--output", "json", dlqTopic},
		{"dlq", "inspect", "--brokers", broker, "--show", "0/3", "--output", "json", dlqTopic},
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
	}
	var sum dlq.SummaryView
	if err := json.Unmarshal([]byte(stdouts[0]), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdouts[0])
	}
	if sum.Topic != dlqTopic || sum.Total != 6 || sum.ByStage["decode"] != 3 || sum.ByStage["authority"] != 2 ||
		sum.ByException["cdc.ErrMalformed"] != 2 || sum.FirstSeen == nil || sum.LastSeen == nil || sum.Skipped == nil {
		t.Errorf("summary %+v", sum)
	}
	var list dlq.ListView
	if err := json.Unmarshal([]byte(stdouts[1]), &list); err != nil {
		t.Fatalf("list: %v\n%s", err, stdouts[1])
	}
	if len(list.Records) != len(cases) {
		t.Fatalf("list: %d records", len(list.Records))
	}
	for i, r := range list.Records {
		c := cases[i] // one DLQ partition: in write order
		if r.DLQ != (dlq.Position{Topic: dlqTopic, Partition: 0, Offset: int64(i)}) ||
			r.Origin != (dlq.Position{Topic: dlqSource, Partition: c.partition, Offset: c.offset}) ||
			r.Stage != c.stage || r.ExceptionClass != c.exception || r.Topology != "contacts-erp-to-crm" {
			t.Errorf("list[%d] = %+v", i, r)
		}
		if (c.key == nil) != (r.Key == nil) || (c.key != nil && compactJSON(r.Key.JSON) != string(c.key)) {
			t.Errorf("list[%d] key %+v, want %s", i, r.Key, c.key)
		}
	}
	var show dlq.View
	if err := json.Unmarshal([]byte(stdouts[2]), &show); err != nil {
		t.Fatalf("show: %v\n%s", err, stdouts[2])
	}
	if show.Stage != "authority" || show.Attempts != 1 || show.EventID != fmt.Sprintf("%032x", 4) || show.TaskID != "demo-worker-1" ||
		compactJSON(show.Key.JSON) != `{"id":3}` || show.Value == nil || !strings.HasPrefix(compactJSON(show.Value.JSON), `{"payload"`) {
		t.Errorf("show %+v", show)
	}
	var orig, errHeaders int
	for _, h := range show.Headers {
		if h.Error {
			errHeaders++
		} else if orig++; h.Key != "trace-id" || h.Value != "t3" {
			t.Errorf("original header %+v", h)
		}
	}
	if orig != 1 || errHeaders < 10 {
		t.Errorf("%d original and %d error headers", orig, errHeaders)
	}
}

// dlq replay --dry-run prints the count and one line per record, and
// writes nothing.
func TestDLQReplayDryRun(t *testing.T) {
	broker, cases := startDLQBroker(t)
	stdouts, errs := runAll([][]string{
		{"dlq", "replay", "--brokers", broker, "--dry-run", "--reason", "authority", dlqTopic},
		{"dlq", "replay", "--brokers", broker, dlqTopic, "--dry-run", "--output", "json"},
	})
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	lines := strings.Split(strings.TrimSuffix(stdouts[0], "\n"), "\n")
	if len(lines) != 3 || lines[0] != "dry run: 2 record(s) would be replayed to their source partitions; nothing was written" {
		t.Fatalf("dry run:\n%s", stdouts[0])
	}
	for i, want := range []string{
		"  0/3 -> " + dlqSource + "/3\tauthority\tprocessor.ErrAuthorityViolation\t{\"id\":3}",
		"  0/4 -> " + dlqSource + "/1\tauthority\tprocessor.ErrAuthorityViolation\t{\"id\":4}",
	} {
		if lines[i+1] != want {
			t.Errorf("line %d: %q, want %q", i+1, lines[i+1], want)
		}
	}
	var plan dlq.ReplayPlan
	if err := json.Unmarshal([]byte(stdouts[1]), &plan); err != nil {
		t.Fatalf("%v\n%s", err, stdouts[1])
	}
	if !plan.DryRun || plan.Count != len(cases) || len(plan.Records) != len(cases) {
		t.Fatalf("plan %+v", plan)
	}
	for i, r := range plan.Records {
		if r.Target != (dlq.Target{Topic: dlqSource, Partition: cases[i].partition}) || r.ReplayOf != fmt.Sprintf("%s/0@%d", dlqTopic, i) {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	client, err := sarama.NewClient([]string{broker}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for p := int32(0); p < 4; p++ {
		if end, _ := client.GetOffset(dlqSource, p, sarama.OffsetNewest); end != 0 {
			t.Errorf("partition %d has %d records after a dry run", p, end)
		}
	}
}

// Regression (issue 13): a replayed record that failed again became a DLQ
// record with nothing linking it to the one it was replayed from. A real
// worker sends a poison record to the DLQ; it is replayed, fails again,
// and the new DLQ record names the first in cdcsync.replay.of, which
// dlq inspect --show prints.
func TestDLQReplayLinkSurvivesASecondFailure(t *testing.T) {
	const source, topic = "erp.public.contacts", "dlq.replay-link"
	st, err := embedded.Start(embedded.Options{NoRegistry: true, Topics: []string{source}, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	broker := st.Brokers()[0]
	topo := writeFile(t, t.TempDir(), "t.yaml", `name: replay-link
systems: [erp, crm]
source: {topics: [`+source+`], system: erp, format: debezium-json}
sink: {topic: sync.contacts, key: [id]}
`)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	client, err := sarama.NewClient([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: source, Key: sarama.StringEncoder(`{"id":1}`),
		Value: sarama.StringEncoder(`{"before":null,"after":{"id":1`)}); err != nil {
		t.Fatal(err)
	}

	// The worker runs as a child process (TestMain), because cmdRun sets
	// sarama's global logger, which the clients of other tests read.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CDCSYNC_") {
			env = append(env, kv)
		}
	}
	worker := exec.Command(os.Args[0], "run", "--brokers", broker, "--topologies", topo, "--http-addr", "127.0.0.1:0")
	worker.Env = append(env, "CDCSYNC_TEST_AS_MAIN=1")
	var logs syncBuffer
	worker.Stdout, worker.Stderr = &logs, &logs
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = worker.Process.Signal(syscall.SIGTERM)
		if err := worker.Wait(); err != nil {
			t.Errorf("worker: %v\n%s", err, logs.String())
		}
	}()
	ctx := context.Background()
	waitDLQ := func(n int) []dlq.Entry {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if es, err := dlq.Read(ctx, client, topic, dlq.Filter{}, 0); err == nil && len(es) >= n {
				return es
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %d DLQ record(s) within 60s:\n%s", n, logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	first := waitDLQ(1)[0]
	if first.ReplayOf != "" {
		t.Errorf("first DLQ record has replay.of %q", first.ReplayOf)
	}
	stdout, _, err := run(t, "", "dlq", "replay", "--brokers", broker, topic)
	wantExit(t, err, 0)
	if !strings.Contains(stdout, "replayed 1 record(s)") {
		t.Errorf("replay: %s", stdout)
	}
	second := waitDLQ(2)[1]
	if second.ReplayOf != first.Link() || second.Stage != dlq.StageDecode || second.Offset != 1 {
		t.Errorf("second DLQ record: replay.of %q (want %q), stage %s, origin offset %d", second.ReplayOf, first.Link(), second.Stage, second.Offset)
	}
	stdout, _, err = run(t, "", "dlq", "inspect", "--brokers", broker, "--show", fmt.Sprintf("%d/%d", second.DLQPartition, second.DLQOffset), topic)
	wantExit(t, err, 0)
	if want := "replay of:  " + topic + "/0@0\n"; !strings.Contains(stdout, want) {
		t.Errorf("show lacks %q:\n%s", want, stdout)
	}
	stdout, _, err = run(t, "", "dlq", "inspect", "--brokers", broker, "--list", "--output", "json", topic)
	wantExit(t, err, 0)
	var list dlq.ListView
	if err := json.Unmarshal([]byte(stdout), &list); err != nil || len(list.Records) != 2 ||
		list.Records[0].ReplayOf != "" || list.Records[1].ReplayOf != first.Link() {
		t.Errorf("list: %v\n%s", err, stdout)
	}
	// Replaying the second links to the second, not to the first.
	stdout, _, err = run(t, "", "dlq", "replay", "--brokers", broker, "--dry-run", "--output", "json", topic)
	wantExit(t, err, 0)
	if !strings.Contains(stdout, `"replay_of": "`+second.Link()+`"`) {
		t.Errorf("dry run of the second: %s", stdout)
	}
}

// compactJSON is b without insignificant spaces.
func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}
