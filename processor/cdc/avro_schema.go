package cdc

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// akind is an Avro schema type.
type akind uint8

const (
	aNull akind = iota
	aBool
	aInt
	aLong
	aFloat
	aDouble
	aBytes
	aString
	aRecord
	aEnum
	aArray
	aMap
	aUnion
	aFixed
)

var akindNames = [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string", "record", "enum", "array", "map", "union", "fixed"}

func (k akind) String() string { return akindNames[k] }

// avroNode is one compiled Avro writer schema. It is immutable once built
// and shared by every record written with the same schema ID. Recursive
// named types make the graph cyclic.
type avroNode struct {
	kind     akind
	logical  logical // see logicalByName; also Avro's own logicalType
	scale    int32   // lDecimal
	name     string  // full name of a record, enum or fixed
	version  int     // connect.version, when present
	fields   []avroField
	items    *avroNode // aArray
	values   *avroNode // aMap
	branches []*avroNode
	symbols  []string // aEnum
	size     int      // aFixed
	// mapEntries marks an array of Connect MapEntry {key, value} records:
	// a Connect map whose keys are not strings.
	mapEntries bool
	// For a Debezium source block record: what to do with each field.
	src *sourcePlan
}

type avroField struct {
	name string
	node *avroNode
	role fieldRole // for the envelope record's fields
}

// fieldRole is what the decoder does with a top-level envelope field.
type fieldRole uint8

const (
	roleSkip fieldRole = iota
	roleBefore
	roleAfter
	roleSource
	roleOp
	roleTsMs
	roleTsUs
	roleTsNs
	roleTransaction
	roleMessage
)

var envelopeRoles = map[string]fieldRole{
	"before": roleBefore, "after": roleAfter, "source": roleSource, "op": roleOp,
	"ts_ms": roleTsMs, "ts_us": roleTsUs, "ts_ns": roleTsNs,
	"transaction": roleTransaction, "message": roleMessage,
}

// sourcePlan says, for each field of a source block, whether it names the
// change (connector, name, db, ...), is kept as a value (timestamps and
// position fields), or is skipped.
type sourcePlan struct {
	ident  []int8 // per field: index into sourceIdent, or -1
	keep   []bool // per field: decode the value into the scratch slots
	byName map[string]int
}

var sourceIdent = [...]string{"connector", "name", "db", "schema", "table", "collection", "snapshot"}

func newSourcePlan(n *avroNode) *sourcePlan {
	keepNames := map[string]bool{"ts_ms": true, "ts_us": true, "ts_ns": true}
	for _, names := range positionFields {
		for _, name := range names {
			keepNames[name] = true
		}
	}
	p := &sourcePlan{ident: make([]int8, len(n.fields)), keep: make([]bool, len(n.fields)), byName: make(map[string]int, len(n.fields))}
	for i, f := range n.fields {
		p.ident[i] = -1
		for j, name := range sourceIdent {
			if f.name == name {
				p.ident[i] = int8(j)
			}
		}
		p.keep[i] = keepNames[f.name]
		p.byName[f.name] = i
	}
	return p
}

// avroCompiled is a compiled writer schema with its Debezium envelope
// roles resolved.
type avroCompiled struct {
	root     *avroNode
	envelope bool // root is a record with op and source fields
}

// maxSchemaDepth bounds the nesting of a writer schema.
const maxSchemaDepth = 64

// compileAvro compiles the JSON text of an Avro schema.
func compileAvro(text string) (*avroCompiled, error) {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("schema is not JSON: %v", err)
	}
	c := &avroCompiler{names: map[string]*avroNode{}}
	root, err := c.node(v, "", 0)
	if err != nil {
		return nil, err
	}
	ac := &avroCompiled{root: root}
	if root.kind == aRecord {
		hasOp, hasSource := false, false
		for i := range root.fields {
			f := &root.fields[i]
			f.role = envelopeRoles[f.name]
			switch f.role {
			case roleOp:
				hasOp = true
			case roleSource:
				hasSource = true
				if s := unionRecord(f.node); s != nil && s.src == nil {
					s.src = newSourcePlan(s)
				}
			}
		}
		ac.envelope = hasOp || hasSource
	}
	return ac, nil
}

