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
//     (any int32 day count, proleptic Gregorian calendar)
//   - TimeOfDay for io.debezium.time.Time, MicroTime, NanoTime and Connect Time
//   - LocalDateTime, a date-time without a zone, for Timestamp,
//     MicroTimestamp, NanoTimestamp and Connect Timestamp (PostgreSQL
//     timestamp, MySQL DATETIME)
//   - time.Time for ZonedTimestamp (offset kept, ISO 8601 expanded years
//     read: "+12000-…", "-0043-…") and Avro's own timestamp-* (UTC)
//   - Infinity for PostgreSQL's infinity and -infinity of a date or a
//     timestamp: the ZonedTimestamp strings, and the fixed numbers
//     Debezium writes for the others (see intLogical)
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
// {"$numberLong"} unwrapped. A nil or empty value is a tombstone: Op is
// OpDelete, Tombstone is set, Key comes from the record key and the
// source names from the topic. The JSON text null (bare, or as an
// envelope's payload) is a value and not a change event: a *DecodeError.
//
// # Topic names
//
// ParseTopic is the one reader of Debezium topic names; each connector
// kind has its shape: PostgreSQL, Oracle and Db2 prefix.schema.table,
// MySQL and MariaDB prefix.database.table, MongoDB
// prefix.database.collection, SQL Server prefix.database.schema.table
// (Debezium 2+; Debezium 1 wrote prefix.schema.table). A tombstone has no
// source block, so its kind is Options.Connector when the caller declares
// it, else the kind a decoder last saw in a record of the same topic
// (source.connector; a delete precedes its tombstone), else, for a
// tombstone that is the first record of its topic since the decoder
// started, PostgreSQL's shape. A PostgreSQL topic does not name the
// database, so a PostgreSQL tombstone has none.
//
// A key given twice in an object keeps its first position and its last
// value, as in most JSON parsers (fastjson's Get returns the first): in
// rows, nested structs, MongoDB documents, the envelope and the source
// block. So no Row ever repeats a name, and no output repeats a key.
//
// Each op must carry the row states it needs: c and r an after-state and
// no before; u an after-state (the before-state is optional); d no
// after-state (the before-state is optional: MongoDB without pre-images
// sends none). Anything else is a *DecodeError.
//
// A change event without the envelope (the common case) is read in one
// pass that converts its rows while it scans them (fastpath.go); any
// record that pass does not take, including every malformed one, takes
// the ordinary path, so events, errors and IDs are the same either way.
//
// The envelope's schema repeats in every record. The decoder finds the
// top-level schema and payload spans with a skip scanner, looks the schema
// text up in a cache of compiled schemas, and parses only the payload.
// The cache is bounded by entries (512) and by bytes (32 MiB per decoder:
// the schema text plus an estimate of its compiled form).
//
// # Text forms
//
// AppendJSONValue is the one writer of values as JSON, used by
// Event.MarshalJSON (cdcsync decode), the JSON sink, the sink key
// (AppendJSONKey, which refuses instead of writing null) and every
// MarshalJSON here; format.go and docs/sink-format.md list the forms.
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
//   - Tombstones carry no position: the topic's name parts in order
//     (ParseTopic's prefix, database, schema and table, the empty ones
//     left out, so the ID does not depend on which shape the topic was
//     read in), and the key. Two tombstones for the same key share an ID,
//     which is harmless since applying a tombstone twice is a no-op.
//     (tombstone/v1 hashed the parts by role; a tombstone redelivered
//     across the upgrade gets a new ID and is written once more, a no-op
//     for a compacted sink.)
//
// The canonical encoding is type-stable: every number (int64, float64,
// Decimal, Number) is encoded as its normalized decimal value, so 42,
// 42.0 and Decimal 42.00 agree; string, Enum, JSON and UUID as their text;
// a time.Time as its instant.
//
// # Errors
//
// Every decoding failure is a *DecodeError: permanent, never a panic. It
// names the record part (key or value), the JSON path, and the reason,
// which says what is wrong first (a byte-order mark, nesting past the
// parser's 300 levels, the unexpected character and its byte offset).
package cdc
