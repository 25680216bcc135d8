package cdc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fastjson"
)

// IDMode says how Event.ID is computed. See the package documentation.
type IDMode int

const (
	// IDPosition hashes the connector name, database, schema, table, key
	// and the connector's source position. Snapshot reads (op=r) use the
	// content key instead, since their position changes on re-snapshot.
	IDPosition IDMode = iota
	// IDContent hashes the table, key and the canonical after-state, so
	// the same row state always has the same ID.
	IDContent
	// IDField hashes the entity and the value of Options.IDField, e.g. an
	// outbox table's "id".
	IDField
)

// Options configures a decoder.
type Options struct {
	SourceSystem string // copied into Event.SourceSystem
	IDMode       IDMode // how Event.ID is computed (default IDPosition)
	IDField      string // for IDField: the after/before field that is the key, e.g. outbox "id"

	// Connector is the kind of connector that wrote the topics
	// (source.connector: "postgresql", "mysql", "sqlserver", "mongodb",
	// ...), which fixes how a tombstone's topic name is read (ParseTopic).
	// Empty: each topic's kind is learned from the records decoded from
	// it; a tombstone on a topic with no record decoded yet (the first
	// record after a start or a rebalance) is read as PostgreSQL's
	// prefix.schema.table.
	Connector string
}

// Decoder turns one Kafka record into a typed event. Implementations are
// safe for concurrent use. A nil or empty value is a tombstone and decodes
// to an Event with Tombstone set; any failure is a *DecodeError.
type Decoder interface {
	Decode(topic string, key, value []byte) (*Event, error)
}

// JSONDecoder decodes records written by Debezium through Kafka Connect's
// JSON converter, with (schemas.enable=true) or without the {schema,
// payload} envelope, independently for key and value. It is safe for
// concurrent use; an Event from Decode shares no memory with key or value
// (one from DecodeOwned may, see OwnedDecoder), and lives as long as the
// caller keeps it (one from DecodeOwnedReuse only until the next decode
// with its Scratch, see ReusingDecoder).
type JSONDecoder struct {
	opts    Options
	schemas schemaCache
	states  sync.Pool // *decodeState
	topics  topicKinds
	// slowOnly turns the fast path (fastpath.go) off, for the tests that
	// compare the two paths.
	slowOnly bool
}

var _ Decoder = (*JSONDecoder)(nil)

// OwnedDecoder is implemented by decoders that can decode a record whose
// bytes the caller hands over, sparing the copies Decode makes.
type OwnedDecoder interface {
	Decoder
	// DecodeOwned is Decode for a caller that owns key and value and
	// gives them up: nobody may modify their bytes again, ever. The
	// returned Event may share memory with them (strings read without
	// escapes alias the record instead of being copied), so it keeps
	// key and value alive as long as it, or any string taken from it,
	// lives. Events, errors and IDs are exactly Decode's.
	DecodeOwned(topic string, key, value []byte) (*Event, error)
}

var _ OwnedDecoder = (*JSONDecoder)(nil)

// NewJSONDecoder returns a decoder with the given options.
func NewJSONDecoder(opts Options) *JSONDecoder {
	d := &JSONDecoder{opts: opts}
	d.states.New = func() any { return new(decodeState) }
	return d
}

// decodeState is the per-goroutine working memory of a decode.
type decodeState struct {
	p     fastjson.Parser
	conv  converter
	idBuf []byte
	// The last key (0) and value (1) envelope schema this state saw, and
	// its compiled form: a hit skips the shared cache's lock and hashing.
	lastRaw [2][]byte
	lastCS  [2]*compiledSchema
	types   typeCache
	fast    fastScanner // the fast path's working memory (fastpath.go)
}

type typeKey struct {
	entity string
	op     Op
}

// typeCache interns event types per goroutine state; the last answer
// is kept in front of the map (a topic's records repeat it).
type typeCache struct {
	m        map[typeKey]string
	last     typeKey
	lastType string
}

// eventType returns "<entity>.<verb>", without allocating for a pair seen
// before.
func (c *typeCache) eventType(entity string, op Op) string {
	k := typeKey{entity, op}
	if c.lastType != "" && k == c.last {
		return c.lastType
	}
	s, ok := c.m[k]
	if !ok {
		s = entity + "." + op.Verb()
		if c.m == nil {
			c.m = make(map[typeKey]string)
		}
		if len(c.m) < maxInterned {
			c.m[k] = s
		}
	}
	c.last, c.lastType = k, s
	return s
}

