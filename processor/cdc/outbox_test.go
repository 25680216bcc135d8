package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The outbox fixtures in testdata/outbox: NAME.topic, NAME.key.json,
// NAME.value.json and NAME.headers.json (a list of [key, value] pairs).
// raw_* are Debezium change records of an outbox table, smt_* records
// Debezium's EventRouter SMT made of them; .env with the JSON converter's
// schemas, .bare without. Each .env case is also converted to Avro the
// way Confluent's AvroConverter writes it (makeAvroFixture) and must
// decode to the same event. NAME.golden.json is the decoded event; run
// go test -update to rewrite them.

type outboxRecord struct {
	record
	headers []Header
}

func loadOutboxRecords(t testing.TB) []outboxRecord {
	t.Helper()
	topics, err := filepath.Glob("testdata/outbox/*.topic")
	if err != nil || len(topics) == 0 {
		t.Fatalf("no fixtures in testdata/outbox: %v", err)
	}
	sort.Strings(topics)
	var out []outboxRecord
	for _, tp := range topics {
		base := strings.TrimSuffix(tp, ".topic")
		r := outboxRecord{record: record{name: filepath.Base(base)}}
		topic, err := os.ReadFile(tp)
		if err != nil {
			t.Fatal(err)
		}
		r.topic = string(topic)
		r.key = readOptional(t, base+".key.json")
		r.value = readOptional(t, base+".value.json")
		if hs := readOptional(t, base+".headers.json"); hs != nil {
			var pairs [][2]string
			if err := json.Unmarshal(hs, &pairs); err != nil {
				t.Fatal(err)
			}
			for _, p := range pairs {
				r.headers = append(r.headers, Header{Key: []byte(p[0]), Value: []byte(p[1])})
			}
		}
		out = append(out, r)
	}
	return out
}

// outboxView is what the golden files pin of a decoded outbox event.
type outboxView struct {
	EventID       string            `json:"event_id"`
	Type          string            `json:"type"`
	Op            string            `json:"op"`
	Entity        string            `json:"entity"`
	Key           json.RawMessage   `json:"key"`
	Ignored       string            `json:"ignored,omitempty"`
	Transformed   bool              `json:"transformed"`
	ID            string            `json:"id"`
	AggregateType string            `json:"aggregatetype"`
	AggregateID   string            `json:"aggregateid"`
	Payload       string            `json:"payload"`
	PayloadJSON   bool              `json:"payload_json"`
	Headers       map[string]string `json:"headers,omitempty"`
	OccurredAt    string            `json:"occurred_at,omitempty"`
	Table         string            `json:"table,omitempty"`
}

func viewOf(ev *Event) outboxView {
	ob := ev.Outbox
	v := outboxView{EventID: ev.ID.String(), Type: ev.Type, Op: ev.Op.String(), Entity: ev.Entity,
		Key: AppendJSONValue(nil, ev.Key), Ignored: ob.Ignored, Transformed: ob.Transformed,
		ID: ob.ID, AggregateType: ob.AggregateType, AggregateID: ob.AggregateID,
		Payload: string(ob.Payload), PayloadJSON: ob.PayloadJSON, Table: ev.Source.Table}
	if !ev.OccurredAt.IsZero() {
		v.OccurredAt = FormatTime(ev.OccurredAt)
	}
	for _, h := range ob.Headers {
		if v.Headers == nil {
			v.Headers = map[string]string{}
		}
		v.Headers[h.Key] = string(h.Value)
	}
	return v
}

func TestOutboxGolden(t *testing.T) {
	recs := loadOutboxRecords(t)
	var avros []avroFixture
	for i, r := range recs {
		if strings.HasSuffix(r.name, ".env") {
			avros = append(avros, makeAvroFixture(t, 50+i, r.record))
		}
	}
	src := fixtureSource(avros)
	jd := NewOutboxDecoder(Options{SourceSystem: "shop"}, nil)
	ad := NewOutboxDecoder(Options{SourceSystem: "shop"}, src)
	ai := 0
	for _, r := range recs {
		t.Run(r.name, func(t *testing.T) {
			ev, err := jd.DecodeRecord(r.topic, r.key, r.value, r.headers)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(viewOf(ev), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata/outbox", r.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("event differs from %s (run go test -update and review the diff):\n%s", path, got)
			}
			if !strings.HasSuffix(r.name, ".env") {
				return
			}
			// The same record through the Avro converter: the same event.
			f := avros[ai]
			ai++
			aev, err := ad.DecodeRecord(r.topic, f.key, f.value, r.headers)
			if err != nil {
				t.Fatalf("avro: %v", err)
			}
			agot, _ := json.MarshalIndent(viewOf(aev), "", "  ")
			agot = append(agot, '\n')
			if !bytes.Equal(agot, want) {
				t.Errorf("avro event differs from the JSON one:\n%s", agot)
			}
			if !isAvro(f.value) {
				t.Fatalf("avro fixture value does not start with the magic byte")
			}
		})
	}
}

