package cdc

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// The Avro fixtures in testdata/avro are made from the JSON envelope
// fixtures in testdata/decode (NAME.env.*), the way Confluent's
// AvroConverter (AvroData.fromConnectSchema) turns a Connect schema into
// Avro: structs become records named after the Connect schema (namespace
// and name split at the last dot, connect.name kept), optional fields
// become ["null", T] unions with default null (or [T, "null"] with the
// field's default), int8 and int16 become int with connect.type, Decimal
// becomes bytes with logicalType decimal and connect.parameters, Connect's
// own Date, Time and Timestamp get Avro logical types, and maps with
// non-string keys become arrays of io.confluent.connect.avro.MapEntry
// records. A record name seen before is referenced by name, as before and
// after share the Value record. Run go test -update to rewrite them.
//
// Files per case: NAME.key.avsc, NAME.value.avsc (writer schemas),
// NAME.key.bin, NAME.value.bin (Confluent wire format with the IDs in
// avroFixtureIDs), NAME.topic, and NAME.golden.json (the decoded event).

// connectAvro converts Connect schemas to Avro, AvroData style.
type connectAvro struct {
	defined map[string]bool
	anon    int
}

func splitName(full string) (ns, name string) {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "", full
}

// schema converts one Connect schema (without its optional wrapper).
func (c *connectAvro) schema(s map[string]any) any {
	typ, _ := s["type"].(string)
	name, _ := s["name"].(string)
	props := map[string]any{}
	if name != "" {
		props["connect.name"] = name
	}
	if v, ok := s["version"]; ok {
		props["connect.version"] = v
	}
	if p, ok := s["parameters"].(map[string]any); ok {
		props["connect.parameters"] = p
	}
	var out map[string]any
	switch typ {
	case "int8", "int16":
		out = map[string]any{"type": "int", "connect.type": typ}
	case "int32":
		out = map[string]any{"type": "int"}
	case "int64":
		out = map[string]any{"type": "long"}
	case "float", "float32":
		out = map[string]any{"type": "float"}
	case "double", "float64":
		out = map[string]any{"type": "double"}
	case "boolean", "string", "bytes":
		out = map[string]any{"type": typ}
	case "array":
		out = map[string]any{"type": "array", "items": c.field(s["items"].(map[string]any))}
	case "map":
		keys := s["keys"].(map[string]any)
		if keys["type"] == "string" {
			out = map[string]any{"type": "map", "values": c.field(s["values"].(map[string]any))}
		} else {
			entry := "io.confluent.connect.avro.MapEntry"
			var items any = entry
			if !c.defined[entry] {
				c.defined[entry] = true
				items = map[string]any{"type": "record", "name": "MapEntry", "namespace": "io.confluent.connect.avro",
					"fields": []any{
						map[string]any{"name": "key", "type": c.field(keys)},
						map[string]any{"name": "value", "type": c.field(s["values"].(map[string]any))},
					}}
			}
			out = map[string]any{"type": "array", "items": items}
		}
	case "struct":
		full := name
		if full == "" {
			c.anon++
			full = "io.confluent.connect.avro.ConnectDefault" + strconv.Itoa(c.anon)
		}
		if c.defined[full] {
			return full
		}
		c.defined[full] = true
		ns, short := splitName(full)
		var fields []any
		for _, f := range s["fields"].([]any) {
			fm := f.(map[string]any)
			af := map[string]any{"name": fm["field"], "type": c.field(fm)}
			if fm["optional"] == true {
				if d, ok := fm["default"]; ok && d != nil {
					af["default"] = d
				} else {
					af["default"] = nil
				}
			}
			fields = append(fields, af)
		}
		out = map[string]any{"type": "record", "name": short, "fields": fields}
		if ns != "" {
			out["namespace"] = ns
		}
	default:
		panic("unknown connect type " + typ)
	}
	for k, v := range props {
		out[k] = v
	}
	if len(out) == 1 {
		return out["type"] // a plain primitive is written as its name
	}
	switch name {
	case "org.apache.kafka.connect.data.Decimal":
		p := s["parameters"].(map[string]any)
		scale, _ := strconv.Atoi(p["scale"].(string))
		out["logicalType"] = "decimal"
		out["scale"] = scale
		if prec, ok := p["connect.decimal.precision"].(string); ok {
			n, _ := strconv.Atoi(prec)
			out["precision"] = n
		}
	case "org.apache.kafka.connect.data.Date":
		out["logicalType"] = "date"
	case "org.apache.kafka.connect.data.Time":
		out["logicalType"] = "time-millis"
	case "org.apache.kafka.connect.data.Timestamp":
		out["logicalType"] = "timestamp-millis"
	}
	return out
}

