package dlq

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func fitHeader(m *sarama.ProducerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// Regression: the DLQ copy of a record over the producer's limit failed
// too, so the partition stalled with nothing in the DLQ. Fit cuts the
// value, then the key, then the source headers, then the message.
func TestFit(t *testing.T) {
	const limit = 10_000
	f := Failure{Topology: "t", Stage: StageProduce, Message: "too large", Attempts: 1, FirstFailure: time.Unix(1, 0)}
	src := func(key, value int, hdr int) *sarama.ConsumerMessage {
		m := &sarama.ConsumerMessage{Topic: "src", Partition: 2, Offset: 7,
			Key: bytes.Repeat([]byte("k"), key), Value: bytes.Repeat([]byte("v"), value)}
		if hdr > 0 {
			m.Headers = []*sarama.RecordHeader{{Key: []byte("h"), Value: bytes.Repeat([]byte("h"), hdr)}}
		}
		return m
	}
	for _, tc := range []struct {
		name           string
		key, value     int
		hdr            int
		cut            string
		keepKey, keepV bool
	}{
		{"fits already", 10, 100, 0, "", true, true},
		{"value cut", 10, 20_000, 0, "value", true, true},
		{"value and key cut", 20_000, 20_000, 0, "value,key", false, false},
		{"source headers dropped", 10, 10, 20_000, "value,key,headers", false, false},
	} {
		m := Record("dlq.t", src(tc.key, tc.value, tc.hdr), f)
		if !Fit(m, limit) {
			t.Errorf("%s: does not fit", tc.name)
		}
		if n := m.ByteSize(2); n > limit {
			t.Errorf("%s: %d bytes after Fit, limit %d", tc.name, n, limit)
		}
		if got := fitHeader(m, HeaderTruncated); got != tc.cut {
			t.Errorf("%s: %s = %q, want %q", tc.name, HeaderTruncated, got, tc.cut)
		}
		if tc.cut != "" && (fitHeader(m, HeaderOriginalKeyBytes) == "" || fitHeader(m, HeaderOriginalValueBytes) == "") {
			t.Errorf("%s: original sizes missing", tc.name)
		}
		if fitHeader(m, HeaderTopic) != "src" || fitHeader(m, HeaderOffset) != "7" || fitHeader(m, HeaderStage) != StageProduce {
			t.Errorf("%s: error headers lost", tc.name)
		}
		k, _ := m.Key.Encode()
		if tc.keepKey && len(k) != tc.key {
			t.Errorf("%s: key cut to %d bytes", tc.name, len(k))
		}
	}
	// Cut to its error headers (the broker refused the first copy).
	m := Record("dlq.t", src(5000, 5000, 100), Failure{Topology: "t", Stage: StageDecode, Message: strings.Repeat("m", 5000)})
	Fit(m, 0)
	k, _ := m.Key.Encode()
	v, _ := m.Value.Encode()
	if len(k) != 0 || len(v) != 0 || fitHeader(m, HeaderTruncated) != "value,key,headers,message" || len(fitHeader(m, HeaderExceptionMessage)) != keepMessage {
		t.Errorf("Fit(0): key %d value %d cut %q message %d bytes", len(k), len(v), fitHeader(m, HeaderTruncated), len(fitHeader(m, HeaderExceptionMessage)))
	}
}
