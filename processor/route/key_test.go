package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

func TestKey(t *testing.T) {
	ev := &cdc.Event{
		Entity: "contacts",
		Key:    cdc.Row{{Name: "contact_id", Value: int64(42)}, {Name: "tenant", Value: "k-only"}},
		Before: cdc.Row{{Name: "contact_id", Value: int64(41)}, {Name: "region", Value: "eu"}},
		After:  cdc.Row{{Name: "contact_id", Value: int64(42)}, {Name: "email", Value: "a@b.c"}, {Name: "gone", Value: nil}},
	}
	cases := []struct {
		fields []string
		want   string
	}{
		{[]string{"contact_id"}, `{"contact_id":42}`},
		{[]string{"email", "contact_id"}, `{"email":"a@b.c","contact_id":42}`},
		{[]string{"region"}, `{"region":"eu"}`},     // from Before
		{[]string{"tenant"}, `{"tenant":"k-only"}`}, // from Key
		{[]string{"gone"}, `{"gone":null}`},         // present but nil
		{nil, `{}`},
	}
	for _, c := range cases {
		got, err := Key(ev, c.fields)
		if err != nil || string(got) != c.want {
			t.Errorf("Key(%v) = %s, %v; want %s", c.fields, got, err, c.want)
		}
	}
}

func TestKeyDeleteAndTombstone(t *testing.T) {
	del := &cdc.Event{Op: cdc.OpDelete, Before: cdc.Row{{Name: "id", Value: cdc.Number("9007199254740993")}}}
	if got, err := Key(del, []string{"id"}); err != nil || string(got) != `{"id":9007199254740993}` {
		t.Errorf("delete: %s, %v", got, err)
	}
	tomb := &cdc.Event{Op: cdc.OpDelete, Tombstone: true, Key: cdc.Row{{Name: "id", Value: int64(7)}}}
	if got, err := Key(tomb, []string{"id"}); err != nil || string(got) != `{"id":7}` {
		t.Errorf("tombstone: %s, %v", got, err)
	}
}

func TestKeyMissingField(t *testing.T) {
	ev := &cdc.Event{Entity: "contacts", After: cdc.Row{{Name: "id", Value: int64(1)}}}
	buf := []byte("prefix")
	got, err := AppendKey(buf, ev, []string{"id", "contact_id"})
	if !errors.Is(err, ErrMissingKeyField) {
		t.Fatalf("err = %v, want ErrMissingKeyField", err)
	}
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Field != "contact_id" || ke.Entity != "contacts" || !ke.Permanent() {
		t.Errorf("KeyError = %+v", ke)
	}
	if string(got) != "prefix" {
		t.Errorf("dst on error = %q, want it unchanged", got)
	}
	if !strings.Contains(err.Error(), `"contact_id"`) {
		t.Errorf("message %q does not name the field", err)
	}
}

// A key field of a Go type no JSON can hold is refused, never written as
// null (null would give distinct values one key).
func TestKeyUnencodable(t *testing.T) {
	for _, v := range []any{func() {}, make(chan int), map[int]func(){1: nil}, cdc.Row{{Name: "f", Value: func() {}}}} {
		ev := &cdc.Event{After: cdc.Row{{Name: "x", Value: v}}}
		got, err := AppendKey([]byte("prefix"), ev, []string{"x"})
		if !errors.Is(err, ErrUnencodableKey) {
			t.Errorf("%T: err = %v, want ErrUnencodableKey", v, err)
		}
		if string(got) != "prefix" {
			t.Errorf("%T: dst on error = %q, want it unchanged", v, got)
		}
	}
}

