package dlq

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/route"
)

// Kafka Connect's DLQ context headers (DeadLetterQueueReporter).
const (
	HeaderTopic              = "__connect.errors.topic"
	HeaderPartition          = "__connect.errors.partition"
	HeaderOffset             = "__connect.errors.offset"
	HeaderConnectorName      = "__connect.errors.connector.name"
	HeaderTaskID             = "__connect.errors.task.id"
	HeaderStage              = "__connect.errors.stage"
	HeaderClassName          = "__connect.errors.class.name"
	HeaderExceptionClassName = "__connect.errors.exception.class.name"
	HeaderExceptionMessage   = "__connect.errors.exception.message"
	HeaderExceptionStack     = "__connect.errors.exception.stacktrace"
)

// cdcsync's own error headers.
const (
	HeaderAttempts     = "cdcsync.errors.attempts"
	HeaderFirstFailure = "cdcsync.errors.first.failure" // RFC 3339 with nanoseconds
	HeaderTopology     = "cdcsync.topology"
	HeaderEventID      = "cdcsync.event.id"
	HeaderSchemaID     = "cdcsync.schema.id" // only when the record had a registry schema

	// HeaderReplayOf links a replayed record to the DLQ record it was
	// replayed from: "DLQTOPIC/PARTITION@OFFSET". Replay sets it on the
	// record it writes to the source topic; when that record fails again,
	// Record copies it from the source record's headers into the new DLQ
	// record's error headers, where it survives Fit dropping the original
	// headers, and Parse reads it into Entry.ReplayOf.
	HeaderReplayOf = "cdcsync.replay.of"

	// HeaderTruncated is set when Fit cut the record to fit the producer's
	// limit: what was cut, in order, from "value", "key", "headers" (the
	// source record's own headers, dropped) and "message" (the exception
	// message, cut). The original sizes follow in the next two headers.
	HeaderTruncated          = "cdcsync.errors.truncated"
	HeaderOriginalKeyBytes   = "cdcsync.errors.original.key.bytes"   // only with HeaderTruncated
	HeaderOriginalValueBytes = "cdcsync.errors.original.value.bytes" // only with HeaderTruncated
)

// The pipeline stages a Failure can name.
const (
	StageDecode    = "decode"
	StageAuthority = "authority"
	StageRoute     = "route"
	StageProduce   = "produce"
)

// Failure describes why a record went to the DLQ.
type Failure struct {
	Topology  string // written to cdcsync.topology and __connect.errors.connector.name
	Topic     string // the source record's topic, partition and offset
	Partition int32
	Offset    int64
	Stage     string // decode, envelope, dedup, authority, route or produce
	// Class is the component that failed, e.g. the Go package path
	// "github.com/cdcsync/cdcsync/processor/cdc" (Connect: the executing class).
	Class string
	// ExceptionClass is the kind of error: a sentinel's name such as
	// "cdc.ErrMalformed", or a Go type such as "*route.KeyError".
	ExceptionClass string
	Message        string // the error text
	Stack          string // optional stack or error chain, multi-line
	Attempts       int    // how many times processing was tried
	FirstFailure   time.Time
	EventID        string // the event ID when decoding got that far
	SchemaID       int    // registry schema ID, 0 when none
	TaskID         string // the worker or claim that failed
}

