package cdc

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// SchemaSource fetches Avro writer schemas from a schema registry by ID.
// schemas.Client implements it over srclient with a timeout and caches.
// Implementations must be safe for concurrent use.
//
// Errors: one wrapping ErrUnknownSchema when the registry does not know
// the ID (HTTP 404); any other error means the registry could not answer
// and is reported as a transient *RegistryError.
type SchemaSource interface {
	// WriterSchema returns the schema text registered under id.
	WriterSchema(id int) (string, error)
	// SubjectVersions lists the subjects and versions id is registered
	// under; none is not an error.
	SubjectVersions(id int) ([]SubjectVersion, error)
}

// SubjectVersion is one registration of a schema: subject and version.
type SubjectVersion struct {
	Subject string
	Version int
}

// unknownSchemaTTL is how long an ID the registry does not know is
// remembered as unknown, so a run of poison records does not hit the
// registry for each one.
const unknownSchemaTTL = 30 * time.Second

// maxCachedAvroSchemas bounds the writer schema cache. IDs come from the
// data, so a hostile topic could otherwise grow it without bound.
const maxCachedAvroSchemas = 4096

// AvroDecoder decodes records written by Debezium through Confluent's Avro
// converter: key and value each in the Confluent wire format (magic byte
// 0, the 4-byte big-endian schema ID, the Avro binary body). Writer
// schemas are fetched by ID from a SchemaSource once and cached as a
// compiled reader (tests check it against goavro, the reference
// implementation), so records of several schema versions decode side by
// side. It is safe for concurrent use; the
// returned Event shares no memory with key or value.
//
// It gives the same change the same Event, and the same ID, as
// JSONDecoder with schemas.enable=true; only Event.Schema differs, which
// carries the registry subject, ID and version.
type AvroDecoder struct {
	opts   Options
	src    SchemaSource
	now    func() time.Time
	states sync.Pool // *avroState

	mu      sync.RWMutex
	schemas map[int]*avroEntry
	fetch   singleflight.Group

	topics topicKinds
}

var _ Decoder = (*AvroDecoder)(nil)

// avroEntry is one writer schema, by registry ID.
type avroEntry struct {
	id       int
	compiled *avroCompiled
	subjects []SubjectVersion
	err      *DecodeError // a permanent failure: unknown ID or unusable schema
	expires  time.Time    // for err from an unknown ID
}

// NewAvroDecoder returns a decoder that fetches writer schemas from src.
func NewAvroDecoder(opts Options, src SchemaSource) *AvroDecoder {
	d := &AvroDecoder{opts: opts, src: src, now: time.Now, schemas: map[int]*avroEntry{}}
	d.states.New = func() any { return new(avroState) }
	return d
}

// avroState is the per-goroutine working memory of a decode.
type avroState struct {
	r       avroReader
	conv    converter
	idBuf   []byte
	srcVals []any
	types   typeCache
}

