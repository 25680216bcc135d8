package processor

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/cdcsync/cdcsync/processor/apply"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// decodedFixtures are the real Debezium records of processor/cdc's decode
// fixtures, decoded by the production decoder: every connector, op and
// value type the sink has to write.
func decodedFixtures(t *testing.T) (names []string, events []*cdc.Event) {
	t.Helper()
	dir := filepath.Join("cdc", "testdata", "decode")
	files, err := filepath.Glob(filepath.Join(dir, "*.topic"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", dir, err)
	}
	dec := cdc.NewJSONDecoder(cdc.Options{SourceSystem: "erp"})
	for _, tf := range files {
		base := strings.TrimSuffix(tf, ".topic")
		topic, _ := os.ReadFile(tf)
		key, _ := os.ReadFile(base + ".key.json")
		value, _ := os.ReadFile(base + ".value.json")
		ev, err := dec.Decode(strings.TrimSpace(string(topic)), key, bytes.TrimSpace(value))
		if err != nil || ev.Tombstone {
			continue
		}
		names = append(names, filepath.Base(base))
		events = append(events, ev)
	}
	if len(events) < 20 {
		t.Fatalf("only %d decodable fixtures", len(events))
	}
	return names, events
}

// wantFields is what a reader must give for row: each named field's text
// as cdc.AppendJSONValue writes it, in the order of names.
func checkFields(t *testing.T, what string, got []apply.Field, row cdc.Row, names []string, avro bool) {
	t.Helper()
	var want []apply.Field
	for i, n := range names {
		v, ok := row.Get(n)
		if !ok || repeated(names, i) {
			continue
		}
		want = append(want, apply.Field{Name: n, Raw: cdc.AppendJSONValue(nil, v)})
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d fields, want %d: %v", what, len(got), len(want), got)
		return
	}
	for i := range want {
		if got[i].Name != want[i].Name {
			t.Errorf("%s: field %d is %s, want %s", what, i, got[i].Name, want[i].Name)
			continue
		}
		if !bytes.Equal(got[i].Raw, want[i].Raw) {
			if avro && avroLossy(row, want[i].Name) {
				continue
			}
			t.Errorf("%s.%s = %s, the JSON sink writes %s", what, want[i].Name, got[i].Raw, want[i].Raw)
		}
	}
}

// avroLossy reports a value whose Avro form has another JSON text by
// design (docs/sink-format.md): a schemaless number that is not a long is
// written as an exact Decimal (1e300 -> 1000…0), a float32 widens to
// double, and an instant (Avro Timestamp) keeps no UTC offset: the same
// instant comes back in UTC.
func avroLossy(row cdc.Row, name string) bool {
	v, _ := row.Get(name)
	switch x := v.(type) {
	case cdc.Number, float32:
		return true
	case time.Time:
		return x.Location() != time.UTC
	}
	return false
}

func keyNames(r cdc.Row) []string { return r.Names() }

// TestApplyReaderRoundTripJSON reads what the JSON sink writes
// (appendSinkValue, the production encoder) for every decoded fixture:
// the same ID, op, entity and source system, and every key, field and
// before value with the sink's exact text, in order; the body is the
// record itself.
func TestApplyReaderRoundTripJSON(t *testing.T) {
	names, events := decodedFixtures(t)
	r, err := apply.NewReader(topology.CdcsyncJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for i, ev := range events {
		value := appendSinkValue(nil, ev, ev.Changed)
		got, err := r.Read("sync.x", 3, int64(i), value)
		if ev.Op == cdc.OpMessage {
			if !errors.Is(err, apply.ErrMessage) {
				t.Errorf("%s: message read as %v", names[i], err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", names[i], err, value)
			continue
		}
		read++
		checkEvent(t, names[i], got, ev, false)
		if !bytes.Equal(got.Value, value) {
			t.Errorf("%s: Value is not the record's bytes", names[i])
		}
		if got.Topic != "sync.x" || got.Partition != 3 || got.Offset != int64(i) {
			t.Errorf("%s: position %s/%d@%d", names[i], got.Topic, got.Partition, got.Offset)
		}
	}
	t.Logf("%d fixtures read back", read)
}

func checkEvent(t *testing.T, name string, got apply.Event, ev *cdc.Event, avro bool) {
	t.Helper()
	if got.ID != ev.ID.String() || got.Op != byte(ev.Op) || got.Type != ev.Type || got.Entity != ev.Entity ||
		got.SourceSystem != ev.SourceSystem || got.SchemaVersion != ev.Schema.Version {
		t.Errorf("%s: header %+v, want id %s op %c type %s", name, got, ev.ID, ev.Op, ev.Type)
	}
	if !ev.OccurredAt.IsZero() && !got.OccurredAt.Equal(ev.OccurredAt.Truncate(microsIf(avro))) {
		t.Errorf("%s: occurred_at %v, want %v", name, got.OccurredAt, ev.OccurredAt)
	}
	checkFields(t, name+" key", got.Key, ev.Key, keyNames(ev.Key), avro)
	if ev.Op != cdc.OpDelete && ev.After != nil {
		checkFields(t, name+" fields", got.Fields, ev.After, ev.Changed, avro)
	} else if got.Fields != nil {
		t.Errorf("%s: fields %v on a %c", name, got.Fields, ev.Op)
	}
	if ev.Before != nil && len(ev.Changed) > 0 {
		checkFields(t, name+" before", got.Before, ev.Before, ev.Changed, avro)
	} else if got.Before != nil {
		t.Errorf("%s: before %v, the sink wrote none", name, got.Before)
	}
}

func microsIf(avro bool) time.Duration {
	if avro {
		return 1000 // occurred_at is timestamp-micros in Avro
	}
	return 1
}

// TestApplyReaderRoundTripAvro reads what the Avro sink writes
// (schemas.Encoder, registered in srfake) for every decoded fixture: the
// values come back as the JSON sink's text, and the body the HTTP applier
// sends is the JSON sink's record.
func TestApplyReaderRoundTripAvro(t *testing.T) {
	names, events := decodedFixtures(t)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	client := schemas.NewClient(reg.URL(), schemas.ClientOptions{})
	enc := schemas.NewEncoder(client, schemas.EncoderOptions{})
	r, err := apply.NewReader(topology.CdcsyncAvro, client)
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for i, ev := range events {
		value, _, err := enc.Encode("sync.x", ev, ev.Changed)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Read("sync.x", 0, int64(i), value)
		if ev.Op == cdc.OpMessage {
			if !errors.Is(err, apply.ErrMessage) {
				t.Errorf("%s: message read as %v", names[i], err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", names[i], err)
			continue
		}
		read++
		checkEvent(t, names[i], got, ev, true)
		jsonValue := appendSinkValue(nil, ev, ev.Changed)
		if !lossyEvent(ev) && string(got.Value) != string(withMicros(jsonValue, ev)) {
			t.Errorf("%s: body\n%s\nwant the JSON sink's\n%s", names[i], got.Value, jsonValue)
		}
	}
	t.Logf("%d fixtures read back", read)

	// A record that is not a sync record: garbage, and Avro of another schema.
	if _, err := r.Read("sync.x", 0, 0, []byte("garbage")); !errors.Is(err, apply.ErrBadRecord) {
		t.Errorf("garbage: %v, want ErrBadRecord", err)
	}
	other, err := client.Register("other-value", `{"type":"record","name":"Other","fields":[{"name":"a","type":"string"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read("sync.x", 0, 0, append(cdc.AppendWireHeader(nil, other.ID), 2, 'x')); !errors.Is(err, apply.ErrBadRecord) ||
		!strings.Contains(err.Error(), "not cdcsync's io.cdcsync.Event") {
		t.Errorf("another schema: %v", err)
	}
}

func lossyEvent(ev *cdc.Event) bool {
	for _, row := range []cdc.Row{ev.Key, ev.After, ev.Before, ev.Position} {
		for _, f := range row {
			if avroLossy(row, f.Name) || strings.Contains(string(cdc.AppendJSONValue(nil, f.Value)), "e") && isNumber(f.Value) {
				return true
			}
		}
	}
	return false
}

func isNumber(v any) bool {
	switch v.(type) {
	case float64, float32, cdc.Number:
		return true
	}
	return false
}

// withMicros is the JSON sink's record with occurred_at cut to
// microseconds, as Avro's timestamp-micros keeps it.
func withMicros(jsonValue []byte, ev *cdc.Event) []byte {
	if ev.OccurredAt.IsZero() {
		return jsonValue
	}
	full := cdc.AppendJSONValue(nil, ev.OccurredAt.UTC())
	cut := cdc.AppendJSONValue(nil, ev.OccurredAt.UTC().Truncate(1000))
	return bytes.Replace(jsonValue, full, cut, 1)
}

// TestApplyReaderJSONRefusals: bytes that are not a sync record are
// permanent failures (DLQ stage decode), never a panic.
func TestApplyReaderJSONRefusals(t *testing.T) {
	r, _ := apply.NewReader(topology.CdcsyncJSON, nil)
	if _, err := r.Read("t", 0, 0, nil); !errors.Is(err, apply.ErrTombstone) {
		t.Errorf("tombstone: %v", err)
	}
	for _, v := range []string{
		"garbage", `null`, `[]`, `{"id":"x","op":"c","entity":"e","key":{"id":1}}`,
		`{"id":"a7852133417c9d6d5b8df8d81cb75b35","op":"q","entity":"e","key":{"id":1}}`,
		`{"id":"a7852133417c9d6d5b8df8d81cb75b35","op":"u","entity":"e"}`,
		`{"id":"a7852133417c9d6d5b8df8d81cb75b35","op":"u","entity":"e","key":{"id":1}} trailing`,
		`{"id":"a7852133417c9d6d5b8df8d81cb75b35","op":"u","entity":"e","key":{"id":1},"fields":[1]}`,
	} {
		if _, err := r.Read("t", 0, 0, []byte(v)); !errors.Is(err, apply.ErrBadRecord) {
			t.Errorf("%s: %v, want ErrBadRecord", v, err)
		}
	}
}
