package cdc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// escapedChange is a bare PostgreSQL update whose strings have JSON
// escapes, so that even DecodeOwned copies them into the arena.
func escapedChange(id int, name, city string) (key, value []byte) {
	key = fmt.Appendf(nil, `{"id":%d}`, id)
	value = fmt.Appendf(nil, `{"before":{"id":%d,"name":"old\tname","city":"Lisbon","n":1.5,"big":1234567890123},`+
		`"after":{"id":%d,"name":%q,"city":%q,"n":-2.5e10,"big":99999999999,"tags":["a\"b",7],"obj":{"k":"v\u00e9"}},`+
		`"source":{"version":"3.6.1.Final","connector":"postgresql","name":"erp","ts_ms":1764230400000,"snapshot":"false","db":"erp",`+
		`"sequence":"[\"1\",\"2\"]","schema":"public","table":"contacts","txId":700,"lsn":%d},`+
		`"transaction":{"id":"700:\u0031%d","total_order":1,"data_collection_order":1},"op":"u","ts_ms":1764230400003}`,
		id, id, name, city, 1000+id, id)
	return key, value
}

// inside reports whether s points into b.
func inside(s string, b []byte) bool {
	p, start := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return len(s) > 0 && p >= start && p < start+uintptr(len(b))
}

// eventText is a deep copy of an event as text: its JSON and every field
// with its Go type. Taken before the next decode, it is what the event
// held.
func eventText(t *testing.T, ev *Event) string {
	t.Helper()
	j, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s\n%#v %#v %#v %#v %q %#v", j, ev.Key, ev.Before, ev.After, ev.Position, ev.Changed, ev.Transaction)
}

// TestScratchReuse documents what DecodeOwnedReuse does to the previous
// event: decoding B with the scratch that decoded A makes B correct and
// reuses A's memory, so A (its *Event, Rows, boxed values, Changed,
// Transaction and the strings the decoder copied) now reads as B; the
// strings that never live in that memory (field names, Changed's
// elements, Type, Entity, Source, and under DecodeOwned the strings
// without escapes, which alias A's record) keep their values.
func TestScratchReuse(t *testing.T) {
	env := loadRecord(t, "pg_update.env")
	for _, tc := range []struct {
		name   string
		aKey   []byte
		aValue []byte
		bKey   []byte
		bValue []byte
	}{
		{name: "fast path"},
		{name: "ordinary path", aKey: env.key, aValue: env.value},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aKey, aValue := escapedChange(1, "Ann\u00e9 \"A\"", "Porto")
			if tc.aValue != nil {
				aKey, aValue = tc.aKey, tc.aValue
			}
			bKey, bValue := escapedChange(2, "Bob \\ B\nb", "Faro")
			d := NewJSONDecoder(Options{SourceSystem: "erp"})
			var sc Scratch

			aWant, err := d.DecodeOwned("pg.public.contacts", bytes.Clone(aKey), bytes.Clone(aValue))
			if err != nil {
				t.Fatal(err)
			}
			aRecKey, aRecValue := bytes.Clone(aKey), bytes.Clone(aValue)
			a, err := d.DecodeOwnedReuse(&sc, "pg.public.contacts", aRecKey, aRecValue)
			if err != nil {
				t.Fatal(err)
			}
			aCopy := eventText(t, a)
			if want := eventText(t, aWant); aCopy != want {
				t.Fatalf("A decoded with a scratch:\n%s\nwant\n%s", aCopy, want)
			}
			// Strings taken out of A: field names and the like, and the
			// string values, each either in A's record (no escapes, fast
			// path) or copied by the decoder into the arena.
			names, changed := a.After.Names(), slices.Clone(a.Changed)
			typ, entity, table, sys := a.Type, a.Entity, a.Source.Table, a.SourceSystem
			var aliased, copied, copiedWas []string
			for _, row := range []Row{a.Key, a.Before, a.After, a.Position, {{Value: a.Transaction.ID}}} {
				for _, f := range row {
					var s string
					switch v := f.Value.(type) {
					case string:
						s = v
					case Number:
						s = string(v)
					default:
						continue
					}
					if inside(s, aRecKey) || inside(s, aRecValue) {
						aliased = append(aliased, s)
					} else if s != "" {
						copied, copiedWas = append(copied, s), append(copiedWas, strings.Clone(s))
					}
				}
			}
			if len(copied) == 0 || (tc.aValue == nil && len(aliased) == 0) {
				t.Fatalf("A has %d copied and %d aliased strings: the fixture tests nothing", len(copied), len(aliased))
			}
			aliasedWas := slices.Clone(aliased)

			b, err := d.DecodeOwnedReuse(&sc, "pg.public.contacts", bytes.Clone(bKey), bytes.Clone(bValue))
			if err != nil {
				t.Fatal(err)
			}
			bWant, err := d.DecodeOwned("pg.public.contacts", bytes.Clone(bKey), bytes.Clone(bValue))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := eventText(t, b), eventText(t, bWant); got != want {
				t.Fatalf("B decoded in A's memory:\n%s\nwant\n%s", got, want)
			}
			// The deep copy of A is still A (taken before B, from memory
			// B has overwritten since).
			if want := eventText(t, aWant); aCopy != want {
				t.Fatalf("the copy of A:\n%s\nwant\n%s", aCopy, want)
			}
			// A is invalidated: its event is B's now.
			if a != b || eventText(t, a) == aCopy {
				t.Fatalf("A's event (%p) was not reused by B (%p): the scratch reused nothing", a, b)
			}
			if &a.After[0] != &b.After[0] {
				t.Error("A's after row was not reused by B")
			}
			if slices.Equal(copied, copiedWas) {
				t.Errorf("A's copied strings %q are unchanged: the arena's byte block was not reused", copied)
			}
			// Still valid.
			if got := fmt.Sprint(names, changed, typ, entity, table, sys); got != fmt.Sprint(aWant.After.Names(), aWant.Changed, aWant.Type, aWant.Entity, aWant.Source.Table, aWant.SourceSystem) {
				t.Errorf("names, Changed's elements, Type, Entity, Source and SourceSystem taken from A changed: %s", got)
			}
			if !slices.Equal(aliased, aliasedWas) {
				t.Errorf("strings aliasing A's record changed:\n%q\nwas\n%q", aliased, aliasedWas)
			}
		})
	}
}