// entry returns the writer schema id, fetching it on first sight. The
// error is a *DecodeError (permanent) or a *RegistryError (transient).
func (d *AvroDecoder) entry(id int, part string) (*avroEntry, error) {
	d.mu.RLock()
	e := d.schemas[id]
	d.mu.RUnlock()
	if e != nil && (e.err == nil || e.expires.IsZero() || d.now().Before(e.expires)) {
		if e.err != nil {
			de := *e.err
			de.Part = part
			return nil, &de
		}
		return e, nil
	}
	v, err, _ := d.fetch.Do(strconv.Itoa(id), func() (any, error) {
		e, err := d.load(id)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		if len(d.schemas) >= maxCachedAvroSchemas {
			for k := range d.schemas {
				delete(d.schemas, k)
				break
			}
		}
		d.schemas[id] = e
		d.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	e = v.(*avroEntry)
	if e.err != nil {
		de := *e.err
		de.Part = part
		return nil, &de
	}
	return e, nil
}

// load fetches and compiles a writer schema. Permanent failures are
// returned inside the entry, so they are cached; transient ones as the
// error, so they are retried.
func (d *AvroDecoder) load(id int) (*avroEntry, error) {
	e := &avroEntry{id: id}
	text, err := d.src.WriterSchema(id)
	if err != nil {
		if errors.Is(err, ErrUnknownSchema) {
			e.err = &DecodeError{Reason: "schema ID " + strconv.Itoa(id) + " is not in the registry", Err: ErrUnknownSchema, SchemaID: id}
			e.expires = d.now().Add(unknownSchemaTTL)
			return e, nil
		}
		return nil, &RegistryError{SchemaID: id, Err: err}
	}
	subjects, err := d.src.SubjectVersions(id)
	if err != nil && !errors.Is(err, ErrUnknownSchema) {
		return nil, &RegistryError{SchemaID: id, Err: err}
	}
	e.subjects = subjects
	e.compiled, err = compileAvro(text)
	if err != nil {
		e.err = &DecodeError{Path: "schema", Reason: "unusable writer schema " + strconv.Itoa(id) + ": " + err.Error(), Err: ErrSchemaMismatch, SchemaID: id}
		return e, nil
	}
	return e, nil
}

// info is the SchemaInfo of a value written with e to topic. Of the
// subjects e is registered under, the topic strategy's "<topic>-value"
// wins, then the record strategy's full name, then topic-record.
func (e *avroEntry) info(topic string) SchemaInfo {
	info := SchemaInfo{Name: e.compiled.root.name, ID: e.id}
	best := -1
	for _, sv := range e.subjects {
		rank := 0
		switch {
		case len(sv.Subject) == len(topic)+len("-value") && strings.HasPrefix(sv.Subject, topic) && strings.HasSuffix(sv.Subject, "-value"):
			rank = 3
		case sv.Subject == info.Name:
			rank = 2
		case strings.HasPrefix(sv.Subject, topic) && strings.HasSuffix(sv.Subject, info.Name) && len(sv.Subject) == len(topic)+1+len(info.Name):
			rank = 1
		}
		if rank > best {
			best = rank
			info.Subject, info.Version = sv.Subject, sv.Version
		}
	}
	return info
}

// Decode decodes one record. A nil or empty value is a tombstone (it has
// no wire-format framing); topic names its source then.
//
// Errors: a *DecodeError (permanent; SchemaID set when the header was
// read) for a bad header, an unknown schema ID or a body that does not
// match its schema; a *RegistryError wrapping ErrRegistryUnavailable
// (transient) when the writer schema could not be fetched.
func (d *AvroDecoder) Decode(topic string, key, value []byte) (*Event, error) {
	st := d.states.Get().(*avroState)
	defer d.states.Put(st)
	st.conv.a.beginEvent()

	ev := &Event{SourceSystem: d.opts.SourceSystem}
	if len(key) > 0 {
		k, err := d.decodeKey(st, key)
		if err != nil {
			return nil, err
		}
		ev.Key = k
	}
	if len(value) == 0 {
		fillTombstone(ev, topic, d.topics.kind(d.opts.Connector, topic))
		ev.Type = st.types.eventType(ev.Entity, ev.Op)
	} else if err := d.decodeValue(st, topic, value, ev); err != nil {
		return nil, err
	} else {
		d.topics.learn(topic, ev.Source.Connector)
	}
	id, err := computeID(ev, d.opts.IDMode, d.opts.IDField, &st.idBuf)
	if err != nil {
		return nil, err
	}
	ev.ID = id
	return ev, nil
}

func (d *AvroDecoder) body(st *avroState, b []byte, part string) (*avroEntry, error) {
	id, body, err := SplitWire(b)
	if err != nil {
		return nil, &DecodeError{Part: part, Reason: err.Error(), Err: ErrMalformed}
	}
	e, err := d.entry(id, part)
	if err != nil {
		return nil, err
	}
	st.r.reset(body, &st.conv)
	return e, nil
}

func (d *AvroDecoder) decodeKey(st *avroState, key []byte) (Row, error) {
	e, err := d.body(st, key, "key")
	if err != nil {
		return nil, err
	}
	x, cerr := st.r.value(e.compiled.root)
	if cerr == nil {
		cerr = st.r.trailing()
	}
	if cerr != nil {
		de := cerr.decodeError("key", "")
		de.SchemaID = e.id
		return nil, de
	}
	switch k := x.(type) {
	case nil:
		return nil, nil
	case Row:
		return k, nil
	default:
		return Row{{Name: "key", Value: k}}, nil
	}
}

func (r *avroReader) trailing() *convErr {
	if r.i != len(r.b) {
		return mismatch("%d bytes left after the record", len(r.b)-r.i)
	}
	return nil
}

func (d *AvroDecoder) decodeValue(st *avroState, topic string, value []byte, ev *Event) error {
	e, err := d.body(st, value, "value")
	if err != nil {
		return err
	}
	root := e.compiled.root
	if root.kind != aRecord {
		return &DecodeError{Part: "value", Path: "schema.type", Reason: "envelope schema must be a record, got " + root.kind.String(), Err: ErrSchemaMismatch, SchemaID: e.id}
	}
	ev.Schema = e.info(topic)
	cerr := d.fill(st, root, ev)
	if cerr == nil {
		cerr = st.r.trailing()
	}
	if cerr != nil {
		de := cerr.decodeError("value", "")
		de.SchemaID = e.id
		return de
	}
	ev.Type = st.types.eventType(ev.Entity, ev.Op)
	return nil
}

// fill reads a Debezium envelope into ev, with the same rules as
// JSONDecoder.fill.
func (d *AvroDecoder) fill(st *avroState, root *avroNode, ev *Event) *convErr {
	r := &st.r
	var before, after, tx, msg any
	var op []byte
	var hasOp, hasSource bool
	var ts [3]any // ts_ns, ts_us, ts_ms
	for i := range root.fields {
		f := &root.fields[i]
		var err *convErr
		switch f.role {
		case roleBefore:
			before, err = r.value(f.node)
		case roleAfter:
			after, err = r.value(f.node)
		case roleSource:
			var n *avroNode
			if n, err = r.resolve(f.node); err == nil && n.kind != aNull {
				hasSource = true
				err = st.source(n, ev)
			}
		case roleOp:
			var n *avroNode
			if n, err = r.resolve(f.node); err == nil && n.kind != aNull {
				if n.kind != aString {
					err = mismatch("op must be a string, got %s", n.kind)
				} else {
					op, err = r.bytes()
					hasOp = err == nil
				}
			}
		case roleTsNs, roleTsUs, roleTsMs:
			ts[roleTsNs-f.role], err = r.value(f.node)
		case roleTransaction:
			tx, err = r.value(f.node)
		case roleMessage:
			msg, err = r.value(f.node)
		default:
			err = r.skip(f.node)
		}
		if err != nil {
			return err.at(f.name)
		}
	}
	if !hasOp {
		return missing("op")
	}
	if len(op) != 1 || !strings.Contains("cudrtm", string(op)) {
		return newConvErr(ErrUnknownOp, "unknown op %q", op).at("op")
	}
	ev.Op = Op(op[0])
	if !hasSource {
		return missing("source")
	}
	ev.Entity = ev.Source.Table

	if ev.Op != OpTruncate && ev.Op != OpMessage {
		var cerr *convErr
		if ev.Before, cerr = st.state(before); cerr != nil {
			return cerr.at("before")
		}
		if ev.After, cerr = st.state(after); cerr != nil {
			return cerr.at("after")
		}
		if cerr := checkSides(ev.Op, ev.Before, ev.After); cerr != nil {
			return cerr
		}
		ev.Changed = changed(ev.Before, ev.After)
	}
	if ev.OccurredAt.IsZero() {
		t, cerr := avroTimestamp(ts)
		if cerr != nil {
			return cerr
		}
		ev.OccurredAt = t
	}
	if tx != nil {
		t, cerr := avroTransaction(tx)
		if cerr != nil {
			return cerr.at("transaction")
		}
		ev.Transaction = t
	}
	if ev.Op == OpMessage {
		if msg == nil {
			return missing("message")
		}
		m, cerr := avroMessage(msg)
		if cerr != nil {
			return cerr.at("message")
		}
		ev.Message = m
		if ev.Entity == "" {
			ev.Entity = m.Prefix
		}
	}
	return nil
}

var tsFieldNames = [3]string{"ts_ns", "ts_us", "ts_ms"}

// avroTimestamp is timestampFrom for decoded values: ts_ns, ts_us or ts_ms,
// most precise first.
func avroTimestamp(ts [3]any) (time.Time, *convErr) {
	for i, v := range ts {
		if v == nil {
			continue
		}
		n, ok := v.(int64)
		if !ok {
			return time.Time{}, mismatch("expected int64, got %T", v).at(tsFieldNames[i])
		}
		switch i {
		case 0:
			return time.Unix(0, n).UTC(), nil
		case 1:
			return time.UnixMicro(n).UTC(), nil
		default:
			return time.UnixMilli(n).UTC(), nil
		}
	}
	return time.Time{}, nil
}

// state converts a decoded before or after value. MongoDB writes these as
// a string holding the document as extended JSON.
func (st *avroState) state(v any) (Row, *convErr) {
	switch x := v.(type) {
	case nil, Unavailable:
		return nil, nil
	case Row:
		return x, nil
	case string:
		return st.document(x)
	case JSON:
		return st.document(string(x))
	}
	return nil, mismatch("expected struct, got %T", v)
}

func (st *avroState) document(s string) (Row, *convErr) {
	c := &st.conv
	doc, err := c.mongo.Parse(s)
	if err != nil {
		return nil, malformed("document string is not JSON: %v", err)
	}
	o, err := doc.Object()
	if err != nil {
		return nil, mismatch("document string must hold an object, got %s", doc.Type())
	}
	return c.extendedRow(o)
}

// source reads a source block record into ev.Source, ev.Position and
// ev.OccurredAt, with the rules of converter.source.
func (st *avroState) source(n *avroNode, ev *Event) *convErr {
	r := &st.r
	p := n.src
	if p == nil {
		return mismatch("source is not a record")
	}
	if cap(st.srcVals) < len(n.fields) {
		st.srcVals = make([]any, len(n.fields))
	}
	vals := st.srcVals[:len(n.fields)]
	clear(vals)
	var ident [len(sourceIdent)]string
	if err := r.enter(); err != nil {
		return err
	}
	defer func() { r.depth-- }()
	for i := range n.fields {
		f := &n.fields[i]
		var err *convErr
		switch {
		case p.ident[i] >= 0:
			ident[p.ident[i]], err = st.identString(f.node)
		case p.keep[i]:
			vals[i], err = r.value(f.node)
		default:
			err = r.skip(f.node)
		}
		if err != nil {
			return err.at(f.name)
		}
	}
	src := &ev.Source
	src.Connector, src.Name, src.Database, src.Schema = ident[0], ident[1], ident[2], ident[3]
	src.Table = ident[4]
	if src.Table == "" {
		src.Table = ident[5]
	}
	src.Snapshot = ident[6]

	if names, ok := positionFields[src.Connector]; ok {
		pos := make(Row, len(names))
		for i, name := range names {
			pos[i].Name = name
			if j, ok := p.byName[name]; ok {
				pos[i].Value = vals[j]
			}
		}
		ev.Position = pos
	}
	var ts [3]any
	for i, name := range tsFieldNames {
		if j, ok := p.byName[name]; ok {
			ts[i] = vals[j]
		}
	}
	t, err := avroTimestamp(ts)
	if err != nil {
		return err
	}
	ev.OccurredAt = t
	return nil
}

// identString reads a source field that names the change: a string, an
// enum or a boolean ("true"/"false"), or null ("").
func (st *avroState) identString(n *avroNode) (string, *convErr) {
	r := &st.r
	n, err := r.resolve(n)
	if err != nil {
		return "", err
	}
	switch n.kind {
	case aNull:
		return "", nil
	case aString:
		b, err := r.bytes()
		if err != nil {
			return "", err
		}
		return st.conv.str(b), nil
	}
	v, err := r.value(n)
	if err != nil {
		return "", err
	}
	switch x := v.(type) {
	case bool:
		return strconv.FormatBool(x), nil
	case Enum:
		return string(x), nil
	}
	return "", mismatch("expected string, got %s", n.kind)
}

func avroTransaction(v any) (*Transaction, *convErr) {
	row, ok := v.(Row)
	if !ok {
		return nil, mismatch("expected struct, got %T", v)
	}
	tx := &Transaction{}
	idV, ok := row.Get("id")
	if !ok || idV == nil {
		return nil, missing("id")
	}
	id, ok := idV.(string)
	if !ok {
		return nil, mismatch("expected string, got %T", idV).at("id")
	}
	tx.ID = id
	for _, f := range [...]struct {
		name string
		dst  *int64
	}{{"total_order", &tx.TotalOrder}, {"data_collection_order", &tx.DataCollectionOrder}} {
		x, _ := row.Get(f.name)
		if x == nil {
			continue
		}
		n, ok := x.(int64)
		if !ok {
			return nil, mismatch("expected int64, got %T", x).at(f.name)
		}
		*f.dst = n
	}
	return tx, nil
}

func avroMessage(v any) (*Message, *convErr) {
	row, ok := v.(Row)
	if !ok {
		return nil, mismatch("expected struct, got %T", v)
	}
	m := &Message{}
	if x, _ := row.Get("prefix"); x != nil {
		s, ok := x.(string)
		if !ok {
			return nil, mismatch("expected string, got %T", x).at("prefix")
		}
		m.Prefix = s
	}
	if x, _ := row.Get("content"); x != nil {
		b, ok := x.([]byte)
		if !ok {
			return nil, mismatch("expected bytes, got %T", x).at("content")
		}
		m.Content = b
	}
	return m, nil
}
