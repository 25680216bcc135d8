// Package ledger is cdcsync's dedup ledger: the record of which event IDs a
// topology has already applied, kept in Kafka and held in memory per source
// partition.
//
// # Topic and co-partitioning
//
// Each topology has one compacted ledger topic, "<topology>.ledger" (named
// by topology.Plan.LedgerTopic), with exactly one partition per source partition: ledger
// partition p holds the IDs seen on source partition p, so the worker that
// claims source partition p reads and writes only ledger partition p, and
// ledger partitions move with source partitions on a rebalance. Ensure
// creates the topic at start if it is missing, with
// cleanup.policy=compact,delete and retention.ms set to the dedup window;
// if it exists with another partition count it returns a
// *PartitionMismatchError (ErrPartitionMismatch) and the worker must refuse
// to start: the error message gives the kafka-topics commands to recreate
// the topic. When writing, set the record's partition explicitly to the
// source partition (sarama.NewManualPartitioner); never hash the ID to pick
// one.
//
// # Records
//
// A single-ID record (written before group commit, still read): key, the
// 16 raw bytes of the cdc.ID (EncodeKey); value (EncodeValue), big-endian:
//
//	offset 0  version        1 byte: 1, 2 or 3
//	offset 1  first seen     int64, unix milliseconds
//	offset 9  source offset  int64, the offset of the record on the source partition
//	version 2 (17+16 bytes, read but no longer written):
//	offset 17 content ID     a second ID to remember
//	version 3 (17+33 bytes):
//	offset 17 flags          bits 0-1 the RowState, bit 7 "row only"
//	offset 18 row key        RowKeyOf: source topic + primary key
//	offset 34 row content    the after-state's content ID (zero unless present)
//
// # Batch records (group commit)
//
// cdcsync writes batch records: one record carries the entries of many
// events, all acknowledged (or committed) by one write (batch.go). Key
// (BatchKey, BatchKeySize = 17 bytes): the kind byte 0xB4, a random 64-bit
// writer ID and the writer's 64-bit sequence number, so a batch key never
// repeats and compaction never drops a batch whose IDs are still needed;
// batches leave the log by retention (the dedup window). Value
// (Batch, DecodeBatch):
//
//	offset 0  version        1 byte: 4
//	offset 1  count          uint32, the number of entries
//	then, per entry:         the event's 16-byte key, one length byte L,
//	                         and L bytes of a version 1-3 value as above
//
// Restore folds a batch's entries in order at the batch's place in the
// log, exactly as if each were a single-ID record there, so ledgers that
// mix both formats restore as one log. A batch that does not decode is
// skipped whole (one Invalid) and never half read. Single-ID records
// (versions 1-3 with 16-byte keys) are no longer written but always read.
// A batch value is at most BatchMaxBytes (64 KiB, about 970 entries).
//
// A nil value is a tombstone: "forget this ID". Compaction keeps the newest
// record per ID; retention deletes records older than the window. Decoding
// errors are package-level values (ErrBadKey, ErrBadValue,
// ErrUnknownVersion); a value with a newer version is never half read.
//
// # Row states: the latest applied content of a row
//
// A snapshot row (op=r) has no position of its own: its ID is a content ID,
// the hash of its key and after-state, and so is every event's under
// dedup.key: content. Such an event is a duplicate only when it equals the
// LATEST state already applied for its row, not any earlier one: a row that
// went A -> B and back to A while the connector was stopped arrives as a
// snapshot row A and must be applied. Version-2 ledgers remembered the
// content ID of every state as an ID, and dropped it.
//
// So every change of a keyed row (c, u, d, r; not truncates, messages,
// keyless tables or dedup.key: field) records in version 3 the row key and
// the state it leaves: RowPresent with the after-state's content ID (the
// ID a snapshot row of that state gets), RowDeleted, or RowUnknown when an
// unchanged TOASTed column came as "unavailable" and the full state is not
// known (it then equals nothing). Streamed changes (position IDs) keep their
// ID as well; snapshot rows and content-keyed changes are "row only".
// Index.RowApplied then answers, for a change of row K at source offset o:
// applied when it leaves K exactly in its latest state, or when o is at or
// below the offset of the change that set that state (a redelivery, or an
// older record overtaken: the records of one key are in one partition, in
// order). Without a live state for K (never seen within the window, or a
// version-1/2 ledger) the caller falls back to the ID set, which holds the
// content IDs version-2 records carried: an upgrade keeps its dedup.
// Tombstones skip the ledger, but one older than K's latest applied change
// is a redelivery and is dropped (it would delete a re-inserted row).
//
// Restore folds the partition in log order, so the last record of a row
// wins: the latest applied state, as the ledger writes are ordered like the
// outputs of one key. Row states expire with the window like IDs; an
// expired state is not known. Under exactly-once, Mark, Commit and
// Rollback journal row states too.
//
// Limits: source offsets are the identity of a redelivery, so a source
// topic that is deleted and recreated must get a new ledger too (as for a
// partition-count change), or snapshot rows at offsets below the old ones
// are taken as redeliveries until the window passes. A truncate does not
// reset row states (its keys are in every partition); a row deleted by a
// streamed TRUNCATE and re-inserted with identical content while the
// connector is stopped is dropped by a re-snapshot within the window.
//
// A ledger record is written only together with the outputs of the record it
// names (design §5, §8): under at-least-once after the outputs are acked,
// under exactly-once in the same transaction. Only then may a later record
// with the same ID be dropped as a duplicate.
//
// # Memory
//
// Index is the in-memory set for one source partition: an open-addressing
// table (Robin Hood linear probing, backward-shift deletion, no tombstones)
// of 20-byte slots, each a 128-bit ID and its first-seen time as uint32 unix
// seconds. The table doubles when it would pass 7/8 full, so it is between
// 7/16 and 7/8 full: 23 to 46 bytes per key, measured 41.9 bytes/key at 1M
// keys and 45.7 right after a growth (TestIndexMemory,
// BenchmarkIndexMemory1M). During a growth the old and new arrays coexist
// for a moment (about 69 bytes/key at that peak).
//
// Row states live in a second table of the same kind with 26-byte slots
// (byte arrays, no padding): the first 8 bytes of the row key, a 64-bit
// fingerprint of the state (the first 8 bytes of the content ID, or a
// reserved value for deleted and unknown), the 48-bit source offset that
// set it, and the uint32 time it was set. 30 to 59 bytes per row, measured
// 54.5 at 1M rows and 59.4 right after a growth (TestRowMemory,
// BenchmarkRowMemory1M), within the 64-byte budget per key held. One row
// costs one slot however often it changes; the 128-bit content IDs that
// version 2 added to the ID set per change are no longer held. 64 bits are
// enough: two different states of one row look equal with probability
// 2^-64; two rows of one partition share a slot with probability about
// n²/2^65 (3e-8 at 1M rows), which costs a re-emitted snapshot row, or the
// drop of a redelivered record of the other row whose offset is older.
// Offsets of 2^48 and above are not compared. Expire drops entries older
// than the window and shrinks the table when it is less than 1/8 full.
// Mark, Commit and Rollback journal the Adds, Deletes and SetRows of an exactly-once
// transaction so an aborted one can be undone without a restore.
// An Index belongs to the goroutine that owns the partition: it is not safe
// for concurrent use.
//
// # Restore
//
// When a source partition is assigned, Restore reads its ledger partition
// from the log start offset to the end offset taken at the start (the
// high-water mark; under read_committed the last stable offset) and folds it
// into a new Index: expired entries are skipped, tombstones delete, records
// of aborted transactions are not loaded under read_committed. The worker
// processes no source record of the partition, and does not report ready,
// until Restore returns.
//
// Restore issues its own fetch requests over the sarama.Client's connection
// to the leader instead of using a sarama.Consumer, because transaction
// markers take offsets that are never delivered: "last delivered offset ==
// high-water mark - 1" may never become true. Restore tracks the next fetch
// position itself (it moves past markers and aborted batches) and stops when
// it reaches the end, so an empty partition or one that ends in a marker
// returns at once. Under exactly-once, initialise the partition's
// transactional producer before restoring: that aborts a predecessor's open
// transaction, so the last stable offset equals the high-water mark.
// TuneRestoreConfig sets the sarama fetch options. Measured on the in-process
// kfake broker over TCP with a sarama client, 500k records restore at about
// 4.5M keys/s (BenchmarkRestore500k), and 500k version-3 records (an ID
// and a row state each) at about 1.7M records/s on a loaded 2-core machine
// (BenchmarkRestoreRows500k); the target is 500k keys/s.
//
// # Metrics
//
// The package exports no metrics itself. The runtime reports, from the
// values here: ledger size (Index.Len: IDs and row states; Index.Bytes) and restore time and
// rate (RestoreStats).
package ledger
