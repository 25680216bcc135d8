package cdc

import (
	"encoding/binary"
	"math"
	"strconv"
)

// avroReader reads the Avro binary encoding of one record body, driven by
// a compiled writer schema, straight into the typed values of the package
// documentation. Every failure is a *convErr wrapping ErrSchemaMismatch:
// bytes that do not follow the writer schema.
type avroReader struct {
	b      []byte
	i      int
	depth  int
	budget int // array and map elements left, so zero-width items cannot loop forever
	c      *converter
}

// maxValueDepth bounds the nesting of values of a recursive schema.
const maxValueDepth = 128

const errTruncated = "truncated body"

func (r *avroReader) reset(b []byte, c *converter) {
	r.b, r.i, r.depth, r.c = b, 0, 0, c
	r.budget = len(b) + 1024
}

func (r *avroReader) long() (int64, *convErr) {
	u, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 {
		if n == 0 {
			return 0, mismatch(errTruncated)
		}
		return 0, mismatch("varint overflows 64 bits")
	}
	r.i += n
	return int64(u>>1) ^ -int64(u&1), nil
}

func (r *avroReader) int32() (int64, *convErr) {
	n, err := r.long()
	if err != nil {
		return 0, err
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, mismatch("int %d out of range", n)
	}
	return n, nil
}

// bytes returns the next length-prefixed bytes, aliasing the input.
func (r *avroReader) bytes() ([]byte, *convErr) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, mismatch("negative length %d", n)
	}
	if n > int64(len(r.b)-r.i) {
		return nil, mismatch(errTruncated)
	}
	b := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return b, nil
}

func (r *avroReader) fixed(size int) ([]byte, *convErr) {
	if size > len(r.b)-r.i {
		return nil, mismatch(errTruncated)
	}
	b := r.b[r.i : r.i+size]
	r.i += size
	return b, nil
}

// branch reads a union index and returns the branch.
func (r *avroReader) branch(n *avroNode) (*avroNode, *convErr) {
	idx, err := r.long()
	if err != nil {
		return nil, err
	}
	if idx < 0 || idx >= int64(len(n.branches)) {
		return nil, mismatch("union index %d out of range", idx)
	}
	return n.branches[idx], nil
}

// resolve reads through a union: the node of the value that follows. A
// null value gives aNull.
func (r *avroReader) resolve(n *avroNode) (*avroNode, *convErr) {
	if n.kind != aUnion {
		return n, nil
	}
	return r.branch(n)
}

// blockCount reads an array or map block header: the count of items in
// the block, 0 at the end.
func (r *avroReader) blockCount() (int, *convErr) {
	n, err := r.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, mismatch("invalid block count")
		}
		n = -n
		if _, err := r.long(); err != nil { // block size in bytes
			return 0, err
		}
	}
	if n > int64(r.budget) {
		return 0, mismatch("block of %d items exceeds the record", n)
	}
	r.budget -= int(n)
	return int(n), nil
}

// value reads one value of schema n.
func (r *avroReader) value(n *avroNode) (any, *convErr) {
	switch n.kind {
	case aNull:
		return nil, nil
	case aBool:
		if r.i >= len(r.b) {
			return nil, mismatch(errTruncated)
		}
		b := r.b[r.i]
		r.i++
		if b > 1 {
			return nil, mismatch("invalid boolean byte %d", b)
		}
		return b == 1, nil
	case aInt, aLong:
		var x int64
		var err *convErr
		if n.kind == aInt {
			x, err = r.int32()
		} else {
			x, err = r.long()
		}
		if err != nil {
			return nil, err
		}
		if n.logical == lNone {
			return x, nil
		}
		return r.c.intLogical(x, &logicalNodes[n.logical])
	case aFloat:
		b, err := r.fixed(4)
		if err != nil {
			return nil, err
		}
		return float32to64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
	case aDouble:
		b, err := r.fixed(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case aBytes, aFixed:
		var b []byte
		var err *convErr
		if n.kind == aBytes {
			b, err = r.bytes()
		} else {
			b, err = r.fixed(n.size)
		}
		if err != nil {
			return nil, err
		}
		if string(b) == UnavailablePlaceholder {
			return Unavailable{}, nil
		}
		if n.logical == lDecimal {
			return Decimal{Unscaled: fromTwosComplement(b), Scale: n.scale}, nil
		}
		return append([]byte(nil), b...), nil
	case aString:
		b, err := r.bytes()
		if err != nil {
			return nil, err
		}
		return r.stringValue(b, n.logical)
	case aEnum:
		idx, err := r.long()
		if err != nil {
			return nil, err
		}
		if idx < 0 || idx >= int64(len(n.symbols)) {
			return nil, mismatch("enum index %d out of range", idx)
		}
		return Enum(n.symbols[idx]), nil
	case aUnion:
		b, err := r.branch(n)
		if err != nil {
			return nil, err
		}
		return r.value(b)
	case aRecord:
		if n.logical == lVarDecimal {
			return r.varDecimal(n)
		}
		return r.row(n)
	case aArray:
		return r.array(n)
	case aMap:
		return r.mapValue(n)
	}
	return nil, mismatch("unsupported schema type %s", n.kind)
}

func (r *avroReader) stringValue(b []byte, lg logical) (any, *convErr) {
	if string(b) == UnavailablePlaceholder {
		return Unavailable{}, nil
	}
	switch lg {
	case lZonedTs:
		x, ok := parseZonedTimestamp(b)
		if !ok {
			return nil, mismatch("invalid ZonedTimestamp %q", b)
		}
		return x, nil
	case lJSON:
		return JSON(b), nil
	case lUUID:
		u, err := ParseUUID(unsafeString(b))
		if err != nil {
			return nil, mismatch("invalid Uuid %q", b)
		}
		return u, nil
	case lEnum:
		return Enum(r.c.str(b)), nil
	}
	return r.c.copyStr(b), nil
}

// float32to64 widens a float32 to the float64 of its shortest decimal
// form, the number the JSON converter writes: 0.1f becomes 0.1, not
// 0.10000000149011612, so Avro and JSON give the same value.
func float32to64(f float32) float64 {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return float64(f)
	}
	var buf [32]byte
	x, _ := strconv.ParseFloat(unsafeString(strconv.AppendFloat(buf[:0], float64(f), 'g', -1, 32)), 64)
	return x
}

