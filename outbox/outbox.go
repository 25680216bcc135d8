package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

// DDL is the outbox table (outbox.sql).
//
//go:embed outbox.sql
var DDL string

// Errors returned by New and Write.
var (
	// ErrConfig is returned by New for an invalid Config.
	ErrConfig = errors.New("outbox: invalid configuration")
	// ErrEvent is returned by Write for an event that cannot be written:
	// a missing field, an ID that is not a UUID, a payload that is not
	// JSON. Nothing was written; the transaction is still usable.
	ErrEvent = errors.New("outbox: invalid event")
)

// Cleanup says what happens to an outbox row after it is written.
type Cleanup int

const (
	// Keep leaves the row; Purge deletes old rows later (the default, and
	// what the polling relay needs: it reads the table).
	Keep Cleanup = iota
	// DeleteAfterInsert deletes the row in the same transaction, right
	// after inserting it: Debezium reads the insert from the WAL, and the
	// table stays empty.
	DeleteAfterInsert
)

// Config configures a Writer.
type Config struct {
	// Table is the outbox table, optionally schema-qualified (default
	// "outbox").
	Table string
	// Cleanup: Keep (default) or DeleteAfterInsert.
	Cleanup Cleanup
	// NoTimestamp leaves out the "timestamp" column (the table default,
	// now(), fills it when the column exists).
	NoTimestamp bool
	// NoHeaders says the table has no headers column: an event with
	// headers is then refused.
	NoHeaders bool
}

// Event is one outbox event.
type Event struct {
	// ID is the event ID, a UUID in its text form. Empty: Write picks a
	// random one and returns it. Give the same ID to every attempt of one
	// business operation, so a retry is recognised as a duplicate.
	ID            string
	AggregateType string // names the topic: outbox.event.<aggregatetype>
	AggregateID   string // the record key: one aggregate's events stay in order
	Type          string // the event type, e.g. OrderCreated
	// Payload is the domain payload, JSON. PostgreSQL stores it as jsonb,
	// which normalises whitespace and key order: consumers get the jsonb
	// text. nil writes SQL NULL.
	Payload []byte
	// Headers become Kafka record headers, e.g. a W3C traceparent.
	Headers map[string]string
	// Timestamp, when not zero, is written to the timestamp column
	// instead of the database's now().
	Timestamp time.Time
}

// Execer runs one statement inside the caller's transaction. PgxTx and
// SQLTx adapt pgx.Tx and *sql.Tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) error
}

// PgxTx adapts a pgx transaction.
func PgxTx(tx pgx.Tx) Execer { return pgxExec{tx} }

// SQLTx adapts a database/sql transaction (with pgx's stdlib driver, or
// lib/pq).
func SQLTx(tx *sql.Tx) Execer { return sqlExec{tx} }

type pgxExec struct{ tx pgx.Tx }

func (e pgxExec) Exec(ctx context.Context, q string, args ...any) error {
	_, err := e.tx.Exec(ctx, q, args...)
	return err
}

type sqlExec struct{ tx *sql.Tx }

func (e sqlExec) Exec(ctx context.Context, q string, args ...any) error {
	_, err := e.tx.ExecContext(ctx, q, args...)
	return err
}

// Writer writes outbox events. It is immutable and safe for concurrent use.
type Writer struct {
	cfg    Config
	insert string
	delete string
}