// Decode decodes one record. topic is used for tombstones, which carry no
// source block.
func (d *JSONDecoder) Decode(topic string, key, value []byte) (*Event, error) {
	return d.decode(nil, topic, key, value, false)
}

// DecodeOwned is Decode for a caller that hands key and value over and
// never modifies them again; see OwnedDecoder. A change event without the
// envelope (the fast path) then keeps its strings and numbers in the
// record instead of copying them; field names and the source block's
// strings are interned as always, so a long-lived map keyed by them pins
// no record.
func (d *JSONDecoder) DecodeOwned(topic string, key, value []byte) (*Event, error) {
	return d.decode(nil, topic, key, value, true)
}

// decode is Decode; with owned, the fast path may alias key and value;
// with a scratch, the event is made in the scratch's memory (Scratch).
func (d *JSONDecoder) decode(s *Scratch, topic string, key, value []byte, owned bool) (*Event, error) {
	st := d.states.Get().(*decodeState)
	defer d.states.Put(st)
	var blk *eventBlock
	if s != nil {
		// The scratch's arena stands in for the state's for this call;
		// the state's own, which may hold events other callers keep, is
		// parked in s and never reused.
		st.conv.a, s.a = s.a, st.conv.a
		defer func() { st.conv.a, s.a = s.a, st.conv.a }()
		st.conv.a.reuseEvent()
		blk = s.block(d.opts.SourceSystem)
	} else {
		st.conv.a.beginEvent()
		// The event and its transaction block share one allocation.
		blk = &eventBlock{ev: Event{SourceSystem: d.opts.SourceSystem}}
	}
	ev := &blk.ev
	st.fast.owned = owned
	if !d.slowOnly && d.decodeFast(st, blk, key, value) {
		d.topics.learn(topic, ev.Source.Connector)
		return d.finish(st, ev)
	}
	blk.reset(d.opts.SourceSystem)
	if len(bytes.TrimSpace(key)) > 0 {
		k, err := d.decodeKey(st, key)
		if err != nil {
			return nil, err
		}
		ev.Key = k
	}
	tomb, err := d.decodeValue(st, value, blk)
	if err != nil {
		return nil, err
	}
	if tomb {
		fillTombstone(ev, topic, d.topics.kind(d.opts.Connector, topic))
		ev.Type = st.types.eventType(ev.Entity, ev.Op)
	} else {
		d.topics.learn(topic, ev.Source.Connector)
	}
	return d.finish(st, ev)
}

// finish sets the event's ID.
func (d *JSONDecoder) finish(st *decodeState, ev *Event) (*Event, error) {
	id, err := computeID(ev, d.opts.IDMode, d.opts.IDField, &st.idBuf)
	if err != nil {
		return nil, err
	}
	ev.ID = id
	return ev, nil
}

// eventBlock is an Event with room for its Transaction.
type eventBlock struct {
	ev Event
	tx Transaction
}

// reset empties b for a new event of sourceSystem.
func (b *eventBlock) reset(sourceSystem string) {
	*b = eventBlock{ev: Event{SourceSystem: sourceSystem}}
}

// schemaFor returns the compiled form of an envelope schema, compiling it
// with st's parser on first sight.
func (d *JSONDecoder) schemaFor(st *decodeState, raw []byte, part string) (*compiledSchema, error) {
	slot := slotOf(part)
	if st.lastCS[slot] != nil && bytes.Equal(raw, st.lastRaw[slot]) {
		return st.lastCS[slot], nil
	}
	cs := d.schemas.get(raw)
	if cs == nil {
		v, err := st.p.ParseBytes(raw)
		if err != nil {
			return nil, &DecodeError{Part: part, Path: "schema", Reason: syntaxReason(raw, err), Err: ErrMalformed}
		}
		var cerr *convErr
		cs, cerr = compileSchema(v)
		if cerr != nil {
			return nil, cerr.decodeError(part, "schema")
		}
		d.schemas.put(raw, cs)
	}
	st.lastRaw[slot] = append(st.lastRaw[slot][:0], raw...)
	st.lastCS[slot] = cs
	return cs, nil
}

