package demo

import (
	_ "embed"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/schemas"
)

// The writer schemas of the shop's customers table, as Debezium's
// PostgreSQL connector and Confluent's Avro converter register them. They
// are the fixtures of processor/cdc/testdata/avro (pg_update.*.avsc) with
// the topic prefix "shop"; v2 adds the nullable column loyalty at the end
// of the row record (ALTER TABLE customers ADD COLUMN loyalty text).
var (
	//go:embed avro/customers.key.avsc
	customersKeySchema string
	//go:embed avro/customers.value.v1.avsc
	customersValueV1 string
	//go:embed avro/customers.value.v2.avsc
	customersValueV2 string
)

// AvroTopic is the source topic of the demo's Avro topology.
const AvroTopic = "shop.public.customers"

// Registrar registers a schema under a subject and returns its ID and
// version; *srfake.Registry is one.
type Registrar interface {
	RegisterSchema(subject string, s sr.Schema) (id, version int, err error)
}

// AvroExpect is Expect for the Avro data set, with what it holds per
// writer schema version.
type AvroExpect struct {
	Expect
	Fields  int // changed fields dropped by authority from changes that still pass
	V1, V2  int // well-formed change records written with each value schema version
	Loyalty int // changes whose after-state has a loyalty tier (v2 only)
}

// Customer is one row of the shop's customers table.
type Customer struct {
	ID        int64
	FirstName string
	LastName  string
	Email     string
	Phone     string // "" is NULL
	City      string
	Country   string
	Balance   int64 // cents; numeric(12,2)
	UpdatedAt time.Time
	Loyalty   string // v2 only; "" is NULL
}

var countries = []string{"DE", "FR", "PT", "PL", "NL", "NO", "EE", "AT"}

func customer(id int64, at time.Time) *Customer {
	i := int(id)
	return &Customer{
		ID:        id,
		FirstName: firstNames[(i+3)%len(firstNames)],
		LastName:  lastNames[(i*7)%len(lastNames)],
		Email:     fmt.Sprintf("customer%d@shop.example", id),
		Phone:     fmt.Sprintf("+49 89 %07d", 5000000+id*13),
		City:      cities[i%len(cities)],
		Country:   countries[i%len(countries)],
		Balance:   id*731 - 2000,
		UpdatedAt: at,
	}
}

// avroSource is the shop's Debezium connector with the Avro converter: it
// frames keys and values with the registered schema IDs and moves its
// position forward with every change.
type avroSource struct {
	keyID, valueID int
	key, value     *goavro.Codec
	v2             bool
	lsn, txID      int64
	clock          time.Time
}

