package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/valyala/fastjson/fastfloat"
)

// fastSlowPairs are decoders with and without the fast path, under each
// ID scheme.
func fastSlowPairs() [][2]*JSONDecoder {
	var out [][2]*JSONDecoder
	for _, m := range pinModes {
		opts := m.opts
		opts.SourceSystem = "erp"
		slow := NewJSONDecoder(opts)
		slow.slowOnly = true
		out = append(out, [2]*JSONDecoder{NewJSONDecoder(opts), slow})
	}
	return out
}

// sameDecode decodes a record with and without the fast path, with the
// fast path from a copy it hands over (DecodeOwned), and in the memory
// of earlier events (DecodeOwnedReuse, see sameDecodeReuse), and fails
// unless all give the same event, or the same error.
func sameDecode(t *testing.T, fast, slow *JSONDecoder, topic string, key, value []byte) {
	t.Helper()
	es, errS := slow.Decode(topic, key, value)
	ef, errF := fast.Decode(topic, key, value)
	compareDecode(t, key, value, ef, es, errF, errS)
	ef, errF = fast.DecodeOwned(topic, bytes.Clone(key), bytes.Clone(value))
	compareDecode(t, key, value, ef, es, errF, errS)
	sameDecodeReuse(t, fast, topic, key, value, es, errS)
	sameDecodeReuse(t, slow, topic, key, value, es, errS)
}

// sameDecodeReuse decodes a record with a Scratch that holds an earlier
// event (a fixture, picked by the record's length), then again in its own
// memory, and then the fixture after it, and fails unless each gives the
// event (or error) of a decode in fresh memory: what a reused decode
// leaves behind, a failed or partial one included, never shows in the
// next event.
func sameDecodeReuse(t *testing.T, d *JSONDecoder, topic string, key, value []byte, want *Event, wantErr error) {
	t.Helper()
	fx := reuseFixtures(t)
	prev := fx[(len(key)+len(value))%len(fx)]
	prevWant, prevErr := d.DecodeOwned(prev.topic, bytes.Clone(prev.key), bytes.Clone(prev.value))
	var sc Scratch
	d.DecodeOwnedReuse(&sc, prev.topic, bytes.Clone(prev.key), bytes.Clone(prev.value))
	for range 2 {
		ev, err := d.DecodeOwnedReuse(&sc, topic, bytes.Clone(key), bytes.Clone(value))
		compareDecode(t, key, value, ev, want, err, wantErr)
	}
	ev, err := d.DecodeOwnedReuse(&sc, prev.topic, bytes.Clone(prev.key), bytes.Clone(prev.value))
	compareDecode(t, prev.key, prev.value, ev, prevWant, err, prevErr)
}

var (
	reuseFixturesOnce sync.Once
	reuseFixturesList []record
)

// reuseFixtures are the decode fixtures, read once (the fuzz targets
// call sameDecode for every input).
func reuseFixtures(t testing.TB) []record {
	reuseFixturesOnce.Do(func() { reuseFixturesList = loadRecords(t) })
	return reuseFixturesList
}

func compareDecode(t *testing.T, key, value []byte, ef, es *Event, errF, errS error) {
	t.Helper()
	if (errF == nil) != (errS == nil) {
		t.Fatalf("key %q value %q: fast path error %v, ordinary path error %v", key, value, errF, errS)
	}
	if errF != nil {
		// The fast path never fails (it declines), so both errors come
		// from the ordinary path. Its path and reason can depend on the
		// decode state the pool hands out (the last envelope schema it
		// saw), so the kind and part are compared.
		var df, ds *DecodeError
		if !errors.As(errF, &df) || !errors.As(errS, &ds) || df.Part != ds.Part || df.Err != ds.Err {
			t.Fatalf("key %q value %q: errors differ:\nfast: %v\nslow: %v", key, value, errF, errS)
		}
		return
	}
	jf, err1 := json.Marshal(ef)
	js, err2 := json.Marshal(es)
	if err1 != nil || err2 != nil || !bytes.Equal(jf, js) {
		t.Fatalf("key %q value %q: events differ:\nfast: %s %v\nslow: %s %v", key, value, jf, err1, js, err2)
	}
	if !sameEvent(ef, es) {
		t.Fatalf("key %q value %q: events differ:\nfast: %#v\nslow: %#v", key, value, ef, es)
	}
}

