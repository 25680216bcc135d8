package apply

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// Errors of Reader.Read.
var (
	// ErrTombstone is returned for a record with no value: the delete
	// before it already carries the change, so it is skipped.
	ErrTombstone = errors.New("apply: tombstone")
	// ErrMessage is returned for a logical decoding message (op m), which
	// no target applies; it is skipped.
	ErrMessage = errors.New("apply: logical decoding message")
	// ErrBadRecord is wrapped by every permanent read failure: the bytes
	// are not a sync record. The record goes to the DLQ, stage decode.
	ErrBadRecord = errors.New("apply: not a cdcsync sync record")
)

// WriterSchemas fetches a writer schema by its registry ID
// (schemas.Client). An error wrapping cdc.ErrRegistryUnavailable is
// transient.
type WriterSchemas interface {
	WriterSchema(id int) (string, error)
}

// Reader reads cdcsync's sync records (source.format cdcsync-json or
// cdcsync-avro) as Events. It is safe for concurrent use.
type Reader struct {
	format topology.Format
	reg    WriterSchemas
	ok     sync.Map // schema ID -> error (nil: an io.cdcsync.Event schema)
}

// NewReader returns a Reader of format; reg is needed for cdcsync-avro.
func NewReader(format topology.Format, reg WriterSchemas) (*Reader, error) {
	switch format {
	case topology.CdcsyncJSON:
	case topology.CdcsyncAvro:
		if reg == nil {
			return nil, errors.New("apply: cdcsync-avro needs a schema registry")
		}
	default:
		return nil, fmt.Errorf("apply: source.format %v is not a sync record format", format)
	}
	return &Reader{format: format, reg: reg}, nil
}

// Read decodes one record's value. It returns ErrTombstone or ErrMessage
// for records to skip, an error wrapping ErrBadRecord for bytes that are
// not a sync record (permanent), or an error wrapping
// cdc.ErrRegistryUnavailable (transient: read it again later).
func (r *Reader) Read(topic string, partition int32, offset int64, value []byte) (Event, error) {
	ev := Event{Topic: topic, Partition: partition, Offset: offset}
	if value == nil {
		return ev, ErrTombstone
	}
	var err error
	if r.format == topology.CdcsyncAvro {
		err = r.readAvro(value, &ev)
	} else {
		ev.Value = value
		err = readJSON(value, &ev)
	}
	if err != nil {
		return ev, err
	}
	if err := check(&ev); err != nil {
		return ev, err
	}
	if ev.Op == 'm' {
		return ev, ErrMessage
	}
	return ev, nil
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRecord, fmt.Sprintf(format, args...))
}

// check refuses an event that cannot be applied as what it says.
func check(ev *Event) error {
	if len(ev.ID) != 32 {
		return bad("id %q is not 32 hex digits", ev.ID)
	}
	for i := 0; i < len(ev.ID); i++ {
		if c := ev.ID[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return bad("id %q is not 32 lower-case hex digits", ev.ID)
		}
	}
	switch ev.Op {
	case 'c', 'u', 'r':
		if len(ev.Key) == 0 {
			return bad("op %c without a key", ev.Op)
		}
	case 'd':
		if len(ev.Key) == 0 {
			return bad("op d without a key")
		}
		ev.Fields = nil
	case 't', 'm':
	default:
		return bad("op %q is not one of c, u, d, r, t, m", string(ev.Op))
	}
	if ev.Entity == "" {
		return bad("no entity")
	}
	return nil
}

