package cdc

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// IDs are persisted: running deployments keep event IDs and content IDs
// in their ledgers, so a release that computed a different ID for the
// same record would re-emit a change it had applied (or, with a content
// ID, drop one). testdata/ids.pinned holds the IDs the implementation
// computed when the file was written, and the hash of the canonical
// encoding of values of every kind; any change to the decoders, the
// canonical encoding or the ID schemes must leave every line as it is.
//
// -pin-ids adds lines for new fixtures and values; it never rewrites a
// line that exists (a differing line still fails).
var pinIDs = flag.Bool("pin-ids", false, "add missing lines to testdata/ids.pinned (existing lines are never changed)")

const pinnedPath = "testdata/ids.pinned"

// pinModes are the ID schemes a topology can choose.
var pinModes = []struct {
	name string
	opts Options
}{
	{"position", Options{}},
	{"content", Options{IDMode: IDContent}},
	{"field-id", Options{IDMode: IDField, IDField: "id"}},
}

func TestIDsPinned(t *testing.T) {
	got := map[string]string{}
	put := func(k, v string) {
		if _, dup := got[k]; dup {
			t.Fatalf("pin key %q twice", k)
		}
		got[k] = v
	}
	digest := func(b []byte) string {
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:16])
	}
	// The event as the pipeline uses it: its ID under each scheme, the
	// content ID of its after-state (the ledger's row state), and the
	// canonical encodings of its rows.
	pinEvent := func(prefix string, ev *Event, err error) {
		if err != nil {
			put(prefix+" id", "error: "+err.Error())
			return
		}
		put(prefix+" id", ev.ID.String())
		cid, cerr := ComputeID(ev, IDContent, "")
		if cerr != nil {
			put(prefix+" content", "error: "+cerr.Error())
		} else {
			put(prefix+" content", cid.String())
		}
		var buf []byte
		if bid, berr := ComputeIDBuf(ev, IDContent, "", &buf); berr != nil || bid != cid {
			t.Errorf("%s: ComputeIDBuf %s %v, ComputeID %s", prefix, bid, berr, cid)
		}
		put(prefix+" canon.key", digest(AppendCanonical(nil, ev.Key)))
		put(prefix+" canon.before", digest(AppendCanonical(nil, ev.Before)))
		put(prefix+" canon.after", digest(AppendCanonical(nil, ev.After)))
		put(prefix+" canon.position", digest(AppendCanonical(nil, ev.Position)))
	}

	for _, m := range pinModes {
		d := NewJSONDecoder(m.opts)
		for _, r := range loadRecords(t) {
			ev, err := d.Decode(r.topic, r.key, r.value)
			pinEvent("json "+r.name+" "+m.name, ev, err)
		}
		fs := loadAvroFixtures(t)
		ad := NewAvroDecoder(m.opts, fixtureSource(fs))
		for _, f := range fs {
			ev, err := ad.Decode(f.topic, f.key, f.value)
			pinEvent("avro "+f.name+" "+m.name, ev, err)
		}
	}
	for _, c := range canonPinValues() {
		put("canon "+c.name, hex.EncodeToString(AppendCanonical(nil, c.v)))
	}

	want := readPinned(t)
	var missing []string
	for k, v := range got {
		w, ok := want[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		if w != v {
			t.Errorf("%s: got %s, pinned %s (a changed ID re-emits or drops changes in running deployments)", k, v, w)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("%s: pinned but no longer computed (a fixture or value was removed)", k)
		}
	}
	if len(missing) == 0 {
		return
	}
	sort.Strings(missing)
	if !*pinIDs {
		t.Fatalf("%d values are not pinned yet (run go test -run TestIDsPinned -pin-ids): %s ...", len(missing), missing[0])
	}
	f, err := os.OpenFile(pinnedPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, k := range missing {
		fmt.Fprintf(f, "%s\t%s\n", k, got[k])
	}
}

func readPinned(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	b, err := os.ReadFile(pinnedPath)
	if os.IsNotExist(err) && *pinIDs {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			t.Fatalf("%s: bad line %q", pinnedPath, sc.Text())
		}
		out[k] = v
	}
	return out
}

