package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/cdcsync/cdcsync/outbox"
	"github.com/cdcsync/cdcsync/processor/apply/pgapply/pgtest"
)

const ordersDDL = `CREATE TABLE orders (id text PRIMARY KEY, total numeric NOT NULL)`

func setup(t *testing.T) (context.Context, *pgx.Conn, *sql.DB) {
	t.Helper()
	cl := pgtest.StartTB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cl.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, outbox.DDL); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, ordersDDL); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", cl.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return ctx, conn, db
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The order row and its event commit together, through pgx and through
// database/sql; a rolled-back transaction writes neither.
func TestWriteCommitAndRollback(t *testing.T) {
	ctx, conn, db := setup(t)
	w, err := outbox.New(outbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"id": "o-1", "total": 19.90}`

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO orders VALUES ('o-1', 19.90)`); err != nil {
		t.Fatal(err)
	}
	id, err := w.Write(ctx, outbox.PgxTx(tx), outbox.Event{AggregateType: "order", AggregateID: "o-1", Type: "OrderCreated",
		Payload: []byte(payload), Headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var gotPayload, gotHeaders, typ, agg string
	if err := db.QueryRow(`SELECT payload::text, headers->>'traceparent', type, aggregateid FROM outbox WHERE id = $1`, id).Scan(&gotPayload, &gotHeaders, &typ, &agg); err != nil {
		t.Fatal(err)
	}
	if gotPayload != payload || typ != "OrderCreated" || agg != "o-1" || gotHeaders == "" {
		t.Errorf("row %q %q %q %q", gotPayload, gotHeaders, typ, agg)
	}

	// database/sql, rolled back: neither row.
	stx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stx.ExecContext(ctx, `INSERT INTO orders VALUES ('o-2', 5)`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, outbox.SQLTx(stx), outbox.Event{AggregateType: "order", AggregateID: "o-2", Type: "OrderCreated", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := stx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM orders WHERE id = 'o-2'`); n != 0 {
		t.Errorf("rolled-back order row present")
	}
	if n := count(t, db, `SELECT count(*) FROM outbox WHERE aggregateid = 'o-2'`); n != 0 {
		t.Errorf("rolled-back outbox row present")
	}

	// database/sql, committed.
	stx, _ = db.BeginTx(ctx, nil)
	stx.ExecContext(ctx, `INSERT INTO orders VALUES ('o-3', 7)`)
	if _, err := w.Write(ctx, outbox.SQLTx(stx), outbox.Event{ID: "7d7a4a52-1111-4c7e-9d2f-8a5b4c3d2e1f", AggregateType: "order", AggregateID: "o-3", Type: "OrderCreated", Payload: []byte(`{"id":"o-3"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := stx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM outbox`); n != 2 {
		t.Errorf("%d outbox rows, want 2", n)
	}

	// A business retry that reuses a committed ID is refused by the
	// primary key, and its transaction with it.
	tx, _ = conn.Begin(ctx)
	tx.Exec(ctx, `INSERT INTO orders VALUES ('o-3-retry', 7)`)
	if _, err := w.Write(ctx, outbox.PgxTx(tx), outbox.Event{ID: "7d7a4a52-1111-4c7e-9d2f-8a5b4c3d2e1f", AggregateType: "order", AggregateID: "o-3", Type: "OrderCreated", Payload: []byte(`{"id":"o-3"}`)}); err == nil {
		t.Error("a reused ID in a kept table was accepted")
	}
	tx.Rollback(ctx)

	// Purge of kept rows.
	n, err := w.Purge(ctx, db, time.Now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Errorf("purge: %d, %v", n, err)
	}
}

// DeleteAfterInsert leaves the table empty; the order row commits.
func TestDeleteAfterInsert(t *testing.T) {
	ctx, conn, db := setup(t)
	w, err := outbox.New(outbox.Config{Cleanup: outbox.DeleteAfterInsert})
	if err != nil {
		t.Fatal(err)
	}
	id := outbox.NewID()
	for attempt := 0; attempt < 2; attempt++ { // a business retry reuses the ID
		tx, _ := conn.Begin(ctx)
		if _, err := w.Write(ctx, outbox.PgxTx(tx), outbox.Event{ID: id, AggregateType: "order", AggregateID: "o-9", Type: "OrderCreated", Payload: []byte(`{"n":1}`)}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM outbox`); n != 0 {
		t.Errorf("%d rows left, want 0", n)
	}
}

func TestInvalid(t *testing.T) {
	if _, err := outbox.New(outbox.Config{Table: "x; drop"}); !errors.Is(err, outbox.ErrConfig) {
		t.Errorf("bad table: %v", err)
	}
	w, _ := outbox.New(outbox.Config{NoHeaders: true})
	for _, ev := range []outbox.Event{
		{ID: "nope", AggregateType: "a", AggregateID: "1", Type: "t"},
		{AggregateID: "1", Type: "t"},
		{AggregateType: "a", Type: "t"},
		{AggregateType: "a", AggregateID: "1"},
		{AggregateType: "a", AggregateID: "1", Type: "t", Payload: []byte("{")},
		{AggregateType: "a", AggregateID: "1", Type: "t", Headers: map[string]string{"a": "b"}},
	} {
		if _, err := w.Write(context.Background(), nil, ev); !errors.Is(err, outbox.ErrEvent) {
			t.Errorf("%+v: %v", ev, err)
		}
	}
}
