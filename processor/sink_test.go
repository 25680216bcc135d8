package processor

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/route"
)

// appendValue calls appendJSONValue, turning a panic into a test error.
func appendValue(t *testing.T, v any) (out []byte, ok bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("appendJSONValue(%#v) panicked: %v", v, r)
			ok = false
		}
	}()
	return appendJSONValue(nil, v), true
}

func mustUUID(t *testing.T, s string) cdc.UUID {
	t.Helper()
	u, err := cdc.ParseUUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestAppendJSONValue writes every value type the cdc package produces
// (and a few more) and checks the exact output, which must be valid JSON.
func TestAppendJSONValue(t *testing.T) {
	zone := time.FixedZone("", 2*3600)
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, `null`},
		{"true", true, `true`},
		{"false", false, `false`},
		{"int64", int64(-9223372036854775808), `-9223372036854775808`},
		{"int64 big id", int64(1234567890123456789), `1234567890123456789`},
		{"int32", int32(-7), `-7`},
		{"int", 42, `42`},
		{"float64", 0.1, `0.1`},
		{"float64 large", 1e21, `1e+21`},
		{"float64 small", 1.5e-7, `1.5e-7`},
		{"float64 million", 1e6, `1000000`},
		{"float64 huge", 1e300, `1e+300`},
		{"float64 negative zero", math.Copysign(0, -1), `-0`},
		{"float64 NaN", math.NaN(), `"NaN"`},
		{"float64 +Inf", math.Inf(1), `"Infinity"`},
		{"float64 -Inf", math.Inf(-1), `"-Infinity"`},
		{"float32", float32(0.1), `0.1`},
		{"float32 NaN", float32(math.NaN()), `"NaN"`},
		{"float32 -Inf", float32(math.Inf(-1)), `"-Infinity"`},
		{"float32 large", float32(1.2345679e11), `123456790000`},
		{"string", "Anne", `"Anne"`},
		{"string escapes", "a\"b\\c\n\r\t\x00\x1f", `"a\"b\\c\n\r\t\u0000\u001f"`},
		{"string invalid utf8", "a\xffb\xc3", `"a\ufffdb\ufffd"`},
		{"string html kept", "<a&b>", `"<a&b>"`},
		{"string unicode", "日本 é 🎉", `"日本 é 🎉"`},
		{"Number", cdc.Number("12345678901234567890.5e-3"), `12345678901234567890.5e-3`},
		{"Decimal", cdc.Decimal{Unscaled: big.NewInt(-1250), Scale: 2}, `-12.50`},
		{"Decimal small", cdc.Decimal{Unscaled: big.NewInt(5), Scale: 3}, `0.005`},
		{"Decimal negative scale", cdc.Decimal{Unscaled: big.NewInt(12), Scale: -3}, `12000`},
		{"Decimal nil", cdc.Decimal{}, `0`},
		{"Date", cdc.Date{Year: 2024, Month: time.June, Day: 10}, `"2024-06-10"`},
		{"Date epoch days", cdc.DateFromEpochDays(-1), `"1969-12-31"`},
		{"Date year 12000", cdc.Date{Year: 12000, Month: 1, Day: 1}, `"+12000-01-01"`},
		{"Date 44 BC", cdc.Date{Year: -43, Month: 3, Day: 15}, `"-0043-03-15"`},
		{"Date year 0", cdc.Date{Year: 0, Month: 1, Day: 1}, `"0000-01-01"`},
		{"Date PostgreSQL max", cdc.DateFromEpochDays(2145042905), `"+5874897-12-31"`},
		{"Infinity", cdc.PosInfinity, `"infinity"`},
		{"-Infinity", cdc.NegInfinity, `"-infinity"`},
		{"LocalDateTime", cdc.LocalDateTime(time.Date(2026, 11, 27, 10, 0, 0, 500000000, time.UTC)), `"2026-11-27T10:00:00.5"`},
		{"LocalDateTime 44 BC", cdc.LocalDateTime(time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)), `"-0043-03-15T12:00:00"`},
		{"LocalDateTime year 12000", cdc.LocalDateTime(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)), `"+12000-01-01T00:00:00"`},
		{"time year 12000", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), `"+12000-01-01T00:00:00Z"`},
		{"time 4713 BC", time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC), `"-4712-01-01T00:00:00Z"`},
		{"time zone with seconds", time.Date(1890, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", -(36*60+45))), `"1890-01-01T00:00:00-00:36:45"`},
		{"TimeOfDay", cdc.TimeOfDay(13*time.Hour + 45*time.Minute + 30*time.Second + 250*time.Millisecond), `"13:45:30.25"`},
		{"TimeOfDay midnight", cdc.TimeOfDay(0), `"00:00:00"`},
		{"JSON object", cdc.JSON(`{"a":[1,2,{"b":null}]}`), `{"a":[1,2,{"b":null}]}`},
		{"JSON scalar", cdc.JSON(`"x"`), `"x"`},
		{"JSON invalid", cdc.JSON(`{"a":`), `"{\"a\":"`},
		{"JSON empty", cdc.JSON(""), `""`},
		{"UUID", mustUUID(t, "6f1f9c6a-0f43-4a33-9c1e-2f0b8a2a7b10"), `"6f1f9c6a-0f43-4a33-9c1e-2f0b8a2a7b10"`},
		{"Enum", cdc.Enum("active"), `"active"`},
		{"Enum with quote", cdc.Enum(`a"b`), `"a\"b"`},
		{"time UTC", time.Date(2024, 6, 10, 9, 39, 5, 678901000, time.UTC), `"2024-06-10T09:39:05.678901Z"`},
		{"time zoned", time.Date(2024, 6, 10, 9, 39, 5, 0, zone), `"2024-06-10T09:39:05+02:00"`},
		{"bytes", []byte{0, 1, 2, 0xff}, `"AAEC/w=="`},
		{"bytes empty", []byte{}, `""`},
		{"Row", cdc.Row{{Name: "street", Value: "Main \"1\""}, {Name: "geo", Value: cdc.Row{{Name: "lat", Value: 1.5}}}}, `{"street":"Main \"1\"","geo":{"lat":1.5}}`},
		{"Row empty", cdc.Row{}, `{}`},
		{"array", []any{int64(1), "two", nil, math.NaN(), cdc.Row{{Name: "x", Value: true}}, []any{}}, `[1,"two",null,"NaN",{"x":true},[]]`},
		{"map", map[string]any{"b": int64(2), "a": "x"}, `{"a":"x","b":2}`},
		{"int16 via encoding/json", int16(-3), `-3`},
		{"uint64 via encoding/json", uint64(math.MaxUint64), `18446744073709551615`},
		{"map with NaN", map[string]any{"f": math.NaN()}, `{"f":"NaN"}`},
		{"unencodable falls back to null", func() {}, `null`},
	} {
		got, ok := appendValue(t, tc.v)
		if !ok {
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s: appendJSONValue = %s, want %s", tc.name, got, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: %s is not valid JSON", tc.name, got)
		}
	}
}