// readJSON reads the sink's JSON value (docs/sink-format.md), keeping each
// value's text as written.
func readJSON(b []byte, ev *Event) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return bad("value is not a JSON object")
	}
	var op string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return bad("value: %v", err)
		}
		k, _ := t.(string)
		switch k {
		case "id":
			err = dec.Decode(&ev.ID)
		case "type":
			err = dec.Decode(&ev.Type)
		case "op":
			err = dec.Decode(&op)
		case "entity":
			err = dec.Decode(&ev.Entity)
		case "source_system":
			err = dec.Decode(&ev.SourceSystem)
		case "key":
			ev.Key, err = jsonObject(dec, k)
		case "fields":
			ev.Fields, err = jsonObject(dec, k)
		case "before":
			ev.Before, err = jsonObject(dec, k)
		case "occurred_at":
			var s string
			if err = dec.Decode(&s); err == nil {
				ev.OccurredAt, err = time.Parse(time.RFC3339Nano, s)
			}
		case "schema_version":
			err = dec.Decode(&ev.SchemaVersion)
		default: // position, message, and fields of later versions
			var raw json.RawMessage
			err = dec.Decode(&raw)
		}
		if err != nil {
			return bad("value.%s: %v", k, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return bad("value: %v", err)
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return bad("value: %d bytes after the JSON object", len(rest))
	}
	if len(op) != 1 {
		return bad("op %q is not one letter", op)
	}
	ev.Op = op[0]
	return nil
}

// jsonObject reads an object of values in order; null is no object.
func jsonObject(dec *json.Decoder, name string) ([]Field, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, nil
	}
	if t != json.Delim('{') {
		return nil, fmt.Errorf("%s is not an object", name)
	}
	out := []Field{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, Field{Name: t.(string), Raw: raw})
	}
	_, err = dec.Token()
	return out, err
}

// readAvro reads the sink's Avro value (schemas/event.avsc) and converts
// every value to the JSON text the JSON sink writes for it.
func (r *Reader) readAvro(b []byte, ev *Event) error {
	id, body, err := cdc.SplitWire(b)
	if err != nil {
		return bad("value: %v", err)
	}
	if err := r.checkSchema(id); err != nil {
		return err
	}
	a := &avroIn{b: body}
	var op string
	ev.ID, ev.Type, op, ev.Entity, ev.SourceSystem = a.str(), a.str(), a.str(), a.str(), a.str()
	ev.Key = a.fieldMap()
	if a.long() == 1 {
		ev.Fields = a.fieldMap()
	}
	if a.long() == 1 {
		ev.Before = a.fieldMap()
	}
	var position []Field
	if a.long() == 1 {
		position = a.fieldMap()
	}
	if a.long() == 1 {
		ev.OccurredAt = time.UnixMicro(a.long()).UTC()
	}
	if a.long() == 1 {
		ev.SchemaVersion = int(a.long())
	}
	var msgPrefix string
	var msgContent []byte
	hasMsg := a.long() == 1
	if hasMsg {
		msgPrefix, msgContent = a.str(), a.bytes()
	}
	if a.err != nil {
		return bad("value (Avro, schema %d): %v", id, a.err)
	}
	if len(a.b) > 0 {
		return bad("value (Avro, schema %d): %d bytes after the event", id, len(a.b))
	}
	if len(op) != 1 {
		return bad("op %q is not one letter", op)
	}
	ev.Op = op[0]
	ev.Value = appendSinkJSON(nil, ev, position, hasMsg, msgPrefix, msgContent)
	return nil
}

// checkSchema accepts a writer schema that is cdcsync's event record. The
// Value union only ever grew at its end, so every version reads with the
// branch numbers of the current one.
func (r *Reader) checkSchema(id int) error {
	if v, ok := r.ok.Load(id); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	text, err := r.reg.WriterSchema(id)
	if err != nil {
		if errors.Is(err, cdc.ErrRegistryUnavailable) {
			return err // transient: not cached
		}
		err = bad("writer schema %d: %v", id, err)
		r.ok.Store(id, err)
		return err
	}
	var s struct {
		Name, Namespace string
		Fields          []struct{ Name string }
	}
	var verr error
	if jerr := json.Unmarshal([]byte(text), &s); jerr != nil {
		verr = bad("writer schema %d is not an Avro record: %v", id, jerr)
	} else if full := s.Namespace + "." + s.Name; s.Name != "io.cdcsync.Event" && full != "io.cdcsync.Event" {
		verr = bad("writer schema %d is %s, not cdcsync's io.cdcsync.Event: the topic does not hold sync records (source.format cdcsync-avro)", id, full)
	} else {
		want := []string{"id", "type", "op", "entity", "source_system", "key", "fields", "before", "position", "occurred_at", "schema_version", "message"}
		for i, f := range s.Fields {
			if i >= len(want) || f.Name != want[i] {
				verr = bad("writer schema %d: io.cdcsync.Event field %d is %q, not %q as this cdcsync reads it", id, i, f.Name, want[min(i, len(want)-1)])
				break
			}
		}
	}
	if verr == nil {
		r.ok.Store(id, nil)
	} else {
		r.ok.Store(id, verr)
	}
	return verr
}