// parse splits off the envelope when there is one and parses the payload.
// prefix is the path of the payload inside the document.
func (d *JSONDecoder) parse(st *decodeState, b []byte, part string) (v *fastjson.Value, cs *compiledSchema, prefix string, err error) {
	if bytes.HasPrefix(b, utf8BOM) {
		return nil, nil, "", &DecodeError{Part: part, Reason: "starts with a UTF-8 byte-order mark (EF BB BF); a JSON record must not have one", Err: ErrMalformed}
	}
	known := st.lastRaw[slotOf(part)]
	for _, guess := range [...]bool{true, false} {
		env, ok := splitEnvelope(b, known, guess)
		if !ok || !(env.hasPayload || isSchemaLike(env.schema)) {
			break
		}
		if !env.hasPayload {
			return nil, nil, "", &DecodeError{Part: part, Path: "payload", Reason: "envelope has a schema but no payload", Err: ErrMissingField}
		}
		cs = nil
		if env.hasSchema {
			cs, err = d.schemaFor(st, env.schema, part)
			if err != nil {
				return nil, nil, "", err
			}
		}
		v, perr := st.p.ParseBytes(env.payload)
		if perr != nil {
			if env.tentative {
				continue // the payload was not the last member: scan properly
			}
			return nil, nil, "", &DecodeError{Part: part, Path: "payload", Reason: syntaxReason(env.payload, perr), Err: ErrMalformed}
		}
		return v, cs, "payload", nil
	}
	v, perr := st.p.ParseBytes(b)
	if perr != nil {
		return nil, nil, "", &DecodeError{Part: part, Reason: syntaxReason(b, perr), Err: ErrMalformed}
	}
	return v, nil, "", nil
}

func slotOf(part string) int {
	if part == "value" {
		return 1
	}
	return 0
}

// isSchemaLike reports whether a top-level "schema" value looks like a
// Connect schema (an object with a type, or null) rather than a column.
func isSchemaLike(b []byte) bool {
	if bytes.Equal(b, []byte("null")) {
		return true
	}
	return len(b) > 0 && b[0] == '{' && bytes.Contains(b, []byte(`"type"`))
}

func (d *JSONDecoder) decodeKey(st *decodeState, key []byte) (Row, error) {
	v, cs, prefix, err := d.parse(st, key, "key")
	if err != nil {
		return nil, err
	}
	var root *schemaNode
	if cs != nil {
		root = cs.root
	}
	if v.Type() == fastjson.TypeObject && (root == nil || (root.typ == tStruct && root.logical != lVarDecimal)) {
		// The usual struct key, converted as value would, without boxing
		// the Row into an any and out again.
		o, _ := v.Object()
		k, cerr := st.conv.row(o, root)
		if cerr != nil {
			return nil, cerr.decodeError("key", prefix)
		}
		return k, nil
	}
	x, cerr := st.conv.value(v, root)
	if cerr != nil {
		return nil, cerr.decodeError("key", prefix)
	}
	switch k := x.(type) {
	case nil:
		return nil, nil
	case Row:
		return k, nil
	default:
		// A primitive key, e.g. from a key-extracting SMT.
		return Row{{Name: "key", Value: k}}, nil
	}
}

// decodeValue fills ev from the record value. It reports true for a
// tombstone.
func (d *JSONDecoder) decodeValue(st *decodeState, value []byte, blk *eventBlock) (bool, error) {
	ev := &blk.ev
	if len(bytes.TrimSpace(value)) == 0 {
		return true, nil
	}
	v, cs, prefix, err := d.parse(st, value, "value")
	if err != nil {
		return false, err
	}
	if v.Type() == fastjson.TypeNull {
		// Kafka's tombstone is a record without a value; the JSON text
		// null is a value, and not a change event.
		return false, &DecodeError{Part: "value", Path: prefix, Reason: "is JSON null, not a change event (a tombstone is a record with no value at all)", Err: ErrMalformed}
	}
	if cs == nil {
		cs = &noSchema
	} else if cs.root != nil && cs.root.typ != tStruct {
		return false, &DecodeError{Part: "value", Path: "schema.type", Reason: "envelope schema must be a struct, got " + cs.root.typ.String(), Err: ErrSchemaMismatch}
	}
	o, oerr := v.Object()
	if oerr != nil {
		return false, &DecodeError{Part: "value", Path: prefix, Reason: "expected an object, got " + v.Type().String(), Err: ErrMalformed}
	}
	ev.Schema = cs.info
	if cerr := d.fill(st, o, cs, blk); cerr != nil {
		return false, cerr.decodeError("value", prefix)
	}
	ev.Type = st.types.eventType(ev.Entity, ev.Op)
	return false, nil
}

