package cdc

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// The outbox columns, Debezium's EventRouter defaults
// (table.field.event.id, .key, .type, .payload, route.by.field) and the
// optional columns the outbox package writes.
const (
	OutboxColID            = "id"
	OutboxColAggregateType = "aggregatetype"
	OutboxColAggregateID   = "aggregateid"
	OutboxColType          = "type"
	OutboxColPayload       = "payload"
	OutboxColTimestamp     = "timestamp"
	OutboxColHeaders       = "headers"
)

// Reasons an outbox record is not an event (OutboxEvent.Ignored).
const (
	OutboxIgnoredUpdate    = "update"
	OutboxIgnoredDelete    = "delete"
	OutboxIgnoredTombstone = "tombstone"
	OutboxIgnoredOther     = "other" // truncate, logical decoding message
)

// OutboxEvent is one event of a transactional outbox: an inserted outbox
// row (read from Debezium's raw change record) or a record Debezium's
// EventRouter SMT already made of it.
type OutboxEvent struct {
	// ID is the outbox id as the application wrote it, usually a UUID.
	// Event.ID is derived from it alone (the UUID's 16 bytes, or a hash of
	// a non-UUID text), so a redelivery and a business retry that reuses
	// the ID have the same Event.ID.
	ID            string
	AggregateType string
	AggregateID   string
	Type          string
	// Payload is the domain payload, byte for byte as stored (jsonb
	// text as PostgreSQL gives it to Debezium); nil for a null payload.
	Payload []byte
	// PayloadJSON says the payload is JSON text (a jsonb or json column,
	// or a string that parses as JSON), so an envelope writes it as JSON
	// rather than as a quoted string.
	PayloadJSON bool
	// Headers are the entries of the optional headers column (a JSON
	// object of strings), e.g. traceparent, in column order.
	Headers []OutboxHeader
	// Transformed says the record came through Debezium's EventRouter.
	Transformed bool
	// Ignored is non-empty when the record is not an event: the update or
	// delete of an outbox row (the cleanup), a tombstone, a truncate. The
	// other fields are then empty.
	Ignored string
}

// OutboxHeader is one header of an outbox event.
type OutboxHeader struct {
	Key   string
	Value []byte
}

// Header is one Kafka record header, as the outbox decoder reads it.
type Header struct {
	Key   []byte
	Value []byte
}

// OutboxDecoder decodes the records of a transactional outbox table
// (source.format: debezium-outbox), in either shape Debezium writes them:
//
//   - raw change records of the outbox table, through the JSON converter
//     (with or without schemas) or the Avro converter. An insert (op c,
//     or a snapshot read, op r) is an event; an update, a delete and a
//     tombstone are the cleanup of the table and decode with Ignored set.
//   - records already transformed by Debezium's EventRouter SMT,
//     recognised by their "id" header (the SMT always writes it): the
//     key is the aggregate ID, the value the payload, the aggregate type
//     the "aggregatetype" header when the SMT places it there
//     (table.fields.additional.placement) or else the topic name after its
//     last dot (outbox.event.order -> order), the type the "type" or
//     "eventType" header, and the headers column's entries from a
//     "headers" header when the SMT places the column there.
//
// Each record is told JSON or Avro by its first byte: a JSON document
// never starts with 0, the Confluent wire format always does.
//
// The Event it returns has Outbox set; Entity is the aggregate type, Type
// the outbox type, Key the aggregate ID (field "aggregateid") and After
// the outbox columns with the payload as JSON. Event.ID comes from the
// outbox id alone. It is safe for concurrent use.
type OutboxDecoder struct {
	opts Options
	json *JSONDecoder
	avro *AvroDecoder // nil without a schema registry
	ps   fastjson.ParserPool
}

var _ Decoder = (*OutboxDecoder)(nil)

// NewOutboxDecoder returns an outbox decoder. src may be nil when no
// schema registry is configured: an Avro record is then a permanent
// *DecodeError.
func NewOutboxDecoder(opts Options, src SchemaSource) *OutboxDecoder {
	opts.IDMode = IDPosition // the inner decoders' IDs are not used
	d := &OutboxDecoder{opts: opts, json: NewJSONDecoder(opts)}
	if src != nil {
		d.avro = NewAvroDecoder(opts, src)
	}
	return d
}

