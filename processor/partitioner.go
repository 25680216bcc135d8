package processor

import (
	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/route"
)

// partitionerFor returns the producers' partitioner: the ledger topic and
// records without a key use the partition the message names (ledger
// partition = source partition); keyed records use the Java-compatible
// murmur2 partitioner, so keys land where Java clients put them.
func partitionerFor(ledgerTopic string) sarama.PartitionerConstructor {
	return func(topic string) sarama.Partitioner {
		if topic == ledgerTopic {
			return sarama.NewManualPartitioner(topic)
		}
		return &keyedOrManual{java: route.NewJavaPartitioner(topic)}
	}
}

type keyedOrManual struct{ java sarama.Partitioner }

func (k *keyedOrManual) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if m.Key == nil {
		if m.Partition >= 0 && m.Partition < n {
			return m.Partition, nil
		}
		return 0, nil
	}
	return k.java.Partition(m, n)
}

func (k *keyedOrManual) RequiresConsistency() bool { return true }
