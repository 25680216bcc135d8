// Package route computes where a change event goes in the sink: its record
// key and, through the producer's partitioner, its partition.
//
// # Partitioning
//
// cdcsync partitions every output (sink, DLQ, ledger) the way Kafka's Java
// producer does, so a key lands on the same partition as it would from
// Kafka Connect, Kafka Streams or any Java client:
//
//	partition = toPositive(murmur2(keyBytes)) % numPartitions
//
// where murmur2 is org.apache.kafka.common.utils.Utils.murmur2 (seed
// 0x9747b28c) and toPositive masks the sign bit. sarama v1.61.1 ships this
// as sarama.NewMurmur2Partitioner; this package does not re-implement the
// hash, it wraps that partitioner (NewJavaPartitioner) and adds one thing:
// a NullKey that writes a null key yet pins the record to a chosen
// partition (the DLQ uses it so a keyless record keeps the source's
// partition number). The tests check the hash against Kafka's UtilsTest
// vectors and against franz-go's kgo.StickyKeyPartitioner.
//
// # Keys
//
// Key builds the sink record key: a JSON object of the configured key
// fields, in the configured order, e.g. {"contact_id":42}. Each value is
// taken from the event's After row, else Before, else Key, and is written
// with the text the JSON sink gives it (cdc.AppendJSONValue, listed in
// docs/sink-format.md): cdc.Number keeps its text, cdc.Decimal is a
// plain-notation number, NaN is "NaN", strings are not HTML-escaped. The
// same change therefore always gets the same key bytes and the same
// partition, and a key field reads the same in the key and in the value.
//
// # Errors
//
// A key field present in none of the rows is ErrMissingKeyField, wrapped
// in a *KeyError naming the field; a value no JSON can hold (a func, a
// channel: never a decoded value) is ErrUnencodableKey. Both are
// permanent: the record goes to the DLQ and the partition keeps flowing.
package route
