package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// envRecords are the JSON envelope fixtures the Avro fixtures are made
// from, in name order; their index gives the schema IDs.
func envRecords(t testing.TB) []record {
	var out []record
	for _, r := range loadRecords(t) {
		if strings.HasSuffix(r.name, ".env") {
			out = append(out, r)
		}
	}
	return out
}

// TestAvroFixtures regenerates the Avro fixtures from the JSON ones and
// checks that testdata/avro holds exactly that (go test -update rewrites).
func TestAvroFixtures(t *testing.T) {
	if *update {
		if err := os.MkdirAll(avroDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range envRecords(t) {
		f := makeAvroFixture(t, i, r)
		if *update {
			writeAvroFixture(t, f)
			continue
		}
		base := filepath.Join(avroDir, f.name)
		if got := readOptional(t, base+".value.bin"); !bytes.Equal(got, f.value) {
			t.Errorf("%s.value.bin is stale (run go test -update)", base)
		}
		if got := readOptional(t, base+".key.bin"); !bytes.Equal(got, f.key) {
			t.Errorf("%s.key.bin is stale (run go test -update)", base)
		}
	}
}

// TestAvroGoavroAgrees checks the fixtures with an independent Avro
// implementation: goavro compiles every writer schema and decodes every
// body to the last byte.
func TestAvroGoavroAgrees(t *testing.T) {
	for _, f := range loadAvroFixtures(t) {
		for _, p := range []struct {
			schema string
			data   []byte
		}{{f.keySchema, f.key}, {f.valSchema, f.value}} {
			if p.schema == "" {
				continue
			}
			codec, err := goavro.NewCodec(p.schema)
			if err != nil {
				t.Fatalf("%s: goavro: %v", f.name, err)
			}
			_, rest, err := codec.NativeFromBinary(p.data[5:])
			if err != nil || len(rest) != 0 {
				t.Fatalf("%s: goavro decode: %v, %d bytes left", f.name, err, len(rest))
			}
		}
	}
}

func TestAvroGolden(t *testing.T) {
	fs := loadAvroFixtures(t)
	d := NewAvroDecoder(Options{SourceSystem: "erp"}, fixtureSource(fs))
	for _, f := range fs {
		t.Run(f.name, func(t *testing.T) {
			ev, err := d.Decode(f.topic, f.key, f.value)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join(avroDir, f.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("event differs from %s (run go test -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestAvroMatchesJSON is the contract of the Avro decoder: the same
// change read from Avro and from JSON with schemas gives an equal Event —
// the same Go value types, the same ID — under every ID mode. Only
// Event.Schema differs (registry subject, ID and version).
func TestAvroMatchesJSON(t *testing.T) {
	recs := envRecords(t)
	fs := loadAvroFixtures(t)
	byName := map[string]avroFixture{}
	for _, f := range fs {
		byName[f.name] = f
	}
	src := fixtureSource(fs)
	for _, opts := range []Options{
		{SourceSystem: "erp"},
		{SourceSystem: "erp", IDMode: IDContent},
		{SourceSystem: "erp", IDMode: IDField, IDField: "id"},
	} {
		jd, ad := NewJSONDecoder(opts), NewAvroDecoder(opts, src)
		for _, r := range recs {
			f, ok := byName[strings.TrimSuffix(r.name, ".env")]
			if !ok {
				t.Fatalf("no Avro fixture for %s", r.name)
			}
			je, jerr := jd.Decode(r.topic, r.key, r.value)
			ae, aerr := ad.Decode(f.topic, f.key, f.value)
			if (jerr == nil) != (aerr == nil) {
				t.Fatalf("%s mode %d: JSON error %v, Avro error %v", f.name, opts.IDMode, jerr, aerr)
			}
			if jerr != nil {
				if !errors.Is(aerr, ErrMissingField) || !errors.Is(jerr, ErrMissingField) {
					t.Fatalf("%s mode %d: errors differ: %v vs %v", f.name, opts.IDMode, jerr, aerr)
				}
				continue
			}
			if je.ID != ae.ID {
				t.Errorf("%s mode %d: IDs differ: JSON %s, Avro %s", f.name, opts.IDMode, je.ID, ae.ID)
			}
			if ae.Schema.ID == 0 && !ae.Tombstone {
				t.Errorf("%s: no schema ID", f.name)
			}
			js, as := *je, *ae
			js.Schema, as.Schema = SchemaInfo{}, SchemaInfo{}
			js.Before, js.After = withoutNaN(js.Before), withoutNaN(js.After)
			as.Before, as.After = withoutNaN(as.Before), withoutNaN(as.After)
			if !reflect.DeepEqual(js, as) {
				t.Errorf("%s mode %d: events differ:\n%s", f.name, opts.IDMode, diffEvents(&js, &as))
			}
		}
	}
}

// nanMark stands for a NaN in withoutNaN's copies: NaN is never
// DeepEqual to itself.
type nanMark struct{}

// withoutNaN is a copy of r with NaN floats replaced by nanMark.
func withoutNaN(r Row) Row {
	if r == nil {
		return nil
	}
	out := make(Row, len(r))
	for i, f := range r {
		if x, ok := f.Value.(float64); ok && math.IsNaN(x) {
			f.Value = nanMark{}
		}
		out[i] = f
	}
	return out
}

// diffEvents names the first differing fields of two events.
func diffEvents(a, b *Event) string {
	var out strings.Builder
	rows := map[string][2]Row{"Key": {a.Key, b.Key}, "Before": {a.Before, b.Before}, "After": {a.After, b.After}, "Position": {a.Position, b.Position}}
	for name, r := range rows {
		if len(r[0]) != len(r[1]) {
			fmt.Fprintf(&out, "%s: %d vs %d fields\n", name, len(r[0]), len(r[1]))
			continue
		}
		for i := range r[0] {
			if !reflect.DeepEqual(r[0][i], r[1][i]) {
				fmt.Fprintf(&out, "%s.%s: %#v (%T) vs %#v (%T)\n", name, r[0][i].Name, r[0][i].Value, r[0][i].Value, r[1][i].Value, r[1][i].Value)
			}
		}
	}
	a2, b2 := *a, *b
	a2.Key, a2.Before, a2.After, a2.Position = nil, nil, nil, nil
	b2.Key, b2.Before, b2.After, b2.Position = nil, nil, nil, nil
	if !reflect.DeepEqual(a2, b2) {
		fmt.Fprintf(&out, "rest: %+v\nvs    %+v\n", a2, b2)
	}
	return out.String()
}

func fixtureByName(t testing.TB, name string) (avroFixture, *memSource) {
	fs := loadAvroFixtures(t)
	for _, f := range fs {
		if f.name == name {
			return f, fixtureSource(fs)
		}
	}
	t.Fatalf("no Avro fixture %s", name)
	return avroFixture{}, nil
}

func TestAvroSchemaInfo(t *testing.T) {
	f, src := fixtureByName(t, "pg_update")
	ev, err := NewAvroDecoder(Options{}, src).Decode(f.topic, f.key, f.value)
	if err != nil {
		t.Fatal(err)
	}
	want := SchemaInfo{Name: "pg.public.customers.Envelope", Version: 1, ID: f.valID, Subject: "pg.public.customers-value"}
	if ev.Schema != want {
		t.Fatalf("schema info %+v, want %+v", ev.Schema, want)
	}
	// Record-name strategy: the subject is the record's full name.
	src.subjects[f.valID] = []SubjectVersion{{"other-value", 3}, {"pg.public.customers.Envelope", 7}}
	ev, err = NewAvroDecoder(Options{}, src).Decode(f.topic, f.key, f.value)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Schema.Subject != "pg.public.customers.Envelope" || ev.Schema.Version != 7 {
		t.Fatalf("record strategy: %+v", ev.Schema)
	}
}

// TestAvroEvolution decodes two writer versions of one table side by
// side, as when a column is added mid-stream.
func TestAvroEvolution(t *testing.T) {
	r := loadRecord(t, "pg_update.env")
	v1 := makeAvroFixture(t, 0, r)
	// Version 2 adds a nullable "loyalty" column at the end of the row.
	v2doc := bytes.ReplaceAll(r.value, []byte(`"field":"updated_at"}`),
		[]byte(`"field":"updated_at"},{"type":"string","optional":true,"field":"loyalty"}`))
	v2doc = bytes.ReplaceAll(v2doc, []byte(`"updated_at":1718012345678901}`), []byte(`"updated_at":1718012345678901,"loyalty":"gold"}`))
	v2 := makeAvroFixture(t, 1, record{name: "pg_update_v2.env", topic: r.topic, key: r.key, value: v2doc})
	if v1.valSchema == v2.valSchema {
		t.Fatal("the v2 schema is the same as v1")
	}
	src := &memSource{
		schemas: map[int]string{v1.keyID: v1.keySchema, v1.valID: v1.valSchema, v2.keyID: v2.keySchema, v2.valID: v2.valSchema},
		subjects: map[int][]SubjectVersion{
			v1.valID: {{r.topic + "-value", 1}}, v2.valID: {{r.topic + "-value", 2}},
		},
	}
	d := NewAvroDecoder(Options{}, src)
	for i := range 4 {
		f, ver := v1, 1
		if i%2 == 1 {
			f, ver = v2, 2
		}
		ev, err := d.Decode(f.topic, f.key, f.value)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if ev.Schema.Version != ver || ev.Schema.ID != f.valID {
			t.Fatalf("record %d: schema %+v, want version %d", i, ev.Schema, ver)
		}
		loyalty, ok := ev.After.Get("loyalty")
		if (ver == 2) != ok || (ok && loyalty != "gold") {
			t.Fatalf("record %d (v%d): loyalty %v %v", i, ver, loyalty, ok)
		}
	}
	if src.calls.Load() != 4 {
		t.Fatalf("%d schema fetches, want 4 (two versions, key and value, each once)", src.calls.Load())
	}
}

func TestAvroTombstone(t *testing.T) {
	f, src := fixtureByName(t, "tombstone_pg")
	if f.value != nil {
		t.Fatal("tombstone fixture has a value")
	}
	ev, err := NewAvroDecoder(Options{}, src).Decode(f.topic, f.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Tombstone || ev.Op != OpDelete || ev.Entity != "customers" {
		t.Fatalf("tombstone: %+v", ev)
	}
	if v, _ := ev.Key.Get("id"); v != int64(1004) {
		t.Fatalf("tombstone key %v", ev.Key)
	}
}

func TestAvroErrors(t *testing.T) {
	f, src := fixtureByName(t, "pg_update")
	body := f.value[5:]
	withID := func(id int, b []byte) []byte { return appendWire(id, b) }
	for _, c := range []struct {
		name     string
		value    []byte
		sentinel error
	}{
		{"short header", []byte{0, 0, 1}, ErrMalformed},
		{"bad magic", append([]byte{1}, f.value[1:]...), ErrMalformed},
		{"json instead of avro", []byte(`{"op":"c"}`), ErrMalformed},
		{"unknown schema", withID(999999, body), ErrUnknownSchema},
		{"truncated body", f.value[:len(f.value)-3], ErrSchemaMismatch},
		{"trailing bytes", append(append([]byte(nil), f.value...), 0, 0), ErrSchemaMismatch},
		{"key schema for value", withID(f.keyID, body), ErrMissingField},
		{"union index out of range", withID(f.valID, append([]byte{0x7e}, body[1:]...)), ErrSchemaMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewAvroDecoder(Options{}, src).Decode(f.topic, f.key, c.value)
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, c.sentinel) {
				t.Fatalf("error %v (%T), want a *DecodeError wrapping %v", err, err, c.sentinel)
			}
			if de.Part != "value" || !de.Permanent() {
				t.Fatalf("error %#v", de)
			}
			if c.sentinel != ErrMalformed && de.SchemaID == 0 {
				t.Fatalf("no schema ID in %#v", de)
			}
		})
	}
}

// TestAvroRegistryDown: an unreachable registry is a transient
// *RegistryError, never a *DecodeError, and is not cached: the record
// decodes once the registry is back.
func TestAvroRegistryDown(t *testing.T) {
	f, src := fixtureByName(t, "pg_update")
	d := NewAvroDecoder(Options{}, src)
	src.down = errors.New("dial tcp 127.0.0.1:1: connection refused")
	_, err := d.Decode(f.topic, f.key, f.value)
	var re *RegistryError
	if !errors.As(err, &re) || !errors.Is(err, ErrRegistryUnavailable) || !re.Transient() {
		t.Fatalf("error %v (%T), want a transient *RegistryError", err, err)
	}
	var de *DecodeError
	if errors.As(err, &de) {
		t.Fatal("a registry outage must not be a (permanent) DecodeError")
	}
	var perm interface{ Permanent() bool }
	if errors.As(err, &perm) {
		t.Fatal("a registry outage must not look permanent")
	}
	src.down = nil
	if _, err := d.Decode(f.topic, f.key, f.value); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestAvroUnknownIDCached: poison records with an unknown ID do not hit
// the registry one by one.
func TestAvroUnknownIDCached(t *testing.T) {
	f, src := fixtureByName(t, "pg_update")
	d := NewAvroDecoder(Options{}, src)
	bad := appendWire(424242, f.value[5:])
	for range 10 {
		if _, err := d.Decode(f.topic, nil, bad); !errors.Is(err, ErrUnknownSchema) {
			t.Fatal(err)
		}
	}
	if src.calls.Load() != 1 {
		t.Fatalf("%d registry calls for 10 records of one unknown ID", src.calls.Load())
	}
}

func TestAvroConcurrent(t *testing.T) {
	fs := loadAvroFixtures(t)
	d := NewAvroDecoder(Options{}, fixtureSource(fs))
	want := map[string]ID{}
	for _, f := range fs {
		ev, err := d.Decode(f.topic, f.key, f.value)
		if err != nil {
			t.Fatal(err)
		}
		want[f.name] = ev.ID
	}
	d = NewAvroDecoder(Options{}, fixtureSource(fs)) // cold caches
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				f := fs[(g+i)%len(fs)]
				ev, err := d.Decode(f.topic, f.key, f.value)
				if err != nil || ev.ID != want[f.name] {
					t.Errorf("%s: %v", f.name, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The workload of BenchmarkDecode*: the 9-column customers update.
func BenchmarkAvroDecode(b *testing.B) {
	f, src := fixtureByName(b, "pg_update")
	d := NewAvroDecoder(Options{SourceSystem: "erp"}, src)
	if _, err := d.Decode(f.topic, f.key, f.value); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(f.key) + len(f.value)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ev, err := d.Decode(f.topic, f.key, f.value)
		if err != nil || ev.ID.IsZero() {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoavroNative is the baseline the compiled reader replaces:
// goavro's generic decode into maps, before any typing.
func BenchmarkGoavroNative(b *testing.B) {
	f, _ := fixtureByName(b, "pg_update")
	kc, err := goavro.NewCodec(f.keySchema)
	if err != nil {
		b.Fatal(err)
	}
	vc, err := goavro.NewCodec(f.valSchema)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := kc.NativeFromBinary(f.key[5:]); err != nil {
			b.Fatal(err)
		}
		if _, _, err := vc.NativeFromBinary(f.value[5:]); err != nil {
			b.Fatal(err)
		}
	}
}
