package schemas

import (
	"errors"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/topology"
)

func TestWire(t *testing.T) {
	b := cdc.AppendWireHeader(nil, 258)
	b = append(b, 'x')
	id, body, err := cdc.SplitWire(b)
	if err != nil || id != 258 || string(body) != "x" {
		t.Fatalf("SplitWire: %d %q %v", id, body, err)
	}
	for _, bad := range [][]byte{nil, {0, 0, 1}, {1, 0, 0, 0, 1}} {
		if _, _, err := cdc.SplitWire(bad); !errors.Is(err, cdc.ErrWireFormat) {
			t.Errorf("cdc.SplitWire(%v): %v", bad, err)
		}
	}
}

func TestSubject(t *testing.T) {
	for _, c := range []struct {
		s    topology.SubjectStrategy
		want string
	}{
		{topology.SubjectTopic, "sync.contacts-value"},
		{topology.SubjectRecord, "io.cdcsync.Event"},
		{topology.SubjectTopicRecord, "sync.contacts-io.cdcsync.Event"},
	} {
		if got := Subject(c.s, "sync.contacts", EventRecordName); got != c.want {
			t.Errorf("%v: %s, want %s", c.s, got, c.want)
		}
	}
}

func TestEventSchemaParses(t *testing.T) {
	if _, err := goavro.NewCodec(EventSchema); err != nil {
		t.Fatalf("goavro: %v", err)
	}
	if _, err := parse(EventSchema); err != nil {
		t.Fatalf("hamba: %v", err)
	}
}

// logicalEvent decodes the JSON fixture with every logical type.
func logicalEvent(t *testing.T) *cdc.Event {
	dir := "../processor/cdc/testdata/decode/pg_logical_types.env."
	key, err := os.ReadFile(dir + "key.json")
	if err != nil {
		t.Fatal(err)
	}
	value, err := os.ReadFile(dir + "value.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := cdc.NewJSONDecoder(cdc.Options{SourceSystem: "erp"}).Decode("pg.public.types", key, value)
	if err != nil {
		t.Fatal(err)
	}
	ev.After = append(ev.After,
		cdc.Field{Name: "nested", Value: cdc.Row{{Name: "a", Value: int64(1)}}},
		cdc.Field{Name: "toast", Value: cdc.Unavailable{}},
		cdc.Field{Name: "num", Value: cdc.Number("-1.25e3")},
		cdc.Field{Name: "big", Value: cdc.Decimal{Unscaled: big.NewInt(-129), Scale: 1}})
	ev.Schema.Version = 3
	return ev
}

// TestAppendEventGoavro decodes the encoder's output with goavro, an
// independent implementation, for an event with every value type.
func TestAppendEventGoavro(t *testing.T) {
	ev := logicalEvent(t)
	names := ev.After.Names()
	body := AppendEvent(nil, ev, names)
	codec, err := goavro.NewCodec(EventSchema)
	if err != nil {
		t.Fatal(err)
	}
	native, rest, err := codec.NativeFromBinary(body)
	if err != nil || len(rest) != 0 {
		t.Fatalf("goavro: %v, %d bytes left", err, len(rest))
	}
	m := native.(map[string]any)
	if m["id"] != ev.ID.String() || m["op"] != "c" || m["type"] != "types.created" {
		t.Fatalf("header fields: %v %v %v", m["id"], m["op"], m["type"])
	}
	fields := m["fields"].(map[string]any)["map"].(map[string]any)
	price := fields["price"].(map[string]any)["io.cdcsync.Decimal"].(map[string]any)
	if price["scale"] != int32(2) {
		t.Fatalf("price %v", price)
	}
	if _, ok := fields["toast"].(map[string]any)["io.cdcsync.Unavailable"]; !ok {
		t.Fatalf("toast %v", fields["toast"])
	}
	// io.debezium.time.Timestamp is a timestamp without time zone.
	ts := fields["ts"].(map[string]any)["io.cdcsync.LocalTimestamp"].(map[string]any)
	if got := time.Unix(ts["seconds"].(int64), int64(ts["nanos"].(int32))).UTC(); !got.Equal(time.UnixMilli(1718012345678)) {
		t.Fatalf("ts %v", got)
	}
	zoned := fields["zoned"].(map[string]any)["io.cdcsync.Timestamp"].(map[string]any)
	if got := time.Unix(zoned["seconds"].(int64), int64(zoned["nanos"].(int32))); !got.Equal(time.Date(2024, 6, 10, 7, 39, 5, 678901000, time.UTC)) {
		t.Fatalf("zoned %v", got)
	}
	if v := m["schema_version"].(map[string]any)["int"]; v != int32(3) {
		t.Fatalf("schema_version %v", v)
	}
	if len(fields) != len(names) {
		t.Fatalf("%d fields, want %d", len(fields), len(names))
	}
}

func TestTwosComplement(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 127, 128, -128, -129, 255, 256, -32768, 1 << 40, -(1 << 40)} {
		b := twosComplement(big.NewInt(n))
		got := new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			got.Sub(got, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
		}
		if got.Int64() != n {
			t.Errorf("%d: %x reads back as %v", n, b, got)
		}
	}
}