// Regression: appendJSONValue panics on cdc.Unavailable (the value Debezium
// gives an unchanged TOASTed column): the case for Date, TimeOfDay, UUID
// and Unavailable asserts a String method that Unavailable does not have.
// Fix: give Unavailable its own case writing
// appendString(dst, cdc.UnavailablePlaceholder).
func TestAppendJSONValueUnavailable(t *testing.T) {
	for _, v := range []any{cdc.Unavailable{}, cdc.Row{{Name: "body", Value: cdc.Unavailable{}}}, []any{cdc.Unavailable{}}} {
		got, ok := appendValue(t, v)
		if ok && (!json.Valid(got) || !strings.Contains(string(got), `"`+cdc.UnavailablePlaceholder+`"`)) {
			t.Errorf("appendJSONValue(%#v) = %s, want the placeholder as a JSON string", v, got)
		}
	}
}

// Regression: a NaN or infinite float32 is written bare (NaN, +Inf), which is not
// JSON; the float64 case quotes them. The decoder gives float64 for
// Connect float32 today, so this is latent. Fix: apply the float64 case's
// IsNaN/IsInf check to float32 too.
func TestAppendJSONValueFloat32NonFinite(t *testing.T) {
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		if got, ok := appendValue(t, v); ok && !json.Valid(got) {
			t.Errorf("appendJSONValue(float32 %v) = %s: not valid JSON", v, got)
		}
	}
}