// sameEvent is reflect.DeepEqual, except that a float NaN equals a NaN.
func sameEvent(a, b *Event) bool {
	x, y := *a, *b
	for _, r := range [...][2]Row{{x.Key, y.Key}, {x.Before, y.Before}, {x.After, y.After}, {x.Position, y.Position}} {
		if !sameValue(r[0], r[1]) {
			return false
		}
	}
	x.Key, x.Before, x.After, x.Position = nil, nil, nil, nil
	y.Key, y.Before, y.After, y.Position = nil, nil, nil, nil
	return reflect.DeepEqual(x, y)
}

func sameValue(a, b any) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	switch x := a.(type) {
	case float64:
		y := b.(float64)
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	case Row:
		y := b.(Row)
		if (x == nil) != (y == nil) || len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i].Name != y[i].Name || !sameValue(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	case []any:
		y := b.([]any)
		if (x == nil) != (y == nil) || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// fastEdgeValues are change events at the edges of what the fast path
// takes: escapes, duplicates, odd numbers and literals, members of the
// wrong type, every op, and syntax errors. Each must decode (or fail)
// exactly as on the ordinary path.
var fastEdgeValues = []string{
	`{"op":"c","source":{"connector":"postgresql","name":"pg","db":"d","schema":"s","table":"t","lsn":1,"txId":2,"sequence":"[\"1\",\"2\"]","ts_ms":5},"after":{"id":1,"s":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud83d\u0041\uZZZZ\u12\x","e":"\u0000","u":"__debezium_unavailable_value","n":-0,"f":1.5e+3,"g":1E-2,"z":null,"t":true,"F":false,"arr":[1,"x",[],{},[null]],"obj":{"a":{"b":{}}}}}`,
	`{"op":"u","source":{"connector":"postgresql","table":"t"},"before":{"a":1},"after":{"a":1,"b":2}}`,
	`{"op":"u","source":{"connector":"postgresql","table":"t"},"before":{"a":1,"a":2,"b":3,"a":4},"after":{"b":3,"a":1}}`,
	`{"o\u0070":"c","source":{"connector":"mysql","t\u0061ble":"x\u0079","file":"f","pos":4,"row":0,"gtid":null},"after":{"k\u0065y":1}}`,
	` { "op" : "d" , "source" : { "connector" : "sqlserver" , "table" : "t" } , "before" : { "a" : 1 } , "after" : null } `,
	`{"op":"r","source":{"connector":"postgresql","table":"t","snapshot":"true"},"after":{"a":1}}`,
	`{"op":"r","source":{"connector":"postgresql","table":"t","snapshot":true},"before":{"a":1},"after":{"a":1}}`,
	`{"op":"c","source":{"connector":"postgresql","table":"t","snapshot":false},"after":{"a":1}}`,
	`{"op":"c","source":{"connector":"postgresql","table":"t","snapshot":1},"after":{"a":1}}`,
	`{"op":"c","source":{"connector":"oracle","table":"t","scn":"1","commit_scn":"2"},"after":{"a":1}}`,
	`{"op":"c","source":{"connector":"db2","table":"t","change_lsn":"1"},"after":{"a":1}}`,
	`{"op":"c","source":{"connector":"unknown","table":"t"},"after":{"a":1},"ts_ms":7}`,
	`{"op":"c","source":{"collection":"coll"},"after":{"a":1},"ts_us":7,"ts_ns":null}`,
	`{"op":"c","source":{"table":"","collection":"coll"},"after":{"a":1},"ts_ns":7,"ts_ms":"x"}`,
	`{"op":"c","source":{"table":"t","ts_ms":"x"},"after":{"a":1}}`,
	`{"op":"c","source":{"table":"t","ts_ms":1.5},"after":{"a":1}}`,
	`{"op":"c","source":{"table":"t","ts_ms":99999999999999999999},"after":{"a":1}}`,
	`{"op":"c","source":{"table":"t","ts_ns":null,"ts_us":null,"ts_ms":null},"after":{"a":1},"ts_ms":3}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"ts_ms":-3}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"transaction":null}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"transaction":{"id":"1:2","total_order":3,"data_collection_order":null,"x":[1]}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"transaction":{"id":"a\"b","id":"c"}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"transaction":{"total_order":3}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"transaction":{"id":1}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"transaction":{"id":"x","total_order":"3"}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"transaction":[]}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"message":{"prefix":"p"},"extra":{"deep":[[[{"x":"\u00ff"}]]]}}`,
	`{"op":"m","source":{"table":"t"},"message":{"prefix":"p","content":"AQ=="}}`,
	`{"op":"t","source":{"table":"t"}}`,
	`{"op":"x","source":{"table":"t"},"after":{"a":1}}`,
	`{"op":"cu","source":{"table":"t"},"after":{"a":1}}`,
	`{"op":1,"source":{"table":"t"},"after":{"a":1}}`,
	`{"op":"c","source":null,"after":{"a":1}}`,
	`{"op":"c","after":{"a":1}}`,
	`{"source":{"table":"t"},"after":{"a":1}}`,
	`{"op":"c","source":{"table":"t"},"after":"{\"a\":1}"}`,
	`{"op":"c","source":{"table":"t"},"after":[1]}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"after":null}`,
	`{"op":"c","source":{"table":"t"},"after":null,"after":{"a":1}}`,
	`{"op":"c","source":{"table":"t"},"source":{"table":"u"},"after":{"a":1}}`,
	`{"op":"c","op":"d","source":{"table":"t"},"before":{"a":1}}`,
	`{"op":"c","source":{"table":"t"},"before":{"a":1},"after":{"a":1}}`,
	`{"op":"u","source":{"table":"t"},"after":null}`,
	`{"op":"d","source":{"table":"t"},"after":{"a":1}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1e999999999999}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1-2}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":+1}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":.5}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":NaN}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":nan}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":Infinity}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"x":+1}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},"x":nan}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":tru}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":nullx}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1}}x`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1},}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1,}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a" 1}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":"1}}`,
	`{"op":"c","source":{"table":"t"},"after":{a:1}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":[1,]}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":1}}` + "\n\t\r ",
	"\f" + `{"op":"c","source":{"table":"t"},"after":{"a":1}}`,
	"\xef\xbb\xbf" + `{"op":"c","source":{"table":"t"},"after":{"a":1}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":"` + "\x01\xff\xfe" + `"}}`,
	`{"op":"c","source":{"table":"t"},"after":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`,
	`{"schema":null,"payload":{"op":"c","source":{"table":"t"},"after":{"a":1}}}`,
	`{"payload":{"op":"c","source":{"table":"t"},"after":{"a":1}}}`,
	`{"sch\u0065ma":null,"op":"c","source":{"table":"t"},"after":{"a":1}}`,
	`{}`,
	`[]`,
	`null`,
	`"x"`,
	` `,
	``,
}

