package pgapply

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cdcsync/cdcsync/processor/apply"
	"github.com/cdcsync/cdcsync/topology"
)

const contactsDDL = `CREATE TABLE contacts (
  id int PRIMARY KEY,
  name text NOT NULL,
  phone text,
  email text,
  score int CHECK (score >= 0))`

// Inserts and updates write only the fields the event carries; a delete
// deletes; other columns keep the target's values.
func TestOnlyCarriedFieldsTouched(t *testing.T) {
	tg := newTarget(t, contactsDDL+`; INSERT INTO contacts VALUES (1, 'Ann', '+1 000', 'ann@crm', 5), (2, 'Bob', NULL, NULL, 1)`)
	a := tg.applier(tg.opts("contacts", "id"))
	allNil(t, mustApply(t, a,
		ev('u', `id=1`, `phone="+1 111"`),
		ev('c', `id=3`, `name="Cy"`, `email="cy@erp"`),
		ev('r', `id=4`, `name="Di"`),
		ev('d', `id=2`),
	))
	got := strings.Join(tg.q(`SELECT concat_ws('|', id, name, coalesce(phone,'-'), coalesce(email,'-'), coalesce(score::text,'-')) FROM contacts ORDER BY id`), "\n")
	want := "1|Ann|+1 111|ann@crm|5\n3|Cy|-|cy@erp|-\n4|Di|-|-|-"
	if got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
	// An update of a row the target does not have inserts it with the
	// carried fields: here name is NOT NULL, so the event is rejected.
	out := mustApply(t, a, ev('u', `id=9`, `phone="+9"`))
	var rej *apply.Rejected
	if !errors.As(out[0], &rej) || rej.Headers["cdcsync.apply.pg.code"] != "23502" {
		t.Fatalf("update of a missing row without its NOT NULL column: %v, want 23502", out[0])
	}
}

// The columns map renames fields; the key maps positionally.
func TestColumnsMap(t *testing.T) {
	tg := newTarget(t, `CREATE TABLE people (pid bigint PRIMARY KEY, full_name text, phone_number text)`)
	o := tg.opts("people", "pid")
	o.Config.Postgres.Columns = map[string]string{"name": "full_name", "phone": "phone_number"}
	a := tg.applier(o)
	allNil(t, mustApply(t, a, ev('c', `id=7`, `name="Eve"`, `phone="+7"`)))
	if got := tg.q1(`SELECT concat_ws('|', pid, full_name, phone_number) FROM people`); got != "7|Eve|+7" {
		t.Fatalf("row %q", got)
	}
	// Two fields onto one column: rejected (the statement would fail
	// with 42701, which is not the event's data).
	out := mustApply(t, a, ev('u', `id=7`, `phone="+1"`, `phone_number="+2"`))
	if out[0] == nil || !strings.Contains(out[0].Error(), `column "phone_number" of `) {
		t.Fatalf("two fields onto one column: %v", out[0])
	}
	// A field without a column is rejected, not dropped.
	out = mustApply(t, a, ev('u', `id=7`, `fax="+0"`))
	if out[0] == nil || !strings.Contains(out[0].Error(), `field "fax": column "fax" not in `) {
		t.Fatalf("unknown field: %v", out[0])
	}
}

