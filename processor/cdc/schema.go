package cdc

import (
	"strconv"
	"sync"
	"unsafe"

	"github.com/valyala/fastjson"
)

// ctype is a Kafka Connect schema type.
type ctype uint8

const (
	tAny ctype = iota // no schema: convert by the JSON value's own type
	tInt8
	tInt16
	tInt32
	tInt64
	tFloat32
	tFloat64
	tBool
	tString
	tBytes
	tArray
	tMap
	tStruct
)

var ctypeNames = [...]string{"any", "int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string", "bytes", "array", "map", "struct"}

func (t ctype) String() string { return ctypeNames[t] }

// logical is a Connect or Debezium logical type, recognised by schema name.
type logical uint8

const (
	lNone       logical = iota
	lDecimal            // org.apache.kafka.connect.data.Decimal: bytes + parameters.scale
	lVarDecimal         // io.debezium.data.VariableScaleDecimal: struct{scale, value}
	lDate               // days since epoch
	lTimeMs             // time of day, milliseconds
	lTimeUs             // time of day, microseconds
	lTimeNs             // time of day, nanoseconds
	lTsMs               // local date-time (no zone), milliseconds since 1970-01-01T00:00
	lTsUs               // local date-time (no zone), microseconds
	lTsNs               // local date-time (no zone), nanoseconds
	lZonedTs            // ISO-8601 string with offset
	lJSON               // io.debezium.data.Json
	lUUID               // io.debezium.data.Uuid
	lEnum               // io.debezium.data.Enum
	lInstantMs          // Avro's own timestamp-millis: an instant (UTC)
	lInstantUs          // Avro's own timestamp-micros
	lInstantNs          // Avro's own timestamp-nanos
)

var logicalByName = map[string]logical{
	"org.apache.kafka.connect.data.Decimal":   lDecimal,
	"io.debezium.data.VariableScaleDecimal":   lVarDecimal,
	"io.debezium.time.Date":                   lDate,
	"org.apache.kafka.connect.data.Date":      lDate,
	"io.debezium.time.Time":                   lTimeMs,
	"org.apache.kafka.connect.data.Time":      lTimeMs,
	"io.debezium.time.MicroTime":              lTimeUs,
	"io.debezium.time.NanoTime":               lTimeNs,
	"io.debezium.time.Timestamp":              lTsMs,
	"org.apache.kafka.connect.data.Timestamp": lTsMs,
	"io.debezium.time.MicroTimestamp":         lTsUs,
	"io.debezium.time.NanoTimestamp":          lTsNs,
	"io.debezium.time.ZonedTimestamp":         lZonedTs,
	"io.debezium.data.Json":                   lJSON,
	"io.debezium.data.Uuid":                   lUUID,
	"io.debezium.data.Enum":                   lEnum,
}

// schemaNode is one compiled Connect schema. It is immutable once built and
// shared by every record written with the same schema text.
type schemaNode struct {
	typ     ctype
	logical logical
	scale   int32 // lDecimal
	name    string
	version int
	fields  []schemaField  // tStruct, in schema order
	byName  map[string]int // tStruct: index into fields
	items   *schemaNode    // tArray
	keys    *schemaNode    // tMap
	values  *schemaNode    // tMap
}

type schemaField struct {
	name string
	node *schemaNode
}

// field returns the schema of the named struct field; hint is the position
// the field usually has, checked first because payloads follow schema order.
func (s *schemaNode) field(name []byte, hint int) (string, *schemaNode) {
	if hint < len(s.fields) && s.fields[hint].name == string(name) {
		return s.fields[hint].name, s.fields[hint].node
	}
	if i, ok := s.byName[string(name)]; ok {
		return s.fields[i].name, s.fields[i].node
	}
	return "", nil
}

// fieldNode returns the schema of a struct field by name, or nil.
func (s *schemaNode) fieldNode(name string) *schemaNode {
	if s == nil || s.typ != tStruct {
		return nil
	}
	if i, ok := s.byName[name]; ok {
		return s.fields[i].node
	}
	return nil
}