// fastEdgeKeys are record keys at the edges of what the fast path takes.
var fastEdgeKeys = []string{
	`{"id":1}`, `{}`, ` {"id" : 1 } `, `{"id":1,"id":2}`, `{"i\u0064":"\u0041"}`, `{"a":{"b":[1]}}`,
	`{"schema":null,"payload":{"id":1}}`, `{"payload":{"id":1}}`, `{"schema":{"type":"int32"},"payload":1}`,
	`42`, `"abc"`, `null`, `[1]`, `{"id":1}x`, `{"id":}`, "\f{}", "", " ",
}

// TestFastPathMatchesSlow: every fixture and edge case decodes to the
// same event (or error) with and without the fast path.
func TestFastPathMatchesSlow(t *testing.T) {
	for _, p := range fastSlowPairs() {
		for _, r := range loadRecords(t) {
			sameDecode(t, p[0], p[1], r.topic, r.key, r.value)
		}
		for _, v := range append(append([]string{}, fastEdgeValues...), hostileValues...) {
			for _, k := range fastEdgeKeys {
				sameDecode(t, p[0], p[1], "pg.public.t", []byte(k), []byte(v))
			}
			sameDecode(t, p[0], p[1], "pg.public.t", nil, []byte(v))
		}
	}
}

// TestFastPathTaken: the records the fast path is for take it; an
// optimisation that silently never runs is a regression.
func TestFastPathTaken(t *testing.T) {
	d := NewJSONDecoder(Options{})
	for _, r := range loadRecords(t) {
		if !strings.HasSuffix(r.name, ".bare") || len(bytes.TrimSpace(r.value)) == 0 {
			continue
		}
		st := d.states.Get().(*decodeState)
		st.conv.a.beginEvent()
		took := d.decodeFast(st, &eventBlock{}, r.key, r.value)
		d.states.Put(st)
		// MongoDB's rows are document strings, and truncates and
		// messages take the ordinary path; every other bare change event
		// takes the fast one.
		if strings.HasPrefix(r.name, "mongo_") || strings.HasPrefix(r.name, "pg_message") || strings.HasPrefix(r.name, "pg_truncate") {
			continue
		}
		if !took {
			t.Errorf("%s: the fast path did not take it", r.name)
		}
	}
}