// field converts a schema with its optional wrapper.
func (c *connectAvro) field(s map[string]any) any {
	t := c.schema(s)
	if s["optional"] != true {
		return t
	}
	if d, ok := s["default"]; ok && d != nil {
		return []any{t, "null"}
	}
	return []any{"null", t}
}

// encodeConnect writes payload v of Connect schema s as Avro binary, in
// the layout schema and field produce.
func encodeConnect(t testing.TB, dst []byte, s map[string]any, v any) []byte {
	if s["optional"] == true {
		nullFirst := true
		if d, ok := s["default"]; ok && d != nil {
			nullFirst = false
		}
		isNull := v == nil
		idx := 0
		if isNull != nullFirst {
			idx = 1
		}
		dst = appendZigzag(dst, int64(idx))
		if isNull {
			return dst
		}
	} else if v == nil {
		t.Fatalf("null for required %v", s)
	}
	switch s["type"] {
	case "int8", "int16", "int32", "int64":
		n, err := v.(json.Number).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return appendZigzag(dst, n)
	case "float", "float32":
		f := numberOrSpecial(t, v)
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f)))
	case "double", "float64":
		f := numberOrSpecial(t, v)
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	case "boolean":
		if v.(bool) {
			return append(dst, 1)
		}
		return append(dst, 0)
	case "string":
		return appendAvroBytes(dst, []byte(v.(string)))
	case "bytes":
		raw, err := base64.StdEncoding.DecodeString(v.(string))
		if err != nil {
			t.Fatal(err)
		}
		return appendAvroBytes(dst, raw)
	case "array":
		arr := v.([]any)
		if len(arr) > 0 {
			dst = appendZigzag(dst, int64(len(arr)))
			for _, e := range arr {
				dst = encodeConnect(t, dst, s["items"].(map[string]any), e)
			}
		}
		return append(dst, 0)
	case "map":
		m := v.(map[string]any)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 0 {
			dst = appendZigzag(dst, int64(len(keys)))
			for _, k := range keys {
				dst = appendAvroBytes(dst, []byte(k))
				dst = encodeConnect(t, dst, s["values"].(map[string]any), m[k])
			}
		}
		return append(dst, 0)
	case "struct":
		m := v.(map[string]any)
		for _, f := range s["fields"].([]any) {
			fm := f.(map[string]any)
			dst = encodeConnect(t, dst, fm, m[fm["field"].(string)])
		}
		return dst
	}
	t.Fatalf("cannot encode %v", s["type"])
	return nil
}

func numberOrSpecial(t testing.TB, v any) float64 {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			t.Fatal(err)
		}
		return f
	case string:
		switch x {
		case "NaN":
			return math.NaN()
		case "Infinity":
			return math.Inf(1)
		case "-Infinity":
			return math.Inf(-1)
		}
	}
	t.Fatalf("not a number: %v", v)
	return 0
}

func appendZigzag(dst []byte, n int64) []byte {
	return binary.AppendUvarint(dst, uint64(n<<1)^uint64(n>>63))
}

func appendAvroBytes(dst, b []byte) []byte {
	return append(appendZigzag(dst, int64(len(b))), b...)
}

func appendWire(id int, body []byte) []byte {
	return append(AppendWireHeader(nil, id), body...)
}

// envelopeParts reads a JSON converter {schema, payload} document.
func envelopeParts(t testing.TB, doc []byte) (map[string]any, any) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var env struct {
		Schema  map[string]any
		Payload any
	}
	if err := d.Decode(&env); err != nil {
		t.Fatal(err)
	}
	return env.Schema, env.Payload
}

// avroFixture is one generated Avro record.
type avroFixture struct {
	name                 string
	topic                string
	keySchema, valSchema string
	key, value           []byte // wire format
	keyID, valID         int
}

// avroFixtureIDs gives each case's key and value schema its registry ID.
func avroFixtureIDs(i int) (key, value int) { return 100 + 2*i, 101 + 2*i }

