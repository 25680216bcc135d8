package schemas

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// edgeEvent decodes a record Debezium 3.6.1 wrote on the real stack for a
// row of the values PostgreSQL allows that Go's formatting got wrong (see
// processor/cdc/testdata/decode/values_pg_edge_*).
func edgeEvent(t *testing.T, name string) *cdc.Event {
	t.Helper()
	base := filepath.Join("..", "processor", "cdc", "testdata", "decode", name+".env")
	key, err := os.ReadFile(base + ".key.json")
	if err != nil {
		t.Fatal(err)
	}
	value, err := os.ReadFile(base + ".value.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := cdc.NewJSONDecoder(cdc.Options{SourceSystem: "erp"}).Decode("pg.public.edge", key, value)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestAppendEventEdgeValues checks the Avro form of every edge value with
// goavro, an independent implementation, and pins the bytes in
// testdata/.
//
// Regression: such a change went to the DLQ; a timestamp without time
// zone was written as the Timestamp record, which means an instant in
// UTC.
func TestAppendEventEdgeValues(t *testing.T) {
	codec, err := goavro.NewCodec(EventSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		dBC   int64 // days of d_bc: Debezium's snapshot loses the era
		dBCis string
	}{
		{"values_pg_edge_create", -735160, "-0043-03-15"},
		{"values_pg_edge_read", -703383, "0044-03-15"},
	} {
		ev := edgeEvent(t, c.name)
		body := AppendEvent(nil, ev, ev.Changed)
		path := filepath.Join("testdata", c.name+".avro.bin")
		if *updateGolden {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, body, 0o644); err != nil {
				t.Fatal(err)
			}
		} else if want, err := os.ReadFile(path); err != nil || !bytes.Equal(body, want) {
			t.Errorf("%s: Avro body differs from %s (run go test -update and review): %v", c.name, path, err)
		}
		native, rest, err := codec.NativeFromBinary(body)
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: goavro: %v, %d bytes left", c.name, err, len(rest))
		}
		fields := native.(map[string]any)["fields"].(map[string]any)["map"].(map[string]any)
		branch := func(name, typ string) any {
			t.Helper()
			u, ok := fields[name].(map[string]any)
			if !ok {
				t.Fatalf("%s: field %s missing: %v", c.name, name, fields[name])
			}
			v, ok := u[typ]
			if !ok {
				t.Fatalf("%s: field %s is %v, want a %s", c.name, name, u, typ)
			}
			return v
		}
		instant := func(name, typ string) time.Time {
			r := branch(name, typ).(map[string]any)
			return time.Unix(r["seconds"].(int64), int64(r["nanos"].(int32))).UTC()
		}
		for name, want := range map[string]string{
			"tz_inf": "INFINITY", "tz_ninf": "MINUS_INFINITY",
			"ts_inf": "INFINITY", "ts_ninf": "MINUS_INFINITY",
			"d_inf": "INFINITY", "d_ninf": "MINUS_INFINITY",
		} {
			if got := branch(name, "io.cdcsync.Infinity"); got != want {
				t.Errorf("%s: %s = %v, want %s", c.name, name, got, want)
			}
		}
		for _, tc := range []struct {
			name, typ string
			want      time.Time
		}{
			{"tz_bc", "io.cdcsync.Timestamp", time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)},
			{"tz_y12000", "io.cdcsync.Timestamp", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)},
			{"ts_bc", "io.cdcsync.LocalTimestamp", time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)},
			{"ts_y12000", "io.cdcsync.LocalTimestamp", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)},
			{"ts_local", "io.cdcsync.LocalTimestamp", time.Date(2026, 11, 27, 10, 0, 0, 500000000, time.UTC)},
		} {
			if got := instant(tc.name, tc.typ); !got.Equal(tc.want) {
				t.Errorf("%s: %s = %v, want %v", c.name, tc.name, got, tc.want)
			}
		}
		days := func(name string) int64 {
			return int64(branch(name, "io.cdcsync.Date").(map[string]any)["days"].(int32))
		}
		if got := days("d_bc"); got != c.dBC || cdc.DateFromEpochDays(got).String() != c.dBCis {
			t.Errorf("%s: d_bc = %d days, want %d (%s)", c.name, got, c.dBC, c.dBCis)
		}
		if got := days("d_y12000"); cdc.DateFromEpochDays(got).String() != "+12000-01-01" {
			t.Errorf("%s: d_y12000 = %d days", c.name, got)
		}
		if got := days("d_max"); got != 2145042905 {
			t.Errorf("%s: d_max = %d days", c.name, got)
		}
		for name, want := range map[string]float64{"f_inf": math.Inf(1), "f_ninf": math.Inf(-1), "r_inf": math.Inf(-1), "f_big": 1e300, "f_small": 1.5e-7, "f_million": 1e6} {
			if got := branch(name, "double").(float64); got != want {
				t.Errorf("%s: %s = %v, want %v", c.name, name, got, want)
			}
		}
		if got := branch("f_nan", "double").(float64); !math.IsNaN(got) {
			t.Errorf("%s: f_nan = %v", c.name, got)
		}
		// interval: Debezium's MicroDuration, microseconds, 30.4375-day months.
		if got := branch("iv", "long").(int64); got != 2813645500000 {
			t.Errorf("%s: iv = %d", c.name, got)
		}
	}
}

