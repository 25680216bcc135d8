// Package outbox writes events into a transactional outbox table inside
// the caller's database transaction, so that an event exists exactly when
// the domain change it describes was committed. A relay publishes the
// rows: Debezium (the outbox table's change records, read by a cdcsync
// topology with source.format: debezium-outbox, raw or through
// Debezium's EventRouter SMT) or cdcsync's polling relay
// (cdcsync outbox relay). See docs/outbox.md.
//
// # The table
//
// The columns are Debezium's EventRouter defaults; timestamp and headers
// are optional. The same DDL is in outbox.sql and in DDL:
//
//	CREATE TABLE IF NOT EXISTS outbox (
//	    id            uuid        PRIMARY KEY,
//	    aggregatetype text        NOT NULL,
//	    aggregateid   text        NOT NULL,
//	    type          text        NOT NULL,
//	    payload       jsonb,
//	    "timestamp"   timestamptz NOT NULL DEFAULT now(),
//	    headers       jsonb
//	);
//	CREATE INDEX IF NOT EXISTS outbox_timestamp ON outbox ("timestamp");
//
// # Writing
//
//	w, err := outbox.New(outbox.Config{Cleanup: outbox.DeleteAfterInsert})
//	tx, err := pool.Begin(ctx)
//	... the domain change in tx ...
//	err = w.Write(ctx, outbox.PgxTx(tx), outbox.Event{
//	    ID: id, // outbox.NewID() once per business operation; a retry reuses it
//	    AggregateType: "order", AggregateID: "order-42", Type: "OrderCreated",
//	    Payload: []byte(`{"id":42}`),
//	    Headers: map[string]string{"traceparent": tp},
//	})
//	err = tx.Commit(ctx)
//
// A rolled-back transaction writes neither the domain change nor the
// event. The event ID is a UUID the caller may supply: a business
// operation retried after an unknown outcome (a timeout on commit) writes
// its event with the same ID, and cdcsync's dedup ledger, keyed by the
// outbox id, drops the second one. With a fresh ID per attempt, both
// would be published.
//
// # Cleanup
//
// DeleteAfterInsert deletes the row in the same transaction right after
// inserting it. Debezium reads the insert from the WAL, so the event is
// published and the table stays empty; the delete is a change record
// that the debezium-outbox format ignores and counts. It does not suit
// the polling relay, which reads the table: use Keep with it. Keep
// leaves the rows; Purge deletes rows older than a cutoff (published
// ones, for the relay).
package outbox