// TestKeyText pins the key text of every value type the decoder produces.
// The key picks the partition, so a change of these bytes moves keys: each
// row says whether its text is what cdcsync wrote before issue 10 (when
// the key had its own writer), and if not, why it changed.
//
// Regression: the key had its own writer that HTML-escaped <, > and &,
// compacted embedded JSON, sent NaN keys to the DLQ and wrote an empty
// Avro bytes value as null, while the sink value wrote the same field
// otherwise.
func TestKeyText(t *testing.T) {
	uuid, _ := cdc.ParseUUID("123e4567-e89b-12d3-a456-426614174000")
	for _, c := range []struct {
		v       any
		want    string
		changed string // why the text differs from the pre-issue-10 key; "" if it does not
	}{
		{nil, `null`, ""},
		{true, `true`, ""},
		{int64(-1 << 63), `-9223372036854775808`, ""},
		{int64(42), `42`, ""},
		{int32(-3), `-3`, ""},
		{"plain é 日本", `"plain é 日本"`, ""},
		{"tab\tnl\n\x01\u2028", `"tab\tnl\n\u0001\u2028"`, ""},
		{"bad\xff", `"bad\ufffd"`, ""},
		{"<a&b>", `"<a&b>"`, "was \"\u003ca\u0026b\u003e\": HTML escaping, which neither the sink value nor Jackson does"},
		{cdc.Enum("ac<tive"), `"ac<tive"`, "was \"ac\u003ctive\": HTML escaping"},
		{0.1, `0.1`, ""},
		{1e6, `1000000`, ""},
		{1e21, `1e+21`, ""},
		{1e-7, `1e-7`, ""},
		{math.Copysign(0, -1), `-0`, ""},
		{math.NaN(), `"NaN"`, "was ErrUnencodableKey (DLQ): the sink writes \"NaN\", PostgreSQL allows a NaN float8 key"},
		{math.Inf(1), `"Infinity"`, "was ErrUnencodableKey (DLQ)"},
		{math.Inf(-1), `"-Infinity"`, "was ErrUnencodableKey (DLQ)"},
		{cdc.Number("9007199254740993"), `9007199254740993`, ""},
		{cdc.Number("-1.5e3"), `-1.5e3`, ""},
		{cdc.Decimal{Unscaled: big.NewInt(-1250), Scale: 2}, `-12.50`, ""},
		{cdc.Decimal{Unscaled: big.NewInt(12), Scale: -3}, `12000`, ""},
		{cdc.Date{Year: 2024, Month: 2, Day: 29}, `"2024-02-29"`, ""},
		{cdc.Date{Year: 12000, Month: 1, Day: 1}, `"+12000-01-01"`, ""},
		{cdc.Date{Year: -43, Month: 3, Day: 15}, `"-0043-03-15"`, ""},
		{cdc.PosInfinity, `"infinity"`, ""},
		{cdc.NegInfinity, `"-infinity"`, ""},
		{time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC), `"2024-05-06T07:08:09.123456Z"`, ""},
		{time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("", -5*3600)), `"2024-05-06T07:08:09-05:00"`, ""},
		{time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), `"+12000-01-01T00:00:00Z"`, ""},
		{time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC), `"-0043-03-15T12:00:00Z"`, ""},
		{time.Date(1890, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", -(36*60+45))), `"1890-01-01T00:00:00-00:36:45"`,
			"was -00:36, a wrong instant; the decoder never makes a sub-minute offset"},
		{cdc.LocalDateTime(time.Date(2026, 11, 27, 10, 0, 0, 500000000, time.UTC)), `"2026-11-27T10:00:00.5"`, ""},
		{cdc.LocalDateTime(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)), `"+12000-01-01T00:00:00"`, ""},
		{cdc.TimeOfDay(90*time.Minute + 5), `"01:30:00.000000005"`, ""},
		{uuid, `"123e4567-e89b-12d3-a456-426614174000"`, ""},
		{cdc.JSON(`{"a":[1,2]}`), `{"a":[1,2]}`, ""},
		{cdc.JSON(`{"a": [1, 2]}`), `{"a": [1, 2]}`, "was {\"a\":[1,2]}: encoding/json compacted it; the sink embeds Debezium's text (PostgreSQL jsonb has these spaces)"},
		{cdc.JSON(`{"a":`), `"{\"a\":"`, ""},
		{cdc.Unavailable{}, `"__debezium_unavailable_value"`, ""},
		{[]byte{0, 1, 250}, `"AAH6"`, ""},
		{[]byte{}, `""`, ""},
		{[]byte(nil), `""`, "was null: the Avro decoder's empty bytes; the JSON decoder's gave \"\", and SQL NULL is null"},
		{cdc.Row{{Name: "a", Value: int64(1)}, {Name: "f", Value: math.NaN()}}, `{"a":1,"f":"NaN"}`, ""},
		{cdc.Row{{Name: "s", Value: "x&y"}}, `{"s":"x&y"}`, "was \"x\u0026y\": HTML escaping"},
		{[]any{int64(1), "x", nil}, `[1,"x",null]`, ""},
		{[]any{[]any{int64(1), "v"}}, `[[1,"v"]]`, ""},
		{map[string]any{"b": int64(1), "a": "z"}, `{"a":"z","b":1}`, ""},
	} {
		ev := &cdc.Event{After: cdc.Row{{Name: "k", Value: c.v}}}
		got, err := Key(ev, []string{"k"})
		if want := `{"k":` + c.want + `}`; err != nil || string(got) != want {
			t.Errorf("%T %#v: key %s, %v; want %s", c.v, c.v, got, err, want)
		}
		if !json.Valid(got) {
			t.Errorf("%T %#v: %s is not JSON", c.v, c.v, got)
		}
		if sink := string(cdc.AppendJSONValue(nil, c.v)); sink != c.want {
			t.Errorf("%T %#v: sink value %s, key %s", c.v, c.v, sink, c.want)
		}
	}
	// Field names follow the same rule.
	ev := &cdc.Event{After: cdc.Row{{Name: "a&b", Value: int64(1)}}}
	if got, err := Key(ev, []string{"a&b"}); err != nil || string(got) != `{"a&b":1}` {
		t.Errorf("field name: %s, %v", got, err)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "<>&", "\u2028", "\xff", "日本\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want.String())
		}
	})
}

