package schemas

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/topology"
)

// EventSchema is event.avsc: the Avro schema of a typed change event.
//
//go:embed event.avsc
var EventSchema string

// EventRecordName is the full name of the record in EventSchema, used by
// the record and topic-record subject strategies.
const EventRecordName = "io.cdcsync.Event"

// Header names of the schema registration an Avro output record was
// written with.
const (
	HeaderSchemaID      = "cdcsync.schema.id"
	HeaderSchemaVersion = "cdcsync.schema.version"
	HeaderSubject       = "cdcsync.schema.subject"
)

// Header is a record header, as Kafka carries it.
type Header struct {
	Key   string
	Value []byte
}

// EncoderOptions configures an Encoder.
type EncoderOptions struct {
	// Strategy names the subject of each output topic (default topic).
	Strategy topology.SubjectStrategy
	// NoRegister makes a schema missing from its subject an error
	// (ErrNotRegistered) instead of registering it after the compatibility
	// check.
	NoRegister bool
}

// Encoder writes typed events as Confluent-framed Avro of EventSchema.
// The schema's registration is looked up, or made, once per subject (on
// Prepare or on the first event for a topic) and cached. It is safe for
// concurrent use.
type Encoder struct {
	c    *Client
	opts EncoderOptions

	mu   sync.RWMutex
	regs map[string]*registration // by topic
}

type registration struct {
	Registered
	headers []Header // shared, read-only
	header  [cdc.WireHeaderSize]byte
}

// NewEncoder returns an Encoder registering through c.
func NewEncoder(c *Client, o EncoderOptions) *Encoder {
	return &Encoder{c: c, opts: o, regs: map[string]*registration{}}
}

// Prepare registers (or finds) the event schema for each topic, so that
// problems show at start: an *IncompatibleError or ErrNotRegistered is a
// configuration problem (stop), an error wrapping
// cdc.ErrRegistryUnavailable is transient (retry).
func (e *Encoder) Prepare(topics ...string) error {
	for _, t := range topics {
		if _, err := e.registration(t); err != nil {
			return err
		}
	}
	return nil
}

// Registration returns the subject, ID and version the topic's records
// are written with, registering on first use.
func (e *Encoder) Registration(topic string) (Registered, error) {
	r, err := e.registration(topic)
	if err != nil {
		return Registered{}, err
	}
	return r.Registered, nil
}

func (e *Encoder) registration(topic string) (*registration, error) {
	e.mu.RLock()
	r := e.regs[topic]
	e.mu.RUnlock()
	if r != nil {
		return r, nil
	}
	subject := Subject(e.opts.Strategy, topic, EventRecordName)
	var reg Registered
	var err error
	if e.opts.NoRegister {
		reg, err = e.c.Lookup(subject, EventSchema)
		if err != nil && errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w: subject %s (registration is disabled)", ErrNotRegistered, subject)
		}
	} else {
		reg, err = e.c.Register(subject, EventSchema)
	}
	if err != nil {
		return nil, err
	}
	r = &registration{Registered: reg}
	copy(r.header[:], cdc.AppendWireHeader(nil, reg.ID))
	r.headers = []Header{
		{HeaderSchemaID, []byte(strconv.Itoa(reg.ID))},
		{HeaderSchemaVersion, []byte(strconv.Itoa(reg.Version))},
		{HeaderSubject, []byte(reg.Subject)},
	}
	e.mu.Lock()
	e.regs[topic] = r
	e.mu.Unlock()
	return r, nil
}

// Encode writes ev for topic: the wire-format header with the schema ID,
// then the Avro body of EventSchema, and the schema headers (shared and
// read-only: copy before changing). fields are the owned, changed fields
// written under "fields" and "before", as in the JSON sink. A tombstone
// stays a tombstone: a nil value and no headers, no framing.
func (e *Encoder) Encode(topic string, ev *cdc.Event, fields []string) ([]byte, []Header, error) {
	if ev.Tombstone {
		return nil, nil, nil
	}
	r, err := e.registration(topic)
	if err != nil {
		return nil, nil, err
	}
	out := AppendEvent(append(make([]byte, 0, 512), r.header[:]...), ev, fields)
	return out, r.headers, nil
}

