package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/embedded"
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
	// headers only.
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
			want = append(want, fmt.Sprintf(`p%d %s {"payload":{"op":"u","n":%d}} [trace-id=t%d]`, c.partition, c.key, i, i))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("source topic after replay:\n got %q\nwant %q", got, want)
	}
}
