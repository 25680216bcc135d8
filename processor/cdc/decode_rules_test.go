package cdc

import (
	"errors"
	"strings"
	"testing"
)

// TestDuplicateKeysLastWins: a key given twice keeps its first position
// and its last value, in after, before, key, nested structs, MongoDB
// documents and the envelope itself; no Row repeats a name.
//
// Regression: duplicate keys in after gave "fields":{"name":"x","name":"x"}:
// the second value was lost and the key repeated.
func TestDuplicateKeysLastWins(t *testing.T) {
	d := NewJSONDecoder(Options{})
	withSchema := `{"schema":{"type":"struct","fields":[{"type":"struct","optional":true,"field":"after","fields":[` +
		`{"type":"int32","field":"id"},{"type":"string","optional":true,"field":"name"},{"type":"string","optional":true,"field":"city"}]},` +
		`{"type":"struct","field":"source","fields":[{"type":"string","field":"connector"},{"type":"string","field":"table"}]},{"type":"string","field":"op"}]},` +
		`"payload":{"after":{"id":1,"name":"first","city":"Porto","name":"last"},"source":{"connector":"postgresql","table":"t"},"op":"c"}}`
	for _, tc := range []struct {
		name, key, value string
		want             string // the after Row as JSON
	}{
		{"bare", `{"id":1}`, `{"op":"c","source":{"connector":"postgresql","table":"t"},"after":{"id":1,"name":"first","city":"Porto","name":"last"}}`, `{"id":1,"name":"last","city":"Porto"}`},
		{"with schema", `{"id":1}`, withSchema, `{"id":1,"name":"last","city":"Porto"}`},
		{"nested", `{"id":1}`, `{"op":"c","source":{"table":"t"},"after":{"id":1,"addr":{"c":1,"c":2}}}`, `{"id":1,"addr":{"c":2}}`},
		{"mongo document", `{"id":1}`, `{"op":"c","source":{"connector":"mongodb","collection":"t"},"after":"{\"_id\":1,\"a\":1,\"a\":2}"}`, `{"_id":1,"a":2}`},
		{"envelope member", `{"id":1}`, `{"op":"d","source":{"table":"t"},"after":{"id":1},"op":"c"}`, `{"id":1}`},
	} {
		ev, err := d.Decode("pg.public.t", []byte(tc.key), []byte(tc.value))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := string(AppendJSONValue(nil, ev.After)); got != tc.want {
			t.Errorf("%s: after %s, want %s", tc.name, got, tc.want)
		}
		if ev.Op != OpCreate {
			t.Errorf("%s: op %c", tc.name, ev.Op)
		}
		seen := map[string]bool{}
		for _, c := range ev.Changed {
			if seen[c] {
				t.Errorf("%s: changed repeats %s: %v", tc.name, c, ev.Changed)
			}
			seen[c] = true
		}
	}
	ev, err := d.Decode("pg.public.t", []byte(`{"id":1,"id":2}`), []byte(`{"op":"c","source":{"table":"t","table":"u"},"after":{"id":2}}`))
	if err != nil || string(AppendJSONValue(nil, ev.Key)) != `{"id":2}` || ev.Entity != "u" {
		t.Errorf("key and source: %v %v", ev, err)
	}
}

