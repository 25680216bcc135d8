package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/linkedin/goavro/v2"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/schemas"
)

// avroSinkTopic is where customers-avro writes: sync.crm.{table}.
const avroSinkTopic = "sync.crm.customers"

// AvroSink is what the Avro sink topic holds, decoded with goavro and
// schemas.EventSchema after cdc.SplitWire.
type AvroSink struct {
	Topic      string
	Events     int         // Avro-framed change events
	Tombstones int         // null values, without framing
	ByVersion  map[int]int // events by source writer schema version (schema_version)
	Loyalty    int         // events whose fields carry the v2 column loyalty
	Headers    []string    // distinct "id/version/subject" of the output schema headers
	Sample     string      // one decoded event, preferably of writer version 2
}

// ReadAvroSink reads and decodes every record of the Avro sink topic. A
// record that is not Confluent-framed event.avsc, or whose schema headers
// disagree with its framing, is an error.
func ReadAvroSink(ctx context.Context, client sarama.Client, topic string) (*AvroSink, error) {
	codec, err := goavro.NewCodec(schemas.EventSchema)
	if err != nil {
		return nil, err
	}
	msgs, err := ReadTopic(ctx, client, topic, 0)
	if err != nil {
		return nil, err
	}
	out := &AvroSink{Topic: topic, ByVersion: map[int]int{}}
	seen := map[string]bool{}
	sampleVersion := 0
	for _, m := range msgs {
		if m.Value == nil {
			out.Tombstones++
			continue
		}
		id, body, err := cdc.SplitWire(m.Value)
		if err != nil {
			return nil, fmt.Errorf("demo: %s p%d@%d: %w", topic, m.Partition, m.Offset, err)
		}
		hs := map[string]string{}
		for _, h := range m.Headers {
			hs[string(h.Key)] = string(h.Value)
		}
		if hs[schemas.HeaderSchemaID] != strconv.Itoa(id) || hs[schemas.HeaderSchemaVersion] == "" {
			return nil, fmt.Errorf("demo: %s p%d@%d: schema headers %v disagree with the framed schema ID %d", topic, m.Partition, m.Offset, hs, id)
		}
		native, rest, err := codec.NativeFromBinary(body)
		if err != nil {
			return nil, fmt.Errorf("demo: %s p%d@%d: %w", topic, m.Partition, m.Offset, err)
		}
		if len(rest) != 0 {
			return nil, fmt.Errorf("demo: %s p%d@%d: %d bytes after the event", topic, m.Partition, m.Offset, len(rest))
		}
		ev := native.(map[string]any)
		out.Events++
		reg := hs[schemas.HeaderSchemaID] + "/" + hs[schemas.HeaderSchemaVersion] + "/" + hs[schemas.HeaderSubject]
		if !seen[reg] {
			seen[reg] = true
			out.Headers = append(out.Headers, reg)
		}
		version := 0
		if v, ok := unwrap(ev["schema_version"]).(int32); ok {
			version = int(v)
		}
		out.ByVersion[version]++
		loyalty := false
		if f, ok := unwrap(ev["fields"]).(map[string]any); ok {
			_, loyalty = f["loyalty"]
		}
		if loyalty {
			out.Loyalty++
		}
		if out.Sample == "" || (sampleVersion < 2 && version == 2 && loyalty && ev["op"] == "u") {
			sampleVersion = version
			out.Sample = fmt.Sprintf("p%d@%d key=%s headers: %s=%s %s=%s %s=%s\n    framing: magic byte 0, schema ID %d, %d-byte Avro body\n    %s",
				m.Partition, m.Offset, m.Key,
				schemas.HeaderSchemaID, hs[schemas.HeaderSchemaID], schemas.HeaderSchemaVersion, hs[schemas.HeaderSchemaVersion],
				schemas.HeaderSubject, hs[schemas.HeaderSubject], id, len(body), eventJSON(ev))
		}
	}
	sort.Strings(out.Headers)
	return out, nil
}

func printAvroSink(w io.Writer, a *AvroSink) {
	fmt.Fprintf(w, "\nsample Avro sync record (%s), decoded with schemas/event.avsc:\n  %s\n", a.Topic, a.Sample)
	var versions []string
	keys := make([]int, 0, len(a.ByVersion))
	for v := range a.ByVersion {
		keys = append(keys, v)
	}
	sort.Ints(keys)
	for _, v := range keys {
		versions = append(versions, fmt.Sprintf("%d from writer v%d", a.ByVersion[v], v))
	}
	fmt.Fprintf(w, "  %s: %d events decoded (%s), %d carrying the v2 column loyalty, %d tombstones; output schema id/version/subject %s\n",
		a.Topic, a.Events, strings.Join(versions, ", "), a.Loyalty, a.Tombstones, strings.Join(a.Headers, ", "))
	if a.ByVersion[1] > 0 && a.ByVersion[2] > 0 {
		fmt.Fprintln(w, "  both writer schema versions of "+AvroTopic+"-value decoded side by side")
	}
}

// eventJSON shows a decoded event.avsc record as JSON, in schema order,
// with the Value unions unwrapped: decimals as exact strings, timestamps
// in RFC 3339.
func eventJSON(ev map[string]any) string {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range []string{"id", "type", "op", "entity", "source_system", "key", "fields", "before", "position", "occurred_at", "schema_version"} {
		if i > 0 {
			b.WriteByte(',')
		}
		v := unwrap(ev[name])
		if m, ok := v.(map[string]any); ok {
			row := map[string]any{}
			for k, x := range m {
				row[k] = plain(x)
			}
			v = row
		}
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(time.RFC3339Nano)
		}
		k, _ := json.Marshal(name)
		x, err := json.Marshal(v)
		if err != nil {
			x, _ = json.Marshal(fmt.Sprint(v))
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(x)
	}
	b.WriteByte('}')
	return b.String()
}

// unwrap returns the value of a goavro union ({"branch": value}) or v.
func unwrap(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, x := range m {
			if isBranch(k) {
				return x
			}
		}
	}
	return v
}

func isBranch(name string) bool {
	switch name {
	case "boolean", "int", "long", "float", "double", "string", "bytes", "map", "array", "long.timestamp-micros":
		return true
	}
	return strings.HasPrefix(name, "io.cdcsync.")
}

// plain turns one event.avsc Value union into a plain Go value.
func plain(v any) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v
	}
	for branch, x := range m {
		r, _ := x.(map[string]any)
		switch branch {
		case "io.cdcsync.Decimal":
			unscaled, _ := r["unscaled"].([]byte)
			scale, _ := r["scale"].(int32)
			n := new(big.Int).SetBytes(unscaled)
			if len(unscaled) > 0 && unscaled[0]&0x80 != 0 {
				n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(unscaled))))
			}
			return new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).FloatString(int(scale))
		case "io.cdcsync.Timestamp":
			sec, _ := r["seconds"].(int64)
			ns, _ := r["nanos"].(int32)
			return time.Unix(sec, int64(ns)).UTC().Format(time.RFC3339Nano)
		case "io.cdcsync.Date":
			days, _ := r["days"].(int32)
			return time.Unix(int64(days)*86400, 0).UTC().Format(time.DateOnly)
		case "io.cdcsync.TimeOfDay":
			ns, _ := r["nanos"].(int64)
			return time.Unix(0, ns).UTC().Format("15:04:05.999999999")
		case "io.cdcsync.Json":
			return r["text"]
		case "io.cdcsync.Enum":
			return r["symbol"]
		}
		if isBranch(branch) && r == nil {
			return x
		}
		return fmt.Sprint(x)
	}
	return v
}