// jsonEncode is encoding/json's output for s without HTML escaping, which
// the sink does not do.
func jsonEncode(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// TestAppendStringMatchesEncodingJSON compares appendString with
// encoding/json byte for byte on every ASCII character and on multi-byte
// and invalid sequences.
//
// Regression: two differences, both valid JSON but not what the doc comment
// ("escaping as encoding/json does for control characters") promises:
// U+0008 and U+000C are written \u0008 and \u000c where encoding/json
// writes \b and \f, and U+2028 and U+2029 are written raw where
// encoding/json writes \u2028 and \u2029 (raw, they break JSON embedded in
// JavaScript). Fix: add '\b' and '\f' cases, and escape U+2028/U+2029 in
// the multi-byte branch.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	var cases []string
	for c := range 0x80 {
		cases = append(cases, string(rune(c)), "x"+string(rune(c))+"y")
	}
	cases = append(cases, "", "é", "日本語", "🎉", "\u2028", "\u2029", "a\u2028b",
		"\xff", "\xc3", "\xc3(", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\xffb\xfe", strings.Repeat("ab\"", 100))
	for _, s := range cases {
		if got, want := string(appendString(nil, s)), jsonEncode(s); got != want {
			t.Errorf("appendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "\"\\", "\n\r\t\b\f", "<>&", "\u2028", "\xff", "\xc3", "日本\"\\", "\xed\xa0\x80", "a\x7fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prefix := []byte("[1,")
		out := appendString(prefix, s)
		if !bytes.HasPrefix(out, []byte("[1,")) {
			t.Fatalf("appendString overwrote dst: %q", out)
		}
		enc := out[len(prefix):]
		if !json.Valid(enc) {
			t.Fatalf("appendString(%q) = %s: not valid JSON", s, enc)
		}
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, enc, err)
		}
		if utf8.ValidString(s) {
			if back != s {
				t.Fatalf("appendString(%q) round-trips to %q", s, back)
			}
			return
		}
		// Invalid UTF-8: each bad byte becomes U+FFFD, as with encoding/json.
		var want string
		std, _ := json.Marshal(s)
		_ = json.Unmarshal(std, &want)
		if back != want {
			t.Fatalf("appendString(%q) decodes to %q; encoding/json's output decodes to %q", s, back, want)
		}
	})
}

func goldenEvent() *cdc.Event {
	return &cdc.Event{
		ID:           cdc.ID{0xc4, 0xfe, 0x21, 0xca, 0xc1, 0x41, 0xcd, 0x37, 0x1f, 0x3f, 0x14, 0x14, 0x24, 0xc6, 0xc0, 0xba},
		Type:         "customers.updated",
		Op:           cdc.OpUpdate,
		Entity:       "customers",
		SourceSystem: "erp",
		Source:       cdc.Source{Connector: "postgresql", Name: "pg", Database: "inventory", Schema: "public", Table: "customers"},
		Key:          cdc.Row{{Name: "id", Value: int64(1004)}},
		Before: cdc.Row{
			{Name: "id", Value: int64(1004)}, {Name: "first_name", Value: "Anne"}, {Name: "email", Value: "annek@noanswer.org"},
			{Name: "city", Value: "Lisbon"}, {Name: "balance", Value: cdc.Decimal{Unscaled: big.NewInt(12345), Scale: 2}},
			{Name: "tags", Value: cdc.JSON(`["a"]`)},
		},
		After: cdc.Row{
			{Name: "id", Value: int64(1004)}, {Name: "first_name", Value: "Anne"}, {Name: "email", Value: "anne.k@example.com"},
			{Name: "city", Value: "Porto"}, {Name: "balance", Value: cdc.Decimal{Unscaled: big.NewInt(12350), Scale: 2}},
			{Name: "tags", Value: cdc.JSON(`["a","b"]`)}, {Name: "born", Value: cdc.Date{Year: 1980, Month: 2, Day: 29}},
		},
		Changed:    []string{"email", "city", "balance", "tags", "born"},
		Position:   cdc.Row{{Name: "lsn", Value: int64(24023152)}, {Name: "txId", Value: int64(556)}, {Name: "sequence", Value: `["24023119","24023152"]`}},
		Schema:     cdc.SchemaInfo{Name: "pg.public.customers.Envelope", Version: 2},
		OccurredAt: time.Date(2024, 6, 10, 11, 39, 5, 678000000, time.FixedZone("CEST", 2*3600)),
	}
}