// AppendEvent appends the Avro body of ev (EventSchema) to dst, without
// framing.
func AppendEvent(dst []byte, ev *cdc.Event, fields []string) []byte {
	dst = appendString(dst, ev.ID.String())
	dst = appendString(dst, ev.Type)
	dst = appendString(dst, string(rune(ev.Op)))
	dst = appendString(dst, ev.Entity)
	dst = appendString(dst, ev.SourceSystem)
	dst = appendRowMap(dst, ev.Key, nil)
	if ev.Op != cdc.OpDelete && ev.After != nil {
		dst = appendLong(dst, 1)
		dst = appendRowMap(dst, ev.After, fields)
	} else {
		dst = appendLong(dst, 0)
	}
	if ev.Before != nil && len(fields) > 0 {
		dst = appendLong(dst, 1)
		dst = appendRowMap(dst, ev.Before, fields)
	} else {
		dst = appendLong(dst, 0)
	}
	if len(ev.Position) > 0 {
		dst = appendLong(dst, 1)
		dst = appendRowMap(dst, ev.Position, nil)
	} else {
		dst = appendLong(dst, 0)
	}
	if !ev.OccurredAt.IsZero() {
		dst = appendLong(dst, 1)
		dst = appendLong(dst, ev.OccurredAt.UnixMicro())
	} else {
		dst = appendLong(dst, 0)
	}
	if ev.Schema.Version != 0 {
		dst = appendLong(dst, 1)
		dst = appendLong(dst, int64(ev.Schema.Version))
	} else {
		dst = appendLong(dst, 0)
	}
	if ev.Message != nil {
		dst = appendLong(dst, 1)
		dst = appendString(dst, ev.Message.Prefix)
		dst = appendBytes(dst, ev.Message.Content)
	} else {
		dst = appendLong(dst, 0)
	}
	return dst
}

// appendRowMap writes row as an Avro map of Values: every field, or only
// the named ones in the order of names when names is not nil.
func appendRowMap(dst []byte, row cdc.Row, names []string) []byte {
	n := 0
	if names == nil {
		n = len(row)
	} else {
		for i, name := range names {
			if _, ok := row.Get(name); ok && !repeated(names, i) {
				n++
			}
		}
	}
	if n > 0 {
		dst = appendLong(dst, int64(n))
		if names == nil {
			for i := range row {
				dst = appendString(dst, row[i].Name)
				dst = appendValue(dst, row[i].Value)
			}
		} else {
			for i, name := range names {
				if v, ok := row.Get(name); ok && !repeated(names, i) {
					dst = appendString(dst, name)
					dst = appendValue(dst, v)
				}
			}
		}
	}
	return append(dst, 0)
}

// Indexes of the Value union in event.avsc: the branch a row value is
// written in. processor/apply reads sync records back by the same
// indexes, so they are exported from this one place.
const (
	ValueNull = iota
	ValueBoolean
	ValueLong
	ValueDouble
	ValueString
	ValueBytes
	ValueDecimal
	ValueDate
	ValueTimeOfDay
	ValueTimestamp
	ValueJSON
	ValueUUID
	ValueEnum
	ValueUnavailable
	ValueRow
	ValueList
	ValueMap
	ValueLocalTimestamp
	ValueInfinity
)

