package demo

import (
	"encoding/base64"
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// Contact is one row of the demo's contacts table (and of the benchmark's customers table), as both the ERP and the
// CRM hold it.
type Contact struct {
	ID        int64
	FirstName string
	LastName  string
	Email     string
	Phone     string
	Address   string
	City      string
	Balance   int64 // cents; numeric(12,2)
	UpdatedAt time.Time
}

// Source is one Debezium PostgreSQL connector: its logical name (the
// topic prefix), database, and a position that moves forward with every
// change, as a real WAL position does.
type Source struct {
	Name     string // "erp" → topic erp.public.contacts
	Database string
	Schema   bool   // write the {schema, payload} envelope (schemas.enable=true)
	Table    string // default "contacts"
	lsn      int64
	txID     int64
	clock    time.Time
}

// NewSource starts a connector at a fixed position and clock, so a run of
// the generator is reproducible.
func NewSource(name, db string, envelope bool) *Source {
	return &Source{Name: name, Database: db, Schema: envelope, Table: "contacts", lsn: 24_000_000, txID: 700,
		clock: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
}

// Topic is the Debezium topic of the contacts table.
func (s *Source) Topic() string { return s.Name + ".public." + s.Table }

// Change builds one Debezium record of the contacts table. op is c, u, d
// or r; before/after may be nil as Debezium writes them.
func (s *Source) Change(op byte, before, after *Contact) (key, value []byte) {
	s.lsn += 88
	s.txID++
	s.clock = s.clock.Add(1500 * time.Microsecond)
	id := int64(0)
	if after != nil {
		id = after.ID
	} else if before != nil {
		id = before.ID
	}
	snapshot := "false"
	if op == 'r' {
		snapshot = "true"
	}
	payload := make([]byte, 0, 1024)
	payload = append(payload, `{"before":`...)
	payload = s.appendRow(payload, before)
	payload = append(payload, `,"after":`...)
	payload = s.appendRow(payload, after)
	ts := s.clock
	payload = fmt.Appendf(payload, `,"source":{"version":"3.6.1.Final","connector":"postgresql","name":%q,"ts_ms":%d,"snapshot":%q,"db":%q,"sequence":"[\"%d\",\"%d\"]","ts_us":%d,"ts_ns":%d,"schema":"public","table":%q,"txId":%d,"lsn":%d,"xmin":null}`,
		s.Name, ts.UnixMilli(), snapshot, s.Database, s.lsn-88, s.lsn, ts.UnixMicro(), ts.UnixNano(), s.Table, s.txID, s.lsn)
	now := ts.Add(3 * time.Millisecond)
	payload = fmt.Appendf(payload, `,"transaction":null,"op":"%c","ts_ms":%d,"ts_us":%d,"ts_ns":%d}`, op, now.UnixMilli(), now.UnixMicro(), now.UnixNano())
	key = fmt.Appendf(nil, `{"id":%d}`, id)
	if !s.Schema {
		return key, payload
	}
	value = make([]byte, 0, len(payload)+len(envelopeSchema)+32)
	value = append(value, `{"schema":`...)
	value = append(value, s.envelopeSchema()...)
	value = append(value, `,"payload":`...)
	value = append(value, payload...)
	value = append(value, '}')
	key = fmt.Appendf(nil, `{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false,"name":"%s.public.%s.Key"},"payload":{"id":%d}}`, s.Name, s.Table, id)
	return key, value
}

// Tombstone is the null-valued record Debezium writes after a delete.
func (s *Source) Tombstone(id int64) (key []byte) {
	if s.Schema {
		return fmt.Appendf(nil, `{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false,"name":"%s.public.%s.Key"},"payload":{"id":%d}}`, s.Name, s.Table, id)
	}
	return fmt.Appendf(nil, `{"id":%d}`, id)
}

func (s *Source) appendRow(dst []byte, c *Contact) []byte {
	if c == nil {
		return append(dst, "null"...)
	}
	dst = fmt.Appendf(dst, `{"id":%d,"first_name":%q,"last_name":%q,"email":%q,"phone":%q,"address":%q,"city":%q,"balance":`,
		c.ID, c.FirstName, c.LastName, c.Email, c.Phone, c.Address, c.City)
	if s.Schema {
		// org.apache.kafka.connect.data.Decimal: big-endian two's
		// complement unscaled value, base64 in JSON.
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, twosComplement(c.Balance))
		dst = append(dst, '"')
	} else {
		// decimal.handling.mode=string, the usual choice without schemas.
		dst = append(dst, '"')
		dst = append(dst, decimalString(c.Balance)...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"updated_at":`...)
	dst = strconv.AppendInt(dst, c.UpdatedAt.UnixMicro(), 10)
	return append(dst, '}')
}

func decimalString(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

func twosComplement(v int64) []byte {
	b := big.NewInt(v)
	if v >= 0 {
		out := b.Bytes()
		if len(out) == 0 || out[0]&0x80 != 0 {
			out = append([]byte{0}, out...)
		}
		return out
	}
	// Negative: 2^(8n) + v for the smallest n that fits.
	n := 1
	for ; n < 9; n++ {
		if v >= -(int64(1) << (8*n - 1)) {
			break
		}
	}
	m := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
	return m.Add(m, b).Bytes()
}

func (s *Source) envelopeSchema() string {
	p := s.Name + ".public." + s.Table
	return fmt.Sprintf(envelopeSchema, p, p, p)
}

// envelopeSchema is the Connect schema the PostgreSQL connector writes for
// the contacts table with decimal.handling.mode=precise and
// time.precision.mode=adaptive_time_microseconds.
const envelopeSchema = `{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"string","optional":true,"field":"first_name"},{"type":"string","optional":true,"field":"last_name"},{"type":"string","optional":true,"field":"email"},{"type":"string","optional":true,"field":"phone"},{"type":"string","optional":true,"field":"address"},{"type":"string","optional":true,"field":"city"},{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"balance"},{"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"updated_at"}],"optional":true,"name":"%s.Value","field":"before"},{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"string","optional":true,"field":"first_name"},{"type":"string","optional":true,"field":"last_name"},{"type":"string","optional":true,"field":"email"},{"type":"string","optional":true,"field":"phone"},{"type":"string","optional":true,"field":"address"},{"type":"string","optional":true,"field":"city"},{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"balance"},{"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"updated_at"}],"optional":true,"name":"%s.Value","field":"after"},{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"},{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}],"optional":false,"name":"%s.Envelope","version":2}`