// Values convert exactly to the column types from the sink's JSON text.
func TestTypes(t *testing.T) {
	tg := newTarget(t, `CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE v (
  id int PRIMARY KEY,
  n numeric, n2 numeric(10,2), i8 bigint, f8 float8, f4 real, b bool,
  tz timestamptz, ts timestamp, d date, tm time, iv interval,
  j jsonb, js json, u uuid, by bytea, ia int[], ta text[], ja jsonb[], tza timestamptz[], bya bytea[],
  m mood, t text, vc varchar(5))`)
	a := tg.applier(tg.opts("v", "id"))
	tg.exec(`SET TIME ZONE 'UTC'`)
	cases := []struct{ col, raw, want string }{
		{"n", `12345678901234567890.123456789012345678901234567890`, "12345678901234567890.123456789012345678901234567890"},
		{"n", `12.50`, "12.50"},
		{"n", `1e+300`, "1" + strings.Repeat("0", 300)},
		{"n", `"NaN"`, "NaN"},
		{"n2", `12.5`, "12.50"},
		{"i8", `9007199254740993`, "9007199254740993"},
		{"f8", `1.5e-7`, "1.5e-07"},
		{"f8", `"NaN"`, "NaN"},
		{"f8", `"Infinity"`, "Infinity"},
		{"f8", `"-Infinity"`, "-Infinity"},
		{"f4", `0.1`, "0.1"},
		{"b", `true`, "true"},
		{"tz", `"2026-11-27T09:00:00.5Z"`, "2026-11-27 09:00:00.5+00"},
		{"tz", `"2026-11-27T10:00:00.123456+01:00"`, "2026-11-27 09:00:00.123456+00"},
		{"tz", `"+12000-01-01T00:00:00Z"`, "12000-01-01 00:00:00+00"},
		{"tz", `"-0043-03-15T12:00:00Z"`, "0044-03-15 12:00:00+00 BC"},
		{"tz", `"infinity"`, "infinity"},
		{"ts", `"2026-11-27T10:00:00.5"`, "2026-11-27 10:00:00.5"},
		{"ts", `"-infinity"`, "-infinity"},
		{"d", `"2026-11-27"`, "2026-11-27"},
		{"d", `"0000-01-01"`, "0001-01-01 BC"},
		{"d", `"+5874897-12-31"`, "5874897-12-31"},
		{"tm", `"24:00:00"`, "24:00:00"},
		{"tm", `"10:00:00.5"`, "10:00:00.5"},
		{"iv", `2813645500000`, "781:34:05.5"},
		{"j", `{"a":[1,2.50,{"b":null}],"c":"x"}`, `{"a": [1, 2.50, {"b": null}], "c": "x"}`},
		{"j", `"just a string"`, `"just a string"`},
		{"js", `{"z":1,"a":2}`, `{"z":1,"a":2}`},
		{"u", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"by", `"AAEC/w=="`, `\x000102ff`},
		{"by", `""`, `\x`},
		{"ia", `[1,null,3]`, "{1,NULL,3}"},
		{"ia", `[]`, "{}"},
		{"ta", `["a,b","say \"hi\"","back\\slash",null,"NULL"]`, `{"a,b","say \"hi\"","back\\slash",NULL,"NULL"}`},
		{"ja", `[{"a":1},[1,2]]`, `{"{\"a\": 1}","[1, 2]"}`},
		{"tza", `["2026-11-27T09:00:00Z","-0043-03-15T12:00:00Z"]`, `{"2026-11-27 09:00:00+00","0044-03-15 12:00:00+00 BC"}`},
		{"bya", `["AAE=",null]`, `{"\\x0001",NULL}`},
		{"m", `"happy"`, "happy"},
		{"t", `"a<b&c \u00e9"`, "a<b&c é"},
		{"t", `42`, "42"},
		{"t", `{"k":"v"}`, `{"k":"v"}`},
		{"vc", `"abcde"`, "abcde"},
		{"n", `null`, "NULL"},
	}
	for i, c := range cases {
		e := ev('c', `id=`+itoa(i), c.col+`=`+c.raw)
		out := mustApply(t, a, e)
		if out[0] != nil {
			t.Errorf("%s = %s: %v", c.col, c.raw, out[0])
			continue
		}
		// Read in a transaction with UTC, so timestamptz prints in UTC.
		var got *string
		err := pgx.BeginFunc(context.Background(), tg.conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(context.Background(), "SET LOCAL TIME ZONE 'UTC'; SET LOCAL extra_float_digits = 0"); err != nil {
				return err
			}
			return tx.QueryRow(context.Background(), `SELECT `+c.col+`::text FROM v WHERE id = $1`, i).Scan(&got)
		})
		if err != nil {
			t.Fatal(err)
		}
		g := "NULL"
		if got != nil {
			g = *got
		}
		if g != c.want {
			t.Errorf("%s = %s: stored %q, want %q", c.col, c.raw, g, c.want)
		}
	}
	// Values the column type refuses: that event alone is rejected with
	// the reason.
	bad := []struct{ col, raw, code string }{
		{"i8", `12.5`, "22P02"},
		{"u", `"not-a-uuid"`, "22P02"},
		{"by", `"%%%"`, ""}, // not base64: refused before the database
		{"ia", `5`, ""},     // a scalar for an array
		{"vc", `"abcdef"`, "22001"},
		{"m", `"angry"`, "22P02"},
		{"d", `"2026-02-30"`, "22008"},
		{"j", `{"a":`, "22P02"},
	}
	for i, c := range bad {
		out := mustApply(t, a, ev('c', `id=`+itoa(1000+i), c.col+`=`+c.raw))
		var rej *apply.Rejected
		if !errors.As(out[0], &rej) {
			t.Errorf("%s = %s: %v, want rejected", c.col, c.raw, out[0])
			continue
		}
		if rej.Headers["cdcsync.apply.pg.code"] != c.code {
			t.Errorf("%s = %s: code %q (%s), want %q", c.col, c.raw, rej.Headers["cdcsync.apply.pg.code"], rej.Reason, c.code)
		}
	}
	if n := tg.q1(`SELECT count(*)::text FROM v WHERE id >= 1000`); n != "0" {
		t.Fatalf("%s rejected rows were written", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// An update whose before value differs from the target's current value is
// a conflict, resolved by on_conflict; values compare as typed values.
func TestConflicts(t *testing.T) {
	ddl := `CREATE TABLE c (id int PRIMARY KEY, phone text, amount numeric, seen timestamptz, doc json);
INSERT INTO c VALUES (1, 'target-changed', 12.50, '2026-11-27 10:00:00+01', '{"a": 1}')`
	// before: phone was "old" at the source; the target has changed it.
	// amount 12.5 = 12.50, seen in another offset, doc with other spacing:
	// equal as typed values, so not conflicts.
	upd := func() apply.Event {
		return ev('u', `id=1`, `phone="new"`, `amount=13`, `seen="2026-11-27T10:00:00Z"`, `doc={"a":2}`,
			"|", `phone="old"`, `amount=12.5`, `seen="2026-11-27T09:00:00Z"`, `doc={"a":1}`)
	}
	for _, tc := range []struct {
		policy topology.OnConflict
		phone  string
		reject bool
	}{
		{topology.ConflictOverwrite, "new", false},
		{topology.ConflictSkip, "target-changed", false},
		{topology.ConflictDLQ, "target-changed", true},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			tg := newTarget(t, ddl)
			o := tg.opts("c", "id")
			o.Config.Postgres.OnConflict = tc.policy
			a := tg.applier(o)
			out := mustApply(t, a, upd())
			got := tg.q1(`SELECT concat_ws('|', phone, amount, doc::text) FROM c`)
			want := tc.phone + "|13|{\"a\":2}"
			if tc.reject {
				want = "target-changed|12.50|{\"a\": 1}"
				var rej *apply.Rejected
				if !errors.As(out[0], &rej) {
					t.Fatalf("outcome %v, want rejected", out[0])
				}
				h := rej.Headers
				if h["cdcsync.apply.conflict.fields"] != "phone" || h["cdcsync.apply.conflict.phone.before"] != "old" ||
					h["cdcsync.apply.conflict.phone.target"] != "target-changed" || h["cdcsync.apply.conflict.phone.after"] != "new" {
					t.Fatalf("headers %v", h)
				}
			} else if out[0] != nil {
				t.Fatal(out[0])
			}
			if got != want {
				t.Fatalf("row %q, want %q", got, want)
			}
			if n := testutil.ToFloat64(a.conflicts.WithLabelValues("crm-apply", "phone")); n != 1 {
				t.Fatalf("conflicts{field=phone} = %v, want 1", n)
			}
			if n := testutil.CollectAndCount(a.conflicts); n != 1 {
				t.Fatalf("%d conflict series, want only phone's", n)
			}
			// A field written by an earlier event of the same batch is not
			// a conflict for the next one.
			allNil(t, mustApply(t, a,
				ev('u', `id=1`, `phone="p1"`, "|", `phone="`+tc.phone+`"`),
				ev('u', `id=1`, `phone="p2"`, "|", `phone="p1"`)))
			if got := tg.q1(`SELECT phone FROM c`); got != "p2" && !tc.reject {
				t.Fatalf("phone %q, want p2", got)
			}
			// The topology leaves the worker: its series go.
			a.Close()
			if n := testutil.CollectAndCount(a.conflicts); n != 0 {
				t.Fatalf("%d conflict series after Close", n)
			}
		})
	}
}

