package dlq

import (
	"testing"

	"github.com/IBM/sarama"
)

// consumedAt is consumed with the offset the reader sees.
func consumedAt(m *sarama.ProducerMessage, offset int64) *sarama.ConsumerMessage {
	c := consumed(m)
	c.Offset = offset
	return c
}

// The link of a replayed record to its DLQ record is kept in the error
// headers of its next DLQ record, so it survives Fit dropping the source
// record's own headers.
func TestRecordKeepsReplayOf(t *testing.T) {
	src := &sarama.ConsumerMessage{Topic: "erp.public.contacts", Partition: 2, Offset: 40, Key: []byte(`{"id":1}`), Value: []byte("x"),
		Headers: []*sarama.RecordHeader{
			{Key: []byte("traceparent"), Value: []byte("00-1")},
			{Key: []byte(HeaderReplayOf), Value: []byte("dlq.t/0@7")},
		}}
	for _, cut := range []bool{false, true} {
		m := Record("dlq.t", src, Failure{Topology: "t", Stage: StageDecode, Message: "bad"})
		if cut {
			Fit(m, 0)
		}
		e, err := Parse(consumedAt(m, 9))
		if err != nil {
			t.Fatal(err)
		}
		if e.ReplayOf != "dlq.t/0@7" {
			t.Errorf("cut %v: ReplayOf %q", cut, e.ReplayOf)
		}
		if cut && len(e.OriginalHeaders) != 0 {
			t.Errorf("Fit kept %d original headers", len(e.OriginalHeaders))
		}
		if e.Link() != "dlq.t/0@9" {
			t.Errorf("Link %q", e.Link())
		}
	}
	// A record that was not replayed has no link.
	src.Headers = src.Headers[:1]
	e, err := Parse(consumedAt(Record("dlq.t", src, Failure{Stage: StageDecode}), 0))
	if err != nil || e.ReplayOf != "" {
		t.Errorf("ReplayOf %q, %v", e.ReplayOf, err)
	}
}
