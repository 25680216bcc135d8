package route

import "github.com/IBM/sarama"

// NewJavaPartitioner is a sarama.PartitionerConstructor for the partitioner
// cdcsync uses on every producer (Config.Producer.Partitioner).
//
//   - A keyed message goes to toPositive(murmur2(key)) % n, like Kafka's
//     Java producer (sarama.NewMurmur2Partitioner does the hashing).
//   - A message whose Key is a NullKey is written with a null key and goes
//     to NullKey.Partition % n.
//   - A message with a nil Key goes to a random partition.
//
// The partitioner reports RequiresConsistency true, and per message for
// keyed and NullKey messages, so sarama never re-partitions them when a
// partition is unavailable.
var _ sarama.PartitionerConstructor = NewJavaPartitioner

// NewJavaPartitioner returns the Java-compatible partitioner for a topic.
// See the variable declaration above for the rules.
func NewJavaPartitioner(topic string) sarama.Partitioner {
	return &javaPartitioner{murmur2: sarama.NewMurmur2Partitioner(topic)}
}

type javaPartitioner struct {
	murmur2 sarama.Partitioner
}

var _ sarama.DynamicConsistencyPartitioner = (*javaPartitioner)(nil)

func (p *javaPartitioner) Partition(msg *sarama.ProducerMessage, numPartitions int32) (int32, error) {
	if k, ok := msg.Key.(NullKey); ok {
		return k.partition(numPartitions), nil
	}
	// A nil Key gets sarama's random choice; any other key is hashed.
	return p.murmur2.Partition(msg, numPartitions)
}

func (p *javaPartitioner) RequiresConsistency() bool { return true }

func (p *javaPartitioner) MessageRequiresConsistency(msg *sarama.ProducerMessage) bool {
	return msg.Key != nil
}

// NullKey is a sarama.Encoder for a null record key that also pins the
// record to a partition when the producer uses NewJavaPartitioner: it goes
// to Partition modulo the topic's partition count. On the wire the key is
// null (Encode returns nil), exactly as with a nil Key.
//
// With any other partitioner a NullKey is hashed as an empty key, so every
// NullKey record lands on one partition.
type NullKey struct {
	Partition int32
}

// Encode returns nil: a null key.
func (NullKey) Encode() ([]byte, error) { return nil, nil }

// Length returns 0.
func (NullKey) Length() int { return 0 }

func (k NullKey) partition(n int32) int32 {
	if n <= 0 {
		return 0
	}
	p := k.Partition % n
	if p < 0 {
		p += n
	}
	return p
}

// keyedPartitioner is stateless for keyed messages, so one instance can
// serve every Partition call.
var keyedPartitioner = sarama.NewMurmur2Partitioner("")

// Partition returns the partition Kafka's Java producer picks for a
// non-nil key among numPartitions: toPositive(murmur2(key)) % numPartitions.
// It returns 0 when numPartitions is not positive. It is for tools and
// tests; producers should use NewJavaPartitioner.
func Partition(key []byte, numPartitions int32) int32 {
	if numPartitions <= 0 {
		return 0
	}
	if key == nil {
		key = []byte{}
	}
	p, err := keyedPartitioner.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}, numPartitions)
	if err != nil { // ByteEncoder never fails
		return 0
	}
	return p
}