// Customers builds the demo's Avro data set on the topic AvroTopic and
// registers its writer schemas in reg: the key schema and value schema v1
// first, then, mid-stream, value schema v2, which adds the nullable
// column loyalty. Records written after the change carry the v2 ID, so
// one partition holds both writer versions side by side.
//
// The connector runs with REPLICA IDENTITY FULL, so updates carry their
// before-state. The shop owns the customers; the CRM owns the names. In
// order, the data set holds: the initial snapshot (v1); shop updates of
// city and balance; echoes of CRM name corrections (only CRM-owned fields
// changed: dropped whole); shop updates of the email that also rewrite
// the first name (the name is dropped by authority); the schema change;
// loyalty tiers given out (v2); new customers (v2 inserts); deletes with
// their tombstones; redelivered records of both versions; and two Avro
// poison records, one framed with a schema ID the registry does not know
// and one whose body is truncated. Both go to the DLQ with the schema ID
// in a header.
func Customers(reg Registrar, n int) ([]Record, AvroExpect, error) {
	var ex AvroExpect
	keyCodec, err := goavro.NewCodec(customersKeySchema)
	if err != nil {
		return nil, ex, err
	}
	v1, err := goavro.NewCodec(customersValueV1)
	if err != nil {
		return nil, ex, err
	}
	v2, err := goavro.NewCodec(customersValueV2)
	if err != nil {
		return nil, ex, err
	}
	s := &avroSource{key: keyCodec, value: v1, lsn: 36_000_000, txID: 900,
		clock: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	if s.keyID, _, err = reg.RegisterSchema(schemas.KeySubject(AvroTopic), sr.Schema{Schema: customersKeySchema}); err != nil {
		return nil, ex, fmt.Errorf("demo: register %s: %w", schemas.KeySubject(AvroTopic), err)
	}
	valueSubject := AvroTopic + "-value"
	if s.valueID, _, err = reg.RegisterSchema(valueSubject, sr.Schema{Schema: customersValueV1}); err != nil {
		return nil, ex, fmt.Errorf("demo: register %s v1: %w", valueSubject, err)
	}

	var out []Record
	var redeliver []Record
	var werr error
	add := func(op byte, before, after *Customer) Record {
		k, v, err := s.change(op, before, after)
		if err != nil && werr == nil {
			werr = err
		}
		r := Record{Topic: AvroTopic, Key: k, Value: v}
		out = append(out, r)
		if s.v2 {
			ex.V2++
		} else {
			ex.V1++
		}
		if after != nil && after.Loyalty != "" {
			ex.Loyalty++
		}
		return r
	}
	base := time.Date(2026, 11, 2, 7, 30, 0, 0, time.UTC)
	rows := map[int64]*Customer{}
	for id := int64(1); id <= int64(n); id++ {
		rows[id] = customer(id, base)
		add('r', nil, rows[id])
	}
	update := func(id int64, f func(c *Customer)) (before, after *Customer) {
		b := *rows[id]
		a := b
		f(&a)
		rows[id] = &a
		return &b, &a
	}
	// The shop updates fields it owns.
	for id := int64(3); id <= int64(n); id += 3 {
		b, a := update(id, func(c *Customer) {
			c.City = cities[(int(id)+3)%len(cities)]
			c.Balance += 1999
			c.UpdatedAt = c.UpdatedAt.Add(time.Duration(id) * time.Minute)
		})
		r := add('u', b, a)
		if id%15 == 0 {
			redeliver = append(redeliver, r)
		}
	}
	// Echoes: the CRM corrected a last name, cdcsync's sync wrote it into
	// the shop (leaving updated_at alone), and the shop's CDC shows a
	// change of a CRM-owned field only. Authority drops it whole, which
	// ends the loop.
	for id := int64(7); id <= int64(n); id += 7 {
		b, a := update(id, func(c *Customer) { c.LastName = c.LastName + "-" + c.FirstName })
		add('u', b, a)
		ex.Echoes++
	}
	// The shop's account page upper-cases the first name along with a new
	// email: the email passes, the CRM-owned first name is dropped.
	for id := int64(5); id <= int64(n); id += 10 {
		b, a := update(id, func(c *Customer) {
			c.Email = fmt.Sprintf("%s.%d@mail.example", c.FirstName, id)
			c.FirstName = strings.ToUpper(c.FirstName)
			c.UpdatedAt = c.UpdatedAt.Add(2 * time.Hour)
		})
		add('u', b, a)
		ex.Fields++
	}

	// The schema change: ALTER TABLE customers ADD COLUMN loyalty text.
	// The converter registers v2 under the same subject; every record from
	// here on is written with it.
	if s.valueID, _, err = reg.RegisterSchema(valueSubject, sr.Schema{Schema: customersValueV2}); err != nil {
		return nil, ex, fmt.Errorf("demo: register %s v2: %w", valueSubject, err)
	}
	s.value, s.v2 = v2, true
	tiers := []string{"bronze", "silver", "gold"}
	for id := int64(4); id <= int64(n); id += 4 {
		b, a := update(id, func(c *Customer) { c.Loyalty = tiers[int(id/4)%len(tiers)] })
		r := add('u', b, a)
		if id%20 == 0 {
			redeliver = append(redeliver, r)
		}
	}
	// New customers sign up with a tier.
	for id := int64(n) + 1; id <= int64(n)+10; id++ {
		c := customer(id, base.Add(48*time.Hour))
		c.Loyalty = "bronze"
		rows[id] = c
		add('c', nil, c)
	}
	// Deletes, each followed by its tombstone (an Avro key, a null value).
	for id := int64(1); id <= 2 && id <= int64(n); id++ {
		before := rows[id]
		delete(rows, id)
		add('d', before, nil)
		out = append(out, Record{Topic: AvroTopic, Key: s.keyBytes(id)})
		ex.Tombstones++
	}
	if werr != nil {
		return nil, ex, werr
	}
	// Redelivery after a connector restart: the same bytes again, of both
	// writer versions.
	out = append(out, redeliver...)
	ex.Duplicates = len(redeliver)

	// Poison. An unknown schema ID (a record written against another
	// registry) and a body cut short: both are permanent, so both go to
	// the DLQ with the schema ID in the cdcsync.schema.id header.
	c := rows[int64(n)]
	if c == nil {
		c = customer(int64(n), base)
	}
	k, v, err := s.change('u', c, c)
	if err != nil {
		return nil, ex, err
	}
	unknown := cdc.AppendWireHeader(nil, 4040)
	unknown = append(unknown, v[cdc.WireHeaderSize:]...)
	out = append(out, Record{Topic: AvroTopic, Key: k, Value: unknown})
	k, v, err = s.change('u', c, c)
	if err != nil {
		return nil, ex, err
	}
	out = append(out, Record{Topic: AvroTopic, Key: k, Value: v[:len(v)/2]})
	ex.Poison = 2

	ex.Records = len(out)
	return out, ex, nil
}

func (s *avroSource) keyBytes(id int64) []byte {
	b, err := s.key.BinaryFromNative(cdc.AppendWireHeader(nil, s.keyID), map[string]any{"id": id})
	if err != nil {
		panic(err) // the key schema is fixed: {id: long}
	}
	return b
}

// change builds one Debezium Avro record: key and value in the Confluent
// wire format.
func (s *avroSource) change(op byte, before, after *Customer) (key, value []byte, err error) {
	s.lsn += 96
	s.txID++
	s.clock = s.clock.Add(1700 * time.Microsecond)
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
	ts := s.clock
	now := ts.Add(4 * time.Millisecond)
	src := map[string]any{
		"version":   "3.6.1.Final",
		"connector": "postgresql",
		"name":      "shop",
		"ts_ms":     ts.UnixMilli(),
		"snapshot":  goavro.Union("string", snapshot),
		"db":        "shop",
		"sequence":  goavro.Union("string", fmt.Sprintf(`["%d","%d"]`, s.lsn-96, s.lsn)),
		"ts_us":     goavro.Union("long", ts.UnixMicro()),
		"ts_ns":     goavro.Union("long", ts.UnixNano()),
		"schema":    "public",
		"table":     "customers",
		"txId":      goavro.Union("long", s.txID),
		"lsn":       goavro.Union("long", s.lsn),
		"xmin":      nil,
	}
	var tx any
	if op != 'r' {
		tx = goavro.Union("event.block", map[string]any{
			"id": fmt.Sprintf("%d:%d", s.txID, s.lsn), "total_order": int64(1), "data_collection_order": int64(1)})
	}
	v := map[string]any{
		"before":      s.row(before),
		"after":       s.row(after),
		"source":      src,
		"op":          string(rune(op)),
		"ts_ms":       goavro.Union("long", now.UnixMilli()),
		"ts_us":       goavro.Union("long", now.UnixMicro()),
		"ts_ns":       goavro.Union("long", now.UnixNano()),
		"transaction": tx,
	}
	value, err = s.value.BinaryFromNative(cdc.AppendWireHeader(nil, s.valueID), v)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: encode customer %d: %w", id, err)
	}
	return s.keyBytes(id), value, nil
}

func (s *avroSource) row(c *Customer) any {
	if c == nil {
		return nil
	}
	m := map[string]any{
		"id":         c.ID,
		"first_name": c.FirstName,
		"last_name":  c.LastName,
		"email":      c.Email,
		"phone":      optString(c.Phone),
		"city":       optString(c.City),
		"country":    optString(c.Country),
		"balance":    goavro.Union("bytes.decimal", big.NewRat(c.Balance, 100)),
		"updated_at": goavro.Union("long", c.UpdatedAt.UnixMicro()),
	}
	if s.v2 {
		m["loyalty"] = optString(c.Loyalty)
	}
	return goavro.Union(AvroTopic+".Value", m)
}

func optString(s string) any {
	if s == "" {
		return nil
	}
	return goavro.Union("string", s)
}
