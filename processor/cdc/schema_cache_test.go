package cdc

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// wideEnvelope is a JSON-converter record of a table with cols text
// columns whose envelope schema is named name: about 110 bytes of schema
// per column.
func wideEnvelope(name string, cols int) []byte {
	var f, a strings.Builder
	for i := range cols {
		if i > 0 {
			f.WriteByte(',')
			a.WriteByte(',')
		}
		fmt.Fprintf(&f, `{"type":"string","optional":true,"field":"column_%05d"}`, i)
		fmt.Fprintf(&a, `"column_%05d":"v"`, i)
	}
	row := `{"type":"struct","optional":true,"name":"` + name + `.Value","fields":[` + f.String() + `]`
	return []byte(`{"schema":{"type":"struct","name":"` + name + `.Envelope","fields":[` +
		row + `,"field":"before"},` + row + `,"field":"after"},` +
		`{"type":"struct","field":"source","fields":[{"type":"string","field":"connector"},{"type":"string","field":"table"}]},` +
		`{"type":"string","field":"op"}]},"payload":{"before":null,"after":{` + a.String() + `},"source":{"connector":"postgresql","table":"t"},"op":"c"}}`)
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestSchemaCacheBoundedByBytes decodes records of 120 different wide
// envelope schemas of about 424 KB each and checks that the decoder keeps
// at most maxCachedSchemaBytes of them, measured on the live heap.
//
// Regression: the cache held up to 512 envelopes whatever their size;
// 120 envelopes of 424 KB kept 238 MB live.
func TestSchemaCacheBoundedByBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 50 MB of schemas")
	}
	recs := make([][]byte, 120)
	for i := range recs {
		recs[i] = wideEnvelope(fmt.Sprintf("pg.public.wide%03d", i), 3200)
	}
	if n := len(recs[0]); n < 400<<10 || n > 500<<10 {
		t.Fatalf("record is %d bytes, want about 424 KB", n)
	}
	before := liveHeap()
	d := NewJSONDecoder(Options{})
	for _, r := range recs {
		if _, err := d.Decode("pg.public.wide", []byte(`{"id":1}`), r); err != nil {
			t.Fatal(err)
		}
	}
	entries, cached := d.schemas.stats()
	live := int64(liveHeap()) - int64(before)
	runtime.KeepAlive(d)
	runtime.KeepAlive(recs)
	t.Logf("%d entries, %d MB estimated, %d MB live", entries, cached>>20, live>>20)
	if cached > maxCachedSchemaBytes {
		t.Errorf("cache holds %d bytes, bound %d", cached, maxCachedSchemaBytes)
	}
	if entries == 0 || entries >= len(recs) {
		t.Errorf("%d entries cached of %d schemas", entries, len(recs))
	}
	// The estimate must be honest: the live heap, which also holds the
	// decode states' last schema, stays within the bound plus 25%.
	if limit := int64(maxCachedSchemaBytes) * 5 / 4; live > limit {
		t.Errorf("%d MB live after decoding, want at most %d MB", live>>20, limit>>20)
	}
}

func TestSchemaCachePut(t *testing.T) {
	c := schemaCache{maxBytes: 1000}
	cs := &compiledSchema{size: 100}
	for i := range 20 {
		c.put([]byte(fmt.Sprintf("schema-%04d", i)), cs) // 111 bytes each
		if _, b := c.stats(); b > 1000 {
			t.Fatalf("after %d puts: %d bytes, bound 1000", i+1, b)
		}
	}
	if n, b := c.stats(); n != 9 || b != 999 {
		t.Errorf("%d entries, %d bytes; want 9 and 999", n, b)
	}
	// Replacing an entry does not count it twice.
	c.put([]byte("schema-0019"), cs)
	if n, b := c.stats(); n != 9 || b != 999 {
		t.Errorf("after a replace: %d entries, %d bytes", n, b)
	}
	// An entry larger than the bound is not cached at all.
	c.put([]byte("huge"), &compiledSchema{size: 5000})
	if c.get([]byte("huge")) != nil {
		t.Error("an entry over the bound was cached")
	}
	// The count bound still holds.
	c = schemaCache{}
	for i := range maxCachedSchemas + 10 {
		c.put([]byte(fmt.Sprint(i)), &compiledSchema{})
	}
	if n, _ := c.stats(); n != maxCachedSchemas {
		t.Errorf("%d entries, want %d", n, maxCachedSchemas)
	}
}
