// Package dlq writes dead-letter records and reads them back for
// inspection and replay (design section 7).
//
// # Records
//
// A permanent failure (undecodable bytes, unknown schema, missing key
// field, authority violation) sends the source record to the topology's
// DLQ topic instead of the sink. Record builds that message:
//
//   - the original key, value and timestamp, unchanged;
//   - the original headers, all of them, unchanged and first;
//   - then the error headers, appended. They are a superset of Kafka
//     Connect's DeadLetterQueueReporter context headers (__connect.errors.*),
//     so tools that read Connect DLQs read ours, plus cdcsync's own
//     (cdcsync.*). Every value is a UTF-8 string, as in Connect: numbers in
//     decimal, times in RFC 3339 with nanoseconds.
//
// The DLQ record is keyed by the original key and the producer must use
// route.NewJavaPartitioner, so one key's failures stay in order on one DLQ
// partition. A record with a null key keeps a null key and goes to the
// source partition number modulo the DLQ's partition count (route.NullKey),
// so failures of keyless records keep their source order too.
//
// Parse reads a DLQ record back. The error headers start at the last
// __connect.errors.topic header; everything before it is the original
// headers, so a source record that itself carried Connect error headers
// (for example one read from a Connect DLQ) round-trips unchanged.
//
// # Inspection and replay
//
// Read scans a DLQ topic from the oldest offset of every partition to the
// high-water mark taken when it starts, applying a Filter, and returns. A
// record that does not parse is skipped, never failing the others, and
// reported in a Skipped error returned with the good entries.
// Summarize, WriteSummary, WriteList and WriteShow format what it found for
// the `cdcsync dlq` commands.
//
// Replay produces an entry's original key, value, headers and timestamp
// back to its original topic and partition, where the topology consumes it
// again. Replay is idempotent because of the dedup ledger: a record that
// failed never reached the ledger, so its first replay is processed, and
// once that succeeds its event ID is in the ledger and any further replay
// of the same record is dropped as a duplicate. (A record that fails
// decoding has no event ID and simply fails again.)
//
// CheckTargets refuses, before anything is written, a replay whose
// targets include a dead-letter or ledger topic. ReplayAll replays entries
// in order, stops at the first failure, and reports what it wrote (count,
// last offset per partition) whether or not it fails.
package dlq