func newRegistry(t *testing.T) (*srfake.Registry, *Client) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	return reg, NewClient(reg.URL(), ClientOptions{Timeout: time.Second})
}

func TestEncoderRegisters(t *testing.T) {
	_, c := newRegistry(t)
	for _, s := range []topology.SubjectStrategy{topology.SubjectTopic, topology.SubjectRecord, topology.SubjectTopicRecord} {
		e := NewEncoder(c, EncoderOptions{Strategy: s})
		ev := logicalEvent(t)
		value, headers, err := e.Encode("sync.types", ev, []string{"price"})
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := cdc.SplitWire(value)
		if err != nil || id == 0 {
			t.Fatalf("framing: %d %v", id, err)
		}
		h := map[string]string{}
		for _, x := range headers {
			h[x.Key] = string(x.Value)
		}
		if h[HeaderSchemaID] != strconv.Itoa(id) || h[HeaderSchemaVersion] != "1" || h[HeaderSubject] != Subject(s, "sync.types", EventRecordName) {
			t.Fatalf("%v: headers %v (id %d)", s, h, id)
		}
	}
}

// TestEncoderTombstone: a tombstone stays a null value, with no framing
// and no headers; other tools wrap it in a schema.
func TestEncoderTombstone(t *testing.T) {
	_, c := newRegistry(t)
	e := NewEncoder(c, EncoderOptions{})
	value, headers, err := e.Encode("sync.t", &cdc.Event{Tombstone: true, Op: cdc.OpDelete}, nil)
	if err != nil || value != nil || headers != nil {
		t.Fatalf("tombstone: %v %v %v", value, headers, err)
	}
}

// incompatibleEvent is an io.cdcsync.Event a previous deploy registered:
// the current schema cannot read it (its required "id" has no default).
const incompatibleEvent = `{"type":"record","name":"Event","namespace":"io.cdcsync","fields":[{"name":"legacy","type":"string"}]}`

func TestEncoderIncompatible(t *testing.T) {
	reg, c := newRegistry(t)
	reg.SeedSchema("sync.t-value", 1, 500, sr.Schema{Schema: incompatibleEvent})
	e := NewEncoder(c, EncoderOptions{})
	err := e.Prepare("sync.t")
	var ie *IncompatibleError
	if !errors.As(err, &ie) || !errors.Is(err, ErrIncompatible) || ie.Version != 1 || ie.Level != "BACKWARD" {
		t.Fatalf("Prepare: %v", err)
	}
	// Under NONE the same schema registers.
	if err := reg.SetCompat("sync.t-value", sr.CompatNone); err != nil {
		t.Fatal(err)
	}
	r, err := NewEncoder(c, EncoderOptions{}).Registration("sync.t")
	if err != nil || r.Version != 2 {
		t.Fatalf("under NONE: %+v %v", r, err)
	}
}

func TestEncoderNoRegister(t *testing.T) {
	_, c := newRegistry(t)
	err := NewEncoder(c, EncoderOptions{NoRegister: true}).Prepare("sync.t")
	if !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("Prepare: %v", err)
	}
}

