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
// # Errors
//
// Every decoding failure is a *DecodeError: permanent, never a panic. It
// names the record part (key or value), the JSON path, and the reason.
package cdc