// A bad row in a batch is rejected alone, with its SQLSTATE; the rest of
// the batch applies in the same transaction.
func TestBadRowIsolated(t *testing.T) {
	tg := newTarget(t, contactsDDL+`; CREATE UNIQUE INDEX ON contacts (email)`)
	a := tg.applier(tg.opts("contacts", "id"))
	var events []apply.Event
	for i := 1; i <= 150; i++ {
		events = append(events, ev('c', `id=`+itoa(i), `name="n`+itoa(i)+`"`, `score=`+itoa(i)))
	}
	events[9] = ev('c', `id=10`, `name="bad"`, `score=-1`)       // CHECK violation, 23514
	events[70] = ev('c', `id=71`, `name="bad"`, `score="many"`)  // 22P02
	events[71] = ev('c', `id=72`, `name=null`)                   // NOT NULL, 23502
	events[140] = ev('c', `id=141`, `name="x"`, `email="dup@x"`) // fine
	events[141] = ev('c', `id=142`, `name="y"`, `email="dup@x"`) // unique violation, 23505
	out := mustApply(t, a, events...)
	wantCode := map[int]string{9: "23514", 70: "22P02", 71: "23502", 141: "23505"}
	for i, e := range out {
		code, bad := wantCode[i]
		var rej *apply.Rejected
		switch {
		case bad && !errors.As(e, &rej):
			t.Errorf("event %d: %v, want rejected %s", i, e, code)
		case bad && rej.Headers["cdcsync.apply.pg.code"] != code:
			t.Errorf("event %d: %s, want %s", i, rej.Reason, code)
		case !bad && e != nil:
			t.Errorf("event %d: %v", i, e)
		}
	}
	if n := tg.q1(`SELECT count(*)::text FROM contacts`); n != "146" {
		t.Fatalf("%s rows, want 146", n)
	}
	// The rejected events are not recorded as applied: a replay from the
	// DLQ applies them once fixed.
	if n := tg.q1(`SELECT count(*)::text FROM cdcsync_applied WHERE event_id = ANY($1)`,
		[]string{events[9].ID, events[70].ID, events[71].ID, events[141].ID}); n != "0" {
		t.Fatalf("%s rejected events recorded as applied", n)
	}
	fixed := events[9]
	fixed.Fields = []apply.Field{{Name: "name", Raw: []byte(`"fixed"`)}, {Name: "score", Raw: []byte(`0`)}}
	allNil(t, mustApply(t, a, fixed))
	if got := tg.q1(`SELECT name FROM contacts WHERE id = 10`); got != "fixed" {
		t.Fatalf("replayed event: name %q", got)
	}
}

