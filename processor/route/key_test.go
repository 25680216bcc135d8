package route

import (
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

func TestKeyUnencodable(t *testing.T) {
	ev := &cdc.Event{After: cdc.Row{{Name: "x", Value: math.NaN()}}}
	if _, err := Key(ev, []string{"x"}); !errors.Is(err, ErrUnencodableKey) {
		t.Errorf("NaN: err = %v, want ErrUnencodableKey", err)
	}
}

// Every value is written byte for byte as encoding/json writes it, so the
// key (and therefore the partition) never depends on the fast path.
func TestKeyValuesMatchEncodingJSON(t *testing.T) {
	uuid, _ := cdc.ParseUUID("123e4567-e89b-12d3-a456-426614174000")
	zone := time.FixedZone("x", 5*3600+30*60)
	odd := time.FixedZone("lmt", 17)
	values := []any{
		nil, true, false, int64(0), int64(-1 << 63), int64(1<<63 - 1), 7, int32(-3),
		"", "plain", `quo"te\back`, "tab\tnl\ncr\r\b\f\x01\x1f", "<a&b>", "é ü 日本", "\u2028\u2029",
		"bad\xffutf8\xc3", "\x7f",
		0.0, 1.5, -2.25, 1e21, 1e20, 1e-6, 1e-7, 123456789.123, math.SmallestNonzeroFloat64, math.MaxFloat64,
		cdc.Number("12345678901234567890"), cdc.Number("-1.5e3"),
		cdc.Decimal{Unscaled: big.NewInt(-1250), Scale: 2}, cdc.Decimal{},
		cdc.Date{Year: 2024, Month: 2, Day: 29}, cdc.TimeOfDay(90*time.Minute + 5), cdc.Enum("ac<tive"),
		uuid, cdc.JSON(`{"a":[1,2]}`), cdc.Unavailable{},
		[]byte{0, 1, 2, 250}, []byte{}, []byte(nil),
		time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC), time.Date(2024, 5, 6, 7, 8, 9, 0, zone),
		time.Date(2024, 5, 6, 7, 8, 9, 0, odd),
		[]any{int64(1), "x"}, map[string]any{"b": 1, "a": 2},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%#v): %v", v, err)
		}
		got, err := appendValue(nil, v)
		if err != nil || string(got) != string(want) {
			t.Errorf("appendValue(%#v) = %s, %v; encoding/json %s", v, got, err, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "<>&", "\u2028", "\xff", "日本\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
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
