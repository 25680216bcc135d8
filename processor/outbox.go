package processor

import (
	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/topology"
)

// The stages of a source.format debezium-outbox topology (docs/outbox.md):
// decode with the record's headers (an "id" header marks a record the
// EventRouter SMT already transformed), skip what is not an event (the
// updates, deletes and tombstones that clean the outbox table), drop an
// event ID the ledger has (the outbox id: a redelivery, or a business
// retry that reused the id), and route to the sink topic template with
// {aggregatetype}, keyed by the aggregateid. There is no authority stage:
// an outbox event is the application's own, not a row of a system of
// record (topology.validator.outbox refuses authority.*).

// Header keys of sink.format payload records, as Debezium's EventRouter
// and its consumers name them.
var (
	hdrOutboxID            = []byte("id")
	hdrOutboxType          = []byte("type")
	hdrOutboxAggregateType = []byte("aggregatetype")
)

// outboxStages is stages for an outbox topology.
func (c *claimCtx) outboxStages(msg *sarama.ConsumerMessage) decision {
	p := c.p
	var hs []cdc.Header
	if len(msg.Headers) > 0 {
		hs = make([]cdc.Header, 0, len(msg.Headers))
		for _, h := range msg.Headers {
			if h != nil {
				hs = append(hs, cdc.Header{Key: h.Key, Value: h.Value})
			}
		}
	}
	ev, err := p.outbox.DecodeRecord(msg.Topic, msg.Key, msg.Value, hs)
	if err != nil {
		if classify(err) != Permanent {
			return retry(err)
		}
		return toDLQ(dlq.StageDecode, err, nil)
	}
	if ev.Outbox.Ignored != "" {
		return skipped(skipOutboxIgnored, ev)
	}
	row := rowChange{} // the plain ID set: an outbox id is applied once
	c.ps.mu.Lock()
	seen := c.duplicate(ev, &row, msg.Offset)
	c.ps.mu.Unlock()
	if seen {
		return skipped(skipDuplicate, ev)
	}
	dec := c.outboxRoute(msg, ev)
	if dec.outcome == outEmit {
		dec.ledger, dec.row = true, row
	}
	return dec
}

// outboxRoute builds the sink record of an outbox event: topic from the
// template with {aggregatetype}, key the aggregateid text, value the
// payload (sink.format payload) or the cdcsync event (json, avro).
func (c *claimCtx) outboxRoute(msg *sarama.ConsumerMessage, ev *cdc.Event) decision {
	p := c.p
	ob := ev.Outbox
	topic := p.plan.SinkTopic("", "", "", ob.AggregateType)
	if _, err := c.sinks.usable(topic); err != nil {
		return c.sinkTopicFailed(err, ev)
	}
	key := sarama.ByteEncoder(ob.AggregateID)
	blk := &sinkBlock{} // the sink record, its outputs slice and headers (stages.go)
	var headers []sarama.RecordHeader
	var value sarama.Encoder
	switch p.plan.SinkFormat() {
	case topology.SinkPayload:
		headers = make([]sarama.RecordHeader, 0, 3+len(ob.Headers)+4)
		headers = append(headers,
			sarama.RecordHeader{Key: hdrOutboxID, Value: []byte(ob.ID)},
			sarama.RecordHeader{Key: hdrOutboxType, Value: []byte(ob.Type)},
			sarama.RecordHeader{Key: hdrOutboxAggregateType, Value: []byte(ob.AggregateType)})
		headers = append(headers, c.sinkHeaders(blk, ev)...)
		if ob.Payload != nil {
			value = sarama.ByteEncoder(ob.Payload)
		}
	default:
		headers = c.sinkHeaders(blk, ev)
		if p.enc != nil {
			v, hs, err := p.enc.Encode(topic, ev, ev.Changed)
			if err != nil {
				if classify(err) != Permanent {
					return retry(err)
				}
				return toDLQ(stageEncode, err, ev)
			}
			value = sarama.ByteEncoder(v)
			for _, h := range hs {
				headers = append(headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
			}
		} else {
			value = sarama.ByteEncoder(appendSinkValue(make([]byte, 0, 256+len(ob.Payload)), ev, ev.Changed))
		}
	}
	// The headers the application wrote in the outbox row (traceparent,
	// say), then the source headers sink.headers.propagate names (the ones
	// the EventRouter placed, for a transformed record).
	for _, h := range ob.Headers {
		headers = append(headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	headers = propagateHeaders(headers, msg.Headers, p.plan)
	blk.msg = sarama.ProducerMessage{Topic: topic, Key: key, Value: value, Headers: headers}
	if err := checkSize(&blk.msg); err != nil {
		return toDLQ(dlq.StageProduce, err, ev)
	}
	blk.outs[0] = &blk.msg
	return decision{outcome: outEmit, ev: ev, outs: blk.outs[:]}
}