// A redelivered batch (a crash after the commit, before the Kafka offset
// commit) is applied once; so is an event twice in one batch.
func TestRedeliveredAppliedOnce(t *testing.T) {
	tg := newTarget(t, contactsDDL+`;
CREATE TABLE applied_count (n int);
INSERT INTO applied_count VALUES (0);
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE applied_count SET n = n + 1; RETURN NULL; END $$;
CREATE TRIGGER bump AFTER INSERT OR UPDATE OR DELETE ON contacts FOR EACH ROW EXECUTE FUNCTION bump();`)
	a := tg.applier(tg.opts("contacts", "id"))
	batch := []apply.Event{
		ev('c', `id=1`, `name="a"`),
		ev('u', `id=1`, `phone="1"`),
		ev('c', `id=2`, `name="b"`),
		ev('d', `id=2`),
	}
	batch = append(batch, batch[1]) // the same event again in the batch
	allNil(t, mustApply(t, a, batch...))
	allNil(t, mustApply(t, a, batch...))
	allNil(t, mustApply(t, a, batch[2:]...))
	if n := tg.q1(`SELECT n::text FROM applied_count`); n != "4" {
		t.Fatalf("the trigger counted %s writes, want 4", n)
	}
	if n := tg.q1(`SELECT count(*)::text FROM cdcsync_applied WHERE topology = 'crm-apply'`); n != "4" {
		t.Fatalf("%s applied IDs, want 4", n)
	}
	// Another applier for the same topology (a second worker after a
	// rebalance) skips them too.
	b := tg.applier(tg.opts("contacts", "id"))
	allNil(t, mustApply(t, b, batch...))
	if n := tg.q1(`SELECT n::text FROM applied_count`); n != "4" {
		t.Fatalf("the trigger counted %s writes after a second applier, want 4", n)
	}
}

