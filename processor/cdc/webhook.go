package cdc

import (
	"crypto/sha256"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// idTagWebhook keeps the delivery-ID scheme apart from the others.
const idTagWebhook = "cdcsync/id/webhook/v1"

// MaxWebhookDepth bounds the nesting of a webhook body. Deeper bodies are
// refused before any recursive parse, so a hostile 100k-deep document
// costs one linear scan.
const MaxWebhookDepth = 64

// WebhookMap says where a webhook delivery's parts are in its JSON body,
// as gjson paths (github.com/tidwall/gjson), and how its event type maps
// to an op. ID, Type and Entity may instead name a request header as
// "header:<Name>" (Standard Webhooks' webhook-id, GitHub's
// X-GitHub-Delivery and X-GitHub-Event). The ingress uses it to check and key a request before it is
// acknowledged, the WebhookDecoder to turn the raw record into an Event;
// both see the same body, so a body the ingress accepted decodes.
type WebhookMap struct {
	ID         string   // delivery ID, required
	Type       string   // event type, required
	Entity     string   // entity name, required
	Key        []string // key fields; field names are each path's last element
	After      string   // entity state, required
	Before     string   // previous values of the changed fields; optional
	OccurredAt string   // unix seconds or RFC 3339; optional
	// Op maps an event type to an op (c, u or d); false when none matches.
	Op func(eventType string) (Op, bool)
}

// HeaderPrefix marks a WebhookMap field read from a request header.
const HeaderPrefix = "header:"

// Delivery is what WebhookMap.Extract finds in a body.
type Delivery struct {
	ID     string
	Type   string
	Op     Op
	Entity string
	Key    Row
	// RecordKey keys the raw record: the canonical bytes of Key, or the
	// delivery ID when the map names no key fields.
	RecordKey []byte
}

// Extract checks body and returns its delivery. Every failure is a
// *DecodeError (ErrMalformed for bytes that are not a JSON object,
// ErrMissingField for a missing part, ErrUnknownOp for an unmapped event
// type); its Reason is safe to return to the sender.
//
// header looks up a request header (case-insensitive; nil means none).
func (m WebhookMap) Extract(body []byte, header func(name string) string) (Delivery, error) {
	var d Delivery
	bad := func(kind error, path, reason string) (Delivery, error) {
		return Delivery{}, &DecodeError{Part: "value", Path: path, Reason: reason, Err: kind}
	}
	switch {
	case len(body) == 0:
		return bad(ErrMalformed, "", "empty body")
	case !utf8.Valid(body):
		return bad(ErrMalformed, "", "body is not valid UTF-8")
	case jsonDepth(body) > MaxWebhookDepth:
		return bad(ErrMalformed, "", "JSON nested deeper than 64 levels")
	case !gjson.ValidBytes(body):
		return bad(ErrMalformed, "", "body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return bad(ErrMalformed, "", "body is not a JSON object")
	}
	text := func(path string, numbers bool) string {
		if name, ok := strings.CutPrefix(path, HeaderPrefix); ok {
			if header == nil {
				return ""
			}
			return header(name)
		}
		v := root.Get(path)
		if v.Type == gjson.String || numbers && v.Type == gjson.Number {
			return v.String()
		}
		return ""
	}
	if d.ID = text(m.ID, true); d.ID == "" {
		return bad(ErrMissingField, m.ID, "no delivery ID")
	}
	if d.Type = text(m.Type, false); d.Type == "" {
		return bad(ErrMissingField, m.Type, "no event type")
	}
	op, ok := m.Op(d.Type)
	if !ok {
		return bad(ErrUnknownOp, m.Type, "unmapped event type")
	}
	d.Op = op
	if d.Entity = text(m.Entity, false); d.Entity == "" {
		return bad(ErrMissingField, m.Entity, "no entity name")
	}
	if after := root.Get(m.After); !after.IsObject() {
		return bad(ErrMissingField, m.After, "no entity state object")
	}
	for _, p := range m.Key {
		v := root.Get(p)
		if !scalar(v) {
			return bad(ErrMissingField, p, "no key field")
		}
		d.Key = append(d.Key, Field{Name: lastElem(p), Value: value(v)})
	}
	if len(d.Key) > 0 {
		d.RecordKey = AppendCanonical(nil, d.Key)
	} else {
		d.RecordKey = []byte(d.ID)
	}
	return d, nil
}

// WebhookDecoder decodes a webhook raw topic (source.format: webhook):
// each record's value is a delivery body the ingress verified. It is safe
// for concurrent use.
type WebhookDecoder struct {
	opts Options
	m    WebhookMap
}

var _ Decoder = (*WebhookDecoder)(nil)

// NewWebhookDecoder returns a decoder for bodies laid out as m says.
func NewWebhookDecoder(opts Options, m WebhookMap) *WebhookDecoder {
	return &WebhookDecoder{opts: opts, m: m}
}

// Decode turns a delivery body into an Event:
//   - ID: by default from the delivery ID alone, so a redelivery (the
//     same event sent twice, or a retry after a timeout that had in fact
//     succeeded) is dropped by the ledger; dedup.key content and field
//     work as for any source;
//   - Type "<entity>.<verb>", Entity and Source.Table the entity name,
//     Source.Connector "webhook", Source.Name the source system;
//   - After the entity state (a create or update) or Before it (a
//     delete), Key the key fields;
//   - Changed: for an update with a before-state (Stripe's
//     previous_attributes), the before-state's keys; otherwise every field
//     of the state;
//   - Position: the delivery ID.
func (d *WebhookDecoder) Decode(topic string, key, value []byte) (*Event, error) {
	return d.DecodeRecord(topic, key, value, nil)
}

// DecodeRecord is Decode with the raw record's headers, for maps that
// read "header:<Name>" fields; header looks a name up case-insensitively.
func (d *WebhookDecoder) DecodeRecord(_ string, _, value []byte, header func(name string) string) (*Event, error) {
	del, err := d.m.Extract(value, header)
	if err != nil {
		return nil, err
	}
	root := gjson.ParseBytes(value)
	state := rowOf(root.Get(d.m.After))
	ev := &Event{
		Op:           del.Op,
		Entity:       del.Entity,
		Type:         del.Entity + "." + del.Op.Verb(),
		SourceSystem: d.opts.SourceSystem,
		Source:       Source{Connector: "webhook", Name: d.opts.SourceSystem, Table: del.Entity},
		Key:          del.Key,
		Position:     Row{{Name: "delivery_id", Value: del.ID}},
	}
	switch del.Op {
	case OpDelete:
		ev.Before = state
		ev.Changed = state.Names()
	default:
		ev.After = state
		ev.Changed = state.Names()
		if d.m.Before != "" {
			if b := root.Get(d.m.Before); b.IsObject() {
				ev.Before = rowOf(b)
				if del.Op == OpUpdate {
					ev.Changed = ev.Before.Names()
				}
			}
		}
	}
	if d.m.OccurredAt != "" {
		switch t := root.Get(d.m.OccurredAt); t.Type {
		case gjson.Number:
			ev.OccurredAt = time.Unix(t.Int(), 0).UTC()
		case gjson.String:
			if ts, err := time.Parse(time.RFC3339Nano, t.Str); err == nil {
				ev.OccurredAt = ts
			}
		}
	}
	switch d.opts.IDMode {
	case IDContent, IDField:
		id, err := ComputeID(ev, d.opts.IDMode, d.opts.IDField)
		if err != nil {
			return nil, err
		}
		ev.ID = id
	default:
		ev.ID = WebhookID(d.opts.SourceSystem, del.ID)
	}
	return ev, nil
}

// WebhookID is the event ID of a delivery: a hash of the source system
// and the delivery ID.
func WebhookID(system, deliveryID string) ID {
	var b []byte
	b = appendCanonString(b, canonString, idTagWebhook)
	b = appendCanonString(b, canonString, system)
	b = appendCanonString(b, canonString, deliveryID)
	sum := sha256.Sum256(b)
	var id ID
	copy(id[:], sum[:len(id)])
	return id
}

// rowOf turns a JSON object into a Row in document order: strings,
// numbers (as Number, exact), booleans and null as themselves; nested
// objects and arrays as JSON text.
func rowOf(obj gjson.Result) Row {
	row := Row{}
	obj.ForEach(func(k, v gjson.Result) bool {
		row = append(row, Field{Name: k.String(), Value: value(v)})
		return true
	})
	return row
}

func value(v gjson.Result) any {
	switch v.Type {
	case gjson.String:
		return v.Str
	case gjson.Number:
		return Number(v.Raw)
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.JSON:
		return JSON(v.Raw)
	}
	return nil
}

func scalar(v gjson.Result) bool {
	return v.Type == gjson.String || v.Type == gjson.Number || v.Type == gjson.True || v.Type == gjson.False
}

// lastElem is the last element of a gjson path: "data.object.id" -> "id".
func lastElem(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '.' && (i == 0 || p[i-1] != '\\') {
			return strings.ReplaceAll(p[i+1:], `\.`, ".")
		}
	}
	return strings.ReplaceAll(p, `\.`, ".")
}

// jsonDepth returns the deepest nesting of objects and arrays in b,
// ignoring brackets inside strings, without recursion. It stops counting
// past MaxWebhookDepth.
func jsonDepth(b []byte) int {
	depth, deepest, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > MaxWebhookDepth {
					return deepest
				}
			}
		case '}', ']':
			depth--
		}
	}
	return deepest
}