// A business retry writes a second outbox row with the same id: another
// LSN, another row, the same event ID, so the ledger drops it.
func TestOutboxIDIsTheOutboxID(t *testing.T) {
	d := NewOutboxDecoder(Options{}, nil)
	var first *Event
	for _, r := range loadOutboxRecords(t) {
		if r.name != "raw_insert.env" {
			continue
		}
		ev, err := d.Decode(r.topic, r.key, r.value)
		if err != nil {
			t.Fatal(err)
		}
		first = ev
		retry := bytes.Replace(r.value, []byte(`"lsn": 24023928`), []byte(`"lsn": 99999999`), 1)
		retry = bytes.Replace(retry, []byte(`"txId": 771`), []byte(`"txId": 802`), 1)
		if bytes.Equal(retry, r.value) {
			t.Fatal("fixture has no lsn to change")
		}
		again, err := d.Decode(r.topic, r.key, retry)
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != first.ID {
			t.Errorf("retry ID %v, first %v: a business retry must have the same event ID", again.ID, first.ID)
		}
	}
	if first == nil {
		t.Fatal("no raw_insert.env fixture")
	}
	u, _ := ParseUUID(first.Outbox.ID)
	if first.ID != ID(u) {
		t.Errorf("event ID %v is not the outbox UUID %s", first.ID, first.Outbox.ID)
	}
	// A non-UUID id still gives a stable ID of its own.
	if OutboxID("order-1#1") != OutboxID("order-1#1") || OutboxID("a") == OutboxID("b") {
		t.Error("OutboxID of a non-UUID id is not a function of the id")
	}
}

func TestOutboxBadRecords(t *testing.T) {
	d := NewOutboxDecoder(Options{}, nil)
	cases := []struct {
		name    string
		key     string
		value   string
		headers []Header
		want    error
	}{
		{"no id column", "", `{"op":"c","after":{"aggregatetype":"o","aggregateid":"1","type":"t","payload":"{}"},"source":{"connector":"postgresql","name":"x","db":"d","schema":"public","table":"outbox","lsn":1}}`, nil, ErrMissingField},
		{"no aggregatetype", "", `{"op":"c","after":{"id":"1","aggregateid":"1","type":"t","payload":"{}"},"source":{"connector":"postgresql","name":"x","db":"d","schema":"public","table":"outbox","lsn":1}}`, nil, ErrMissingField},
		{"no payload column", "", `{"op":"c","after":{"id":"1","aggregatetype":"o","aggregateid":"1","type":"t"},"source":{"connector":"postgresql","name":"x","db":"d","schema":"public","table":"outbox","lsn":1}}`, nil, ErrMissingField},
		{"headers not an object", "", `{"op":"c","after":{"id":"1","aggregatetype":"o","aggregateid":"1","type":"t","payload":"{}","headers":"[1]"},"source":{"connector":"postgresql","name":"x","db":"d","schema":"public","table":"outbox","lsn":1}}`, nil, ErrSchemaMismatch},
		{"avro without registry", "", "\x00\x00\x00\x00\x01\x02", nil, ErrMalformed},
		{"smt avro without registry", "", "\x00\x00\x00\x00\x01\x02", []Header{{Key: []byte("id"), Value: []byte("x")}}, ErrMalformed},
		{"smt empty id", "", `"{}"`, []Header{{Key: []byte("id")}}, ErrMissingField},
		{"not JSON", "", `{"op":`, nil, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.DecodeRecord("dbz.public.outbox", []byte(c.key), []byte(c.value), c.headers)
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, c.want) {
				t.Fatalf("got %v, want a *DecodeError wrapping %v", err, c.want)
			}
		})
	}
}

// FuzzOutboxDecode feeds mutated outbox records, raw and transformed,
// JSON and Avro, to the decoder. An error is fine; a panic is not, and
// an event must have its outbox part and an ID that only the outbox id
// decides.
func FuzzOutboxDecode(f *testing.F) {
	recs := loadOutboxRecords(f)
	var avros []avroFixture
	for i, r := range recs {
		f.Add(r.topic, r.key, r.value, len(r.headers) > 0)
		if strings.HasSuffix(r.name, ".env") {
			a := makeAvroFixture(f, 50+i, r.record)
			avros = append(avros, a)
			f.Add(r.topic, a.key, a.value, len(r.headers) > 0)
		}
	}
	d := NewOutboxDecoder(Options{}, fixtureSource(avros))
	f.Fuzz(func(t *testing.T, topic string, key, value []byte, transformed bool) {
		var hs []Header
		if transformed {
			hs = []Header{{Key: []byte("id"), Value: key}, {Key: []byte("type"), Value: []byte("T")}}
		}
		ev, err := d.DecodeRecord(topic, key, value, hs)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			return
		}
		if ev.Outbox == nil {
			t.Fatal("event without its outbox part")
		}
		if ev.Outbox.Ignored == "" && ev.ID != OutboxID(ev.Outbox.ID) {
			t.Fatalf("event ID %v is not OutboxID(%q)", ev.ID, ev.Outbox.ID)
		}
		if out := AppendJSONValue(nil, ev.After); !json.Valid(out) {
			t.Fatalf("invalid JSON after-state: %s", out)
		}
	})
}

// BenchmarkOutboxDecode decodes the same raw outbox change record (schema
// envelope) with the outbox decoder and with the plain JSON decoder, the
// decode stage of a debezium-outbox and of a debezium-json topology.
func BenchmarkOutboxDecode(b *testing.B) {
	var r outboxRecord
	for _, x := range loadOutboxRecords(b) {
		if x.name == "raw_insert.env" {
			r = x
		}
	}
	od := NewOutboxDecoder(Options{}, nil)
	jd := NewJSONDecoder(Options{})
	b.Run("debezium-outbox", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := od.DecodeRecord(r.topic, r.key, r.value, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("debezium-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := jd.Decode(r.topic, r.key, r.value); err != nil {
				b.Fatal(err)
			}
		}
	})
}
