//go:build realstack

package integration

// Values PostgreSQL allows that cdcsync used to send to the DLQ or write
// in Go's own formats (issue 9, items 4 and 6), end to end: PostgreSQL,
// Debezium 3.6.1 through the JSON converter and through the Apicurio Avro
// converter, two cdcsync workers, the sink.

import (
	"fmt"
	"testing"
	"time"
)

// edgeTable holds one column per edge value; edgeRow is its values.
const edgeTable = `
CREATE TABLE edge (
  id int PRIMARY KEY,
  tz_inf timestamptz, tz_ninf timestamptz, tz_bc timestamptz, tz_y12000 timestamptz,
  ts_inf timestamp, ts_ninf timestamp, ts_bc timestamp, ts_y12000 timestamp, ts_local timestamp(3),
  d_inf date, d_ninf date, d_bc date, d_y12000 date, d_max date,
  f_inf float8, f_ninf float8, f_nan float8, f_big float8, f_small float8, f_million float8, r_inf real,
  iv interval
);`

func edgeRow(id int) string {
	return fmt.Sprintf(`INSERT INTO edge VALUES (%d,
  'infinity', '-infinity', '0044-03-15 12:00:00+00 BC', '12000-01-01 00:00:00+00',
  'infinity', '-infinity', '0044-03-15 12:00:00 BC', '12000-01-01 00:00:00', '2026-11-27 10:00:00.5',
  'infinity', '-infinity', '0044-03-15 BC', '12000-01-01', '5874897-12-31',
  'Infinity', '-Infinity', 'NaN', 1e300, 1.5e-7, 1e6, '-Infinity',
  '1 mon 2 days 03:04:05.5');`, id)
}

// edgeWant is the exact JSON text of every column in the sink
// (docs/sink-format.md).
func edgeWant(dBC string) map[string]string {
	return map[string]string{
		"tz_inf": `"infinity"`, "tz_ninf": `"-infinity"`,
		"tz_bc": `"-0043-03-15T12:00:00Z"`, "tz_y12000": `"+12000-01-01T00:00:00Z"`,
		"ts_inf": `"infinity"`, "ts_ninf": `"-infinity"`,
		"ts_bc": `"-0043-03-15T12:00:00"`, "ts_y12000": `"+12000-01-01T00:00:00"`,
		"ts_local": `"2026-11-27T10:00:00.5"`, // timestamp without time zone: no Z
		"d_inf":    `"infinity"`, "d_ninf": `"-infinity"`, "d_bc": dBC,
		"d_y12000": `"+12000-01-01"`, "d_max": `"+5874897-12-31"`,
		"f_inf": `"Infinity"`, "f_ninf": `"-Infinity"`, "f_nan": `"NaN"`,
		"f_big": `1e+300`, "f_small": `1.5e-7`, "f_million": `1000000`, "r_inf": `"-Infinity"`,
		// Debezium's microseconds, with its 30.4375-day month.
		"iv": `2813645500000`,
	}
}