func TestCheckCompatibilityLevels(t *testing.T) {
	v1 := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`
	addOptional := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","string"],"default":null}]}`
	addRequired := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string"}]}`
	dropA := `{"type":"record","name":"R","fields":[]}`
	for _, c := range []struct {
		level, cand string
		ok          bool
	}{
		{"BACKWARD", addOptional, true},
		{"BACKWARD", addRequired, false},
		{"FORWARD", addRequired, true},
		{"FORWARD", dropA, false},
		{"FULL", addOptional, true},
		{"FULL", addRequired, false},
		{"NONE", addRequired, true},
		{"BACKWARD_TRANSITIVE", addOptional, true},
	} {
		err := CheckCompatibility("s", c.level, c.cand, []int{1}, []string{v1})
		if (err == nil) != c.ok {
			t.Errorf("%s %s: %v", c.level, c.cand, err)
		}
	}
	// Transitive levels check every version, not only the latest.
	err := CheckCompatibility("s", "BACKWARD_TRANSITIVE", addOptional, []int{1, 2}, []string{dropA, addOptional})
	if err == nil {
		t.Error("BACKWARD_TRANSITIVE passed against an incompatible first version")
	}
	if err := CheckCompatibility("s", "BACKWARD", addOptional, []int{1, 2}, []string{dropA, addOptional}); err != nil {
		t.Errorf("BACKWARD checks only the latest: %v", err)
	}
}

// TestClientFailures: 404 is a permanent unknown schema, a 503 or a
// registry that does not answer is transient.
func TestClientFailures(t *testing.T) {
	reg, c := newRegistry(t)
	if _, err := c.WriterSchema(4242); !errors.Is(err, cdc.ErrUnknownSchema) || errors.Is(err, cdc.ErrRegistryUnavailable) {
		t.Fatalf("unknown ID: %v", err)
	}
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	if _, err := c.WriterSchema(1); !errors.Is(err, cdc.ErrRegistryUnavailable) {
		t.Fatalf("503: %v", err)
	}
	if _, err := c.Register("s-value", EventSchema); !errors.Is(err, cdc.ErrRegistryUnavailable) {
		t.Fatalf("register under 503: %v", err)
	}
	// Regression: 401 and 403 were folded into "unavailable" and retried
	// forever; a refused credential is an access failure.
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		reg, c := newRegistry(t)
		reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(code)
			return true
		})
		if _, err := c.WriterSchema(1); !errors.Is(err, ErrAccessDenied) || errors.Is(err, cdc.ErrRegistryUnavailable) {
			t.Fatalf("%d: %v", code, err)
		}
	}
	down := NewClient("http://127.0.0.1:1", ClientOptions{Timeout: 200 * time.Millisecond})
	if _, err := down.WriterSchema(1); !errors.Is(err, cdc.ErrRegistryUnavailable) {
		t.Fatalf("connection refused: %v", err)
	}
}

// TestDecoderThroughClient runs the Avro decoder against srfake through
// the Client: subject and version come from the registry.
func TestDecoderThroughClient(t *testing.T) {
	reg, c := newRegistry(t)
	valSchema, err := os.ReadFile("../processor/cdc/testdata/avro/pg_update.value.avsc")
	if err != nil {
		t.Fatal(err)
	}
	value, err := os.ReadFile("../processor/cdc/testdata/avro/pg_update.value.bin")
	if err != nil {
		t.Fatal(err)
	}
	id, version, err := reg.RegisterSchema("pg.public.customers-value", sr.Schema{Schema: string(valSchema)})
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := cdc.SplitWire(value)
	d := cdc.NewAvroDecoder(cdc.Options{}, c)
	ev, err := d.Decode("pg.public.customers", nil, cdc.AppendWireHeader(nil, id))
	if err == nil || !errors.Is(err, cdc.ErrSchemaMismatch) {
		t.Fatalf("empty body: %v", err)
	}
	ev, err = d.Decode("pg.public.customers", nil, append(cdc.AppendWireHeader(nil, id), body...))
	if err != nil {
		t.Fatal(err)
	}
	want := cdc.SchemaInfo{Name: "pg.public.customers.Envelope", ID: id, Version: version, Subject: "pg.public.customers-value"}
	if ev.Schema != want {
		t.Fatalf("schema %+v, want %+v", ev.Schema, want)
	}
}