// makeAvroFixture converts the JSON envelope fixture r.
func makeAvroFixture(t testing.TB, i int, r record) avroFixture {
	f := avroFixture{name: strings.TrimSuffix(r.name, ".env"), topic: r.topic}
	f.keyID, f.valID = avroFixtureIDs(i)
	part := func(doc []byte) (string, []byte) {
		s, payload := envelopeParts(t, doc)
		c := &connectAvro{defined: map[string]bool{}}
		avsc, err := json.Marshal(c.field(s))
		if err != nil {
			t.Fatal(err)
		}
		return string(avsc), encodeConnect(t, nil, s, payload)
	}
	if len(r.key) > 0 {
		var body []byte
		f.keySchema, body = part(r.key)
		f.key = appendWire(f.keyID, body)
	}
	if len(r.value) > 0 {
		var body []byte
		f.valSchema, body = part(r.value)
		f.value = appendWire(f.valID, body)
	}
	return f
}

const avroDir = "testdata/avro"

func writeAvroFixture(t testing.TB, f avroFixture) {
	base := filepath.Join(avroDir, f.name)
	write := func(suffix string, b []byte) {
		if len(b) == 0 {
			return
		}
		if err := os.WriteFile(base+suffix, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".topic", []byte(f.topic))
	write(".key.avsc", indentJSON(t, f.keySchema))
	write(".value.avsc", indentJSON(t, f.valSchema))
	write(".key.bin", f.key)
	write(".value.bin", f.value)
}

func indentJSON(t testing.TB, s string) []byte {
	if s == "" {
		return nil
	}
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		t.Fatal(err)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// loadAvroFixtures reads testdata/avro, in name order.
func loadAvroFixtures(t testing.TB) []avroFixture {
	t.Helper()
	topics, err := filepath.Glob(filepath.Join(avroDir, "*.topic"))
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) == 0 {
		t.Fatal("no fixtures in testdata/avro (run go test -update)")
	}
	sort.Strings(topics)
	var out []avroFixture
	for _, tp := range topics {
		base := strings.TrimSuffix(tp, ".topic")
		f := avroFixture{name: filepath.Base(base)}
		topic, err := os.ReadFile(tp)
		if err != nil {
			t.Fatal(err)
		}
		f.topic = string(topic)
		f.keySchema = string(readOptional(t, base+".key.avsc"))
		f.valSchema = string(readOptional(t, base+".value.avsc"))
		f.key = readOptional(t, base+".key.bin")
		f.value = readOptional(t, base+".value.bin")
		if len(f.key) >= 5 {
			f.keyID = int(binary.BigEndian.Uint32(f.key[1:5]))
		}
		if len(f.value) >= 5 {
			f.valID = int(binary.BigEndian.Uint32(f.value[1:5]))
		}
		out = append(out, f)
	}
	return out
}

// memSource is a SchemaSource over a map, with switchable failures.
type memSource struct {
	schemas  map[int]string
	subjects map[int][]SubjectVersion
	down     error        // when set, every call fails with it
	calls    atomic.Int64 // WriterSchema calls; decoders call concurrently
}

func (m *memSource) WriterSchema(id int) (string, error) {
	m.calls.Add(1)
	if m.down != nil {
		return "", m.down
	}
	s, ok := m.schemas[id]
	if !ok {
		return "", fmt.Errorf("schema %d: %w", id, ErrUnknownSchema)
	}
	return s, nil
}

func (m *memSource) SubjectVersions(id int) ([]SubjectVersion, error) {
	if m.down != nil {
		return nil, m.down
	}
	return m.subjects[id], nil
}

// fixtureSource registers every fixture's schemas under the topic
// strategy's subjects, version 1.
func fixtureSource(fs []avroFixture) *memSource {
	m := &memSource{schemas: map[int]string{}, subjects: map[int][]SubjectVersion{}}
	for _, f := range fs {
		if f.keySchema != "" {
			m.schemas[f.keyID] = f.keySchema
			m.subjects[f.keyID] = []SubjectVersion{{f.topic + "-key", 1}}
		}
		if f.valSchema != "" {
			m.schemas[f.valID] = f.valSchema
			m.subjects[f.valID] = []SubjectVersion{{f.topic + "-value", 1}}
		}
	}
	return m
}
