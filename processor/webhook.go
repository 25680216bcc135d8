package processor

import (
	"bytes"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/topology"
)

// WebhookMap is the cdc.WebhookMap of a webhook topology's
// source.webhook.map, shared by the ingress (which checks and keys a
// request) and the decoder (which types the raw record), so a body the
// ingress acknowledged always decodes.
func WebhookMap(plan *topology.Plan) cdc.WebhookMap {
	m := plan.Webhook().Map
	return cdc.WebhookMap{
		ID: m.ID, Type: m.Type, Entity: m.Entity, Key: m.Key,
		After: m.After, Before: m.Before, OccurredAt: m.OccurredAt,
		Op: func(t string) (cdc.Op, bool) {
			op, ok := m.MatchOp(t)
			if !ok {
				return 0, false
			}
			return cdc.Op(op[0]), true
		},
	}
}

// decode decodes one source record; a webhook raw record with its headers,
// for maps that read "header:<Name>" fields. owned says msg's key and value
// are a private copy nothing writes to (claimCtx.owned): a decoder that can
// then keeps the event's strings in them instead of copying. With owned, a
// scratch that is not nil is the caller's memory to decode in
// (cdc.ReusingDecoder): the previous event decoded in it is invalidated.
func (p *pipeline) decode(msg *sarama.ConsumerMessage, owned bool, scratch *cdc.Scratch) (*cdc.Event, error) {
	if wd, ok := p.dec.(*cdc.WebhookDecoder); ok {
		return wd.DecodeRecord(msg.Topic, msg.Key, msg.Value, func(name string) string {
			for _, h := range msg.Headers {
				if h != nil && bytes.EqualFold(h.Key, []byte(name)) {
					return string(h.Value)
				}
			}
			return ""
		})
	}
	if od, ok := p.dec.(cdc.OwnedDecoder); ok && owned {
		if rd, ok := od.(cdc.ReusingDecoder); ok && scratch != nil {
			return rd.DecodeOwnedReuse(scratch, msg.Topic, msg.Key, msg.Value)
		}
		return od.DecodeOwned(msg.Topic, msg.Key, msg.Value)
	}
	return p.dec.Decode(msg.Topic, msg.Key, msg.Value)
}