// unionRecord returns n, or the record branch of a union, when it is a
// record.
func unionRecord(n *avroNode) *avroNode {
	if n.kind == aRecord {
		return n
	}
	if n.kind == aUnion {
		for _, b := range n.branches {
			if b.kind == aRecord {
				return b
			}
		}
	}
	return nil
}

type avroCompiler struct {
	names map[string]*avroNode
}

var primitiveKinds = map[string]akind{
	"null": aNull, "boolean": aBool, "int": aInt, "long": aLong, "float": aFloat,
	"double": aDouble, "bytes": aBytes, "string": aString,
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func (c *avroCompiler) node(v any, ns string, depth int) (*avroNode, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("schema nests deeper than %d", maxSchemaDepth)
	}
	switch x := v.(type) {
	case string:
		if k, ok := primitiveKinds[x]; ok {
			return &avroNode{kind: k}, nil
		}
		if n, ok := c.names[fullName(x, ns)]; ok {
			return n, nil
		}
		if n, ok := c.names[x]; ok {
			return n, nil
		}
		return nil, fmt.Errorf("unknown type %q", x)
	case []any:
		if len(x) == 0 {
			return nil, fmt.Errorf("empty union")
		}
		n := &avroNode{kind: aUnion, branches: make([]*avroNode, len(x))}
		for i, b := range x {
			bn, err := c.node(b, ns, depth+1)
			if err != nil {
				return nil, fmt.Errorf("union branch %d: %w", i, err)
			}
			if bn.kind == aUnion {
				return nil, fmt.Errorf("union branch %d: nested union", i)
			}
			n.branches[i] = bn
		}
		return n, nil
	case map[string]any:
		return c.complex(x, ns, depth)
	}
	return nil, fmt.Errorf("invalid schema %T", v)
}

func (c *avroCompiler) complex(o map[string]any, ns string, depth int) (*avroNode, error) {
	t, ok := o["type"]
	if !ok {
		return nil, fmt.Errorf("schema object without type")
	}
	ts, isStr := t.(string)
	if !isStr {
		// {"type": {...}} or {"type": [...]}: a wrapped schema.
		return c.node(t, ns, depth+1)
	}
	var n *avroNode
	switch ts {
	case "record", "error", "enum", "fixed":
		name, _ := o["name"].(string)
		if name == "" {
			return nil, fmt.Errorf("%s without a name", ts)
		}
		if nsv, ok := o["namespace"].(string); ok && !strings.Contains(name, ".") {
			ns = nsv
		}
		full := fullName(name, ns)
		if i := strings.LastIndexByte(full, '.'); i >= 0 {
			ns = full[:i]
		} else {
			ns = ""
		}
		if _, dup := c.names[full]; dup {
			return nil, fmt.Errorf("type %q defined twice", full)
		}
		n = &avroNode{name: full}
		c.names[full] = n
		switch ts {
		case "enum":
			n.kind = aEnum
			syms, _ := o["symbols"].([]any)
			if len(syms) == 0 {
				return nil, fmt.Errorf("enum %s without symbols", full)
			}
			for _, s := range syms {
				str, ok := s.(string)
				if !ok {
					return nil, fmt.Errorf("enum %s: symbol is not a string", full)
				}
				n.symbols = append(n.symbols, str)
			}
		case "fixed":
			n.kind = aFixed
			size, ok := o["size"].(float64)
			if !ok || size < 0 || size > 1<<20 || size != float64(int(size)) {
				return nil, fmt.Errorf("fixed %s: invalid size", full)
			}
			n.size = int(size)
		default:
			n.kind = aRecord
			fs, ok := o["fields"].([]any)
			if !ok {
				return nil, fmt.Errorf("record %s without fields", full)
			}
			n.fields = make([]avroField, 0, len(fs))
			for i, f := range fs {
				fo, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record %s: field %d is not an object", full, i)
				}
				fname, _ := fo["name"].(string)
				if fname == "" {
					return nil, fmt.Errorf("record %s: field %d without a name", full, i)
				}
				fn, err := c.node(fo["type"], ns, depth+1)
				if err != nil {
					return nil, fmt.Errorf("record %s: field %s: %w", full, fname, err)
				}
				n.fields = append(n.fields, avroField{name: fname, node: fn})
			}
			if len(n.fields) > 0 && n.fields[0].name == "key" && len(n.fields) == 2 && n.fields[1].name == "value" {
				// Connect's io.confluent.connect.avro.MapEntry; see mapEntries.
				n.mapEntries = true
			}
		}
	case "array":
		items, err := c.node(o["items"], ns, depth+1)
		if err != nil {
			return nil, fmt.Errorf("array items: %w", err)
		}
		n = &avroNode{kind: aArray, items: items}
		if items.kind == aRecord && items.mapEntries && strings.HasSuffix(items.name, "MapEntry") {
			n.mapEntries = true
		}
	case "map":
		values, err := c.node(o["values"], ns, depth+1)
		if err != nil {
			return nil, fmt.Errorf("map values: %w", err)
		}
		n = &avroNode{kind: aMap, values: values}
	default:
		k, ok := primitiveKinds[ts]
		if !ok {
			if named, ok := c.names[fullName(ts, ns)]; ok {
				return named, nil
			}
			return nil, fmt.Errorf("unknown type %q", ts)
		}
		n = &avroNode{kind: k}
	}
	c.annotate(n, o)
	return n, nil
}