// maxDepth bounds nested rows, lists and maps.
const maxDepth = 64

// avroIn reads Avro binary; the first error sticks and every later read
// returns a zero value.
type avroIn struct {
	b     []byte
	err   error
	depth int
}

func (a *avroIn) fail(format string, args ...any) {
	if a.err == nil {
		a.err = fmt.Errorf(format, args...)
	}
	a.b = nil
}

func (a *avroIn) long() int64 {
	if a.err != nil {
		return 0
	}
	u, n := binary.Uvarint(a.b)
	if n <= 0 || n > 10 {
		a.fail("bad varint")
		return 0
	}
	a.b = a.b[n:]
	return int64(u>>1) ^ -int64(u&1)
}

func (a *avroIn) bytes() []byte {
	n := a.long()
	if a.err != nil {
		return nil
	}
	if n < 0 || n > int64(len(a.b)) {
		a.fail("length %d past the end", n)
		return nil
	}
	out := a.b[:n:n]
	a.b = a.b[n:]
	return out
}

func (a *avroIn) str() string { return string(a.bytes()) }

// count reads an array or map block count (a negative count is followed
// by the block's size in bytes).
func (a *avroIn) count() int64 {
	n := a.long()
	if n < 0 {
		n = -n
		a.long()
	}
	if n > int64(len(a.b)) { // every item takes at least one byte
		a.fail("block of %d items past the end", n)
		return 0
	}
	return n
}

// fieldMap reads a map of Values, in the order written, as Fields.
func (a *avroIn) fieldMap() []Field {
	out := []Field{}
	for n := a.count(); n > 0 && a.err == nil; n = a.count() {
		for ; n > 0 && a.err == nil; n-- {
			name := a.str()
			v := a.value()
			out = append(out, Field{Name: name, Raw: cdc.AppendJSONValue(nil, v)})
		}
	}
	return out
}