func benchEvent() *cdc.Event {
	return &cdc.Event{
		Entity: "contacts",
		Key:    cdc.Row{{Name: "contact_id", Value: int64(42)}},
		Before: cdc.Row{{Name: "contact_id", Value: int64(42)}, {Name: "tenant", Value: "acme"}, {Name: "email", Value: "old@x"}},
		After: cdc.Row{
			{Name: "contact_id", Value: int64(42)}, {Name: "tenant", Value: "acme"}, {Name: "email", Value: "new@x"},
			{Name: "phone", Value: "+1 555"}, {Name: "address", Value: "Main St 1"},
		},
	}
}

func BenchmarkKey(b *testing.B) {
	ev := benchEvent()
	fields := []string{"contact_id"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Key(ev, fields); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeyTwoFields(b *testing.B) {
	ev := benchEvent()
	fields := []string{"tenant", "contact_id"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Key(ev, fields); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendKeyReuse(b *testing.B) {
	ev := benchEvent()
	fields := []string{"tenant", "contact_id"}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendKey(buf[:0], ev, fields); err != nil {
			b.Fatal(err)
		}
	}
}

// The baseline the append-based path is measured against.
func BenchmarkKeyEncodingJSONBaseline(b *testing.B) {
	ev := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		v, _ := ev.After.Get("contact_id")
		t, _ := ev.After.Get("tenant")
		if _, err := json.Marshal(struct {
			Tenant    any `json:"tenant"`
			ContactID any `json:"contact_id"`
		}{t, v}); err != nil {
			b.Fatal(err)
		}
	}
}

// Regression: a timestamptz key in year 12000 or BC (which PostgreSQL
// allows and Debezium sends as "+12000-…") failed in encoding/json, so the
// change went to the DLQ as an unencodable key.
func TestKeyExtendedYears(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), `{"at":"+12000-01-01T00:00:00Z"}`},
		{time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC), `{"at":"-0043-03-15T12:00:00Z"}`},
	} {
		ev := &cdc.Event{After: cdc.Row{{Name: "at", Value: c.t}}}
		got, err := Key(ev, []string{"at"})
		if err != nil || string(got) != c.want {
			t.Errorf("Key(%v) = %s, %v; want %s", c.t, got, err, c.want)
		}
	}
}