// Two appliers on one partition at once (the old and the new owner during
// a rebalance) apply overlapping batches: each event changes the table
// once; the loser's batch rolls back as transient and its retry skips what
// the winner applied.
func TestConcurrentAppliersOverlap(t *testing.T) {
	tg := newTarget(t, contactsDDL+`;
CREATE TABLE applied_count (n int);
INSERT INTO applied_count VALUES (0);
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE applied_count SET n = n + 1; RETURN NULL; END $$;
CREATE TRIGGER bump AFTER INSERT OR UPDATE OR DELETE ON contacts FOR EACH ROW EXECUTE FUNCTION bump();`)
	var events []apply.Event
	for i := range 300 {
		events = append(events, ev('c', `id=`+itoa(i%50), `name="v`+itoa(i)+`"`))
	}
	a, b := tg.applier(tg.opts("contacts", "id")), tg.applier(tg.opts("contacts", "id"))
	// a gets events 0..199, b 100..299: 100 overlap.
	run := func(ap *Applier, batch []apply.Event, transient *int) error {
		for range 20 {
			out, err := ap.Apply(context.Background(), batch)
			if err == nil {
				for _, e := range out {
					if e != nil {
						return e
					}
				}
				return nil
			}
			*transient++
		}
		return errors.New("still failing after 20 attempts")
	}
	var ta, tb int
	errs := make(chan error, 2)
	go func() { errs <- run(a, events[:200], &ta) }()
	go func() { errs <- run(b, events[100:], &tb) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := tg.q1(`SELECT n::text FROM applied_count`); n != "300" {
		t.Fatalf("the trigger counted %s writes for 300 events (transient retries: %d, %d)", n, ta, tb)
	}
	if n := tg.q1(`SELECT count(*)::text FROM cdcsync_applied`); n != "300" {
		t.Fatalf("%s applied IDs, want 300", n)
	}
	t.Logf("transient retries: %d and %d", ta, tb)
}

// Truncates are ignored by default; apply.truncate apply empties the table.
func TestTruncate(t *testing.T) {
	tg := newTarget(t, contactsDDL+`; INSERT INTO contacts VALUES (1, 'a'), (2, 'b')`)
	trunc := apply.Event{ID: "0000000000000000000000000000beef", Op: 't', Entity: "contacts"}
	a := tg.applier(tg.opts("contacts", "id"))
	allNil(t, mustApply(t, a, trunc))
	if n := tg.q1(`SELECT count(*)::text FROM contacts`); n != "2" {
		t.Fatalf("truncate: ignore left %s rows", n)
	}
	o := tg.opts("contacts", "id")
	o.Config.Truncate = topology.ApplyTruncateApply
	b := tg.applier(o)
	allNil(t, mustApply(t, b, trunc, ev('c', `id=3`, `name="c"`)))
	if got := strings.Join(tg.q(`SELECT id::text FROM contacts`), ","); got != "3" {
		t.Fatalf("after truncate: apply: rows %q, want 3", got)
	}
}

// The start is refused at the option's file:line when the table does not
// fit the configuration.
func TestCatalogRefusal(t *testing.T) {
	tg := newTarget(t, contactsDDL+`; CREATE TABLE nokey (id int, name text)`)
	cases := []struct {
		name string
		mod  func(*apply.Options)
		want string
	}{
		{"table", func(o *apply.Options) { o.Config.Postgres.Table = "public.nope" },
			`crm-apply.yaml:12: apply.postgres.table: table public.nope does not exist (or is not a table)`},
		{"column", func(o *apply.Options) { o.Config.Postgres.Columns = map[string]string{"phone": "phone_number"} },
			`crm-apply.yaml:12: apply.postgres.columns.phone: column "phone_number" not in ` + tg.schema + `.contacts`},
		{"key", func(o *apply.Options) { o.Config.Postgres.Key = []string{"uid"} },
			`crm-apply.yaml:12: apply.postgres.key[0]: column "uid" not in ` + tg.schema + `.contacts`},
		{"unique", func(o *apply.Options) { o.Config.Postgres.Key = []string{"name"} },
			`crm-apply.yaml:12: apply.postgres.key: no primary key or unique index on (name) of ` + tg.schema + `.contacts`},
		{"nokey", func(o *apply.Options) { o.Config.Postgres.Table = "nokey"; o.Config.Postgres.Key = []string{"id"} },
			`crm-apply.yaml:12: apply.postgres.key: no primary key or unique index on (id) of ` + tg.schema + `.nokey`},
		{"dsn", func(o *apply.Options) { o.Config.Postgres.DSNEnv = "CDCSYNC_TEST_NO_SUCH_ENV" },
			`crm-apply.yaml:12: apply.postgres.dsn_env: environment variable CDCSYNC_TEST_NO_SUCH_ENV is not set or empty`},
		{"dsnfile", func(o *apply.Options) { o.Config.Postgres.DSNEnv = ""; o.Config.Postgres.DSNFile = "/nonexistent/dsn" },
			`crm-apply.yaml:12: apply.postgres.dsn_file: reading the DSN file: open /nonexistent/dsn: no such file or directory`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := tg.opts("contacts", "id")
			c.mod(&o)
			_, err := New(context.Background(), o)
			var ce *ConfigError
			if !errors.As(err, &ce) || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
	// The applied table is created when missing, in the target table's
	// schema.
	tg.applier(tg.opts("contacts", "id"))
	if got := tg.q1(`SELECT count(*)::text FROM pg_tables WHERE schemaname = $1 AND tablename = 'cdcsync_applied'`, tg.schema); got != "1" {
		t.Fatalf("%s applied tables in schema %s", got, tg.schema)
	}
}

// Regression: two workers starting at once both ran CREATE TABLE IF NOT
// EXISTS for the applied table, and one failed with 23505 on pg_type.
func TestConcurrentStart(t *testing.T) {
	tg := newTarget(t, contactsDDL)
	errs := make(chan error, 6)
	for range 6 {
		go func() {
			a, err := New(context.Background(), tg.opts("contacts", "id"))
			if err == nil {
				a.Close()
			}
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A password in the DSN never shows in an error.
func TestDSNRedacted(t *testing.T) {
	tg := newTarget(t, contactsDDL)
	c := needPG(t)
	t.Setenv(tg.dsnEnv, strings.Replace(c.DSN(""), "@", ":s3cr3t-pw@", 1)+"&connect_timeout=2&port=1")
	o := tg.opts("contacts", "id")
	_, err := New(context.Background(), o)
	if err == nil {
		t.Fatal("connected to port 1")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("the password is in the error: %v", err)
	}
	t.Setenv(tg.dsnEnv, "postgres://u:s3cr3t-pw@127.0.0.1:notaport/db")
	_, err = New(context.Background(), o)
	var ce *ConfigError
	if !errors.As(err, &ce) || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("a DSN that does not parse: %v", err)
	}
}

// A lost connection, a deadlock or a stopped server is transient: nothing
// of the batch is applied, and the next attempt applies it.
func TestTransient(t *testing.T) {
	tg := newTarget(t, contactsDDL+`; INSERT INTO contacts VALUES (1, 'a'), (2, 'b')`)
	a := tg.applier(tg.opts("contacts", "id"))
	ctx := context.Background()
	allNil(t, mustApply(t, a, ev('u', `id=1`, `phone="0"`)))

	t.Run("terminated", func(t *testing.T) {
		// Kill the applier's sessions (pg_terminate_backend: 57P01).
		tg.exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() AND backend_type = 'client backend'`)
		e := ev('u', `id=1`, `phone="1"`)
		// Each pooled connection is dead: every attempt fails transient
		// with no outcomes until the pool has a new one.
		failures := 0
		for {
			out, err := a.Apply(ctx, []apply.Event{e})
			if err == nil {
				allNil(t, out)
				break
			}
			if len(out) != 0 {
				t.Fatalf("transient error with %d outcomes", len(out))
			}
			if failures++; failures > 8 {
				t.Fatalf("still failing: %v", err)
			}
		}
		if failures == 0 {
			t.Fatal("Apply on a terminated connection did not fail")
		}
		if got := tg.q1(`SELECT phone FROM contacts WHERE id = 1`); got != "1" {
			t.Fatalf("phone %q", got)
		}
	})

	t.Run("deadlock", func(t *testing.T) {
		other, err := pgx.Connect(ctx, cluster.DSN("")+"&search_path="+tg.schema)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(ctx)
		// The other session detects late, so the applier is the victim.
		if _, err := other.Exec(ctx, "SET deadlock_timeout = '20s'; BEGIN; UPDATE contacts SET name = 'x' WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
		batch := []apply.Event{ev('u', `id=1`, `phone="d1"`), ev('u', `id=2`, `phone="d2"`)}
		type res struct {
			out []error
			err error
		}
		done := make(chan res, 1)
		go func() { o, err := a.Apply(ctx, batch); done <- res{o, err} }()
		// Wait until the applier waits for row 2's lock, then lock row 1.
		waitFor(t, func() bool {
			return tg.q1(`SELECT count(*)::text FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`) == "1"
		})
		otherDone := make(chan error, 1)
		go func() {
			_, err := other.Exec(ctx, "UPDATE contacts SET name = 'y' WHERE id = 1")
			otherDone <- err
		}()
		r := <-done
		var pe *pgconn.PgError
		if r.err == nil || !errors.As(r.err, &pe) || pe.Code != "40P01" || len(r.out) != 0 {
			t.Fatalf("Apply = %v, %v; want a transient 40P01 and no outcomes", r.out, r.err)
		}
		if err := <-otherDone; err != nil {
			t.Fatal(err)
		}
		if _, err := other.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		if got := tg.q1(`SELECT phone FROM contacts WHERE id = 1`); got != "1" {
			t.Fatalf("after the rolled-back batch, phone %q, want 1", got)
		}
		allNil(t, mustApply(t, a, batch...))
		if got := strings.Join(tg.q(`SELECT name || ':' || phone FROM contacts ORDER BY id`), ","); got != "y:d1,x:d2" {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("lock held", func(t *testing.T) {
		// A row lock the target holds for long: 55P03 after lock_timeout,
		// transient, instead of a partition stalled without a signal.
		defer func(v string) { lockTimeout = v }(lockTimeout)
		lockTimeout = "300ms"
		other, err := pgx.Connect(ctx, cluster.DSN("")+"&search_path="+tg.schema)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(ctx)
		if _, err := other.Exec(ctx, "BEGIN; SELECT * FROM contacts WHERE id = 1 FOR UPDATE"); err != nil {
			t.Fatal(err)
		}
		e := ev('u', `id=1`, `phone="l"`)
		out, err := a.Apply(ctx, []apply.Event{e})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55P03" || len(out) != 0 {
			t.Fatalf("Apply under a held lock = %v, %v; want a transient 55P03", out, err)
		}
		if _, err := other.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		allNil(t, mustApply(t, a, e))
	})

	t.Run("server stopped", func(t *testing.T) {
		if err := cluster.StopServer(); err != nil {
			t.Fatal(err)
		}
		defer cluster.StartServer()
		e := ev('u', `id=1`, `phone="s"`)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := a.Apply(cctx, []apply.Event{e})
		cancel()
		if err == nil || len(out) != 0 {
			t.Fatalf("Apply with the server down = %v, %v; want a transient error", out, err)
		}
		if err := cluster.StartServer(); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, cluster.DSN("")+"&search_path="+tg.schema)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		tg.conn = conn
		allNil(t, mustApply(t, a, e))
		if got := tg.q1(`SELECT phone FROM contacts WHERE id = 1`); got != "s" {
			t.Fatalf("phone %q", got)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pruning deletes the topology's applied IDs older than the window, and
// only those.
func TestPrune(t *testing.T) {
	tg := newTarget(t, contactsDDL)
	a := tg.applier(tg.opts("contacts", "id"))
	tg.exec(`INSERT INTO cdcsync_applied (topology, event_id, applied_at) SELECT 'crm-apply', 'old' || g, now() - interval '8 days' FROM generate_series(1, 25000) g`)
	tg.exec(`INSERT INTO cdcsync_applied (topology, event_id, applied_at) VALUES ('crm-apply', 'new', now()), ('other', 'old', now() - interval '30 days')`)
	n, err := a.Prune(context.Background(), 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 25000 {
		t.Fatalf("pruned %d, want 25000", n)
	}
	if got := strings.Join(tg.q(`SELECT topology || '/' || event_id FROM cdcsync_applied ORDER BY 1`), ","); got != "crm-apply/new,other/old" {
		t.Fatalf("left %q", got)
	}
}

// permanent classifies SQLSTATEs: the event's own fault or transient.
func TestPermanentClassification(t *testing.T) {
	for code, want := range map[string]bool{
		"23505": true, "23502": true, "23503": true, "23514": true, "22P02": true, "22001": true, "22003": true,
		"40001": false, "40P01": false, "57P01": false, "08006": false, "53300": false, "55P03": false, "42P01": false,
	} {
		if got := permanent(&pgconn.PgError{Code: code}); got != want {
			t.Errorf("%s: permanent = %v, want %v", code, got, want)
		}
	}
	if permanent(errors.New("connection reset")) {
		t.Error("a network error is permanent")
	}
}