// value reads one Value union as the cdc value the sink encoded.
func (a *avroIn) value() any {
	if a.depth++; a.depth > maxDepth {
		a.fail("values nested deeper than %d", maxDepth)
	}
	defer func() { a.depth-- }()
	switch br := a.long(); br {
	case schemas.ValueNull:
		return nil
	case schemas.ValueBoolean:
		if len(a.b) < 1 {
			a.fail("boolean past the end")
			return nil
		}
		v := a.b[0] != 0
		a.b = a.b[1:]
		return v
	case schemas.ValueLong:
		return a.long()
	case schemas.ValueDouble:
		if len(a.b) < 8 {
			a.fail("double past the end")
			return nil
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(a.b))
		a.b = a.b[8:]
		return v
	case schemas.ValueString:
		return a.str()
	case schemas.ValueBytes:
		return bytes.Clone(a.bytes())
	case schemas.ValueDecimal:
		u := a.bytes()
		scale := a.long()
		if scale < math.MinInt32 || scale > math.MaxInt32 {
			a.fail("decimal scale %d", scale)
			return nil
		}
		return cdc.Decimal{Unscaled: fromTwosComplement(u), Scale: int32(scale)}
	case schemas.ValueDate:
		return cdc.DateFromEpochDays(a.long())
	case schemas.ValueTimeOfDay:
		return cdc.TimeOfDay(a.long())
	case schemas.ValueTimestamp:
		s, ns := a.long(), a.long()
		return time.Unix(s, ns).UTC()
	case schemas.ValueJSON:
		return cdc.JSON(a.str())
	case schemas.ValueUUID:
		if len(a.b) < 16 {
			a.fail("uuid past the end")
			return nil
		}
		var u cdc.UUID
		copy(u[:], a.b)
		a.b = a.b[16:]
		return u
	case schemas.ValueEnum:
		return cdc.Enum(a.str())
	case schemas.ValueUnavailable:
		a.long()
		return cdc.Unavailable{}
	case schemas.ValueRow:
		row := cdc.Row{}
		for n := a.count(); n > 0 && a.err == nil; n = a.count() {
			for ; n > 0 && a.err == nil; n-- {
				name := a.str()
				row = append(row, cdc.Field{Name: name, Value: a.value()})
			}
		}
		return row
	case schemas.ValueList:
		list := []any{}
		for n := a.count(); n > 0 && a.err == nil; n = a.count() {
			for ; n > 0 && a.err == nil; n-- {
				list = append(list, a.value())
			}
		}
		return list
	case schemas.ValueMap:
		m := map[string]any{}
		for n := a.count(); n > 0 && a.err == nil; n = a.count() {
			for ; n > 0 && a.err == nil; n-- {
				k := a.str()
				m[k] = a.value()
			}
		}
		return m
	case schemas.ValueLocalTimestamp:
		s, ns := a.long(), a.long()
		return cdc.LocalDateTimeOf(time.Unix(s, ns).UTC())
	case schemas.ValueInfinity:
		if a.long() == 1 {
			return cdc.NegInfinity
		}
		return cdc.PosInfinity
	default:
		a.fail("value union branch %d unknown", br)
		return nil
	}
}

// fromTwosComplement reads a big-endian two's-complement integer.
func fromTwosComplement(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	return n
}

// appendSinkJSON writes an event read from Avro as the JSON sink writes it
// (processor/sink.go appendSinkValue), for an applier that sends the event
// itself, such as the HTTP body.
func appendSinkJSON(dst []byte, ev *Event, position []Field, hasMsg bool, prefix string, content []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = cdc.AppendJSONString(dst, ev.ID)
	dst = append(dst, `,"type":`...)
	dst = cdc.AppendJSONString(dst, ev.Type)
	dst = append(dst, `,"op":`...)
	dst = cdc.AppendJSONString(dst, string(rune(ev.Op)))
	dst = append(dst, `,"entity":`...)
	dst = cdc.AppendJSONString(dst, ev.Entity)
	dst = append(dst, `,"source_system":`...)
	dst = cdc.AppendJSONString(dst, ev.SourceSystem)
	dst = append(dst, `,"key":`...)
	dst = appendFields(dst, ev.Key)
	if ev.Fields != nil {
		dst = append(dst, `,"fields":`...)
		dst = appendFields(dst, ev.Fields)
	}
	if ev.Before != nil {
		dst = append(dst, `,"before":`...)
		dst = appendFields(dst, ev.Before)
	}
	if len(position) > 0 {
		dst = append(dst, `,"position":`...)
		dst = appendFields(dst, position)
	}
	if !ev.OccurredAt.IsZero() {
		dst = append(dst, `,"occurred_at":`...)
		dst = cdc.AppendJSONValue(dst, ev.OccurredAt)
	}
	if ev.SchemaVersion != 0 {
		dst = append(dst, `,"schema_version":`...)
		dst = strconv.AppendInt(dst, int64(ev.SchemaVersion), 10)
	}
	if hasMsg {
		dst = append(dst, `,"message":{"prefix":`...)
		dst = cdc.AppendJSONString(dst, prefix)
		dst = append(dst, `,"content":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, content)
		dst = append(dst, `"}`...)
	}
	return append(dst, '}')
}

func appendFields(dst []byte, fs []Field) []byte {
	dst = append(dst, '{')
	for i, f := range fs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = cdc.AppendJSONString(dst, f.Name)
		dst = append(dst, ':')
		dst = append(dst, f.Raw...)
	}
	return append(dst, '}')
}