// Decode decodes a record without headers: always a raw change record.
func (d *OutboxDecoder) Decode(topic string, key, value []byte) (*Event, error) {
	return d.DecodeRecord(topic, key, value, nil)
}

// DecodeRecord decodes one record with its headers.
func (d *OutboxDecoder) DecodeRecord(topic string, key, value []byte, headers []Header) (*Event, error) {
	for _, h := range headers {
		if string(h.Key) == "id" {
			return d.transformed(topic, key, value, headers)
		}
	}
	return d.raw(topic, key, value)
}

func isAvro(b []byte) bool { return len(b) > 0 && b[0] == 0 }

func (d *OutboxDecoder) noRegistry(part string) error {
	return &DecodeError{Part: part, Reason: "an Avro record (Confluent wire format), but no schema registry is configured (registry_url)", Err: ErrMalformed}
}

// raw decodes a Debezium change record of the outbox table.
func (d *OutboxDecoder) raw(topic string, key, value []byte) (*Event, error) {
	if len(bytes.TrimSpace(value)) == 0 {
		return ignoredEvent(d.opts.SourceSystem, OpDelete, OutboxIgnoredTombstone, true), nil
	}
	var inner *Event
	var err error
	if isAvro(value) {
		if d.avro == nil {
			return nil, d.noRegistry("value")
		}
		inner, err = d.avro.Decode(topic, key, value)
	} else {
		inner, err = d.json.Decode(topic, key, value)
	}
	if err != nil {
		return nil, err
	}
	switch inner.Op {
	case OpCreate, OpRead:
	case OpUpdate:
		return ignoredFrom(inner, OutboxIgnoredUpdate), nil
	case OpDelete:
		return ignoredFrom(inner, OutboxIgnoredDelete), nil
	default:
		return ignoredFrom(inner, OutboxIgnoredOther), nil
	}
	row := inner.After
	ob := &OutboxEvent{}
	idv, ok := row.Get(OutboxColID)
	if !ok || idv == nil {
		return nil, &DecodeError{Part: "value", Path: "after." + OutboxColID, Reason: "the outbox row has no id (the event ID column)", Err: ErrMissingField}
	}
	ob.ID = textOf(idv)
	for _, c := range [...]struct {
		name string
		dst  *string
	}{{OutboxColAggregateType, &ob.AggregateType}, {OutboxColAggregateID, &ob.AggregateID}, {OutboxColType, &ob.Type}} {
		v, ok := row.Get(c.name)
		if !ok || v == nil {
			return nil, &DecodeError{Part: "value", Path: "after." + c.name, Reason: "the outbox row has no " + c.name + " (a required outbox column)", Err: ErrMissingField}
		}
		*c.dst = textOf(v)
	}
	if ob.AggregateType == "" {
		return nil, &DecodeError{Part: "value", Path: "after." + OutboxColAggregateType, Reason: "empty aggregatetype: it names the topic", Err: ErrMissingField}
	}
	pv, ok := row.Get(OutboxColPayload)
	if !ok {
		return nil, &DecodeError{Part: "value", Path: "after." + OutboxColPayload, Reason: "the outbox row has no payload column", Err: ErrMissingField}
	}
	ob.Payload, ob.PayloadJSON = payloadOf(pv)
	if hv, ok := row.Get(OutboxColHeaders); ok && hv != nil {
		hs, err := d.headersOf(hv)
		if err != nil {
			return nil, err
		}
		ob.Headers = hs
	}
	ev := d.event(ob, inner.Source, inner.Schema)
	ev.OccurredAt = inner.OccurredAt
	if ts, ok := row.Get(OutboxColTimestamp); ok {
		if t, ok := ts.(time.Time); ok {
			ev.OccurredAt = t
		}
	}
	ev.Transaction = inner.Transaction
	ev.Position = inner.Position
	return ev, nil
}

