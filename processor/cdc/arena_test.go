package cdc

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestArenaBoxing(t *testing.T) {
	if !boxOK {
		t.Fatal("interface layout check failed: boxing falls back to allocating")
	}
	var a arena
	ts := time.Unix(1718012345, 678000000).UTC()
	vals := []any{
		a.boxString("Lisbon"), a.boxNumber("1004"), a.boxInt64(1 << 40), a.boxInt64(-3),
		a.boxFloat64(12.5), a.boxTime(ts), a.boxString(""), a.boxInt64(7),
	}
	want := []any{"Lisbon", Number("1004"), int64(1 << 40), int64(-3), 12.5, ts, "", int64(7)}
	for i := range vals {
		if vals[i] != want[i] || !reflect.DeepEqual(vals[i], want[i]) || fmt.Sprint(vals[i]) != fmt.Sprint(want[i]) {
			t.Errorf("%d: boxed %#v, want %#v", i, vals[i], want[i])
		}
		if reflect.TypeOf(vals[i]) != reflect.TypeOf(want[i]) {
			t.Errorf("%d: type %T, want %T", i, vals[i], want[i])
		}
	}
	// Many scalars: block changes and alignment.
	for i := int64(0); i < 1000; i++ {
		n := i*1_000_003 + 300
		if x := a.boxInt64(n); x.(int64) != n {
			t.Fatalf("boxInt64(%d) = %v", n, x)
		}
		a.copyBytes([]byte("abc")) // misalign the byte block
	}
}

// Events decoded one after another on the same state must not share
// memory: decoding the second must leave the first unchanged.
func TestArenaEventsIndependent(t *testing.T) {
	for _, name := range []string{"pg_update.bare", "pg_update.env"} {
		r := loadRecord(t, name)
		d := NewJSONDecoder(Options{SourceSystem: "erp"})
		first, err := d.Decode(r.topic, r.key, r.value)
		if err != nil {
			t.Fatal(err)
		}
		snapshot := fmt.Sprintf("%#v %#v %#v %#v %v", first.Key, first.Before, first.After, first.Position, first.Changed)
		for range 50 {
			ev, err := d.Decode(r.topic, r.key, r.value)
			if err != nil {
				t.Fatal(err)
			}
			ev.After = append(ev.After, Field{Name: "x", Value: "y"})
			ev.Changed = append(ev.Changed, "x")
			ev.Key = append(ev.Key, Field{Name: "x", Value: "y"})
		}
		if got := fmt.Sprintf("%#v %#v %#v %#v %v", first.Key, first.Before, first.After, first.Position, first.Changed); got != snapshot {
			t.Errorf("%s: first event changed by later decodes:\n%s\n%s", name, snapshot, got)
		}
	}
}

// TestArenaRowGrowTrim: rows the fast path sizes by guess, grown in place
// or moved and trimmed, hold what was appended, end with len == cap, and
// never overlap another row, whatever the guess and the nesting.
func TestArenaRowGrowTrim(t *testing.T) {
	var a arena
	a.beginEvent()
	fill := func(r Row, tag string, n int) Row {
		for i := 0; i < n; i++ {
			if len(r) == cap(r) {
				r = a.growRow(r, max(len(r), 1))
			}
			r = append(r, Field{Name: fmt.Sprint(tag, i), Value: i})
		}
		return r
	}
	var rows []Row
	var want []string
	for k := 0; k < 200; k++ {
		guess, n := k%7, (k*5)%13
		outer := a.row(max(guess, 1))
		outer = fill(outer, fmt.Sprint("o", k, "."), n/2)
		if k%3 == 0 { // a nested row taken while outer is open
			inner := a.trimRow(fill(a.row(max(guess, 1)), fmt.Sprint("i", k, "."), n))
			rows, want = append(rows, inner), append(want, fmt.Sprint(inner))
		}
		outer = a.trimRow(fill(outer, fmt.Sprint("p", k, "."), n-n/2))
		if len(outer) != cap(outer) {
			t.Fatalf("row %d: len %d cap %d", k, len(outer), cap(outer))
		}
		rows, want = append(rows, outer), append(want, fmt.Sprint(outer))
	}
	for i, r := range rows {
		if got := fmt.Sprint(r); got != want[i] {
			t.Fatalf("row %d changed by later rows:\nwas %s\nnow %s", i, want[i], got)
		}
	}
}
