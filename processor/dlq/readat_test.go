package dlq

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestReadAt(t *testing.T) {
	c := newCluster(t)
	srcs := produceSources(t, c, []source{
		{key: []byte(`{"contact_id":42}`), value: []byte(`{"payload":`), partition: 1,
			headers: []sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte("00-abc-def-01")}}},
		{key: []byte(`{"id":7}`), value: []byte{0, 7, 0xff}, partition: 0},
	})
	cfg := testConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cl := newClient(t, c, cfg)
	prod := newProducer(t, cl)
	var offs []int64
	for i, src := range srcs {
		msg := Record(dlqTopic, src, failures[i])
		msg.Partition = 2
		_, off, err := prod.SendMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	// A record that is not a dead letter, after them.
	_, stray, err := prod.SendMessage(&sarama.ProducerMessage{Topic: dlqTopic, Partition: 2, Value: sarama.StringEncoder("stray")})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, src := range srcs {
		e, err := ReadAt(ctx, cl, dlqTopic, 2, offs[i])
		if err != nil {
			t.Fatalf("ReadAt 2/%d: %v", offs[i], err)
		}
		want := failures[i]
		want.Topic, want.Partition, want.Offset = src.Topic, src.Partition, src.Offset
		if !reflect.DeepEqual(e.Failure, want) || string(e.Key) != string(src.Key) || string(e.Value) != string(src.Value) ||
			e.DLQPartition != 2 || e.DLQOffset != offs[i] || len(e.OriginalHeaders) != len(src.Headers) {
			t.Errorf("ReadAt 2/%d = %+v, want the dead letter of %s/%d@%d", offs[i], e, src.Topic, src.Partition, src.Offset)
		}
	}
	var pe *ParseError
	if _, err := ReadAt(ctx, cl, dlqTopic, 2, stray); !errors.As(err, &pe) || !errors.Is(err, ErrNotDLQRecord) {
		t.Errorf("ReadAt of a record that is not a dead letter: %v, want a *ParseError wrapping ErrNotDLQRecord", err)
	}
	for _, pos := range []struct {
		p   int32
		off int64
	}{{2, stray + 1}, {2, 1 << 40}, {0, 0}} { // past the end; far past it; an empty partition
		if _, err := ReadAt(ctx, cl, dlqTopic, pos.p, pos.off); !errors.Is(err, ErrNoRecord) {
			t.Errorf("ReadAt %d/%d: %v, want ErrNoRecord", pos.p, pos.off, err)
		}
	}
	if _, err := ReadAt(ctx, cl, dlqTopic, 9, 0); err == nil || errors.Is(err, ErrNoRecord) {
		t.Errorf("ReadAt of a partition the topic does not have: %v, want a broker error", err)
	}
}
