package route

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Vectors from Kafka's clients UtilsTest.testMurmur2: the signed int32
// that org.apache.kafka.common.utils.Utils.murmur2 returns.
var javaMurmur2Vectors = []struct {
	key  []byte
	hash int32
}{
	{[]byte("21"), -973932308},
	{[]byte("foobar"), -790332482},
	{[]byte("a-little-bit-long-string"), -985981536},
	{[]byte("a-little-bit-longer-string"), -1486304829},
	{[]byte("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971},
	{[]byte{'a', 'b', 'c'}, 479470107},
}

func TestPartitionMatchesJavaVectors(t *testing.T) {
	for _, v := range javaMurmur2Vectors {
		for _, n := range []int32{1, 2, 3, 7, 8, 12, 100, 1000003} {
			want := (v.hash & 0x7fffffff) % n
			if got := Partition(v.key, n); got != want {
				t.Errorf("Partition(%q, %d) = %d, want %d", v.key, n, got, want)
			}
			msg := &sarama.ProducerMessage{Key: sarama.ByteEncoder(v.key)}
			got, err := NewJavaPartitioner("t").Partition(msg, n)
			if err != nil || got != want {
				t.Errorf("JavaPartitioner(%q, %d) = %d, %v; want %d", v.key, n, got, err, want)
			}
		}
	}
}

func TestPartitionMatchesFranzGo(t *testing.T) {
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	jp := NewJavaPartitioner("t")
	for i := range 2000 {
		key := []byte(fmt.Sprintf(`{"contact_id":%d}`, i))
		if i%7 == 0 {
			key = key[:i%len(key)] // short and empty keys exercise the tail
		}
		for _, n := range []int32{1, 3, 8, 64} {
			want := int32(tp.Partition(&kgo.Record{Key: key}, int(n)))
			got, err := jp.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}, n)
			if err != nil || got != want {
				t.Fatalf("key %q n=%d: sarama %d (%v), franz-go %d", key, n, got, err, want)
			}
			if p := Partition(key, n); p != want {
				t.Fatalf("Partition(%q, %d) = %d, franz-go %d", key, n, p, want)
			}
		}
	}
}

func TestJavaPartitionerNullKeys(t *testing.T) {
	p := NewJavaPartitioner("t")
	dp := p.(sarama.DynamicConsistencyPartitioner)
	if !p.RequiresConsistency() {
		t.Error("RequiresConsistency = false")
	}
	for _, c := range []struct {
		pin, n, want int32
	}{{0, 4, 0}, {3, 4, 3}, {5, 4, 1}, {7, 1, 0}, {-1, 4, 3}} {
		msg := &sarama.ProducerMessage{Key: NullKey{Partition: c.pin}}
		got, err := p.Partition(msg, c.n)
		if err != nil || got != c.want {
			t.Errorf("NullKey{%d} among %d = %d, %v; want %d", c.pin, c.n, got, err, c.want)
		}
		if !dp.MessageRequiresConsistency(msg) {
			t.Error("NullKey message does not require consistency")
		}
	}
	if b, _ := (NullKey{}).Encode(); b != nil {
		t.Errorf("NullKey encodes to %q, want nil", b)
	}
	nilKey := &sarama.ProducerMessage{}
	if dp.MessageRequiresConsistency(nilKey) {
		t.Error("nil-key message requires consistency")
	}
	seen := map[int32]bool{}
	for range 200 {
		got, err := p.Partition(nilKey, 8)
		if err != nil || got < 0 || got >= 8 {
			t.Fatalf("nil key: %d, %v", got, err)
		}
		seen[got] = true
	}
	if len(seen) < 2 {
		t.Errorf("nil keys always went to %v; want a spread", seen)
	}
}

func BenchmarkPartition(b *testing.B) {
	key := []byte(`{"contact_id":42}`)
	p := NewJavaPartitioner("t")
	msg := &sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = p.Partition(msg, 12)
	}
}