func (r *avroReader) enter() *convErr {
	r.depth++
	if r.depth > maxValueDepth {
		return mismatch("values nest deeper than %d", maxValueDepth)
	}
	return nil
}

func (r *avroReader) row(n *avroNode) (Row, *convErr) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer func() { r.depth-- }()
	out := make(Row, len(n.fields))
	for i := range n.fields {
		f := &n.fields[i]
		x, err := r.value(f.node)
		if err != nil {
			return nil, err.at(f.name)
		}
		out[i] = Field{Name: f.name, Value: x}
	}
	return out, nil
}

// varDecimal reads io.debezium.data.VariableScaleDecimal, {scale, value}.
func (r *avroReader) varDecimal(n *avroNode) (any, *convErr) {
	row, err := r.row(n)
	if err != nil {
		return nil, err
	}
	sv, ok := row.Get("scale")
	if !ok {
		return nil, missing("scale")
	}
	vv, ok := row.Get("value")
	if !ok {
		return nil, missing("value")
	}
	if _, un := vv.(Unavailable); un {
		return Unavailable{}, nil
	}
	scale, ok := sv.(int64)
	if !ok || scale < -maxScale || scale > maxScale {
		return nil, mismatch("expected int32 scale").at("scale")
	}
	raw, ok := vv.([]byte)
	if !ok {
		return nil, mismatch("expected bytes").at("value")
	}
	return Decimal{Unscaled: fromTwosComplement(raw), Scale: int32(scale)}, nil
}

func (r *avroReader) array(n *avroNode) (any, *convErr) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer func() { r.depth-- }()
	out := []any{}
	for {
		cnt, err := r.blockCount()
		if err != nil {
			return nil, err.atIndex(len(out))
		}
		if cnt == 0 {
			return out, nil
		}
		for range cnt {
			x, err := r.value(n.items)
			if err != nil {
				return nil, err.atIndex(len(out))
			}
			if n.mapEntries {
				// [key, value], as the JSON converter writes a map with
				// non-string keys.
				if row, ok := x.(Row); ok && len(row) == 2 {
					x = []any{row[0].Value, row[1].Value}
				}
			}
			out = append(out, x)
		}
	}
}

func (r *avroReader) mapValue(n *avroNode) (any, *convErr) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer func() { r.depth-- }()
	out := map[string]any{}
	for {
		cnt, err := r.blockCount()
		if err != nil {
			return nil, err
		}
		if cnt == 0 {
			return out, nil
		}
		for range cnt {
			k, err := r.bytes()
			if err != nil {
				return nil, err
			}
			x, err := r.value(n.values)
			if err != nil {
				return nil, err.at(string(k))
			}
			out[string(k)] = x
		}
	}
}

// skip reads past one value of schema n without building it.
func (r *avroReader) skip(n *avroNode) *convErr {
	switch n.kind {
	case aNull:
		return nil
	case aBool:
		if r.i >= len(r.b) {
			return mismatch(errTruncated)
		}
		r.i++
		return nil
	case aInt, aLong, aEnum:
		_, err := r.long()
		return err
	case aFloat:
		_, err := r.fixed(4)
		return err
	case aDouble:
		_, err := r.fixed(8)
		return err
	case aBytes, aString:
		_, err := r.bytes()
		return err
	case aFixed:
		_, err := r.fixed(n.size)
		return err
	case aUnion:
		b, err := r.branch(n)
		if err != nil {
			return err
		}
		return r.skip(b)
	case aRecord:
		if err := r.enter(); err != nil {
			return err
		}
		defer func() { r.depth-- }()
		for i := range n.fields {
			if err := r.skip(n.fields[i].node); err != nil {
				return err.at(n.fields[i].name)
			}
		}
		return nil
	case aArray, aMap:
		if err := r.enter(); err != nil {
			return err
		}
		defer func() { r.depth-- }()
		for {
			cnt, err := r.blockCount()
			if err != nil {
				return err
			}
			if cnt == 0 {
				return nil
			}
			for range cnt {
				if n.kind == aMap {
					if _, err := r.bytes(); err != nil {
						return err
					}
					if err := r.skip(n.values); err != nil {
						return err
					}
				} else if err := r.skip(n.items); err != nil {
					return err
				}
			}
		}
	}
	return mismatch("unsupported schema type %s", n.kind)
}

// logicalNodes lets intLogical, written for Connect schemas, apply an Avro
// node's logical type.
var logicalNodes = func() (out [lInstantNs + 1]schemaNode) {
	for i := range out {
		out[i].logical = logical(i)
	}
	return out
}()
