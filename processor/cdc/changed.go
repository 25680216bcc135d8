package cdc

import (
	"bytes"
	"math/big"
	"time"
)

// changed lists the fields that differ between before and after, in after
// order followed by fields present only in before. See Event.Changed.
func changed(before, after Row) []string {
	if before == nil && after == nil {
		return nil
	}
	if before == nil || after == nil {
		return appendChanged(make([]string, 0, len(before)+len(after)), before, after)
	}
	return appendChanged(nil, before, after)
}

// changed is the package function with the result in the event's arena.
// It keeps its nil and empty results apart.
func (c *converter) changed(before, after Row) []string {
	if before == nil && after == nil {
		return nil
	}
	out := appendChanged(c.changedBuf[:0], before, after)
	c.changedBuf = out[:0]
	if len(out) == 0 {
		if before == nil || after == nil {
			return []string{}
		}
		return nil
	}
	dst := c.a.stringsN(len(out))
	copy(dst, out)
	clear(out) // drop the references to this event's names
	return dst
}

// appendChanged appends the names changed() returns to dst.
func appendChanged(dst []string, before, after Row) []string {
	if before == nil || after == nil {
		side := after
		if side == nil {
			side = before
		}
		for _, f := range side {
			if _, ok := f.Value.(Unavailable); !ok {
				dst = append(dst, f.Name)
			}
		}
		return dst
	}
	for i, f := range after {
		if _, ok := f.Value.(Unavailable); ok {
			continue
		}
		bv, ok := lookup(before, f.Name, i)
		if ok {
			if _, un := bv.(Unavailable); un || equalValues(bv, f.Value) {
				continue
			}
		}
		dst = append(dst, f.Name)
	}
	for i, f := range before {
		if _, ok := f.Value.(Unavailable); ok {
			continue
		}
		if _, ok := lookup(after, f.Name, i); !ok {
			dst = append(dst, f.Name)
		}
	}
	return dst
}

// lookup finds a field by name, trying position hint first: before and
// after share their column order.
func lookup(r Row, name string, hint int) (any, bool) {
	if hint < len(r) && r[hint].Name == name {
		return r[hint].Value, true
	}
	return r.Get(name)
}

// equalValues compares two decoded values. Values of the same common type
// are compared directly; anything else by canonical encoding, so that,
// e.g., 12.5 and 12.50 are equal.
func equalValues(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		if ok {
			return x == y
		}
	case int64:
		y, ok := b.(int64)
		if ok {
			return x == y
		}
	case bool:
		y, ok := b.(bool)
		if ok {
			return x == y
		}
	case Number:
		y, ok := b.(Number)
		if ok && x == y {
			return true
		}
	case []byte:
		y, ok := b.([]byte)
		if ok {
			return bytes.Equal(x, y)
		}
	case time.Time:
		y, ok := b.(time.Time)
		if ok {
			return x.Equal(y)
		}
	case Decimal:
		y, ok := b.(Decimal)
		if ok && x.Scale == y.Scale && x.Unscaled != nil && y.Unscaled != nil {
			return x.Unscaled.Cmp(y.Unscaled) == 0
		}
	case LocalDateTime:
		y, ok := b.(LocalDateTime)
		if ok {
			return time.Time(x).Equal(time.Time(y))
		}
	case Date, TimeOfDay, UUID, Enum, Unavailable, Infinity:
		return a == b
	case *big.Int:
		y, ok := b.(*big.Int)
		if ok && x != nil && y != nil {
			return x.Cmp(y) == 0
		}
	}
	var ab, bb [128]byte
	return bytes.Equal(AppendCanonical(ab[:0], a), AppendCanonical(bb[:0], b))
}