// TestScratchSizes: events of very different sizes in turn through one
// scratch (the blocks kept, dropped and regrown) each decode as in fresh
// memory, and an emptied fields block is zero, as row relies on.
func TestScratchSizes(t *testing.T) {
	d := NewJSONDecoder(Options{SourceSystem: "erp"})
	var sc Scratch
	prev := 0
	for _, n := range []int{1, 3, 200, 2, 0, 64, 5, 500, 500, 1, 30, 2000, 2000, 2, 2, 64} {
		var after strings.Builder
		for i := range n {
			fmt.Fprintf(&after, `,"c%d":"v\"%d","n%d":%d.5,"o%d":{"x":"y%d"}`, i, i, i, i*1_000_000_007, i, i)
		}
		key := []byte(`{"id":1}`)
		value := fmt.Appendf(nil, `{"after":{"id":1%s},"source":{"connector":"postgresql","table":"t","lsn":%d,"txId":1},"op":"c","ts_ms":1}`, after.String(), n)
		want, err := d.DecodeOwned("pg.public.t", bytes.Clone(key), bytes.Clone(value))
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.DecodeOwnedReuse(&sc, "pg.public.t", bytes.Clone(key), bytes.Clone(value))
		if err != nil {
			t.Fatal(err)
		}
		if g, w := eventText(t, got), eventText(t, want); g != w {
			t.Fatalf("%d columns after other sizes:\n%s\nwant\n%s", n, g, w)
		}
		if n <= 64 && prev <= 64 && (cap(sc.a.fields) > 4096 || cap(sc.a.bytes) > 64<<10) {
			// The second small event after large ones: the large blocks
			// are let go (the first is decoded in them).
			t.Errorf("%d columns: the scratch keeps %d fields and %d bytes of earlier, larger events", n, cap(sc.a.fields), cap(sc.a.bytes))
		}
		prev = n
		a := sc.a
		a.reuseEvent()
		for i, f := range a.fields[:cap(a.fields)] {
			if f != (Field{}) {
				t.Fatalf("%d columns: slot %d of the emptied fields block is %+v, want zero", n, i, f)
			}
		}
	}
}