// TestOpSides: each op carries the row states it needs; anything else is
// a permanent *DecodeError (DLQ stage decode).
//
// Regression: op "c" with only before was emitted as a create with no
// fields; op "u" with both sides null was dropped as an echo.
func TestOpSides(t *testing.T) {
	d := NewJSONDecoder(Options{})
	src := `"source":{"connector":"postgresql","table":"t"}`
	for _, tc := range []struct {
		op, before, after string
		ok                bool
		path              string
	}{
		{"c", "null", `{"id":1}`, true, ""},
		{"c", `{"id":1}`, "null", false, "payload.after"},
		{"c", `{"id":1}`, `{"id":1}`, false, "payload.before"},
		{"r", "null", `{"id":1}`, true, ""},
		{"r", "null", "null", false, "payload.after"},
		{"u", `{"id":1}`, `{"id":1}`, true, ""},
		{"u", "null", `{"id":1}`, true, ""},
		{"u", "null", "null", false, "payload.after"},
		{"u", `{"id":1}`, "null", false, "payload.after"},
		{"d", `{"id":1}`, "null", true, ""},
		{"d", "null", "null", true, ""}, // MongoDB without pre-images
		{"d", `{"id":1}`, `{"id":1}`, false, "payload.after"},
		{"t", "null", "null", true, ""},
	} {
		value := `{"schema":null,"payload":{"op":"` + tc.op + `",` + src + `,"before":` + tc.before + `,"after":` + tc.after + `}}`
		_, err := d.Decode("pg.public.t", []byte(`{"id":1}`), []byte(value))
		if tc.ok {
			if err != nil {
				t.Errorf("op %s before %s after %s: %v", tc.op, tc.before, tc.after, err)
			}
			continue
		}
		var de *DecodeError
		if !errors.As(err, &de) || de.Path != tc.path || !strings.Contains(de.Reason, `op "`+tc.op+`"`) {
			t.Errorf("op %s before %s after %s: %v, want a DecodeError at %s", tc.op, tc.before, tc.after, err, tc.path)
		}
	}
}

// TestErrorsSayWhatFirst: a syntax error says what is wrong at the start
// of the reason, in a few dozen bytes.
//
// Regression: a UTF-8 BOM gave `cannot parse number: unexpected char:
// "\xef"`; a document nested too deep gave 14 KB of "cannot parse array
// value: " before the reason.
func TestErrorsSayWhatFirst(t *testing.T) {
	d := NewJSONDecoder(Options{})
	deep := `{"op":"c","source":{},"after":{"a":` + strings.Repeat("[", 400) + strings.Repeat("]", 400) + `}}`
	for _, tc := range []struct {
		name, key, value, part, prefix string
	}{
		{"BOM value", "", "\xef\xbb\xbf{\"op\":\"c\"}", "value", "starts with a UTF-8 byte-order mark"},
		{"BOM key", "\xef\xbb\xbf{\"id\":1}", `{"op":"c"}`, "key", "starts with a UTF-8 byte-order mark"},
		{"too deep", "", deep, "value", "JSON nests deeper than 300 levels"},
		{"bad char", "", `{"op":"c","after":{"a":[1,x]}}`, "value", `unexpected char: "x" (number) at byte 26`},
		{"truncated", "", `{"op":"c"`, "value", "unexpected end of object (object) at byte 9"},
		{"trailing", "", `{"op":"c"}}`, "value", `unexpected data after the JSON value at byte 10`},
	} {
		_, err := d.Decode("pg.public.t", []byte(tc.key), []byte(tc.value))
		var de *DecodeError
		if !errors.As(err, &de) || de.Part != tc.part || !strings.HasPrefix(de.Reason, tc.prefix) {
			t.Errorf("%s: %v, want a %s error starting %q", tc.name, err, tc.part, tc.prefix)
			continue
		}
		if len(err.Error()) > 300 {
			t.Errorf("%s: %d-byte message: %.300s", tc.name, len(err.Error()), err)
		}
	}
}

// The source block is read in one pass that also keeps each connector's
// position fields: every position field needs a slot of its own, which
// the pass fills (sourceKey) and the position reads (positionKey).
func TestPositionFieldSlots(t *testing.T) {
	slot := map[int]string{}
	for conn, names := range positionFields {
		for _, n := range names {
			i := positionKey(n)
			if i < 0 || i >= skAll || sourceKey([]byte(n)) != i {
				t.Fatalf("%s position field %q: slot %d, sourceKey %d", conn, n, i, sourceKey([]byte(n)))
			}
			if o, ok := slot[i]; ok && o != n {
				t.Fatalf("position fields %q and %q share slot %d", n, o, i)
			}
			slot[i] = n
		}
	}
	for _, m := range []string{"connector", "name", "db", "schema", "table", "collection", "snapshot", "ts_ns", "ts_us"} {
		if o, ok := slot[sourceKey([]byte(m))]; ok {
			t.Fatalf("source member %q shares its slot with position field %q", m, o)
		}
	}
}