// annotate reads the Connect and Avro logical type of n: connect.name
// (how the Avro converter writes Connect and Debezium logical types) first,
// then Avro's own logicalType.
func (c *avroCompiler) annotate(n *avroNode, o map[string]any) {
	if v, ok := o["connect.version"].(float64); ok {
		n.version = int(v)
	}
	lg := lNone
	if cn, ok := o["connect.name"].(string); ok {
		lg = logicalByName[cn]
		if n.name == "" {
			n.name = cn
		}
	}
	if lg == lNone {
		if lt, ok := o["logicalType"].(string); ok {
			lg = avroLogical[lt]
		}
	}
	if lg == lDecimal {
		n.scale = 0
		if p, ok := o["connect.parameters"].(map[string]any); ok {
			if s, ok := p["scale"].(string); ok {
				if v, err := strconv.ParseInt(s, 10, 32); err == nil && v >= -maxScale && v <= maxScale {
					n.scale = int32(v)
				}
			}
		} else if s, ok := o["scale"].(float64); ok && s >= -maxScale && s <= maxScale {
			n.scale = int32(s)
		}
	}
	// A logical type only applies to its base type, as in compileNode.
	switch lg {
	case lDecimal:
		if n.kind != aBytes && n.kind != aFixed {
			lg = lNone
		}
	case lVarDecimal:
		if n.kind != aRecord {
			lg = lNone
		}
	case lDate, lTimeMs, lTimeUs, lTimeNs, lTsMs, lTsUs, lTsNs, lInstantMs, lInstantUs, lInstantNs:
		if n.kind != aInt && n.kind != aLong {
			lg = lNone
		}
	case lZonedTs, lJSON, lUUID, lEnum:
		if n.kind != aString {
			lg = lNone
		}
	}
	n.logical = lg
}

// avroLogical maps Avro's own logical types to ours. Avro's timestamp-*
// are instants (UTC), unlike the Connect and Debezium timestamps the
// converters name with connect.name, which are local date-times; Avro's
// local-timestamp-* stay plain numbers, as Connect reads them.
var avroLogical = map[string]logical{
	"decimal":          lDecimal,
	"date":             lDate,
	"time-millis":      lTimeMs,
	"time-micros":      lTimeUs,
	"timestamp-millis": lInstantMs,
	"timestamp-micros": lInstantUs,
	"timestamp-nanos":  lInstantNs,
	"uuid":             lUUID,
}