// TestScratchAllocs: a bare change event decoded with a scratch
// allocates nothing once the scratch has seen one like it; a reusing
// decode that silently allocates is a lost optimisation.
func TestScratchAllocs(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts include the decode states sync.Pool drops at random under -race; run without -race")
	}
	r := loadRecord(t, "pg_update.bare")
	d := NewJSONDecoder(Options{SourceSystem: "erp"})
	var sc Scratch
	key, value := bytes.Clone(r.key), bytes.Clone(r.value)
	if _, err := d.DecodeOwnedReuse(&sc, r.topic, key, value); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := d.DecodeOwnedReuse(&sc, r.topic, key, value); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("DecodeOwnedReuse allocates %v times per record in steady state, want 0", allocs)
	}
}

// TestScratchConcurrent: claims share one decoder, each with its own
// scratch, while others decode into fresh memory; every event is the one
// a lone decode makes (run with -race: the scratch's arena is swapped
// with the pooled state's, which must never leak into another caller).
func TestScratchConcurrent(t *testing.T) {
	d := NewJSONDecoder(Options{SourceSystem: "erp"})
	recs := loadRecords(t)
	want := make([]string, len(recs))
	for i, r := range recs {
		if ev, err := d.DecodeOwned(r.topic, bytes.Clone(r.key), bytes.Clone(r.value)); err == nil {
			want[i] = eventText(t, ev)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc Scratch
			var kept []*Event // the fresh-memory callers keep their events,
			var keptAt []int  // of these records
			for n := range 100 {
				i := (n*7 + g) % len(recs)
				r := recs[i]
				var ev *Event
				var err error
				if g%2 == 0 {
					ev, err = d.DecodeOwnedReuse(&sc, r.topic, bytes.Clone(r.key), bytes.Clone(r.value))
				} else {
					ev, err = d.DecodeOwned(r.topic, bytes.Clone(r.key), bytes.Clone(r.value))
					if err == nil {
						kept, keptAt = append(kept, ev), append(keptAt, i)
					}
				}
				if err != nil {
					continue
				}
				j, _ := json.Marshal(ev)
				if got := fmt.Sprintf("%s\n%#v %#v %#v %#v %q %#v", j, ev.Key, ev.Before, ev.After, ev.Position, ev.Changed, ev.Transaction); got != want[i] {
					errs <- fmt.Sprintf("goroutine %d, %s:\n%s\nwant\n%s", g, r.name, got, want[i])
					return
				}
			}
			for k, ev := range kept {
				j, _ := json.Marshal(ev)
				if got := fmt.Sprintf("%s\n%#v %#v %#v %#v %q %#v", j, ev.Key, ev.Before, ev.After, ev.Position, ev.Changed, ev.Transaction); got != want[keptAt[k]] {
					errs <- fmt.Sprintf("goroutine %d: a kept event changed:\n%s\nwant\n%s", g, got, want[keptAt[k]])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// FuzzDecodeReuseAfter: two arbitrary records, A then B, decoded with one
// scratch. B's event (or error) is the one a decode in fresh memory makes,
// whatever A was (an event, a partial decode that failed, a tombstone),
// and A's event, read before B is decoded, was A's.
func FuzzDecodeReuseAfter(f *testing.F) {
	recs := loadRecords(f)
	for i, r := range recs {
		n := recs[(i*7+3)%len(recs)]
		f.Add(r.key, r.value, n.key, n.value)
	}
	for i, v := range fastEdgeValues {
		f.Add([]byte(fastEdgeKeys[i%len(fastEdgeKeys)]), []byte(v), recs[i%len(recs)].key, recs[i%len(recs)].value)
		f.Add(recs[i%len(recs)].key, recs[i%len(recs)].value, []byte(fastEdgeKeys[i%len(fastEdgeKeys)]), []byte(v))
	}
	pairs := fastSlowPairs()
	f.Fuzz(func(t *testing.T, aKey, aValue, bKey, bValue []byte) {
		for _, p := range pairs {
			for _, d := range p {
				var sc Scratch
				aWant, aErr := d.DecodeOwned("pg.public.t", bytes.Clone(aKey), bytes.Clone(aValue))
				a, err := d.DecodeOwnedReuse(&sc, "pg.public.t", bytes.Clone(aKey), bytes.Clone(aValue))
				compareDecode(t, aKey, aValue, a, aWant, err, aErr)
				bWant, bErr := d.DecodeOwned("pg.public.t", bytes.Clone(bKey), bytes.Clone(bValue))
				b, err := d.DecodeOwnedReuse(&sc, "pg.public.t", bytes.Clone(bKey), bytes.Clone(bValue))
				compareDecode(t, bKey, bValue, b, bWant, err, bErr)
			}
		}
	})
}