func FuzzFastPathMatchesSlow(f *testing.F) {
	for _, r := range loadRecords(f) {
		f.Add(r.key, r.value)
	}
	for _, v := range fastEdgeValues {
		f.Add([]byte(`{"id":1}`), []byte(v))
	}
	for _, k := range fastEdgeKeys {
		f.Add([]byte(k), []byte(fastEdgeValues[0]))
	}
	pairs := fastSlowPairs()
	f.Fuzz(func(t *testing.T, key, value []byte) {
		for _, p := range pairs {
			sameDecode(t, p[0], p[1], "pg.public.t", key, value)
		}
	})
}

// strByByte is fastScanner.str as it was before it read eight bytes at a
// time: the reference for TestFastStrMatchesByteLoop.
func strByByte(b []byte, i int) (raw []byte, next int, esc, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return b[i+1 : j], j + 1, esc, true
		}
	}
	return nil, 0, false, false
}

// TestFastStrMatchesByteLoop: the word-at-a-time string scan ends every
// string where the byte loop does, wherever the quotes and backslashes
// fall relative to the eight-byte words and the end of the input.
func TestFastStrMatchesByteLoop(t *testing.T) {
	alphabet := []byte{'a', '"', '\\', 0x00, 0x80, 0xa2, 0xdc, 0xff, '\n', '1'}
	rng := uint64(1)
	next := func() uint64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
	var f fastScanner
	for n := 0; n < 200000; n++ {
		b := make([]byte, 1+int(next()%40))
		b[0] = '"'
		for k := 1; k < len(b); k++ {
			if next()%3 == 0 {
				b[k] = alphabet[next()%uint64(len(alphabet))]
			} else {
				b[k] = 'a' + byte(next()%26)
			}
		}
		f.b = b
		raw, nx, esc, ok := f.str(0)
		wraw, wnx, wesc, wok := strByByte(b, 0)
		if !bytes.Equal(raw, wraw) || nx != wnx || esc != wesc || ok != wok {
			t.Fatalf("%q: str = %q %d %v %v, the byte loop %q %d %v %v", b, raw, nx, esc, ok, wraw, wnx, wesc, wok)
		}
	}
}

// scribble overwrites b, as a reused fetch buffer would.
func scribble(b []byte) {
	for i := range b {
		b[i] = '#'
	}
}

// TestDecodeSharesNoMemory: an event from Decode stays the same when the
// record's bytes are overwritten afterwards, on either path; only
// DecodeOwned may alias them.
func TestDecodeSharesNoMemory(t *testing.T) {
	for _, p := range fastSlowPairs() {
		for _, d := range p {
			for _, r := range loadRecords(t) {
				want, err := d.Decode(r.topic, r.key, r.value)
				if err != nil {
					continue
				}
				key, value := bytes.Clone(r.key), bytes.Clone(r.value)
				got, err := d.Decode(r.topic, key, value)
				if err != nil {
					t.Fatalf("%s: %v", r.name, err)
				}
				scribble(key)
				scribble(value)
				jw, _ := json.Marshal(want)
				jg, _ := json.Marshal(got)
				if !bytes.Equal(jw, jg) || !sameEvent(want, got) {
					t.Fatalf("%s (slow only %v): the event changed with its record:\nwas: %s\nnow: %s", r.name, d.slowOnly, jw, jg)
				}
			}
		}
	}
}

// TestDecodeOwnedAliases: DecodeOwned keeps the strings and numbers of a
// bare change event in the record, not in copies (a DecodeOwned that
// silently copies would be a lost optimisation), and only those.
func TestDecodeOwnedAliases(t *testing.T) {
	r := loadRecord(t, "pg_update.bare")
	d := NewJSONDecoder(Options{})
	inside := func(s string, b []byte) bool {
		p, start := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		return len(s) > 0 && p >= start && p < start+uintptr(len(b))
	}
	for _, owned := range []bool{false, true} {
		key, value := bytes.Clone(r.key), bytes.Clone(r.value)
		var ev *Event
		var err error
		if owned {
			ev, err = d.DecodeOwned(r.topic, key, value)
		} else {
			ev, err = d.Decode(r.topic, key, value)
		}
		if err != nil {
			t.Fatal(err)
		}
		var aliased, names int
		for _, row := range []Row{ev.Key, ev.Before, ev.After} {
			for _, f := range row {
				if inside(f.Name, key) || inside(f.Name, value) {
					names++
				}
				switch v := f.Value.(type) {
				case string:
					if inside(v, key) || inside(v, value) {
						aliased++
					}
				case Number:
					if inside(string(v), key) || inside(string(v), value) {
						aliased++
					}
				}
			}
		}
		if inside(ev.Transaction.ID, value) {
			aliased++
		}
		// 1 key column, 9+9 row columns, the transaction ID.
		if want := map[bool]int{false: 0, true: 20}[owned]; aliased != want || names != 0 {
			t.Errorf("owned %v: %d values and %d field names alias the record, want %d and 0", owned, aliased, names, want)
		}
	}
}