// Record builds the DLQ message for src. The caller sets Metadata (the
// source position to acknowledge) and sends it with a producer that uses
// route.NewJavaPartitioner. When f.Topic is empty, the source topic,
// partition and offset are taken from src.
//
// src.Headers are copied by reference: the header structs are shared, not
// cloned, which is safe because nobody mutates consumed headers.
func Record(dlqTopic string, src *sarama.ConsumerMessage, f Failure) *sarama.ProducerMessage {
	if f.Topic == "" {
		f.Topic, f.Partition, f.Offset = src.Topic, src.Partition, src.Offset
	}
	msg := &sarama.ProducerMessage{
		Topic:     dlqTopic,
		Timestamp: src.Timestamp,
		Headers:   make([]sarama.RecordHeader, 0, len(src.Headers)+15),
	}
	if src.Key != nil {
		msg.Key = sarama.ByteEncoder(src.Key)
	} else {
		msg.Key = route.NullKey{Partition: src.Partition}
	}
	if src.Value != nil {
		msg.Value = sarama.ByteEncoder(src.Value)
	}
	for _, h := range src.Headers {
		if h != nil {
			msg.Headers = append(msg.Headers, *h)
		}
	}
	add := func(k, v string) {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	add(HeaderTopic, f.Topic)
	add(HeaderPartition, strconv.FormatInt(int64(f.Partition), 10))
	add(HeaderOffset, strconv.FormatInt(f.Offset, 10))
	add(HeaderConnectorName, f.Topology)
	add(HeaderTaskID, f.TaskID)
	add(HeaderStage, f.Stage)
	add(HeaderClassName, f.Class)
	add(HeaderExceptionClassName, f.ExceptionClass)
	add(HeaderExceptionMessage, f.Message)
	if f.Stack != "" {
		add(HeaderExceptionStack, f.Stack)
	}
	add(HeaderAttempts, strconv.Itoa(f.Attempts))
	if !f.FirstFailure.IsZero() {
		add(HeaderFirstFailure, f.FirstFailure.Format(time.RFC3339Nano))
	}
	add(HeaderTopology, f.Topology)
	if f.EventID != "" {
		add(HeaderEventID, f.EventID)
	}
	if f.SchemaID != 0 {
		add(HeaderSchemaID, strconv.Itoa(f.SchemaID))
	}
	if of := replayOf(src.Headers); of != "" {
		add(HeaderReplayOf, of)
	}
	return msg
}

// replayOf is the value of the last cdcsync.replay.of header of hs, or "".
func replayOf(hs []*sarama.RecordHeader) string {
	for i := len(hs) - 1; i >= 0; i-- {
		if h := hs[i]; h != nil && string(h.Key) == HeaderReplayOf {
			return string(h.Value)
		}
	}
	return ""
}

// recordVersion is the record format sarama sizes records for (record
// batches, Kafka 0.11 and newer).
const recordVersion = 2

// keepMessage is what Fit keeps of an exception message it has to cut.
const keepMessage = 1024

// Fit makes msg, a DLQ record built by Record, at most limit bytes as the
// producer measures it (sarama's ProducerMessage.ByteSize, the check
// behind Producer.MaxMessageBytes), so a DLQ write never fails because the
// failed record was large. It cuts, in this order and only as far as
// needed: the value (its first bytes are kept), then the key, then it
// drops the source record's own headers, then it cuts the exception
// message to its first keepMessage bytes. What it cut is listed in
// HeaderTruncated, with the original key and value sizes. The cut record
// keeps every error header, so it still says where the original is: its
// source topic, partition and offset.
//
// Fit reports whether msg now fits; with a limit too small for the error
// headers alone it cuts all it can and returns false. A record that fits
// already is left untouched. A cut key changes the DLQ partition the
// record lands in (murmur2 of the cut key).
func Fit(msg *sarama.ProducerMessage, limit int) bool {
	if msg.ByteSize(recordVersion) <= limit {
		return true
	}
	keyLen, valueLen := encLen(msg.Key), encLen(msg.Value)
	// Room for the headers that say what was cut, at their longest.
	reserve := 0
	for _, h := range [][2]string{
		{HeaderTruncated, "value,key,headers,message"},
		{HeaderOriginalKeyBytes, "99999999999"},
		{HeaderOriginalValueBytes, "99999999999"},
	} {
		reserve += len(h[0]) + len(h[1]) + 2*binary.MaxVarintLen32
	}
	var cut []string
	over := func() int { return msg.ByteSize(recordVersion) + reserve - limit }
	if n := over(); n > 0 && valueLen > 0 {
		v, _ := msg.Value.Encode()
		msg.Value = sarama.ByteEncoder(v[:max(0, len(v)-n)])
		cut = append(cut, "value")
	}
	if n := over(); n > 0 && keyLen > 0 {
		if k, ok := msg.Key.(sarama.ByteEncoder); ok {
			msg.Key = sarama.ByteEncoder(k[:max(0, len(k)-n)])
			cut = append(cut, "key")
		}
	}
	if n := over(); n > 0 {
		for i, h := range msg.Headers {
			if string(h.Key) == HeaderTopic {
				if i > 0 {
					msg.Headers = msg.Headers[i:]
					cut = append(cut, "headers")
				}
				break
			}
		}
	}
	if n := over(); n > 0 {
		for i, h := range msg.Headers {
			if string(h.Key) == HeaderExceptionMessage && len(h.Value) > keepMessage {
				msg.Headers[i].Value = h.Value[:keepMessage:keepMessage]
				cut = append(cut, "message")
			}
		}
	}
	if len(cut) > 0 {
		msg.Headers = append(msg.Headers,
			sarama.RecordHeader{Key: []byte(HeaderTruncated), Value: []byte(strings.Join(cut, ","))},
			sarama.RecordHeader{Key: []byte(HeaderOriginalKeyBytes), Value: []byte(strconv.Itoa(keyLen))},
			sarama.RecordHeader{Key: []byte(HeaderOriginalValueBytes), Value: []byte(strconv.Itoa(valueLen))})
	}
	return msg.ByteSize(recordVersion) <= limit
}

// encLen is the length of an encoder's bytes, 0 for none.
func encLen(e sarama.Encoder) int {
	if e == nil {
		return 0
	}
	return max(0, e.Length())
}

// Entry is one DLQ record read back.
type Entry struct {
	Failure
	Key, Value []byte // the original key and value; nil when null
	// OriginalHeaders are the source record's headers, in order.
	OriginalHeaders []*sarama.RecordHeader
	// Headers are all the DLQ record's headers: OriginalHeaders followed by
	// the error headers.
	Headers   []*sarama.RecordHeader
	Timestamp time.Time // the original record's timestamp

	DLQTopic     string
	DLQPartition int32
	DLQOffset    int64

	// ReplayOf is the DLQ record this record's failed source record was
	// replayed from, "DLQTOPIC/PARTITION@OFFSET" (HeaderReplayOf); empty
	// when it was not a replay.
	ReplayOf string
}

// Time is when the record failed: FirstFailure, or the record timestamp
// when that is unknown.
func (e *Entry) Time() time.Time {
	if !e.FirstFailure.IsZero() {
		return e.FirstFailure
	}
	return e.Timestamp
}

// Parse reads a DLQ record back. It returns a *ParseError wrapping
// ErrNotDLQRecord when rec has no __connect.errors.topic header, or
// ErrBadHeader when a numeric or time header does not parse. Absent
// optional headers leave their fields zero. The Failure's Topology is
// cdcsync.topology, falling back to Connect's connector name.
func Parse(rec *sarama.ConsumerMessage) (Entry, error) {
	e := Entry{
		Key: rec.Key, Value: rec.Value, Headers: rec.Headers, Timestamp: rec.Timestamp,
		DLQTopic: rec.Topic, DLQPartition: rec.Partition, DLQOffset: rec.Offset,
	}
	fail := func(err error, h, v string) (Entry, error) {
		return Entry{}, &ParseError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Header: h, Value: v, Err: err}
	}
	start := -1
	for i := len(rec.Headers) - 1; i >= 0; i-- {
		if h := rec.Headers[i]; h != nil && string(h.Key) == HeaderTopic {
			start = i
			break
		}
	}
	if start < 0 {
		return fail(ErrNotDLQRecord, "", "")
	}
	e.OriginalHeaders = rec.Headers[:start:start]
	var connector string
	for _, h := range rec.Headers[start:] {
		if h == nil {
			continue
		}
		k, v := string(h.Key), string(h.Value)
		switch k {
		case HeaderTopic:
			e.Topic = v
		case HeaderPartition:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return fail(ErrBadHeader, k, v)
			}
			e.Partition = int32(n)
		case HeaderOffset:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fail(ErrBadHeader, k, v)
			}
			e.Offset = n
		case HeaderConnectorName:
			connector = v
		case HeaderTaskID:
			e.TaskID = v
		case HeaderStage:
			e.Stage = v
		case HeaderClassName:
			e.Class = v
		case HeaderExceptionClassName:
			e.ExceptionClass = v
		case HeaderExceptionMessage:
			e.Message = v
		case HeaderExceptionStack:
			e.Stack = v
		case HeaderAttempts:
			n, err := strconv.Atoi(v)
			if err != nil {
				return fail(ErrBadHeader, k, v)
			}
			e.Attempts = n
		case HeaderFirstFailure:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fail(ErrBadHeader, k, v)
			}
			e.FirstFailure = t
		case HeaderTopology:
			e.Topology = v
		case HeaderEventID:
			e.EventID = v
		case HeaderSchemaID:
			n, err := strconv.Atoi(v)
			if err != nil {
				return fail(ErrBadHeader, k, v)
			}
			e.SchemaID = n
		case HeaderReplayOf:
			e.ReplayOf = v
		}
	}
	if e.Topology == "" {
		e.Topology = connector
	}
	return e, nil
}