// TestAppendValueMapSorted: a map is written in key order, so the same
// value is always the same bytes.
//
// Regression: map entries were written in Go's random iteration order.
func TestAppendValueMapSorted(t *testing.T) {
	m := map[string]any{}
	for _, k := range []string{"d", "a", "c", "b", "e", "f", "g", "h"} {
		m[k] = k
	}
	first := appendValue(nil, m)
	for range 20 {
		if got := appendValue(nil, m); !bytes.Equal(got, first) {
			t.Fatalf("map bytes differ between calls: %x vs %x", got, first)
		}
	}
}

// TestAppendValueUnknownType: a type the decoder does not produce is
// written as its JSON text, as the JSON sink writes it.
//
// Regression: it was written with fmt.Sprint, Go's %v ("[1 2]").
func TestAppendValueUnknownType(t *testing.T) {
	got := appendValue(nil, []int{1, 2})
	want := appendString(appendLong(nil, ValueString), "[1,2]")
	if !bytes.Equal(got, want) {
		t.Errorf("[]int{1,2}: %q, want %q", got, want)
	}
}

// TestAppendRowMapNeverRepeats: a projection naming a field twice writes
// it once (a map never repeats a key).
func TestAppendRowMapNeverRepeats(t *testing.T) {
	row := cdc.Row{{Name: "a", Value: int64(1)}, {Name: "b", Value: int64(2)}}
	got := appendRowMap(nil, row, []string{"a", "b", "a"})
	want := appendRowMap(nil, row, []string{"a", "b"})
	if !bytes.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
}

// TestEventSchemaUpgrade: the event schema with LocalTimestamp and
// Infinity appended to its Value unions can replace the earlier one
// (testdata/event.v1.avsc) under BACKWARD and BACKWARD_TRANSITIVE, so a
// running deployment's subject accepts it; under FORWARD and FULL it
// cannot, since an old reader does not know the new branches.
func TestEventSchemaUpgrade(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "event.v1.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []string{"BACKWARD", "BACKWARD_TRANSITIVE", "NONE"} {
		if err := CheckCompatibility("sync.x-value", level, EventSchema, []int{1}, []string{string(old)}); err != nil {
			t.Errorf("%s: %v", level, err)
		}
	}
	for _, level := range []string{"FORWARD", "FULL"} {
		if err := CheckCompatibility("sync.x-value", level, EventSchema, []int{1}, []string{string(old)}); err == nil {
			t.Errorf("%s: accepted, but an old reader cannot read the new branches", level)
		}
	}
}
