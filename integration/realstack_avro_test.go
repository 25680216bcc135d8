//go:build realstack

package integration

// Debezium with Avro: the connector writes through the Apicurio Registry
// Kafka Connect AvroConverter (Confluent wire format, ids = Apicurio
// content ids), and the cdcsync workers read the writer schemas through
// Apicurio's Confluent-compatible API.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// apicurioConverter is the connector configuration of the Apicurio Avro
// converter for keys and values. dereference-schema=false, the
// converter's default: it registers Debezium's source block as a schema of
// its own and refers to it with a Confluent schema reference, which
// cdcsync's registry client resolves.
func apicurioConverter(registryV2 string) map[string]string {
	cfg := map[string]string{}
	for _, side := range []string{"key", "value"} {
		cfg[side+".converter"] = "io.apicurio.registry.utils.converter.AvroConverter"
		for k, v := range map[string]string{
			"url":                registryV2,
			"auto-register":      "true",
			"find-latest":        "true",
			"as-confluent":       "true",
			"headers.enabled":    "false",
			"use-id":             "contentId",
			"dereference-schema": "false",
		} {
			cfg[side+".converter.apicurio.registry."+k] = v
		}
	}
	return cfg
}

// TestRealStackDebeziumAvro: real Debezium Avro (Apicurio converter) of a
// table with numeric, timestamptz, date, uuid and jsonb columns, through
// two cdcsync processes into a JSON sink; snapshot, INSERT, UPDATE,
// DELETE, then ALTER TABLE ADD COLUMN mid-stream: records of both writer
// schema versions decode, and nothing goes to the DLQ.
func TestRealStackDebeziumAvro(t *testing.T) {
	s := loadStack(t)
	if s.RegistryPort == "" {
		t.Fatal("no Apicurio Registry in the state file: restart the stack with integration/realstack/up.sh")
	}
	registry := "http://127.0.0.1:" + s.RegistryPort
	run := runID()
	db, prefix := "avro_"+run, "av"+run
	srcTopic, sinkTopic := prefix+".public.items", "sync."+run+".avro-items"
	name := "avro-items-" + run

	s.psql(t, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { _, _ = s.psqlErr("postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	s.psql(t, db, `
CREATE TABLE items (
  id bigint PRIMARY KEY,
  price numeric(12,2),
  at timestamptz,
  d date,
  u uuid,
  doc jsonb
);
INSERT INTO items VALUES
  (1, 12.34, '2026-11-27 10:00:00.123456+01', '2026-11-27', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2], "s": "x"}'),
  (2, -0.05, '1969-12-31 23:59:59+00', '1969-12-31', '00000000-0000-0000-0000-000000000001', '[]');
`)

	conn := "avro-" + run
	s.connector(t, conn, db, prefix, apicurioConverter(registry+"/apis/registry/v2"))
	// cdcsync refuses to start on a topic that does not exist yet: wait
	// for the snapshot.
	eventually(t, 90*time.Second, "snapshot in the source topic", func() string {
		if n := s.hwm(t, srcTopic); n < 2 {
			return fmt.Sprintf("%d of 2 rows", n)
		}
		return ""
	})

	dir, plans := writeTopologies(t, fmt.Sprintf(`name: %s
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-avro}
sink: {topic: %s, key: [id], format: json}
`, name, srcTopic, sinkTopic))
	var workers []*proc
	for _, n := range []string{"av-w1-" + run, "av-w2-" + run} {
		workers = append(workers, startProcess(t, n, s.brokers, dir,
			"CDCSYNC_COMMIT_INTERVAL=200ms", "CDCSYNC_REGISTRY_URL="+registry+"/apis/ccompat/v7"))
	}
	for _, p := range workers {
		if err := p.waitReady(60 * time.Second); err != nil {
			t.Fatalf("worker not ready: %v\n%s", err, tail(p.log.String(), 40))
		}
	}
	dlq := "dlq." + name
	sinkAt := func(n int64, what string) {
		t.Helper()
		eventually(t, 60*time.Second, what, func() string {
			if d := s.hwm(t, dlq); d > 0 {
				t.Fatalf("%s: %d records in the DLQ: %s", what, d, dlqReason(t, s, dlq))
			}
			if got := s.hwm(t, sinkTopic); got < n {
				return fmt.Sprintf("sink %d/%d records", got, n)
			}
			return ""
		})
		waitAll(t, s, plans)
	}
	sinkAt(2, "snapshot in the sink")

	// The same JSON forms as from Debezium's JSON converter
	// (TestRealStackTypesAndResnapshot).
	last, _ := sinkState(t, s, sinkTopic)
	r1 := decodeSink(t, mustRecord(t, last, `{"id":1}`))
	if r1.Op != "r" {
		t.Errorf("item 1: op %q, want r", r1.Op)
	}
	wantFields(t, "item 1 snapshot", r1, map[string]string{
		"price": `12.34`, "at": `"2026-11-27T09:00:00.123456Z"`, "d": `"2026-11-27"`,
		"u": `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, "doc": `{"a":[1,2],"s":"x"}`,
	})
	wantFields(t, "item 2 snapshot", decodeSink(t, mustRecord(t, last, `{"id":2}`)), map[string]string{
		"price": `-0.05`, "at": `"1969-12-31T23:59:59Z"`, "d": `"1969-12-31"`,
		"u": `"00000000-0000-0000-0000-000000000001"`, "doc": `[]`,
	})

	// Streaming changes under writer schema version 1.
	s.psql(t, db, `
INSERT INTO items VALUES (3, 99999999.99, '2000-02-29 12:00:00-05', '2000-02-29', 'f47ac10b-58cc-4372-a567-0e02b2c3d479', '{"nested": {"k": [null, 1.5e3]}}');
UPDATE items SET price = 0.01, doc = '{"b": true}' WHERE id = 1;
DELETE FROM items WHERE id = 2;
`)
	// c3, u1, d2 + tombstone 2.
	sinkAt(2+4, "streaming changes in the sink")
	versionsBefore := subjectVersions(t, registry, srcTopic+"-value")

	// A new column: Debezium registers writer schema version 2.
	s.psql(t, db, `
ALTER TABLE items ADD COLUMN note text;
INSERT INTO items VALUES (4, 1.50, '2026-01-01 00:00:00+00', '2026-01-01', 'c56a4180-65aa-42ec-a945-5fd21dec0538', '{}', 'new column');
UPDATE items SET note = 'later', price = 2.00 WHERE id = 3;
`)
	sinkAt(2+4+2, "changes after ALTER TABLE in the sink")
	versionsAfter := subjectVersions(t, registry, srcTopic+"-value")
	t.Logf("subject %s-value: versions %v before ALTER TABLE, %v after", srcTopic, versionsBefore, versionsAfter)
	if len(versionsAfter) <= len(versionsBefore) {
		t.Errorf("subject %s-value: versions %v before ALTER TABLE, %v after: no new writer schema", srcTopic, versionsBefore, versionsAfter)
	}

	last, all := sinkState(t, s, sinkTopic)
	if len(all) != 8 {
		t.Errorf("sink: %d records, want 8 (r1 r2 c3 u1 d2 tombstone2 c4 u3)", len(all))
	}
	ops := map[string]string{}
	for _, m := range all {
		if m.Value != nil {
			ops[string(m.Key)] += decodeSink(t, m).Op
		} else {
			ops[string(m.Key)] += "T"
		}
	}
	for k, want := range map[string]string{`{"id":1}`: "ru", `{"id":2}`: "rdT", `{"id":3}`: "cu", `{"id":4}`: "c"} {
		if ops[k] != want {
			t.Errorf("key %s: ops %q, want %q", k, ops[k], want)
		}
	}
	u1 := decodeSink(t, mustRecord(t, last, `{"id":1}`))
	wantFields(t, "item 1 update (v1)", u1, map[string]string{"price": `0.01`, "doc": `{"b":true}`})
	if m, ok := last[`{"id":2}`]; !ok || m != nil {
		t.Errorf("item 2: last record is not a tombstone")
	}
	var c3 *sinkRecord
	for _, m := range all {
		if string(m.Key) == `{"id":3}` && m.Value != nil {
			if r := decodeSink(t, m); r.Op == "c" {
				c3 = &r
			}
		}
	}
	if c3 == nil {
		t.Fatal("item 3: insert missing from the sink")
	}
	wantFields(t, "item 3 insert (v1)", *c3, map[string]string{
		"price": `99999999.99`, "at": `"2000-02-29T17:00:00Z"`, "d": `"2000-02-29"`,
		"u": `"f47ac10b-58cc-4372-a567-0e02b2c3d479"`, "doc": `{"nested":{"k":[null,1500]}}`,
	})
	if _, ok := c3.Fields["note"]; ok {
		t.Errorf("item 3 insert (v1): has the v2 column note: %s", fieldsOf(*c3))
	}
	wantFields(t, "item 3 update (v2)", decodeSink(t, mustRecord(t, last, `{"id":3}`)), map[string]string{
		"note": `"later"`, "price": `2.00`,
	})
	wantFields(t, "item 4 insert (v2)", decodeSink(t, mustRecord(t, last, `{"id":4}`)), map[string]string{
		"price": `1.50`, "at": `"2026-01-01T00:00:00Z"`, "d": `"2026-01-01"`,
		"u": `"c56a4180-65aa-42ec-a945-5fd21dec0538"`, "doc": `{}`, "note": `"new column"`,
	})
	if n := s.hwm(t, dlq); n != 0 {
		t.Errorf("%d records in the DLQ: %s", n, dlqReason(t, s, dlq))
	}
	if n := sumMetric(t, workers, "cdcsync_dlq_records_total"); n != 0 {
		t.Errorf("cdcsync_dlq_records_total = %v", n)
	}
}

// subjectVersions lists a subject's versions through the registry's
// Confluent-compatible API, the one cdcsync reads.
func subjectVersions(t *testing.T, registry, subject string) []int {
	t.Helper()
	resp, err := http.Get(registry + "/apis/ccompat/v7/subjects/" + url.PathEscape(subject) + "/versions")
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var vs []int
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &vs) != nil {
		t.Fatalf("registry: versions of %s: %s: %s", subject, resp.Status, b)
	}
	return vs
}

// dlqReason is the exception message header of the last DLQ record.
func dlqReason(t *testing.T, s *stack, topic string) string {
	t.Helper()
	dl := readAll(t, s.brokers, topic)
	if len(dl) == 0 {
		return ""
	}
	var reason []string
	for _, h := range dl[len(dl)-1].Headers {
		if strings.HasPrefix(string(h.Key), "__connect.errors.exception") {
			reason = append(reason, string(h.Key)+"="+string(h.Value))
		}
	}
	return strings.Join(reason, "; ")
}