var noSchema compiledSchema

// The envelope members fill reads, found in one pass.
const (
	emOp = iota
	emSource
	emBefore
	emAfter
	emTsNs
	emTsUs
	emTsMs
	emTransaction
	emMessage
	emN
)

func envelopeMember(k []byte) int {
	switch string(k) {
	case "op":
		return emOp
	case "source":
		return emSource
	case "before":
		return emBefore
	case "after":
		return emAfter
	case "ts_ns":
		return emTsNs
	case "ts_us":
		return emTsUs
	case "ts_ms":
		return emTsMs
	case "transaction":
		return emTransaction
	case "message":
		return emMessage
	}
	return -1
}

// fill converts a Debezium envelope payload into ev. Of a member given
// twice, the last counts, as everywhere in the decoder.
func (d *JSONDecoder) fill(st *decodeState, o *fastjson.Object, cs *compiledSchema, blk *eventBlock) *convErr {
	ev := &blk.ev
	c := &st.conv
	var m [emN]*fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) {
		if i := envelopeMember(k); i >= 0 {
			m[i] = v
		}
	})
	opV := m[emOp]
	if opV == nil || opV.Type() == fastjson.TypeNull {
		return missing("op")
	}
	opB, err := opV.StringBytes()
	if err != nil {
		return mismatch("op must be a string, got %s", opV.Type()).at("op")
	}
	if len(opB) != 1 || !strings.Contains("cudrtm", string(opB)) {
		return newConvErr(ErrUnknownOp, "unknown op %q", opB).at("op")
	}
	ev.Op = Op(opB[0])

	srcV := m[emSource]
	if srcV == nil || srcV.Type() == fastjson.TypeNull {
		return missing("source")
	}
	src, err := srcV.Object()
	if err != nil {
		return mismatch("source must be an object, got %s", srcV.Type()).at("source")
	}
	if cerr := c.source(src, cs.source, ev); cerr != nil {
		return cerr.at("source")
	}
	ev.Entity = ev.Source.Table

	if ev.Op != OpTruncate && ev.Op != OpMessage {
		var cerr *convErr
		if ev.Before, cerr = c.state(m[emBefore], cs.before); cerr != nil {
			return cerr.at("before")
		}
		if ev.After, cerr = c.state(m[emAfter], cs.after); cerr != nil {
			return cerr.at("after")
		}
		if cerr := checkSides(ev.Op, ev.Before, ev.After); cerr != nil {
			return cerr
		}
		ev.Changed = c.changed(ev.Before, ev.After)
	}

	if ev.OccurredAt.IsZero() {
		t, cerr := timestampFrom(m[emTsNs], m[emTsUs], m[emTsMs])
		if cerr != nil {
			return cerr
		}
		ev.OccurredAt = t
	}

	if tv := m[emTransaction]; tv != nil && tv.Type() != fastjson.TypeNull {
		if cerr := c.transaction(tv, &blk.tx); cerr != nil {
			return cerr.at("transaction")
		}
		ev.Transaction = &blk.tx
	}
	if ev.Op == OpMessage {
		mv := m[emMessage]
		if mv == nil || mv.Type() == fastjson.TypeNull {
			return missing("message")
		}
		msg, cerr := c.message(mv)
		if cerr != nil {
			return cerr.at("message")
		}
		ev.Message = msg
		if ev.Entity == "" {
			ev.Entity = msg.Prefix
		}
	}
	return nil
}

// checkSides applies the rule of which row states each op carries:
//
//   - c (create) and r (snapshot read): an after-state, and no before;
//   - u (update): an after-state; the before-state is optional (it needs
//     REPLICA IDENTITY FULL in PostgreSQL, pre-images in MongoDB);
//   - d (delete): no after-state; the before-state is optional (MongoDB
//     without pre-images sends none; the record key names the row).
//
// Anything else cannot be applied as what its op says, so it is
// malformed: a permanent *DecodeError, never a silent drop or an empty
// change. t and m carry no rows and are not checked.
func checkSides(op Op, before, after Row) *convErr {
	switch op {
	case OpCreate, OpRead, OpUpdate:
		if after == nil {
			what := "a create"
			switch op {
			case OpRead:
				what = "a snapshot read"
			case OpUpdate:
				what = "an update"
			}
			return newConvErr(ErrMissingField, "op %q (%s) needs an after-state, but after is null or absent", string(rune(op)), what).at("after")
		}
		if before != nil && op != OpUpdate {
			return malformed("op %q has a before-state; only updates and deletes have one", string(rune(op))).at("before")
		}
	case OpDelete:
		if after != nil {
			return malformed("op \"d\" (a delete) has an after-state; a delete has none").at("after")
		}
	}
	return nil
}