// compiledSchema is a compiled envelope ({schema, payload}) schema.
type compiledSchema struct {
	root *schemaNode // nil for "schema": null
	info SchemaInfo
	// The schemas of the Debezium envelope's fields, when root is one.
	before, after, source, transaction, message *schemaNode
	size                                        int // schemaBytes estimate, for the cache's bound
}

var typeByName = map[string]ctype{
	"int8": tInt8, "int16": tInt16, "int32": tInt32, "int64": tInt64,
	"float": tFloat32, "float32": tFloat32, "double": tFloat64, "float64": tFloat64,
	"boolean": tBool, "string": tString, "bytes": tBytes,
	"array": tArray, "map": tMap, "struct": tStruct,
}

// compileSchema compiles the JSON form of a Connect schema, as written by
// the JSON converter with schemas.enable=true.
func compileSchema(v *fastjson.Value) (*compiledSchema, *convErr) {
	cs := &compiledSchema{}
	if v.Type() == fastjson.TypeNull {
		return cs, nil
	}
	root, err := compileNode(v)
	if err != nil {
		return nil, err
	}
	cs.root = root
	cs.size = int(unsafe.Sizeof(compiledSchema{})) + schemaBytes(root)
	cs.info = SchemaInfo{Name: root.name, Version: root.version}
	if root.typ == tStruct {
		cs.before = root.fieldNode("before")
		cs.after = root.fieldNode("after")
		cs.source = root.fieldNode("source")
		cs.transaction = root.fieldNode("transaction")
		cs.message = root.fieldNode("message")
	}
	return cs, nil
}

func compileNode(v *fastjson.Value) (*schemaNode, *convErr) {
	o, err := v.Object()
	if err != nil {
		return nil, malformed("schema must be an object, got %s", v.Type())
	}
	n := &schemaNode{}
	tv := lastGet(o, "type")
	if tv == nil {
		return nil, missing("type")
	}
	tb, err := tv.StringBytes()
	if err != nil {
		return nil, malformed("schema type must be a string").at("type")
	}
	t, ok := typeByName[string(tb)]
	if !ok {
		return nil, malformed("unknown schema type %q", tb).at("type")
	}
	n.typ = t
	if nv := lastGet(o, "name"); nv != nil && nv.Type() == fastjson.TypeString {
		nb, _ := nv.StringBytes()
		n.name = string(nb)
		n.logical = logicalByName[n.name]
	}
	if vv := lastGet(o, "version"); vv != nil && vv.Type() == fastjson.TypeNumber {
		ver, err := vv.Int()
		if err == nil {
			n.version = ver
		}
	}
	if n.logical == lDecimal {
		n.scale = 0
		if sv := v.Get("parameters", "scale"); sv != nil {
			var s int64
			var perr error
			switch sv.Type() {
			case fastjson.TypeString:
				sb, _ := sv.StringBytes()
				s, perr = strconv.ParseInt(string(sb), 10, 32)
			case fastjson.TypeNumber:
				s, perr = sv.Int64()
			default:
				perr = strconv.ErrSyntax
			}
			if perr != nil || s < -1000 || s > 1000 {
				return nil, malformed("invalid decimal scale").at("scale").at("parameters")
			}
			n.scale = int32(s)
		}
	}
	switch t {
	case tStruct:
		fv := lastGet(o, "fields")
		if fv == nil {
			return nil, missing("fields")
		}
		arr, err := fv.Array()
		if err != nil {
			return nil, malformed("fields must be an array").at("fields")
		}
		n.fields = make([]schemaField, 0, len(arr))
		n.byName = make(map[string]int, len(arr))
		for i, f := range arr {
			child, cerr := compileNode(f)
			if cerr != nil {
				return nil, cerr.atIndex(i).at("fields")
			}
			nameV := f.Get("field")
			if nameV == nil || nameV.Type() != fastjson.TypeString {
				return nil, missing("field").atIndex(i).at("fields")
			}
			nb, _ := nameV.StringBytes()
			name := string(nb)
			n.fields = append(n.fields, schemaField{name: name, node: child})
			n.byName[name] = len(n.fields) - 1
		}
	case tArray:
		iv := lastGet(o, "items")
		if iv == nil {
			return nil, missing("items")
		}
		child, cerr := compileNode(iv)
		if cerr != nil {
			return nil, cerr.at("items")
		}
		n.items = child
	case tMap:
		kv, vv := lastGet(o, "keys"), lastGet(o, "values")
		if kv == nil {
			return nil, missing("keys")
		}
		if vv == nil {
			return nil, missing("values")
		}
		k, cerr := compileNode(kv)
		if cerr != nil {
			return nil, cerr.at("keys")
		}
		val, cerr := compileNode(vv)
		if cerr != nil {
			return nil, cerr.at("values")
		}
		n.keys, n.values = k, val
	}
	// A logical type only applies to its base type; anything else is
	// treated as the plain base type.
	switch n.logical {
	case lDecimal:
		if t != tBytes {
			n.logical = lNone
		}
	case lVarDecimal:
		if t != tStruct {
			n.logical = lNone
		}
	case lDate, lTimeMs:
		if t != tInt32 && t != tInt64 {
			n.logical = lNone
		}
	case lTimeUs, lTimeNs, lTsMs, lTsUs, lTsNs, lInstantMs, lInstantUs, lInstantNs:
		if t != tInt64 && t != tInt32 {
			n.logical = lNone
		}
	case lZonedTs, lJSON, lUUID, lEnum:
		if t != tString {
			n.logical = lNone
		}
	}
	return n, nil
}