var tableName = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$`)

// New returns a Writer, or an error wrapping ErrConfig.
func New(cfg Config) (*Writer, error) {
	if cfg.Table == "" {
		cfg.Table = "outbox"
	}
	if !tableName.MatchString(cfg.Table) {
		return nil, fmt.Errorf("%w: Table %q is not a plain (schema.)table name", ErrConfig, cfg.Table)
	}
	if cfg.Cleanup != Keep && cfg.Cleanup != DeleteAfterInsert {
		return nil, fmt.Errorf("%w: Cleanup %d is not Keep or DeleteAfterInsert", ErrConfig, cfg.Cleanup)
	}
	w := &Writer{cfg: cfg}
	cols := "id, aggregatetype, aggregateid, type, payload"
	vals := "$1::uuid, $2, $3, $4, $5::jsonb"
	n := 5
	if !cfg.NoTimestamp {
		n++
		cols += `, "timestamp"`
		vals += fmt.Sprintf(", coalesce($%d::timestamptz, now())", n)
	}
	if !cfg.NoHeaders {
		n++
		cols += ", headers"
		vals += fmt.Sprintf(", $%d::jsonb", n)
	}
	w.insert = "INSERT INTO " + cfg.Table + " (" + cols + ") VALUES (" + vals + ")"
	w.delete = "DELETE FROM " + cfg.Table + " WHERE id = $1::uuid"
	return w, nil
}

// Write inserts ev in the caller's transaction (and with
// DeleteAfterInsert deletes it again), and returns its ID. It never
// commits or rolls back: the caller's commit publishes the event, a
// rollback discards it with the domain change.
//
// A duplicate ID in a kept table fails the statement (unique violation),
// which aborts the caller's transaction: a retry of a business operation
// that already committed is then refused by the database itself.
func (w *Writer) Write(ctx context.Context, tx Execer, ev Event) (string, error) {
	if ev.ID == "" {
		ev.ID = NewID()
	} else if !isUUID(ev.ID) {
		return "", fmt.Errorf("%w: ID %q is not a UUID", ErrEvent, ev.ID)
	}
	switch {
	case ev.AggregateType == "":
		return "", fmt.Errorf("%w: empty AggregateType", ErrEvent)
	case ev.AggregateID == "":
		return "", fmt.Errorf("%w: empty AggregateID", ErrEvent)
	case ev.Type == "":
		return "", fmt.Errorf("%w: empty Type", ErrEvent)
	case ev.Payload != nil && !json.Valid(ev.Payload):
		return "", fmt.Errorf("%w: Payload is not JSON", ErrEvent)
	case len(ev.Headers) > 0 && w.cfg.NoHeaders:
		return "", fmt.Errorf("%w: the event has headers and the table has no headers column (Config.NoHeaders)", ErrEvent)
	}
	var payload any
	if ev.Payload != nil {
		payload = string(ev.Payload)
	}
	args := []any{ev.ID, ev.AggregateType, ev.AggregateID, ev.Type, payload}
	if !w.cfg.NoTimestamp {
		var ts any
		if !ev.Timestamp.IsZero() {
			ts = ev.Timestamp
		}
		args = append(args, ts)
	}
	if !w.cfg.NoHeaders {
		var hs any
		if len(ev.Headers) > 0 {
			b, err := json.Marshal(ev.Headers)
			if err != nil {
				return "", fmt.Errorf("%w: headers: %v", ErrEvent, err)
			}
			hs = string(b)
		}
		args = append(args, hs)
	}
	if err := tx.Exec(ctx, w.insert, args...); err != nil {
		return "", fmt.Errorf("outbox: insert into %s: %w", w.cfg.Table, err)
	}
	if w.cfg.Cleanup == DeleteAfterInsert {
		if err := tx.Exec(ctx, w.delete, ev.ID); err != nil {
			return "", fmt.Errorf("outbox: delete from %s: %w", w.cfg.Table, err)
		}
	}
	return ev.ID, nil
}

// Purge deletes the rows of a kept table whose timestamp is before
// cutoff, and returns how many. Run it outside the writers'
// transactions, e.g. daily with a cutoff older than the longest time a
// relay or connector may lag.
func (w *Writer) Purge(ctx context.Context, db *sql.DB, cutoff time.Time) (int64, error) {
	if w.cfg.NoTimestamp {
		return 0, fmt.Errorf("%w: Purge needs the timestamp column", ErrConfig)
	}
	res, err := db.ExecContext(ctx, `DELETE FROM `+w.cfg.Table+` WHERE "timestamp" < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("outbox: purge %s: %w", w.cfg.Table, err)
	}
	return res.RowsAffected()
}

// NewID returns a random (version 4) UUID.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var uuidText = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func isUUID(s string) bool { return uuidText.MatchString(s) }
