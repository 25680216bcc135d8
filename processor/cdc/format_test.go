package cdc

import (
	"encoding/json"
	"math"
	"math/big"
	"testing"
	"time"
)

// TestParseZonedTimestamp reads every form Debezium 3.6.1 writes for a
// timestamptz, as captured on the real stack.
//
// Regression: infinity, -infinity, BC and expanded years did not parse,
// and the whole change went to the DLQ.
func TestParseZonedTimestamp(t *testing.T) {
	for _, c := range []struct {
		in   string
		want any
	}{
		{"infinity", PosInfinity},
		{"-infinity", NegInfinity},
		{"2026-01-02T03:04:05.123456Z", time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)},
		{"+12000-01-01T00:00:00.000000Z", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"+294276-12-31T23:59:59.000000Z", time.Date(294276, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"-0043-03-15T12:00:00.000000Z", time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)},
		{"-4712-01-01T00:00:00.000000Z", time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"-0044-02-29T00:00:00Z", time.Date(-44, 2, 29, 0, 0, 0, 0, time.UTC)}, // 45 BC, a leap year
		{"+12000-06-01T10:00:00+02:00", time.Date(12000, 6, 1, 8, 0, 0, 0, time.UTC)},
	} {
		got, ok := parseZonedTimestamp([]byte(c.in))
		if !ok {
			t.Errorf("%s: not parsed", c.in)
			continue
		}
		if w, isTime := c.want.(time.Time); isTime {
			if g, _ := got.(time.Time); !g.Equal(w) {
				t.Errorf("%s: %v, want %v", c.in, got, w)
			}
		} else if got != c.want {
			t.Errorf("%s: %v, want %v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "inf", "+120-01-01T00:00:00Z", "+12001-02-29T00:00:00Z", "-0043-13-01T00:00:00Z", "+12000", "2026-01-02", "12000-01-01T00:00:00Z"} {
		if _, ok := parseZonedTimestamp([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestZonedTimestampRoundTrip: the text written for a time is the text
// read back (expanded years both ways).
func TestZonedTimestampRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-43, 3, 15, 12, 0, 0, 5, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -5*3600)),
	} {
		s := FormatTime(tm)
		back, ok := parseZonedTimestamp([]byte(s))
		if !ok || !back.(time.Time).Equal(tm) || FormatTime(back.(time.Time)) != s {
			t.Errorf("%v: %s reads back as %v", tm, s, back)
		}
	}
}

// TestIntLogicalEdges: Debezium's numbers for infinity of a timestamp
// without time zone and of a date, and day counts PostgreSQL allows.
//
// Regression: date infinity and dates past ±1e8 days were "out of range"
// (DLQ); timestamp infinity came out as a year-294247 time.
func TestIntLogicalEdges(t *testing.T) {
	var c converter
	node := func(l logical) *schemaNode { return &schemaNode{typ: tInt64, logical: l} }
	for _, tc := range []struct {
		l    logical
		n    int64
		want string
	}{
		{lTsUs, 9223372036825200000, `"infinity"`},
		{lTsUs, -9223372036832400000, `"-infinity"`},
		{lTsMs, 9223372036825200, `"infinity"`},
		{lTsMs, -9223372036832400, `"-infinity"`},
		{lDate, -2147472692, `"infinity"`},  // streamed
		{lDate, -2147472691, `"-infinity"`}, // streamed
		{lDate, -622191234, `"infinity"`},   // snapshot
		{lDate, -625821272, `"-infinity"`},  // snapshot
		{lDate, 2145042905, `"+5874897-12-31"`},
		{lDate, -735160, `"-0043-03-15"`},
		{lDate, 3663382, `"+12000-01-01"`},
		{lDate, -2440550, `"-4712-01-01"`},
		{lTsUs, -63517780800000000, `"-0043-03-15T12:00:00"`},
		{lTsUs, 316516204800000000, `"+12000-01-01T00:00:00"`},
		{lTsUs, math.MaxInt64, `"+294247-01-10T04:00:54.775807"`}, // Debezium's clamp of 294276 AD
		{lTsMs, 1795773600500, `"2026-11-27T10:00:00.5"`},
		{lTsNs, 1, `"1970-01-01T00:00:00.000000001"`},
		{lInstantMs, 1795773600500, `"2026-11-27T10:00:00.5Z"`},
		{lInstantUs, -1, `"1969-12-31T23:59:59.999999Z"`},
	} {
		v, err := c.intLogical(tc.n, node(tc.l))
		if err != nil {
			t.Errorf("%d (logical %d): %v", tc.n, tc.l, err.reason)
			continue
		}
		if got := string(AppendJSONValue(nil, v)); got != tc.want {
			t.Errorf("%d (logical %d): %s, want %s", tc.n, tc.l, got, tc.want)
		}
	}
	if _, err := c.intLogical(math.MaxInt32+1, node(lDate)); err == nil {
		t.Error("a day count beyond int32 was accepted")
	}
}

// TestValueTextSameEverywhere: MarshalJSON of each value type, the event
// marshaller (cdcsync decode) and AppendJSONValue (the JSON sink) give the
// same text.
func TestValueTextSameEverywhere(t *testing.T) {
	for _, v := range []any{
		PosInfinity, NegInfinity,
		LocalDateTime(time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)),
		Date{Year: 12000, Month: 1, Day: 1},
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
		math.Inf(1), math.NaN(), 1e6, 1e-7,
		Number("1e+300"), JSON(`{"a":1}`), TimeOfDay(0), Unavailable{},
	} {
		want := string(AppendJSONValue(nil, v))
		ev := &Event{After: Row{{Name: "v", Value: v}}}
		b, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ After map[string]json.RawMessage }
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%v: %v in %s", v, err, b)
		}
		if got := string(out.After["v"]); got != want {
			t.Errorf("%T %v: event %s, AppendJSONValue %s", v, v, got, want)
		}
		if _, isTime := v.(time.Time); isTime {
			continue // Go's own MarshalJSON, which refuses years past 9999
		}
		if m, ok := v.(json.Marshaler); ok {
			b, _ := m.MarshalJSON()
			if string(b) != want {
				t.Errorf("%T %v: MarshalJSON %s, AppendJSONValue %s", v, v, b, want)
			}
		}
	}
}