// transformed decodes a record written by Debezium's EventRouter SMT.
func (d *OutboxDecoder) transformed(topic string, key, value []byte, headers []Header) (*Event, error) {
	ob := &OutboxEvent{Transformed: true}
	var typeHdr, eventTypeHdr string
	var hasType bool
	for _, h := range headers {
		switch string(h.Key) {
		case "id":
			ob.ID = headerText(h.Value)
		case "aggregatetype":
			ob.AggregateType = headerText(h.Value)
		case "type":
			typeHdr, hasType = headerText(h.Value), true
		case "eventType":
			eventTypeHdr = headerText(h.Value)
		case OutboxColHeaders:
			// The headers column placed as a header
			// (table.fields.additional.placement=headers:header:headers).
			hs, err := d.headersOf(headerText(h.Value))
			if err != nil {
				return nil, err
			}
			ob.Headers = hs
		}
	}
	if len(value) == 0 {
		// route.tombstone.on.empty.payload: the SMT's delete marker.
		ev := ignoredEvent(d.opts.SourceSystem, OpDelete, OutboxIgnoredTombstone, true)
		ev.Outbox.Transformed = true
		return ev, nil
	}
	if ob.ID == "" {
		return nil, &DecodeError{Part: "headers", Path: "id", Reason: "empty id header (the outbox event ID)", Err: ErrMissingField}
	}
	ob.Type = eventTypeHdr
	if hasType {
		ob.Type = typeHdr
	}
	if ob.AggregateType == "" {
		ob.AggregateType = topic
		if i := bytes.LastIndexByte([]byte(topic), '.'); i >= 0 {
			ob.AggregateType = topic[i+1:]
		}
	}
	if len(key) > 0 {
		k, err := d.scalar(key, "key")
		if err != nil {
			return nil, err
		}
		if k != nil {
			ob.AggregateID = textOf(k)
		}
	}
	pv, err := d.scalar(value, "value")
	if err != nil {
		return nil, err
	}
	ob.Payload, ob.PayloadJSON = payloadOf(pv)
	return d.event(ob, Source{}, SchemaInfo{}), nil
}

// rawJSON is a JSON value kept as its bytes: an object or array read
// without a schema, whose text is the payload as written.
type rawJSON []byte

// scalar decodes a transformed record's key or value: an Avro datum, a
// JSON converter document with or without the {schema, payload}
// envelope, or (StringConverter) plain text.
func (d *OutboxDecoder) scalar(b []byte, part string) (any, error) {
	if isAvro(b) {
		if d.avro == nil {
			return nil, d.noRegistry(part)
		}
		return d.avro.datum(b, part)
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, nil
	}
	if env, ok := splitEnvelope(t, nil, false); ok && env.hasPayload && env.hasSchema && isSchemaLike(env.schema) {
		t = bytes.TrimSpace(env.payload)
	}
	p := d.ps.Get()
	defer d.ps.Put(p)
	v, err := p.ParseBytes(t)
	if err != nil {
		// Not JSON: StringConverter text.
		return string(b), nil
	}
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		return string(s), nil
	case fastjson.TypeNull:
		return nil, nil
	case fastjson.TypeObject, fastjson.TypeArray:
		return rawJSON(bytes.Clone(t)), nil
	default:
		return Number(t), nil
	}
}

// datum decodes one Confluent wire format value of any schema.
func (d *AvroDecoder) datum(b []byte, part string) (any, error) {
	st := d.states.Get().(*avroState)
	defer d.states.Put(st)
	st.conv.a.beginEvent()
	e, err := d.body(st, b, part)
	if err != nil {
		return nil, err
	}
	x, cerr := st.r.value(e.compiled.root)
	if cerr == nil {
		cerr = st.r.trailing()
	}
	if cerr != nil {
		de := cerr.decodeError(part, "")
		de.SchemaID = e.id
		return nil, de
	}
	return x, nil
}

// event builds the Event of an outbox event.
func (d *OutboxDecoder) event(ob *OutboxEvent, src Source, schema SchemaInfo) *Event {
	after := Row{
		{Name: OutboxColID, Value: ob.ID},
		{Name: OutboxColAggregateType, Value: ob.AggregateType},
		{Name: OutboxColAggregateID, Value: ob.AggregateID},
		{Name: OutboxColType, Value: ob.Type},
		{Name: OutboxColPayload, Value: payloadValue(ob)},
	}
	return &Event{
		ID:           OutboxID(ob.ID),
		Type:         ob.Type,
		Op:           OpCreate,
		Entity:       ob.AggregateType,
		SourceSystem: d.opts.SourceSystem,
		Source:       src,
		Key:          Row{{Name: OutboxColAggregateID, Value: ob.AggregateID}},
		After:        after,
		Changed:      after.Names(),
		Schema:       schema,
		Outbox:       ob,
	}
}