type canonPin struct {
	name string
	v    any
}

// canonPinValues are values of every kind AppendCanonical encodes,
// including the edges of the number normalisation.
func canonPinValues() []canonPin {
	big1, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	t0 := time.Date(2024, 6, 10, 9, 39, 5, 678901000, time.FixedZone("x", 3600))
	var u UUID
	copy(u[:], "0123456789abcdef")
	return []canonPin{
		{"nil", nil},
		{"true", true},
		{"false", false},
		{"string", "Anne Kretchmar é \x00\"\\"},
		{"string.empty", ""},
		{"string.long", strings.Repeat("x", 300)},
		{"enum", Enum("ACTIVE")},
		{"json", JSON(`{"a":[1,2]}`)},
		{"uuid", u},
		{"bytes", []byte{0, 1, 0xff}},
		{"bytes.empty", []byte{}},
		{"int64", int64(1004)},
		{"int64.neg", int64(-42)},
		{"int64.zero", int64(0)},
		{"int64.min", int64(math.MinInt64)},
		{"int64.max", int64(math.MaxInt64)},
		{"int64.trailing0", int64(1200)},
		{"int", 7},
		{"int32", int32(-7)},
		{"int16", int16(300)},
		{"int8", int8(-8)},
		{"uint64.max", uint64(math.MaxUint64)},
		{"uint", uint(10)},
		{"uint32", uint32(math.MaxUint32)},
		{"uint16", uint16(65535)},
		{"uint8", uint8(255)},
		{"float64", 3.25},
		{"float64.int", 42.0},
		{"float64.neg.small", -1.5e-300},
		{"float64.big", 1e300},
		{"float64.zero", 0.0},
		{"float64.negzero", math.Copysign(0, -1)},
		{"float64.nan", math.NaN()},
		{"float64.inf", math.Inf(1)},
		{"float64.neginf", math.Inf(-1)},
		{"float32", float32(0.1)},
		{"number", Number("42")},
		{"number.frac", Number("42.000")},
		{"number.exp", Number("-0.00125e+3")},
		{"number.zero", Number("-0.0e5")},
		{"number.hugeexp", Number("1e9999999999")},
		{"number.invalid", Number("1-2")},
		{"decimal", Decimal{Unscaled: big.NewInt(4200), Scale: 2}},
		{"decimal.neg", Decimal{Unscaled: big1, Scale: 7}},
		{"decimal.negscale", Decimal{Unscaled: big.NewInt(5), Scale: -3}},
		{"decimal.nil", Decimal{}},
		{"bigint", big1},
		{"bigint.nil", (*big.Int)(nil)},
		{"time", t0},
		{"time.zero", time.Time{}},
		{"localdatetime", LocalDateTime(t0.UTC())},
		{"infinity.pos", PosInfinity},
		{"infinity.neg", NegInfinity},
		{"date", Date{Year: 2024, Month: 6, Day: 10}},
		{"date.bc", Date{Year: -43, Month: 3, Day: 15}},
		{"timeofday", TimeOfDay(13*time.Hour + 5*time.Microsecond)},
		{"unavailable", Unavailable{}},
		{"row", Row{{"id", int64(1004)}, {"name", "Anne"}, {"balance", Decimal{Unscaled: big.NewInt(9), Scale: 2}}, {"gone", nil}}},
		{"row.empty", Row{}},
		{"row.nil", Row(nil)},
		{"array", []any{int64(1), "a", nil, []any{true}}},
		{"map", map[string]any{"b": int64(2), "a": "x", "c": Row{{"k", 1.5}}}},
		{"id", ID{1, 2, 3}},
		{"other", struct{ A int }{3}},
	}
}