// state converts a before or after value. MongoDB writes these as a JSON
// string holding the document (extended JSON); it is parsed into a Row.
func (c *converter) state(v *fastjson.Value, s *schemaNode) (Row, *convErr) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil, nil
	}
	if v.Type() == fastjson.TypeString && (s == nil || s.typ == tString) {
		b, _ := v.StringBytes()
		if string(b) == UnavailablePlaceholder {
			return nil, nil
		}
		doc, err := c.mongo.ParseBytes(b)
		if err != nil {
			return nil, malformed("document string is not JSON: %s", syntaxReason(b, err))
		}
		o, err := doc.Object()
		if err != nil {
			return nil, mismatch("document string must hold an object, got %s", doc.Type())
		}
		return c.extendedRow(o)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, mismatch("expected struct, got %s", v.Type())
	}
	if s != nil && s.typ != tStruct {
		return nil, mismatch("schema declares %s, got an object", s.typ)
	}
	o, _ := v.Object()
	return c.row(o, s)
}

// extendedRow converts a MongoDB extended-JSON document. Single-key wrapper
// objects become plain values: {"$oid": h} the hex string, {"$numberLong"},
// {"$numberInt"}, {"$numberDecimal"} and {"$numberDouble"} a Number, and
// {"$date"} a time.Time; other wrappers stay Rows.
func (c *converter) extendedRow(o *fastjson.Object) (Row, *convErr) {
	out := c.a.row(o.Len())
	var cerr *convErr
	o.Visit(func(key []byte, v *fastjson.Value) {
		if cerr != nil {
			return
		}
		name := c.str(key)
		x, err := c.extended(v)
		if err != nil {
			cerr = err.at(name)
			return
		}
		if j := indexOf(out, name); j >= 0 {
			out[j].Value = x // the last of a repeated key counts
			return
		}
		out = append(out, Field{Name: name, Value: x})
	})
	if cerr != nil {
		return nil, cerr
	}
	return out, nil
}

func (c *converter) extended(v *fastjson.Value) (any, *convErr) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		if o.Len() == 1 {
			if x, ok := c.extendedScalar(o); ok {
				return x, nil
			}
		}
		return c.extendedRow(o)
	case fastjson.TypeArray:
		arr, _ := v.Array()
		out := make([]any, len(arr))
		for i, e := range arr {
			x, err := c.extended(e)
			if err != nil {
				return nil, err.atIndex(i)
			}
			out[i] = x
		}
		return out, nil
	}
	return c.schemaless(v)
}

func (c *converter) extendedScalar(o *fastjson.Object) (any, bool) {
	var out any
	ok := false
	o.Visit(func(key []byte, v *fastjson.Value) {
		switch string(key) {
		case "$oid":
			if b, err := v.StringBytes(); err == nil {
				out, ok = string(b), true
			}
		case "$numberLong", "$numberInt", "$numberDecimal", "$numberDouble":
			if b, err := v.StringBytes(); err == nil && validNumber(b) {
				out, ok = Number(b), true
			}
		case "$date":
			switch v.Type() {
			case fastjson.TypeNumber:
				if ms, err := v.Int64(); err == nil {
					out, ok = time.UnixMilli(ms).UTC(), true
				}
			case fastjson.TypeObject:
				if b := v.GetStringBytes("$numberLong"); b != nil {
					if ms, err := fastjson.ParseBytes(b); err == nil {
						if n, err := ms.Int64(); err == nil {
							out, ok = time.UnixMilli(n).UTC(), true
						}
					}
				}
			case fastjson.TypeString:
				b, _ := v.StringBytes()
				if t, err := time.Parse(time.RFC3339Nano, string(b)); err == nil {
					out, ok = t, true
				}
			}
		}
	})
	return out, ok
}

