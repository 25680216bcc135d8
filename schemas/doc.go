// Package schemas holds cdcsync's Avro schemas and everything that talks
// to a Confluent-compatible schema registry.
//
//   - event.avsc is the typed change event written under sink.format:
//     avro. Row values are the Value union of event.avsc: null, boolean,
//     long, double, string, bytes, and named records for the cdc value
//     types (Decimal, Date, TimeOfDay, Timestamp, Json, Uuid, Enum,
//     Unavailable, Row, List, Map, and, appended last so the schema stays
//     BACKWARD compatible, LocalTimestamp for a timestamp without time
//     zone and Infinity for PostgreSQL's infinity and -infinity), so a
//     consumer gets exact decimals and typed times, not their wire
//     encodings. docs/sink-format.md lists the branch of every value. The schema is fixed: it does
//     not depend on the source table, so one subject serves every table.
//   - The Confluent wire format (cdc.AppendWireHeader, cdc.SplitWire,
//     defined in package cdc, which the Avro decoder there needs and which
//     cannot import this package): magic byte 0, the 4-byte big-endian
//     schema ID, the Avro body. A tombstone (null value) has no framing.
//   - Client wraps srclient (github.com/riferrei/srclient) with a request
//     timeout and caches. It implements cdc.SchemaSource for the Avro
//     decoder, and registers and checks output schemas. It depends on
//     three small interfaces of srclient's methods (Registry, Registrar,
//     Subjects), so tests can substitute any of them.
//   - Subject naming (Subject): topic "<topic>-value" (default), record
//     "<full record name>", topic-record "<topic>-<full record name>".
//   - Compatibility (CheckCompatibility) under a subject's level, with
//     hamba/avro's schema-resolution rules: registries differ in whether
//     they check it (srfake does not), so cdcsync checks before it
//     registers.
//   - Encoder writes a cdc.Event as Confluent-framed Avro of event.avsc,
//     registering the schema on first use of a subject, and returns the
//     schema ID, version and subject as record headers.
//
// # Errors
//
// A registry that cannot be reached, times out or answers 5xx gives an
// error wrapping cdc.ErrRegistryUnavailable: transient, retry. A subject
// or ID it does not know gives ErrNotFound (wrapping cdc.ErrUnknownSchema
// for IDs). An output schema the subject's level refuses gives an
// *IncompatibleError wrapping ErrIncompatible; an unregistered schema
// with registration disabled, ErrNotRegistered. Both are configuration
// problems: the worker should stop, and `cdcsync schemas check` reports
// them before a deploy.
//
// The ledger and DLQ records are not Avro: the ledger's value is a fixed
// big-endian layout owned by processor/ledger, and a DLQ record carries
// the original key and value bytes unchanged.
package schemas