// payloadValue is the payload as a decoded value: JSON text as JSON, other
// bytes as a string when they are UTF-8 text, else as bytes.
func payloadValue(ob *OutboxEvent) any {
	switch {
	case ob.Payload == nil:
		return nil
	case ob.PayloadJSON:
		return JSON(ob.Payload)
	}
	return string(ob.Payload)
}

// OutboxID is the Event.ID of the outbox event with the given id: the 16
// bytes of a UUID, else the first 16 bytes of the SHA-256 of the text. It
// depends on the id alone, so a business retry that reuses the id, and any
// redelivery, has the same Event.ID.
func OutboxID(id string) ID {
	if u, err := ParseUUID(id); err == nil {
		return ID(u)
	}
	sum := sha256.Sum256([]byte("outbox\x00" + id))
	var out ID
	copy(out[:], sum[:16])
	return out
}

func ignoredEvent(sys string, op Op, reason string, tomb bool) *Event {
	return &Event{Op: op, SourceSystem: sys, Tombstone: tomb, Type: "outbox." + reason, Outbox: &OutboxEvent{Ignored: reason}}
}

func ignoredFrom(inner *Event, reason string) *Event {
	ev := ignoredEvent(inner.SourceSystem, inner.Op, reason, false)
	ev.Source, ev.Key, ev.Entity, ev.Schema = inner.Source, inner.Key, inner.Entity, inner.Schema
	return ev
}

// textOf is the text of a key, id or type value: strings as they are,
// UUIDs in their canonical form, numbers and other values as their JSON.
func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case JSON:
		return string(x)
	case Enum:
		return string(x)
	case UUID:
		return x.String()
	case Number:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case rawJSON:
		return string(x)
	case []byte:
		return string(x)
	}
	return string(AppendJSONValue(nil, v))
}

// payloadOf turns a decoded payload column or value into its bytes.
func payloadOf(v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case JSON:
		return []byte(x), true
	case rawJSON:
		return []byte(x), true
	case string:
		// A json(b) column without a schema, or the SMT's Json string.
		return []byte(x), json.Valid([]byte(x))
	case []byte:
		return bytes.Clone(x), false
	case Number:
		return []byte(x), true
	}
	// A record or map (table.expand.json.payload, an Avro record): JSON.
	return AppendJSONValue(nil, v), true
}

// headersOf reads the headers column: a JSON object whose members become
// headers in order; a string member is its text, anything else its JSON.
func (d *OutboxDecoder) headersOf(v any) ([]OutboxHeader, error) {
	var text []byte
	switch x := v.(type) {
	case JSON:
		text = []byte(x)
	case string:
		text = []byte(x)
	case rawJSON:
		text = x
	case Row:
		out := make([]OutboxHeader, 0, len(x))
		for _, f := range x {
			out = append(out, OutboxHeader{Key: f.Name, Value: []byte(textOf(f.Value))})
		}
		return out, nil
	default:
		return nil, &DecodeError{Part: "value", Path: "after." + OutboxColHeaders, Reason: "the headers column must be a JSON object of strings", Err: ErrSchemaMismatch}
	}
	p := d.ps.Get()
	defer d.ps.Put(p)
	jv, err := p.ParseBytes(text)
	if err != nil || jv.Type() != fastjson.TypeObject {
		if jv != nil && jv.Type() == fastjson.TypeNull {
			return nil, nil
		}
		return nil, &DecodeError{Part: "value", Path: "after." + OutboxColHeaders, Reason: "the headers column must be a JSON object of strings", Err: ErrSchemaMismatch}
	}
	var out []OutboxHeader
	o, _ := jv.Object()
	o.Visit(func(k []byte, x *fastjson.Value) {
		h := OutboxHeader{Key: string(k)}
		if s, err := x.StringBytes(); err == nil {
			h.Value = bytes.Clone(s)
		} else {
			h.Value = x.MarshalTo(nil)
		}
		out = append(out, h)
	})
	return out, nil
}

// headerText reads a header written by Connect's SimpleHeaderConverter
// (the text itself) or by the JsonConverter (a JSON string).
func headerText(b []byte) string {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		var s string
		if json.Unmarshal(b, &s) == nil {
			return s
		}
	}
	return string(b)
}