// The schema cache's bounds. Debezium writes one schema per table and
// schema version, so a few hundred entries cover real workloads. The
// bytes bound is what keeps memory in check: an envelope schema repeats
// the whole row struct twice (before and after), and a wide table's can
// be hundreds of kilobytes; 120 envelopes of 424 KB once kept 238 MB
// live. An entry costs its text (the map key) plus an estimate of its
// compiled form (schemaBytes). Past either bound arbitrary entries are
// evicted; a schema costing more than the whole byte bound is compiled
// but not cached (each decoding goroutine still keeps the last schema it
// saw, so a run of such records is compiled once per goroutine).
const (
	maxCachedSchemas     = 512
	maxCachedSchemaBytes = 32 << 20 // 32 MiB per decoder
)

// schemaCache maps the raw text of an envelope schema to its compiled form,
// so the schema repeated in every record is parsed once.
type schemaCache struct {
	mu    sync.RWMutex
	m     map[string]*compiledSchema
	bytes int // sum of cost over m
	// maxBytes overrides maxCachedSchemaBytes in tests; 0 means the default.
	maxBytes int
}

func (c *schemaCache) get(raw []byte) *compiledSchema {
	c.mu.RLock()
	cs := c.m[string(raw)]
	c.mu.RUnlock()
	return cs
}

// cost is what an entry for raw keeps live, in bytes.
func cost(raw []byte, cs *compiledSchema) int { return len(raw) + cs.size }

func (c *schemaCache) put(raw []byte, cs *compiledSchema) {
	limit := c.maxBytes
	if limit == 0 {
		limit = maxCachedSchemaBytes
	}
	n := cost(raw, cs)
	if n > limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*compiledSchema)
	}
	if old, ok := c.m[string(raw)]; ok {
		c.bytes -= cost(raw, old)
		delete(c.m, string(raw))
	}
	for k, v := range c.m {
		if len(c.m) < maxCachedSchemas && c.bytes+n <= limit {
			break
		}
		c.bytes -= len(k) + v.size
		delete(c.m, k)
	}
	c.m[string(raw)] = cs
	c.bytes += n
}

// stats reports the number of entries and their cost, for tests.
func (c *schemaCache) stats() (entries, bytes int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.bytes
}

// schemaBytes estimates the memory of a compiled schema tree: its nodes,
// their names, struct field slices and name maps.
func schemaBytes(n *schemaNode) int {
	if n == nil {
		return 0
	}
	size := int(unsafe.Sizeof(schemaNode{})) + len(n.name)
	if len(n.fields) > 0 {
		// The fields slice, and byName: a map entry is a string header,
		// an int and about as much again of bucket overhead.
		size += len(n.fields) * (int(unsafe.Sizeof(schemaField{})) + 48)
		for _, f := range n.fields {
			size += len(f.name) + schemaBytes(f.node)
		}
	}
	return size + schemaBytes(n.items) + schemaBytes(n.keys) + schemaBytes(n.values)
}