// TestEventMarshalYear12000: occurred_at and values outside 0000..9999
// are ISO 8601 expanded years.
//
// Regression: cdcsync decode printed "12000-01-01 00:00:00 +0000 UTC"
// (Go's time.Time.String).
func TestEventMarshalYear12000(t *testing.T) {
	ev := &Event{OccurredAt: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		OccurredAt string `json:"occurred_at"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.OccurredAt != "+12000-01-01T00:00:00Z" {
		t.Errorf("occurred_at %q (%v)", out.OccurredAt, err)
	}
}

// AppendJSONTime is AppendJSONValue of a time.Time, byte for byte.
func TestAppendJSONTimeMatchesValue(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-43, 3, 15, 12, 0, 0, 5, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -5*3600)),
	} {
		if got, want := string(AppendJSONTime([]byte("x"), tm)), string(AppendJSONValue([]byte("x"), tm)); got != want {
			t.Errorf("%v: AppendJSONTime %s, AppendJSONValue %s", tm, got, want)
		}
	}
}

// appendDecimal writes Decimal.String()'s text, which the sink has always
// written for a decimal.
func TestAppendDecimalMatchesString(t *testing.T) {
	vals := []string{"0", "1", "-1", "5", "-5", "12350", "-12350", "100", "7", "123456789012345678901234567890", "-98765432109876543210987654321098765432109876543210987654321098765432109876543210"}
	for _, v := range vals {
		n, _ := new(big.Int).SetString(v, 10)
		for _, scale := range []int32{-3, -1, 0, 1, 2, 3, 5, 30, 90} {
			d := Decimal{Unscaled: n, Scale: scale}
			if got := string(appendDecimal([]byte("x"), d)); got != "x"+d.String() {
				t.Errorf("%s scale %d: appendDecimal %s, String %s", v, scale, got, d.String())
			}
		}
	}
	if got, want := string(appendDecimal(nil, Decimal{})), (Decimal{}).String(); got != want {
		t.Errorf("zero Decimal: %s", got)
	}
}
