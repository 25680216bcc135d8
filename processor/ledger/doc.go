// Package ledger is cdcsync's dedup ledger: the record of which event IDs a
// topology has already applied, kept in Kafka and held in memory per source
// partition.
//
// # Topic and co-partitioning
//
// Each topology has one compacted ledger topic, "<topology>.ledger" (see
// TopicName), with exactly one partition per source partition: ledger
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
// Key: the 16 raw bytes of the cdc.ID (EncodeKey). Value (EncodeValue), 17
// bytes, big-endian:
//
//	offset 0  version        1 byte, currently 1
//	offset 1  first seen     int64, unix milliseconds
//	offset 9  source offset  int64, the offset of the record on the source partition
//
// A nil value is a tombstone: "forget this ID". Compaction keeps the newest
// record per ID; retention deletes records older than the window. Decoding
// errors are package-level values (ErrBadKey, ErrBadValue,
// ErrUnknownVersion); a value with a newer version is never half read.
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
// for a moment (about 69 bytes/key at that peak). Expire drops entries older
// than the window and shrinks the table when it is less than 1/8 full.
// Mark, Commit and Rollback journal the Adds and Deletes of an exactly-once
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
// 4.5M keys/s (BenchmarkRestore500k); the target is 500k keys/s.
//
// # Metrics
//
// The package exports no metrics itself. The runtime reports, from the
// values here: ledger size (Index.Len, Index.Bytes) and restore time and
// rate (RestoreStats).
package ledger