// TestRealStackValuesEdge: a snapshot row and a streamed row with
// timestamptz and timestamp infinity, -infinity, 44 BC and year 12000,
// date infinity, -infinity, 44 BC, year 12000 and 5874897, a timestamp
// without time zone, float8 Infinity, -Infinity, NaN, 1e300, 1.5e-7 and
// 1e6, real -Infinity and an interval go through Debezium (JSON converter
// and Apicurio Avro converter) and two cdcsync workers to the sink, not
// the DLQ, with the exact expected text.
//
// Regression: each of these changes went whole to the DLQ, or was
// written with a Z on a timestamp without time zone and "+Inf" floats.
func TestRealStackValuesEdge(t *testing.T) {
	s := loadStack(t)
	if s.RegistryPort == "" {
		t.Fatal("no Apicurio Registry in the state file: restart the stack with integration/realstack/up.sh")
	}
	registry := "http://127.0.0.1:" + s.RegistryPort
	run := runID()
	db := "values_" + run
	jsonPrefix, avroPrefix := "vj"+run, "va"+run
	jsonTopic, avroTopic := jsonPrefix+".public.edge", avroPrefix+".public.edge"
	jsonSink, avroSink := "sync."+run+".edge-json", "sync."+run+".edge-avro"

	s.psql(t, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { _, _ = s.psqlErr("postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	s.psql(t, db, edgeTable+edgeRow(1))

	s.connector(t, "values-json-"+run, db, jsonPrefix, nil)
	s.connector(t, "values-avro-"+run, db, avroPrefix, apicurioConverter(registry+"/apis/registry/v2"))
	eventually(t, 90*time.Second, "snapshot in the source topics", func() string {
		if a, b := s.hwm(t, jsonTopic), s.hwm(t, avroTopic); a < 1 || b < 1 {
			return fmt.Sprintf("json %d, avro %d of 1 row", a, b)
		}
		return ""
	})

	jsonName, avroName := "values-json-"+run, "values-avro-"+run
	dir, plans := writeTopologies(t,
		fmt.Sprintf(`name: %s
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-json}
sink: {topic: %s, key: [id]}
`, jsonName, jsonTopic, jsonSink),
		fmt.Sprintf(`name: %s
systems: [erp]
source: {topics: [%s], system: erp, format: debezium-avro}
sink: {topic: %s, key: [id], format: json}
`, avroName, avroTopic, avroSink))
	var workers []*proc
	for _, n := range []string{"vw1-" + run, "vw2-" + run} {
		workers = append(workers, startProcess(t, n, s.brokers, dir,
			"CDCSYNC_COMMIT_INTERVAL=200ms", "CDCSYNC_REGISTRY_URL="+registry+"/apis/ccompat/v7"))
	}
	for _, p := range workers {
		if err := p.waitReady(60 * time.Second); err != nil {
			t.Fatalf("worker not ready: %v\n%s", err, tail(p.log.String(), 40))
		}
	}

	// The streamed row, after the snapshot.
	s.psql(t, db, edgeRow(2))

	for _, sink := range []struct{ name, topic string }{{jsonName, jsonSink}, {avroName, avroSink}} {
		dlq := "dlq." + sink.name
		eventually(t, 90*time.Second, sink.topic+": both rows in the sink", func() string {
			if d := s.hwm(t, dlq); d > 0 {
				t.Fatalf("%s: %d records in the DLQ: %s", sink.name, d, dlqReason(t, s, dlq))
			}
			if n := s.hwm(t, sink.topic); n < 2 {
				return fmt.Sprintf("%d of 2 records", n)
			}
			return ""
		})
	}
	waitAll(t, s, plans)

	for _, sink := range []struct{ name, topic string }{{jsonName, jsonSink}, {avroName, avroSink}} {
		if d := s.hwm(t, "dlq."+sink.name); d > 0 {
			t.Errorf("%s: %d records in the DLQ: %s", sink.name, d, dlqReason(t, s, "dlq."+sink.name))
		}
		last, _ := sinkState(t, s, sink.topic)
		snap := decodeSink(t, mustRecord(t, last, `{"id":1}`))
		if snap.Op != "r" {
			t.Errorf("%s: row 1 op %q, want r", sink.name, snap.Op)
		}
		// Debezium's snapshot writes a BC date as the day count of the same
		// AD date (it loses the era); streaming keeps it. cdcsync writes
		// what it receives.
		wantFields(t, sink.name+" snapshot row", snap, edgeWant(`"0044-03-15"`))
		streamed := decodeSink(t, mustRecord(t, last, `{"id":2}`))
		if streamed.Op != "c" {
			t.Errorf("%s: row 2 op %q, want c", sink.name, streamed.Op)
		}
		wantFields(t, sink.name+" streamed row", streamed, edgeWant(`"-0043-03-15"`))
	}
}