// TestSinkValueGolden pins the complete sink record of an update: field
// order, the projection to the given fields (in their order, skipping
// names the row lacks), before values of the same fields, position,
// occurred_at in UTC and the schema version.
func TestSinkValueGolden(t *testing.T) {
	ev := goldenEvent()
	got := appendSinkValue(nil, ev, []string{"city", "email", "balance", "tags", "born", "no_such_field"})
	const want = `{"id":"c4fe21cac141cd371f3f141424c6c0ba","type":"customers.updated","op":"u","entity":"customers",` +
		`"source_system":"erp","key":{"id":1004},` +
		`"fields":{"city":"Porto","email":"anne.k@example.com","balance":123.50,"tags":["a","b"],"born":"1980-02-29"},` +
		`"before":{"city":"Lisbon","email":"annek@noanswer.org","balance":123.45,"tags":["a"]},` +
		`"position":{"lsn":24023152,"txId":556,"sequence":"[\"24023119\",\"24023152\"]"},` +
		`"occurred_at":"2024-06-10T09:39:05.678Z","schema_version":2}`
	if string(got) != want {
		t.Errorf("sink value:\n got %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Errorf("not valid JSON: %s", got)
	}
}

func TestSinkValueShapes(t *testing.T) {
	t.Run("delete has no fields", func(t *testing.T) {
		ev := goldenEvent()
		ev.Op, ev.Type, ev.After = cdc.OpDelete, "customers.deleted", nil
		got := string(appendSinkValue(nil, ev, []string{"email"}))
		if strings.Contains(got, `"fields"`) || !strings.Contains(got, `"before":{"email":"annek@noanswer.org"}`) {
			t.Errorf("delete: %s", got)
		}
	})
	t.Run("insert has no before", func(t *testing.T) {
		ev := goldenEvent()
		ev.Op, ev.Before = cdc.OpCreate, nil
		got := string(appendSinkValue(nil, ev, []string{"email"}))
		if strings.Contains(got, `"before"`) || !strings.Contains(got, `"fields":{"email":"anne.k@example.com"}`) {
			t.Errorf("insert: %s", got)
		}
	})
	t.Run("no fields", func(t *testing.T) {
		ev := goldenEvent()
		got := string(appendSinkValue(nil, ev, nil))
		if !strings.Contains(got, `"fields":{}`) || strings.Contains(got, `"before"`) {
			t.Errorf("no fields: %s", got)
		}
	})
	t.Run("message", func(t *testing.T) {
		ev := &cdc.Event{Op: cdc.OpMessage, Type: "message", Message: &cdc.Message{Prefix: "audit\"x", Content: []byte("hi\x00")}}
		got := string(appendSinkValue(nil, ev, nil))
		want := `{"id":"00000000000000000000000000000000","type":"message","op":"m","entity":"","source_system":"","key":{},"message":{"prefix":"audit\"x","content":"aGkA"}}`
		if got != want {
			t.Errorf("message:\n got %s\nwant %s", got, want)
		}
	})
	t.Run("appends to dst", func(t *testing.T) {
		got := appendSinkValue([]byte("prefix"), goldenEvent(), nil)
		if !bytes.HasPrefix(got, []byte("prefix{")) || !json.Valid(got[len("prefix"):]) {
			t.Errorf("got %s", got)
		}
	})
}

// TestSinkValueDecodedFixtures writes the sink record of every decoder
// fixture, projected to its changed fields as the pipeline does, and
// checks it is valid JSON whose fields hold what encoding/json makes of
// the same values.
func TestSinkValueDecodedFixtures(t *testing.T) {
	dir := filepath.Join("cdc", "testdata", "decode")
	files, err := filepath.Glob(filepath.Join(dir, "*.topic"))
	if err != nil || len(files) == 0 {
		t.Skipf("no fixtures in %s: %v", dir, err)
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
		got := appendSinkValue(nil, ev, ev.Changed)
		if !json.Valid(got) {
			t.Errorf("%s: sink value is not valid JSON: %s", filepath.Base(base), got)
			continue
		}
		var rec struct {
			Fields map[string]json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(got, &rec); err != nil {
			t.Errorf("%s: %v", filepath.Base(base), err)
			continue
		}
		for name, raw := range rec.Fields {
			v, _ := ev.After.Get(name)
			std, err := json.Marshal(v)
			if err != nil {
				continue
			}
			if !jsonEqual(t, raw, std) {
				t.Errorf("%s: field %s = %s, encoding/json writes %s", filepath.Base(base), name, raw, std)
			}
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// benchUpdate is a nine-column update of a contact, with three changed
// fields projected, as the demo topology writes it.
func benchUpdate() (*cdc.Event, []string) {
	before := cdc.Row{
		{Name: "id", Value: int64(1004)}, {Name: "first_name", Value: "Anne"}, {Name: "last_name", Value: "Kretchmar"},
		{Name: "email", Value: "annek@noanswer.org"}, {Name: "phone", Value: "+351 21 555 0100"},
		{Name: "address", Value: "Rua Augusta 27"}, {Name: "city", Value: "Lisbon"},
		{Name: "balance", Value: cdc.Decimal{Unscaled: big.NewInt(12345), Scale: 2}},
		{Name: "updated_at", Value: time.Date(2024, 6, 10, 9, 39, 5, 678901000, time.UTC)},
	}
	after := append(cdc.Row(nil), before...)
	after[3].Value = "anne.k@example.com"
	after[6].Value = "Porto"
	after[7].Value = cdc.Decimal{Unscaled: big.NewInt(12350), Scale: 2}
	ev := &cdc.Event{
		ID: cdc.ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Type: "contacts.updated", Op: cdc.OpUpdate,
		Entity: "contacts", SourceSystem: "erp", Key: cdc.Row{{Name: "id", Value: int64(1004)}},
		Before: before, After: after,
		Changed:    []string{"email", "city", "balance"},
		Position:   cdc.Row{{Name: "lsn", Value: int64(24023152)}, {Name: "txId", Value: int64(556)}},
		OccurredAt: time.Date(2024, 6, 10, 9, 39, 5, 678000000, time.UTC),
		Schema:     cdc.SchemaInfo{Version: 1},
	}
	return ev, []string{"email", "city", "balance"}
}

func BenchmarkSinkValue(b *testing.B) {
	ev, fields := benchUpdate()
	b.Run("fresh512", func(b *testing.B) { // as the handler calls it
		b.ReportAllocs()
		var n int
		for b.Loop() {
			n += len(appendSinkValue(make([]byte, 0, 512), ev, fields))
		}
		b.SetBytes(int64(n / b.N))
	})
	b.Run("reuse", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = appendSinkValue(buf[:0], ev, fields)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json-baseline", func(b *testing.B) {
		b.ReportAllocs()
		type rec struct {
			ID           string         `json:"id"`
			Type         string         `json:"type"`
			Op           string         `json:"op"`
			Entity       string         `json:"entity"`
			SourceSystem string         `json:"source_system"`
			Key          cdc.Row        `json:"key"`
			Fields       map[string]any `json:"fields"`
			Before       map[string]any `json:"before"`
			Position     cdc.Row        `json:"position"`
			OccurredAt   time.Time      `json:"occurred_at"`
			Version      int            `json:"schema_version"`
		}
		for b.Loop() {
			r := rec{ID: ev.ID.String(), Type: ev.Type, Op: ev.Op.String(), Entity: ev.Entity, SourceSystem: ev.SourceSystem,
				Key: ev.Key, Fields: map[string]any{}, Before: map[string]any{}, Position: ev.Position,
				OccurredAt: ev.OccurredAt, Version: ev.Schema.Version}
			for _, f := range fields {
				r.Fields[f], _ = ev.After.Get(f)
				r.Before[f], _ = ev.Before.Get(f)
			}
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSinkValueEdgeGolden pins the sink records of the values PostgreSQL
// allows that Go's formatting used to get wrong, from records Debezium
// 3.6.1 wrote on the real stack (a snapshot row and a streamed insert):
// timestamptz and timestamp infinity, -infinity, 44 BC and year 12000,
// date infinity, -infinity, 44 BC, year 12000 and 5874897, a timestamp
// without time zone, float8 Infinity, -Infinity, NaN, 1e300, 1.5e-7 and
// 1e6, real -Infinity, and an interval.
//
// Regression: the change went to the DLQ (infinity, BC and expanded
// years did not parse, large day counts were out of range); a timestamp
// without time zone was written with a Z; floats as "+Inf" and 1e+06.
func TestSinkValueEdgeGolden(t *testing.T) {
	dec := cdc.NewJSONDecoder(cdc.Options{SourceSystem: "erp"})
	for _, name := range []string{"values_pg_edge_read", "values_pg_edge_create"} {
		base := filepath.Join("cdc", "testdata", "decode", name+".env")
		key, err := os.ReadFile(base + ".key.json")
		if err != nil {
			t.Fatal(err)
		}
		value, err := os.ReadFile(base + ".value.json")
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dec.Decode("pg.public.edge", key, value)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := append(appendSinkValue(nil, ev, ev.Changed), '\n')
		if !json.Valid(got) {
			t.Fatalf("%s: not valid JSON: %s", name, got)
		}
		path := filepath.Join("testdata", "sink", name+".json")
		if *updateGolden {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run go test -update and review the diff):\n%s", name, path, got)
		}
	}
}

// TestSinkValueFieldsNeverRepeat: an object never repeats a key, even when
// the projection names a field twice.
//
// Regression: a record whose after held "name" twice was written as
// "fields":{"name":"x","name":"x"}.
func TestSinkValueFieldsNeverRepeat(t *testing.T) {
	ev := goldenEvent()
	got := string(appendSinkValue(nil, ev, []string{"city", "email", "city"}))
	if !strings.Contains(got, `"fields":{"city":"Porto","email":"anne.k@example.com"}`) ||
		!strings.Contains(got, `"before":{"city":"Lisbon","email":"annek@noanswer.org"}`) {
		t.Errorf("sink value repeats a key: %s", got)
	}
}

// TestOneTextPerValue: the sink value (appendSinkValue), the event
// marshaller (cdcsync decode) and the sink key (route.Key) write every
// value type the decoder produces byte for byte alike.
//
// Regression: there were three writers. The key HTML-escaped <, > and &,
// compacted embedded JSON, refused NaN and wrote an empty Avro bytes value
// as null, so a field read differently in the key than in the value.
func TestOneTextPerValue(t *testing.T) {
	values := []any{
		nil, true, false, int64(-1 << 63), int64(42), int32(-3),
		"plain", "<a&b>", "q\"b\\s\n\t\x01\u2028", "bad\xffutf8", "日本 é 🎉",
		0.1, 1e6, 1e21, 1e-7, 1e300, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1),
		cdc.Number("9007199254740993"), cdc.Number("-1.5e3"),
		cdc.Decimal{Unscaled: big.NewInt(-1250), Scale: 2}, cdc.Decimal{Unscaled: big.NewInt(12), Scale: -3},
		cdc.Date{Year: 2024, Month: 2, Day: 29}, cdc.Date{Year: 12000, Month: 1, Day: 1}, cdc.Date{Year: -43, Month: 3, Day: 15},
		cdc.DateFromEpochDays(2145042905), cdc.PosInfinity, cdc.NegInfinity,
		time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC), time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("", 2*3600)),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC),
		cdc.LocalDateTime(time.Date(2026, 11, 27, 10, 0, 0, 500000000, time.UTC)),
		cdc.LocalDateTime(time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)),
		cdc.LocalDateTime(time.Date(294247, 1, 10, 4, 0, 54, 775807000, time.UTC)),
		cdc.TimeOfDay(24 * time.Hour), cdc.TimeOfDay(13*time.Hour + 250*time.Millisecond),
		mustUUID(t, "6f1f9c6a-0f43-4a33-9c1e-2f0b8a2a7b10"), cdc.Enum("ac<tive"),
		cdc.JSON(`{"a": [1, 2], "s": "<&>"}`), cdc.JSON(`"x"`), cdc.JSON(`{"a":`), cdc.JSON(""),
		cdc.Unavailable{},
		[]byte{0, 1, 2, 0xff}, []byte{}, []byte(nil),
		cdc.Row{{Name: "street", Value: "Main & 1"}, {Name: "geo", Value: cdc.Row{{Name: "lat", Value: math.Inf(1)}}}},
		cdc.Row{}, cdc.Row(nil),
		[]any{int64(1), "two", nil, math.NaN(), cdc.Date{Year: 1, Month: 1, Day: 1}},
		[]any{[]any{int64(1), "v"}}, // a map with non-string keys
		map[string]any{"b": int64(2), "a": "x&y"},
	}
	for _, v := range values {
		want := string(cdc.AppendJSONValue(nil, v))
		if !json.Valid([]byte(want)) {
			t.Errorf("%T %#v: %s is not JSON", v, v, want)
		}
		ev := &cdc.Event{Op: cdc.OpUpdate, After: cdc.Row{{Name: "v", Value: v}}}

		key, err := route.Key(ev, []string{"v"})
		if err != nil || string(key) != `{"v":`+want+`}` {
			t.Errorf("%T %#v: key %s, %v; want {\"v\":%s}", v, v, key, err, want)
		}
		sink := string(appendSinkValue(nil, ev, []string{"v"}))
		if !strings.Contains(sink, `"fields":{"v":`+want+`}`) {
			t.Errorf("%T %#v: sink %s lacks \"fields\":{\"v\":%s}", v, v, sink, want)
		}
		b, err := ev.MarshalJSON()
		if err != nil || !strings.Contains(string(b), `"after":{"v":`+want+`}`) {
			t.Errorf("%T %#v: decode %s, %v lacks \"after\":{\"v\":%s}", v, v, b, err, want)
		}
	}
}