// TestParseDecimalInt64: the int64 shortcut of the fast path's
// timestamps and transaction orders agrees with fastfloat.ParseInt64
// (the ordinary path's Value.Int64) wherever it answers.
func TestParseDecimalInt64(t *testing.T) {
	in := []string{"0", "-0", "1", "-1", "1718012345678000000", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "-9223372036854775809", "9999999999999999999", "-9999999999999999999",
		"10000000000000000000", "18446744073709551615", "18446744073709551616", "", "-", "1.5", "1e3", "12a"}
	for i := int64(1); i > 0 && i < math.MaxInt64/3; i = i*3 + 1 {
		in = append(in, strconv.FormatInt(i, 10), strconv.FormatInt(-i, 10))
	}
	answered := 0
	for _, s := range in {
		n, ok := parseDecimalInt64([]byte(s))
		if !ok {
			continue
		}
		answered++
		want, err := fastfloat.ParseInt64(s)
		if err != nil || n != want {
			t.Fatalf("%q: %d, fastfloat.ParseInt64 %d %v", s, n, want, err)
		}
	}
	if answered < len(in)-12 {
		t.Fatalf("answered %d of %d", answered, len(in))
	}
}

// TestFastPathTruncated: every prefix of a bare change event (and of its
// key) declines or decodes as on the ordinary path, without panicking: a
// member cut off after its colon has its value index at the end of the
// input, which a scan that reads b[at] without a bounds check trips on.
func TestFastPathTruncated(t *testing.T) {
	r := loadRecord(t, "pg_update.bare")
	p := fastSlowPairs()[0]
	for n := 0; n <= len(r.value); n++ {
		sameDecode(t, p[0], p[1], r.topic, r.key, r.value[:n:n])
	}
	for n := 0; n <= len(r.key); n++ {
		sameDecode(t, p[0], p[1], r.topic, r.key[:n:n], r.value)
	}
}

// TestFastPathNamesAcrossObjects: the fast path guesses a row's field
// names from the last row at the same depth, and skips the duplicate
// check for names it knows; rows whose names repeat, reorder, shrink,
// grow or repeat a name, in sequence on one decoder and with a declined
// record between them, decode as on the ordinary path.
func TestFastPathNamesAcrossObjects(t *testing.T) {
	rows := []string{
		`{"a":1,"b":2,"c":3}`, `{"a":1,"b":2,"c":3}`, `{"a":1,"a":2}`, `{"a":1,"b":2,"a":3}`,
		`{"b":1,"a":2,"b":3}`, `{"a":1}`, `{"a":1,"b":2,"c":3,"b":4,"a":5}`, `{"a":1,"b":2,"c":3,"d":4}`,
		`{"a":1,"b":2,"c":3,"d":4,"a":9}`, `{"c":1,"b":2,"a":3}`, `{"c":1,"c":2,"c":3}`, `{}`,
		`{"a":{"a":1,"a":2,"b":{"b":1,"b":2}},"a":3}`, `{"x":{"y":{"z":{"w":{"a":1,"a":2}}}},"x":1}`,
		`{"\u0061":1,"a":2}`, `{"b":1,"b":2}`,
		`{"a":1,"b":2,`, `{"b":1,`, `{"c":1,"a":`, // declined: cut off
	}
	update := func(b, a string) []byte {
		return []byte(`{"op":"u","source":{"connector":"postgresql","table":"t"},"before":` + b + `,"after":` + a + `}`)
	}
	create := func(a string) []byte {
		return []byte(`{"op":"c","source":{"connector":"postgresql","table":"t"},"after":` + a + `}`)
	}
	p := fastSlowPairs()[0]
	for _, b := range rows {
		for _, a := range rows {
			sameDecode(t, p[0], p[1], "pg.public.t", []byte(`{"id":1,"id":2}`), update(b, a))
			sameDecode(t, p[0], p[1], "pg.public.t", []byte(`{"id":1}`), update(b, a))
		}
	}
	// Every row after every pair: what a row leaves behind, declined or
	// not, must not mislead the next.
	for _, x := range rows {
		for _, y := range rows {
			for _, z := range rows {
				for _, r := range []string{x, y, z} {
					sameDecode(t, p[0], p[1], "pg.public.t", nil, create(r))
				}
			}
		}
	}
}