// Source fields each connector uses as its position, in order.
var positionFields = map[string][]string{
	"postgresql": {"lsn", "txId", "sequence"},
	"mysql":      {"file", "pos", "row", "gtid"},
	"sqlserver":  {"change_lsn", "commit_lsn", "event_serial_no"},
	"mongodb":    {"ts_ms", "ord", "h", "stxnid", "lsid", "txnNumber", "resume_token"},
	"oracle":     {"scn", "commit_scn", "lcr_position"},
	"db2":        {"change_lsn", "commit_lsn"},
}

// source reads the source block into ev.Source, ev.Position and
// ev.OccurredAt.
func (c *converter) source(o *fastjson.Object, s *schemaNode, ev *Event) *convErr {
	src := &ev.Source
	// One pass over the block finds the members read below (the last of
	// duplicates, as everywhere in the decoder).
	var vals [skAll]*fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) {
		if i := sourceKey(k); i >= 0 {
			vals[i] = v
		}
	})
	var cerr *convErr
	get := func(i int, name string) string {
		v := vals[i]
		if v == nil || cerr != nil {
			return ""
		}
		switch v.Type() {
		case fastjson.TypeString:
			b, _ := v.StringBytes()
			return c.str(b)
		case fastjson.TypeNull:
			return ""
		case fastjson.TypeTrue:
			return "true"
		case fastjson.TypeFalse:
			return "false"
		}
		cerr = mismatch("expected string, got %s", v.Type()).at(name)
		return ""
	}
	src.Connector = get(skConnector, "connector")
	src.Name = get(skName, "name")
	src.Database = get(skDB, "db")
	src.Schema = get(skSchema, "schema")
	src.Table = get(skTable, "table")
	if src.Table == "" {
		src.Table = get(skCollection, "collection")
	}
	src.Snapshot = get(skSnapshot, "snapshot")
	if cerr != nil {
		return cerr
	}

	if names, ok := positionFields[src.Connector]; ok {
		pos := c.a.row(len(names))[:len(names)]
		for i, name := range names {
			pos[i].Name = name
			v := vals[positionKey(name)]
			if v == nil {
				continue
			}
			x, err := c.value(v, s.fieldNode(name))
			if err != nil {
				return err.at(name)
			}
			pos[i].Value = x
		}
		ev.Position = pos
	}

	t, err := timestampFrom(vals[skTsNs], vals[skTsUs], vals[skTsMs])
	if err != nil {
		return err
	}
	ev.OccurredAt = t
	return nil
}

// The source block members source reads in its one pass.
const (
	skConnector = iota
	skName
	skDB
	skSchema
	skTable
	skCollection
	skSnapshot
	skTsNs
	skTsUs
	skTsMs
	skN
)

// The position fields of positionFields, read in the same pass as the
// members above; MongoDB's ts_ms is skTsMs.
const (
	skLsn = skN + iota
	skTxID
	skSequence
	skFile
	skPos
	skRow
	skGtid
	skChangeLsn
	skCommitLsn
	skEventSerialNo
	skOrd
	skH
	skStxnid
	skLsid
	skTxnNumber
	skResumeToken
	skScn
	skCommitScn
	skLcrPosition
	skAll
)

func sourceKey(k []byte) int {
	switch string(k) {
	case "connector":
		return skConnector
	case "name":
		return skName
	case "db":
		return skDB
	case "schema":
		return skSchema
	case "table":
		return skTable
	case "collection":
		return skCollection
	case "snapshot":
		return skSnapshot
	case "ts_ns":
		return skTsNs
	case "ts_us":
		return skTsUs
	case "ts_ms":
		return skTsMs
	}
	return positionKey(string(k))
}

// positionKey is the index in source's pass of a position field of
// positionFields, or -1.
func positionKey(k string) int {
	switch k {
	case "lsn":
		return skLsn
	case "txId":
		return skTxID
	case "sequence":
		return skSequence
	case "file":
		return skFile
	case "pos":
		return skPos
	case "row":
		return skRow
	case "gtid":
		return skGtid
	case "change_lsn":
		return skChangeLsn
	case "commit_lsn":
		return skCommitLsn
	case "event_serial_no":
		return skEventSerialNo
	case "ts_ms":
		return skTsMs
	case "ord":
		return skOrd
	case "h":
		return skH
	case "stxnid":
		return skStxnid
	case "lsid":
		return skLsid
	case "txnNumber":
		return skTxnNumber
	case "resume_token":
		return skResumeToken
	case "scn":
		return skScn
	case "commit_scn":
		return skCommitScn
	case "lcr_position":
		return skLcrPosition
	}
	return -1
}

