// Package cdc turns Debezium change records into typed change events.
//
// A record is a Kafka key and value written by a Debezium connector through
// the JSON converter (with or without the {schema, payload} envelope) or the
// Avro converter. Decoding produces an Event with a deterministic ID, the
// operation, the before and after rows, the changed fields, the source
// position and the time the change happened.
//
// # Values
//
// Row values are plain Go values:
//
//   - nil, bool, string, []byte (Connect bytes), float64 (float32/float64)
//   - int64 for Connect integer types
//   - Number, the exact text of a JSON number read without a schema, so a
//     19-digit id is never rounded through float64
//   - Decimal for org.apache.kafka.connect.data.Decimal and
//     io.debezium.data.VariableScaleDecimal
//   - Date for io.debezium.time.Date and org.apache.kafka.connect.data.Date
//   - TimeOfDay for io.debezium.time.Time, MicroTime, NanoTime and Connect Time
//   - time.Time (UTC) for Timestamp, MicroTimestamp, NanoTimestamp, Connect
//     Timestamp, and ZonedTimestamp (offset kept)
//   - JSON for io.debezium.data.Json, UUID for io.debezium.data.Uuid, Enum
//     for io.debezium.data.Enum
//   - Unavailable for the placeholder Debezium writes for an unchanged
//     TOASTed column ("__debezium_unavailable_value")
//   - Row for a nested struct, []any for an array, map[string]any for a map
//
// # Decoding JSON
//
// JSONDecoder reads records written by Kafka Connect's JSON converter, with
// the {"schema": ..., "payload": ...} envelope (schemas.enable=true) or
// without it, independently for key and value. With a schema, Connect and
// Debezium logical types become the Go values above; without one, numbers
// stay exact as Number and the logical types keep their wire form (a
// Decimal is then its base64 string, a MicroTimestamp its integer).
// MongoDB's before and after, JSON strings holding the document, are parsed
// into Rows, with extended-JSON wrappers such as {"$oid"} and
// {"$numberLong"} unwrapped. A nil, empty or null value, or an envelope
// whose payload is null, is a tombstone: Op is OpDelete, Tombstone is set,
// Key comes from the record key and the source names from the topic.
//
// The envelope's schema repeats in every record. The decoder finds the
// top-level schema and payload spans with a skip scanner, looks the schema
// text up in a bounded cache of compiled schemas, and parses only the
// payload.
//
// # Event IDs
//
// Event.ID is the first 16 bytes of a SHA-256 over a canonical encoding
// (AppendCanonical) of typed values, never of JSON text, so the JSON and
// Avro decoders give the same change the same ID, and redelivery of a
// change always gives the same ID. Each scheme starts with its own domain
// tag, so IDs of different schemes never collide:
//
//   - Position (IDPosition, the default): connector name (source.name),
//     database, schema, table, the key Row, the op, and the connector's
//     position (Event.Position): PostgreSQL lsn, txId, sequence; MySQL
//     file, pos, row, gtid; SQL Server change_lsn, commit_lsn,
//     event_serial_no; MongoDB ts_ms, ord, h, stxnid, lsid, txnNumber,
//     resume_token; Oracle scn, commit_scn, lcr_position; Db2 change_lsn,
//     commit_lsn. Absent position fields count as null. A connector with
//     no known position fields uses OccurredAt instead. An op=m message
//     also hashes its prefix and content.
//   - Content: name, database, schema, table, the key Row and a SHA-256 of
//     the canonical after-state (for a delete, of the before-state, marked
//     as deleted). It is used for snapshot reads (op=r), whose position
//     changes on every re-snapshot, so a re-snapshot of an unchanged row
//     gets the ID it had and is recognised as already applied; and for
//     every op but t and m when the topology asks (IDContent).
//   - Field (IDField): the entity and the value of the named field, looked
//     up in After, then Before, then Key, e.g. an outbox table's "id".
//   - Tombstones carry no position: name, database, schema and table from
//     the topic, and the key. Two tombstones for the same key share an ID,
//     which is harmless since applying a tombstone twice is a no-op.
//
// The canonical encoding is type-stable: every number (int64, float64,
// Decimal, Number) is encoded as its normalized decimal value, so 42,
// 42.0 and Decimal 42.00 agree; string, Enum, JSON and UUID as their text;
// a time.Time as its instant.
//
// # Errors
//
// Every decoding failure is a *DecodeError: permanent, never a panic. It
// names the record part (key or value), the JSON path, and the reason.
package cdc