// appendValue writes one Value union.
func appendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return appendLong(dst, ValueNull)
	case bool:
		dst = appendLong(dst, ValueBoolean)
		if x {
			return append(dst, 1)
		}
		return append(dst, 0)
	case int64:
		return appendLong(appendLong(dst, ValueLong), x)
	case int:
		return appendLong(appendLong(dst, ValueLong), int64(x))
	case int32:
		return appendLong(appendLong(dst, ValueLong), int64(x))
	case float64:
		return binary.LittleEndian.AppendUint64(appendLong(dst, ValueDouble), math.Float64bits(x))
	case float32:
		return binary.LittleEndian.AppendUint64(appendLong(dst, ValueDouble), math.Float64bits(float64(x)))
	case string:
		return appendString(appendLong(dst, ValueString), x)
	case []byte:
		return appendBytes(appendLong(dst, ValueBytes), x)
	case cdc.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return appendLong(appendLong(dst, ValueLong), n)
		}
		if d, ok := numberDecimal(string(x)); ok {
			return appendDecimal(dst, d)
		}
		return appendString(appendLong(dst, ValueString), string(x))
	case cdc.Decimal:
		return appendDecimal(dst, x)
	case *big.Int:
		if x == nil {
			return appendLong(dst, ValueNull)
		}
		return appendDecimal(dst, cdc.Decimal{Unscaled: x})
	case cdc.Date:
		return appendLong(appendLong(dst, ValueDate), x.EpochDays())
	case cdc.TimeOfDay:
		return appendLong(appendLong(dst, ValueTimeOfDay), int64(x))
	case time.Time:
		dst = appendLong(appendLong(dst, ValueTimestamp), x.Unix())
		return appendLong(dst, int64(x.Nanosecond()))
	case cdc.LocalDateTime:
		t := x.Time()
		dst = appendLong(appendLong(dst, ValueLocalTimestamp), t.Unix())
		return appendLong(dst, int64(t.Nanosecond()))
	case cdc.Infinity:
		dst = appendLong(dst, ValueInfinity)
		if x < 0 {
			return appendLong(dst, 1) // MINUS_INFINITY
		}
		return appendLong(dst, 0) // INFINITY
	case cdc.JSON:
		return appendString(appendLong(dst, ValueJSON), string(x))
	case cdc.UUID:
		return append(appendLong(dst, ValueUUID), x[:]...)
	case cdc.Enum:
		return appendString(appendLong(dst, ValueEnum), string(x))
	case cdc.Unavailable:
		return appendLong(appendLong(dst, ValueUnavailable), 0)
	case cdc.Row:
		dst = appendLong(dst, ValueRow)
		if len(x) > 0 {
			dst = appendLong(dst, int64(len(x)))
			for i := range x {
				dst = appendString(dst, x[i].Name)
				dst = appendValue(dst, x[i].Value)
			}
		}
		return append(dst, 0)
	case []any:
		dst = appendLong(dst, ValueList)
		if len(x) > 0 {
			dst = appendLong(dst, int64(len(x)))
			for _, e := range x {
				dst = appendValue(dst, e)
			}
		}
		return append(dst, 0)
	case map[string]any:
		// Sorted, so the same map is always the same bytes.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = appendLong(dst, ValueMap)
		if len(x) > 0 {
			dst = appendLong(dst, int64(len(x)))
			for _, k := range keys {
				dst = appendString(dst, k)
				dst = appendValue(dst, x[k])
			}
		}
		return append(dst, 0)
	}
	// A type the decoder does not produce: its JSON text, as the JSON
	// sink writes it, never Go's %v.
	return appendString(appendLong(dst, ValueString), string(cdc.AppendJSONValue(nil, v)))
}

// repeated reports whether names[i] occurs before i: a map never repeats
// a key.
func repeated(names []string, i int) bool {
	for _, n := range names[:i] {
		if n == names[i] {
			return true
		}
	}
	return false
}

func appendDecimal(dst []byte, d cdc.Decimal) []byte {
	dst = appendLong(dst, ValueDecimal)
	dst = appendBytes(dst, twosComplement(d.Unscaled))
	return appendLong(dst, int64(d.Scale))
}

// twosComplement is the big-endian two's-complement form of n, as Avro's
// decimal and Connect's Decimal write it.
func twosComplement(n *big.Int) []byte {
	if n == nil || n.Sign() == 0 {
		return []byte{0}
	}
	if n.Sign() > 0 {
		b := n.Bytes()
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n - 1, inverted, with room for the sign bit.
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

// numberDecimal parses the text of a JSON number exactly.
func numberDecimal(s string) (cdc.Decimal, bool) {
	mant, exp := s, 0
	for i := 0; i < len(s); i++ {
		if s[i] == 'e' || s[i] == 'E' {
			e, err := strconv.Atoi(s[i+1:])
			if err != nil || e < -1000 || e > 1000 {
				return cdc.Decimal{}, false
			}
			mant, exp = s[:i], e
			break
		}
	}
	digits := make([]byte, 0, len(mant))
	for i := 0; i < len(mant); i++ {
		switch c := mant[i]; {
		case c == '.':
			exp -= len(mant) - i - 1
		case c == '-' && i == 0, c >= '0' && c <= '9':
			digits = append(digits, c)
		default:
			return cdc.Decimal{}, false
		}
	}
	n, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		return cdc.Decimal{}, false
	}
	if exp > 0 {
		n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
		exp = 0
	}
	return cdc.Decimal{Unscaled: n, Scale: int32(-exp)}, true
}

func appendLong(dst []byte, n int64) []byte {
	return binary.AppendUvarint(dst, uint64(n<<1)^uint64(n>>63))
}

func appendString(dst []byte, s string) []byte {
	return append(appendLong(dst, int64(len(s))), s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	return append(appendLong(dst, int64(len(b))), b...)
}