// timestampFrom reads ts_ns, ts_us or ts_ms, most precise first, given
// the three members' values (nil when absent). The zero time means none
// is present.
func timestampFrom(ns, us, ms *fastjson.Value) (time.Time, *convErr) {
	for _, f := range [...]struct {
		name string
		unit int64
		v    *fastjson.Value
	}{{"ts_ns", 1, ns}, {"ts_us", 1e3, us}, {"ts_ms", 1e6, ms}} {
		v := f.v
		if v == nil || v.Type() == fastjson.TypeNull {
			continue
		}
		n, err := v.Int64()
		if err != nil {
			return time.Time{}, mismatch("expected int64, got %s", v.Type()).at(f.name)
		}
		switch f.unit {
		case 1:
			return time.Unix(0, n).UTC(), nil
		case 1e3:
			return time.UnixMicro(n).UTC(), nil
		default:
			return time.UnixMilli(n).UTC(), nil
		}
	}
	return time.Time{}, nil
}

func (c *converter) transaction(v *fastjson.Value, tx *Transaction) *convErr {
	o, err := v.Object()
	if err != nil {
		return mismatch("expected struct, got %s", v.Type())
	}
	// One pass finds the three members (the last of duplicates counts).
	var idV, totalV, dcoV *fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "id":
			idV = v
		case "total_order":
			totalV = v
		case "data_collection_order":
			dcoV = v
		}
	})
	if idV == nil {
		return missing("id")
	}
	id, err := idV.StringBytes()
	if err != nil {
		return mismatch("expected string, got %s", idV.Type()).at("id")
	}
	tx.ID = c.copyStr(id)
	for _, f := range [...]struct {
		name string
		dst  *int64
		fv   *fastjson.Value
	}{{"total_order", &tx.TotalOrder, totalV}, {"data_collection_order", &tx.DataCollectionOrder, dcoV}} {
		fv := f.fv
		if fv == nil || fv.Type() == fastjson.TypeNull {
			continue
		}
		n, err := fv.Int64()
		if err != nil {
			return mismatch("expected int64, got %s", fv.Type()).at(f.name)
		}
		*f.dst = n
	}
	return nil
}

func (c *converter) message(v *fastjson.Value) (*Message, *convErr) {
	o, err := v.Object()
	if err != nil {
		return nil, mismatch("expected struct, got %s", v.Type())
	}
	m := &Message{}
	if pv := lastGet(o, "prefix"); pv != nil && pv.Type() != fastjson.TypeNull {
		b, err := pv.StringBytes()
		if err != nil {
			return nil, mismatch("expected string, got %s", pv.Type()).at("prefix")
		}
		m.Prefix = string(b)
	}
	if cv := lastGet(o, "content"); cv != nil && cv.Type() != fastjson.TypeNull {
		b, err := cv.StringBytes()
		if err != nil {
			return nil, mismatch("expected base64 bytes, got %s", cv.Type()).at("content")
		}
		raw, err := base64.StdEncoding.DecodeString(string(b))
		if err != nil {
			return nil, mismatch("invalid base64: %v", err).at("content")
		}
		m.Content = raw
	}
	return m, nil
}

// fillTombstone fills a tombstone's identity from its topic name, read
// by ParseTopic in the shape of connector (see Options.Connector); an
// unknown connector is read as PostgreSQL's prefix.schema.table.
func fillTombstone(ev *Event, topic, connector string) {
	ev.Tombstone = true
	ev.Op = OpDelete
	tn, err := ParseTopic(topic, connector)
	src := &ev.Source
	if !errors.Is(err, ErrUnknownConnector) {
		src.Connector = connector
	}
	src.Name, src.Database, src.Schema, src.Table = tn.Prefix, tn.Database, tn.Schema, tn.Table
	ev.Entity = src.Table
}

// lastGet is o.Get(key) with the decoder's rule for a key given twice:
// the last one counts, as in most JSON parsers (fastjson's Get returns
// the first).
func lastGet(o *fastjson.Object, key string) *fastjson.Value {
	var out *fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) {
		if string(k) == key {
			out = v
		}
	})
	return out
}
