package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/decode")

// record is one fixture from testdata/decode (see testdata/gen_fixtures.py).
type record struct {
	name       string
	topic      string
	key, value []byte
}

func loadRecords(t testing.TB) []record {
	t.Helper()
	topics, err := filepath.Glob("testdata/decode/*.topic")
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) == 0 {
		t.Fatal("no fixtures in testdata/decode")
	}
	var out []record
	for _, tp := range topics {
		base := strings.TrimSuffix(tp, ".topic")
		r := record{name: filepath.Base(base)}
		topic, err := os.ReadFile(tp)
		if err != nil {
			t.Fatal(err)
		}
		r.topic = string(topic)
		r.key = readOptional(t, base+".key.json")
		r.value = readOptional(t, base+".value.json")
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func readOptional(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadRecord(t testing.TB, name string) record {
	t.Helper()
	for _, r := range loadRecords(t) {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("no fixture %s", name)
	return record{}
}

func mustDecode(t testing.TB, d *JSONDecoder, r record) *Event {
	t.Helper()
	ev, err := d.Decode(r.topic, r.key, r.value)
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	return ev
}

func TestGolden(t *testing.T) {
	d := NewJSONDecoder(Options{SourceSystem: "erp"})
	for _, r := range loadRecords(t) {
		t.Run(r.name, func(t *testing.T) {
			ev := mustDecode(t, d, r)
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata/decode", r.name+".golden.json")
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

// TestEnvelopeMatchesBare checks that the same change read with and
// without the schema envelope gives the same ID, op, key and changed
// fields: the ID depends on typed values, not on how they were written.
func TestEnvelopeMatchesBare(t *testing.T) {
	d := NewJSONDecoder(Options{})
	recs := loadRecords(t)
	byName := map[string]record{}
	for _, r := range recs {
		byName[r.name] = r
	}
	n := 0
	for _, r := range recs {
		base, ok := strings.CutSuffix(r.name, ".env")
		if !ok {
			continue
		}
		bare, ok := byName[base+".bare"]
		if !ok {
			t.Fatalf("%s has no bare twin", r.name)
		}
		n++
		e, b := mustDecode(t, d, r), mustDecode(t, d, bare)
		if e.Op != b.Op || e.Type != b.Type || e.Tombstone != b.Tombstone {
			t.Errorf("%s: op/type %c %s vs %c %s", base, e.Op, e.Type, b.Op, b.Type)
		}
		if string(AppendCanonical(nil, e.Key)) != string(AppendCanonical(nil, b.Key)) {
			t.Errorf("%s: keys differ: %v vs %v", base, e.Key, b.Key)
		}
		if string(AppendCanonical(nil, e.Position)) != string(AppendCanonical(nil, b.Position)) {
			t.Errorf("%s: positions differ: %v vs %v", base, e.Position, b.Position)
		}
		if !e.OccurredAt.Equal(b.OccurredAt) {
			t.Errorf("%s: occurred_at %v vs %v", base, e.OccurredAt, b.OccurredAt)
		}
		// Content IDs hash the after-state, whose logical types only the
		// envelope can decode; position IDs must agree.
		if e.Op != OpRead && e.ID != b.ID {
			t.Errorf("%s: IDs differ: %s vs %s", base, e.ID, b.ID)
		}
	}
	if n < 10 {
		t.Fatalf("only %d fixture pairs", n)
	}
}

func TestSameRecordSameID(t *testing.T) {
	for _, mode := range []IDMode{IDPosition, IDContent} {
		d1, d2 := NewJSONDecoder(Options{IDMode: mode}), NewJSONDecoder(Options{IDMode: mode})
		seen := map[ID]string{}
		for _, r := range loadRecords(t) {
			a, b := mustDecode(t, d1, r), mustDecode(t, d2, r)
			c := mustDecode(t, d1, r)
			if a.ID != b.ID || a.ID != c.ID {
				t.Errorf("mode %d %s: IDs %s %s %s", mode, r.name, a.ID, b.ID, c.ID)
			}
			if a.ID.IsZero() {
				t.Errorf("mode %d %s: zero ID", mode, r.name)
			}
			if mode == IDPosition {
				base := strings.TrimSuffix(strings.TrimSuffix(r.name, ".env"), ".bare")
				if prev, ok := seen[a.ID]; ok && prev != base && !strings.HasPrefix(base, "pg_read") {
					t.Errorf("%s and %s share ID %s", prev, base, a.ID)
				}
				seen[a.ID] = base
			}
		}
	}
}

func TestResnapshotSameID(t *testing.T) {
	d := NewJSONDecoder(Options{})
	for _, form := range []string{".env", ".bare"} {
		first := mustDecode(t, d, loadRecord(t, "pg_read"+form))
		again := mustDecode(t, d, loadRecord(t, "pg_read_resnapshot"+form))
		if first.Op != OpRead || again.Op != OpRead {
			t.Fatalf("ops %c %c", first.Op, again.Op)
		}
		if p1, p2 := first.Position, again.Position; string(AppendCanonical(nil, p1)) == string(AppendCanonical(nil, p2)) {
			t.Fatalf("fixtures must differ in position: %v", p1)
		}
		if first.ID != again.ID {
			t.Errorf("%s: re-snapshot of an unchanged row got a new ID: %s vs %s", form, first.ID, again.ID)
		}
		// The same row created by streaming has a position ID, not the
		// content ID.
		created := mustDecode(t, d, loadRecord(t, "pg_create"+form))
		if created.ID == first.ID {
			t.Errorf("%s: op=c got the content ID", form)
		}
		// In content mode the create is recognised as the same state.
		dc := NewJSONDecoder(Options{IDMode: IDContent})
		if a, b := mustDecode(t, dc, loadRecord(t, "pg_create"+form)), mustDecode(t, dc, loadRecord(t, "pg_read"+form)); a.ID != b.ID {
			t.Errorf("%s: content mode: create %s vs snapshot %s", form, a.ID, b.ID)
		}
	}
	// A changed row gets a different content ID.
	d2 := NewJSONDecoder(Options{IDMode: IDContent})
	a := mustDecode(t, d2, loadRecord(t, "pg_create.env"))
	b := mustDecode(t, d2, loadRecord(t, "pg_update.env"))
	if a.ID == b.ID {
		t.Error("different after-states share a content ID")
	}
}

func TestIDField(t *testing.T) {
	d := NewJSONDecoder(Options{IDMode: IDField, IDField: "email"})
	a := mustDecode(t, d, loadRecord(t, "pg_create.env"))
	b := mustDecode(t, d, loadRecord(t, "pg_read_resnapshot.bare"))
	if a.ID != b.ID {
		t.Errorf("same email, different IDs: %s %s", a.ID, b.ID)
	}
	c := mustDecode(t, d, loadRecord(t, "pg_update.env"))
	if c.ID == a.ID {
		t.Error("different email, same ID")
	}
	d2 := NewJSONDecoder(Options{IDMode: IDField, IDField: "nope"})
	r := loadRecord(t, "pg_create.env")
	_, err := d2.Decode(r.topic, r.key, r.value)
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrMissingField) || de.Path != "payload.after.nope" {
		t.Fatalf("got %v", err)
	}
}

// TestBigIDExact: a 19-digit id without a schema must not go through
// float64 (9223372036854775807 would become 9223372036854775808).
func TestBigIDExact(t *testing.T) {
	d := NewJSONDecoder(Options{})
	ev := mustDecode(t, d, loadRecord(t, "pg_logical_types.bare"))
	for _, row := range []Row{ev.Key, ev.After} {
		v, ok := row.Get("id")
		if !ok || v != Number("9223372036854775807") {
			t.Errorf("id = %#v", v)
		}
	}
	env := mustDecode(t, d, loadRecord(t, "pg_logical_types.env"))
	if v, _ := env.Key.Get("id"); v != int64(9223372036854775807) {
		t.Errorf("schema id = %#v", v)
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"id":9223372036854775807`)) {
		t.Errorf("marshalled event lost the id: %s", out)
	}
	ev2, err := d.Decode("t", []byte(`{"id":1234567890123456789}`), []byte(`{"op":"c","after":{"id":1234567890123456789,"x":1.10},"source":{"connector":"postgresql","lsn":12345678901234567890}}`))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ev2.After.Get("x"); v != Number("1.10") {
		t.Errorf("x = %#v", v)
	}
	if v, _ := ev2.Position.Get("lsn"); v != Number("12345678901234567890") {
		t.Errorf("lsn = %#v", v)
	}
}

func TestLogicalTypes(t *testing.T) {
	d := NewJSONDecoder(Options{})
	ev := mustDecode(t, d, loadRecord(t, "pg_logical_types.env"))
	get := func(name string) any {
		v, ok := ev.After.Get(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return v
	}
	str := func(name string) string {
		switch v := get(name).(type) {
		case time.Time:
			return v.Format(time.RFC3339Nano)
		case interface{ String() string }:
			return v.String()
		default:
			b, _ := json.Marshal(v)
			return string(b)
		}
	}
	want := map[string]string{
		"tiny": "-8", "small": "32000", "real_col": "1.5", "flag": "true",
		"price": "19.99", "neg_price": "-12.3456", "var_num": "-1234.567",
		"num_as_string": `"12.3400"`, "num_as_double": "12.34",
		"birth": "2022-01-08", "c_date": "1969-12-31",
		"opens": "09:30:00", "opens_us": "09:30:00.123456", "opens_ns": "09:30:00.123456789", "c_time": "23:59:59.999",
		"ts": "2024-06-10T09:39:05.678", "ts_us_col": "2024-06-10T09:39:05.678901",
		"ts_ns_col": "2024-06-10T09:39:05.678901234", "c_ts": "1969-12-31T00:00:00",
		"zoned": "2024-06-10T09:39:05.678901+02:00",
		"uid":   "5f2a7b1c-3d4e-4f60-8a9b-0c1d2e3f4a5b", "raw": `"AAH+/w=="`,
		"labels": `["x",null,"z"]`, "counts": `{"a":1,"b":null}`, "nothing": "null",
	}
	for name, w := range want {
		if got := str(name); got != w {
			t.Errorf("%s = %s, want %s", name, got, w)
		}
	}
	if v := get("doc"); v != JSON(`{"a": [1, 2.50, {"b": null}]}`) {
		t.Errorf("doc = %#v", v)
	}
	if v := get("mood"); v != Enum("happy") {
		t.Errorf("mood = %#v", v)
	}
	if _, ok := get("birth").(Date); !ok {
		t.Errorf("birth is %T", get("birth"))
	}
	if _, ok := get("opens").(TimeOfDay); !ok {
		t.Errorf("opens is %T", get("opens"))
	}
	if _, ok := get("price").(Decimal); !ok {
		t.Errorf("price is %T", get("price"))
	}
}

func TestUnavailable(t *testing.T) {
	d := NewJSONDecoder(Options{})
	ev := mustDecode(t, d, loadRecord(t, "pg_update_toast.env"))
	for _, name := range []string{"body", "blob", "score"} {
		if v, _ := ev.After.Get(name); v != (Unavailable{}) {
			t.Errorf("after.%s = %#v, want Unavailable", name, v)
		}
	}
	// tags_json was unavailable before: an unavailable value is never
	// counted as changed.
	if got := strings.Join(ev.Changed, ","); got != "title" {
		t.Errorf("changed = %s", got)
	}
	bare := mustDecode(t, d, loadRecord(t, "pg_update_toast.bare"))
	if v, _ := bare.After.Get("body"); v != (Unavailable{}) {
		t.Errorf("bare body = %#v", v)
	}
}

func TestChanged(t *testing.T) {
	d := NewJSONDecoder(Options{})
	cases := map[string]string{
		"pg_update.env":        "email,city,balance",
		"pg_update.bare":       "email,city,balance",
		"pg_create.env":        "id,first_name,last_name,email,phone,city,country,balance,updated_at",
		"pg_delete.bare":       "id,first_name,last_name,email,phone,city,country,balance,updated_at",
		"mysql_update.env":     "quantity,amount",
		"sqlserver_update.env": "first_name",
		"mongo_update.env":     "first_name,visits",
		"pg_truncate.env":      "",
	}
	for name, want := range cases {
		ev := mustDecode(t, d, loadRecord(t, name))
		if got := strings.Join(ev.Changed, ","); got != want {
			t.Errorf("%s: changed = %q, want %q", name, got, want)
		}
	}
	// A column removed from the after-state counts as changed.
	got := changed(Row{{"a", int64(1)}, {"b", "x"}}, Row{{"a", int64(1)}})
	if strings.Join(got, ",") != "b" {
		t.Errorf("removed column: %v", got)
	}
	// Equal decimals with different scales are not a change.
	if got := changed(Row{{"p", mustDec("12.50")}}, Row{{"p", mustDec("12.5")}}); len(got) != 0 {
		t.Errorf("decimal rescale: %v", got)
	}
}

func mustDec(s string) Decimal {
	d, ok := parseDecimalText([]byte(s))
	if !ok {
		panic(s)
	}
	return d
}

func TestConnectorSources(t *testing.T) {
	d := NewJSONDecoder(Options{})
	cases := []struct {
		name, connector, db, schema, table, position string
	}{
		{"pg_update.env", "postgresql", "inventory", "public", "customers", `{"lsn":24023152,"txId":556,"sequence":"[\"24023119\",\"24023152\"]"}`},
		{"mysql_create.env", "mysql", "inventory", "", "orders", `{"file":"mysql-bin.000003","pos":154,"row":0,"gtid":"c2c9b9c4-27e8-11ef-8b8e-0242ac120002:42"}`},
		{"mysql_update.bare", "mysql", "inventory", "", "orders", `{"file":"mysql-bin.000003","pos":484,"row":1,"gtid":null}`},
		{"sqlserver_update.env", "sqlserver", "testDB", "dbo", "customers", `{"change_lsn":"00000027:00000ac0:0002","commit_lsn":"00000027:00000ac0:0007","event_serial_no":2}`},
		{"mongo_update.env", "mongodb", "inventory", "", "customers", `{"ts_ms":1558965509000,"ord":2,"h":null,"stxnid":null,"lsid":null,"txnNumber":null,"resume_token":null}`},
	}
	for _, c := range cases {
		ev := mustDecode(t, d, loadRecord(t, c.name))
		s := ev.Source
		if s.Connector != c.connector || s.Database != c.db || s.Schema != c.schema || s.Table != c.table || ev.Entity != c.table {
			t.Errorf("%s: source %+v", c.name, s)
		}
		pos, _ := json.Marshal(ev.Position)
		if string(pos) != c.position {
			t.Errorf("%s: position %s, want %s", c.name, pos, c.position)
		}
	}
	// MongoDB: the document string becomes a Row, extended JSON unwrapped.
	ev := mustDecode(t, d, loadRecord(t, "mongo_create.bare"))
	if v, _ := ev.After.Get("_id"); v != "596e275826f08b2730779e1f" {
		t.Errorf("_id = %#v", v)
	}
	if v, _ := ev.After.Get("visits"); v != Number("1234567890123456789") {
		t.Errorf("visits = %#v", v)
	}
	if v, _ := ev.Key.Get("id"); v != `{"$oid": "596e275826f08b2730779e1f"}` {
		t.Errorf("key = %#v", v)
	}
	// OccurredAt prefers the source's ts_ns.
	pg := mustDecode(t, d, loadRecord(t, "pg_update.env"))
	if want := time.Unix(0, 1718012345678000000).UTC(); !pg.OccurredAt.Equal(want) {
		t.Errorf("occurred_at = %v", pg.OccurredAt)
	}
	// SQL Server has no ts_us: source ts_ms.
	sq := mustDecode(t, d, loadRecord(t, "sqlserver_update.bare"))
	if want := time.UnixMilli(1559729995937).UTC(); !sq.OccurredAt.Equal(want) {
		t.Errorf("sqlserver occurred_at = %v", sq.OccurredAt)
	}
}

func TestOpsTransactionsTombstones(t *testing.T) {
	d := NewJSONDecoder(Options{SourceSystem: "erp"})
	cases := []struct {
		name string
		op   Op
		typ  string
		tx   string // "" = nil
	}{
		{"pg_create.env", OpCreate, "customers.created", ""},
		{"pg_update.bare", OpUpdate, "customers.updated", "556:24023152"},
		{"pg_update_no_tx.env", OpUpdate, "customers.updated", ""},
		{"pg_delete.env", OpDelete, "customers.deleted", ""},
		{"pg_read.bare", OpRead, "customers.snapshot", ""},
		{"pg_truncate.env", OpTruncate, "customers.truncated", ""},
		{"pg_message.env", OpMessage, "audit.message", ""},
		{"mysql_create.bare", OpCreate, "orders.created", "file=mysql-bin.000003,pos=154"},
		{"tombstone_pg.env", OpDelete, "customers.deleted", ""},
		{"tombstone_mysql.bare", OpDelete, "orders.deleted", ""},
	}
	for _, c := range cases {
		ev := mustDecode(t, d, loadRecord(t, c.name))
		if ev.Op != c.op || ev.Type != c.typ || ev.SourceSystem != "erp" {
			t.Errorf("%s: op %c type %s system %s", c.name, ev.Op, ev.Type, ev.SourceSystem)
		}
		got := ""
		if ev.Transaction != nil {
			got = ev.Transaction.ID
		}
		if got != c.tx {
			t.Errorf("%s: transaction %q, want %q", c.name, got, c.tx)
		}
	}
	msg := mustDecode(t, d, loadRecord(t, "pg_message.env"))
	if msg.Message == nil || msg.Message.Prefix != "audit" || string(msg.Message.Content) != "user 7 logged in" || msg.Before != nil || msg.After != nil {
		t.Errorf("message event: %+v", msg)
	}
	tomb := mustDecode(t, d, loadRecord(t, "tombstone_pg.env"))
	if !tomb.Tombstone || tomb.Source.Name != "pg" || tomb.Source.Schema != "public" || tomb.Entity != "customers" {
		t.Errorf("tombstone: %+v", tomb)
	}
	if v, _ := tomb.Key.Get("id"); v != int64(1004) {
		t.Errorf("tombstone key = %#v", v)
	}
	for _, value := range [][]byte{nil, {}, []byte(" \n")} {
		ev, err := d.Decode("pg.public.customers", []byte(`{"id":1}`), value)
		if err != nil || !ev.Tombstone || ev.Op != OpDelete {
			t.Errorf("value %q: %+v %v", value, ev, err)
		}
	}
	// Regression: the JSON text null (bare or as an envelope's payload)
	// decoded as a tombstone, and `printf null | cdcsync decode` printed
	// a delete of type ".deleted". A tombstone is a record with no value;
	// null is a value, and not a change event.
	for _, value := range [][]byte{[]byte("null"), []byte(`{"schema":null,"payload":null}`)} {
		_, err := d.Decode("pg.public.customers", []byte(`{"id":1}`), value)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrMalformed) || !strings.Contains(de.Reason, "JSON null, not a change event") {
			t.Errorf("value %q: %v, want a malformed-record DecodeError", value, err)
		}
	}
	// A tombstone's ID is stable and differs per key.
	a, _ := d.Decode("pg.public.customers", []byte(`{"id":1}`), nil)
	b, _ := d.Decode("pg.public.customers", []byte(`{"id":1}`), nil)
	c, _ := d.Decode("pg.public.customers", []byte(`{"id":2}`), nil)
	if a.ID != b.ID || a.ID == c.ID {
		t.Errorf("tombstone IDs %s %s %s", a.ID, b.ID, c.ID)
	}
}

func TestDecodeErrors(t *testing.T) {
	d := NewJSONDecoder(Options{})
	env := loadRecord(t, "pg_update.env")
	replace := func(old, new string) []byte {
		if !bytes.Contains(env.value, []byte(old)) {
			t.Fatalf("fixture has no %s", old)
		}
		return bytes.Replace(env.value, []byte(old), []byte(new), 1)
	}
	cases := []struct {
		name       string
		key, value []byte
		part, path string
		err        error
		reason     string
	}{
		{"invalid json", nil, []byte(`{"op":`), "value", "", ErrMalformed, ""},
		{"truncated envelope", nil, env.value[:len(env.value)/2], "value", "", ErrMalformed, ""},
		{"truncated key", env.key[:10], env.value, "key", "", ErrMalformed, ""},
		{"no payload", nil, []byte(`{"schema":{"type":"struct","fields":[]}}`), "value", "payload", ErrMissingField, "no payload"},
		{"no op", nil, []byte(`{"after":{"a":1},"source":{}}`), "value", "op", ErrMissingField, "absent"},
		{"unknown op", nil, []byte(`{"op":"x","source":{}}`), "value", "op", ErrUnknownOp, `"x"`},
		{"no source", nil, []byte(`{"op":"c","after":{}}`), "value", "source", ErrMissingField, ""},
		{"string for int64", nil, replace(`"after":{"id":1004`, `"after":{"id":"1004"`), "value", "payload.after.id", ErrSchemaMismatch, "expected int64, got string"},
		{"bad base64 decimal", nil, replace(`"balance":"MD4="`, `"balance":"!!!"`), "value", "payload.after.balance", ErrSchemaMismatch, "base64"},
		{"bad timestamp type", nil, replace(`"updated_at":1718012345678901`, `"updated_at":true`), "value", "payload.before.updated_at", ErrSchemaMismatch, "int64"},
		{"lsn overflow", nil, replace(`"lsn":24023152`, `"lsn":99999999999999999999`), "value", "payload.source.lsn", ErrSchemaMismatch, "out of range"},
		{"bad transaction", nil, replace(`"total_order":1`, `"total_order":"x"`), "value", "payload.transaction.total_order", ErrSchemaMismatch, ""},
		{"key type", []byte(`{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}]},"payload":{"id":"a"}}`), nil, "key", "payload.id", ErrSchemaMismatch, "int32"},
		{"bad schema", nil, []byte(`{"schema":{"type":"struct","fields":[{"type":"nope","field":"a"}]},"payload":{"op":"c","source":{}}}`), "value", "schema.fields[0].type", ErrMalformed, "nope"},
		{"bad mongo doc", nil, []byte(`{"op":"c","after":"{nope","source":{"connector":"mongodb"}}`), "value", "after", ErrMalformed, ""},
		{"bad number", nil, []byte(`{"op":"c","after":{"a":1-2},"source":{}}`), "value", "after.a", ErrMalformed, "invalid number"},
		{"not an object", nil, []byte(`[1,2]`), "value", "", ErrMalformed, "expected an object"},
		{"bad message base64", nil, []byte(`{"op":"m","source":{},"message":{"prefix":"p","content":"%%"}}`), "value", "message.content", ErrSchemaMismatch, "base64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.Decode("pg.public.customers", c.key, c.value)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want *DecodeError", err)
			}
			if !errors.Is(err, c.err) {
				t.Errorf("got %v, want %v", err, c.err)
			}
			if de.Part != c.part || de.Path != c.path {
				t.Errorf("part/path = %q %q, want %q %q (%v)", de.Part, de.Path, c.part, c.path, err)
			}
			if !strings.Contains(de.Reason, c.reason) || de.Reason == "" {
				t.Errorf("reason %q does not contain %q", de.Reason, c.reason)
			}
			if !de.Permanent() {
				t.Error("not permanent")
			}
		})
	}
}

func TestSchemaCacheBounded(t *testing.T) {
	d := NewJSONDecoder(Options{})
	for i := 0; i < maxCachedSchemas+50; i++ {
		v := []byte(`{"schema":{"type":"struct","fields":[],"name":"s` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `","version":` + itoa(i) + `},"payload":{"op":"c","source":{},"after":{}}}`)
		ev, err := d.Decode("t", nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Schema.Version != i {
			t.Fatalf("version %d, want %d", ev.Schema.Version, i)
		}
	}
	if n := len(d.schemas.m); n > maxCachedSchemas {
		t.Errorf("cache holds %d schemas", n)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCanonicalNumbers(t *testing.T) {
	same := [][]any{
		{int64(42), Number("42"), Number("42.0"), Number("4.2e1"), float64(42), mustDec("42.00"), int32(42), uint8(42)},
		{Number("0.1"), float64(0.1), mustDec("0.10")},
		{Number("-0"), int64(0), mustDec("0.000"), float64(0)},
		{"abc", Enum("abc"), JSON("abc")},
		{time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 12, 0, 0, 0, time.FixedZone("", 7200))},
	}
	for _, group := range same {
		want := AppendCanonical(nil, group[0])
		for _, v := range group[1:] {
			if got := AppendCanonical(nil, v); !bytes.Equal(got, want) {
				t.Errorf("%#v encodes %q, %#v encodes %q", group[0], want, v, got)
			}
		}
	}
	differ := []any{nil, false, true, "", "1", int64(1), int64(10), []byte("1"), Row{{"a", int64(1)}}, Row{{"a1", nil}}, []any{int64(1)}, Unavailable{}, Date{2024, 1, 1}, TimeOfDay(1)}
	seen := map[string]any{}
	for _, v := range differ {
		k := string(AppendCanonical(nil, v))
		if prev, ok := seen[k]; ok {
			t.Errorf("%#v and %#v encode the same", prev, v)
		}
		seen[k] = v
	}
}

func TestConcurrentDecode(t *testing.T) {
	d := NewJSONDecoder(Options{})
	recs := loadRecords(t)
	want := map[string]ID{}
	for _, r := range recs {
		want[r.name] = mustDecode(t, d, r).ID
	}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 50; i++ {
				for _, r := range recs {
					ev, err := d.Decode(r.topic, r.key, r.value)
					if i%2 == 1 { // and the owned mode, on a private copy
						ev, err = d.DecodeOwned(r.topic, bytes.Clone(r.key), bytes.Clone(r.value))
					}
					if err != nil || ev.ID != want[r.name] {
						t.Errorf("%s: %v %v", r.name, err, ev)
						return
					}
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

// TestEnvelopeLayouts: the scanner assumes the payload is the last member
// and that a schema seen before can be matched by prefix; both guesses
// must fall back correctly for other layouts.
func TestEnvelopeLayouts(t *testing.T) {
	d := NewJSONDecoder(Options{})
	r := loadRecord(t, "pg_update.env")
	want := mustDecode(t, d, r)
	var doc struct{ Schema, Payload json.RawMessage }
	if err := json.Unmarshal(r.value, &doc); err != nil {
		t.Fatal(err)
	}
	layouts := []string{
		`{"payload":` + string(doc.Payload) + `,"schema":` + string(doc.Schema) + `}`,
		" {\n \"schema\" : " + string(doc.Schema) + " ,\n \"payload\" : " + string(doc.Payload) + " \n} \n",
		`{"schema":` + string(doc.Schema) + `,"payload":` + string(doc.Payload) + `}`,
	}
	for i, l := range layouts {
		ev, err := d.Decode(r.topic, r.key, []byte(l))
		if err != nil {
			t.Fatalf("layout %d: %v", i, err)
		}
		if ev.ID != want.ID || ev.Schema != want.Schema || len(ev.After) != len(want.After) {
			t.Errorf("layout %d: %+v", i, ev)
		}
	}
	// A schema-shaped prefix that is not the cached schema must still be
	// scanned: the cached text followed by more members is a different value.
	bad := `{"schema":` + string(doc.Schema[:len(doc.Schema)-1]) + `,"x":1},"payload":` + string(doc.Payload) + `}`
	if ev, err := d.Decode(r.topic, r.key, []byte(bad)); err == nil && ev.Schema.Name == "" {
		t.Errorf("extended schema lost: %+v", ev.Schema)
	}
	// Trailing garbage after the envelope is an error.
	if _, err := d.Decode(r.topic, r.key, append(append([]byte{}, r.value...), `x`...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing garbage: %v", err)
	}
}
