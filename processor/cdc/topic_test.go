package cdc

import (
	"errors"
	"strings"
	"testing"
)

// TestParseTopic reads each connector's topic shape.
//
// Regression: prefix.x.table was read as schema.table for every
// connector, so a MySQL or MongoDB tombstone had its database in Schema
// and went to another sink topic than its delete under a {db} or {schema}
// template.
func TestParseTopic(t *testing.T) {
	for _, c := range []struct {
		topic, connector string
		want             TopicName
		err              error
	}{
		{"erp.public.contacts", ConnectorPostgreSQL, TopicName{Prefix: "erp", Schema: "public", Table: "contacts"}, nil},
		{"prod.erp.public.contacts", ConnectorPostgreSQL, TopicName{Prefix: "prod.erp", Schema: "public", Table: "contacts"}, nil},
		{"mysql.inventory.orders", ConnectorMySQL, TopicName{Prefix: "mysql", Database: "inventory", Table: "orders"}, nil},
		{"dc1.shop.inventory.orders", ConnectorMySQL, TopicName{Prefix: "dc1.shop", Database: "inventory", Table: "orders"}, nil},
		{"maria.inventory.orders", ConnectorMariaDB, TopicName{Prefix: "maria", Database: "inventory", Table: "orders"}, nil},
		{"mongo.inventory.customers", ConnectorMongoDB, TopicName{Prefix: "mongo", Database: "inventory", Table: "customers"}, nil},
		// Debezium 2 and later: SQL Server always names the database.
		{"server1.testDB.dbo.customers", ConnectorSQLServer, TopicName{Prefix: "server1", Database: "testDB", Schema: "dbo", Table: "customers"}, nil},
		{"prod.server1.testDB.dbo.customers", ConnectorSQLServer, TopicName{Prefix: "prod.server1", Database: "testDB", Schema: "dbo", Table: "customers"}, nil},
		// Debezium 1: prefix.schema.table.
		{"server1.dbo.customers", ConnectorSQLServer, TopicName{Prefix: "server1", Schema: "dbo", Table: "customers"}, nil},
		{"ora.INVENTORY.CUSTOMERS", ConnectorOracle, TopicName{Prefix: "ora", Schema: "INVENTORY", Table: "CUSTOMERS"}, nil},
		{"db2.MYSCHEMA.ORDERS", ConnectorDb2, TopicName{Prefix: "db2", Schema: "MYSCHEMA", Table: "ORDERS"}, nil},
		// Renamed by an SMT: the parts there are, from the right.
		{"contacts", ConnectorPostgreSQL, TopicName{Table: "contacts"}, ErrTopicShape},
		{"public.contacts", ConnectorPostgreSQL, TopicName{Schema: "public", Table: "contacts"}, ErrTopicShape},
		{"inventory.orders", ConnectorMySQL, TopicName{Database: "inventory", Table: "orders"}, ErrTopicShape},
		{"dbo.customers", ConnectorSQLServer, TopicName{Schema: "dbo", Table: "customers"}, ErrTopicShape},
		{"", ConnectorMySQL, TopicName{}, ErrTopicShape},
		// Unknown kinds: PostgreSQL's reading.
		{"mysql.inventory.orders", "", TopicName{Prefix: "mysql", Schema: "inventory", Table: "orders"}, ErrUnknownConnector},
		{"x.a.b.c", "cassandra", TopicName{Prefix: "x.a", Schema: "b", Table: "c"}, ErrUnknownConnector},
		{"c", "", TopicName{Table: "c"}, ErrUnknownConnector},
	} {
		got, err := ParseTopic(c.topic, c.connector)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("ParseTopic(%q, %q) = %+v, %v; want %+v, %v", c.topic, c.connector, got, err, c.want, c.err)
		}
	}
}

// identity is what the sink topic template and the event ID use, as far
// as the topic name carries it: a PostgreSQL topic has no database.
func identity(ev *Event) Source {
	s := ev.Source
	s.Snapshot = ""
	if s.Connector == ConnectorPostgreSQL {
		s.Database = ""
	}
	return s
}

// TestTombstoneIdentity: a tombstone has the identity of the delete
// before it (but a PostgreSQL database, which its topic does not name),
// learned from the topic's records or declared, for every
// connector's topic shape, with the JSON and the Avro decoder.
func TestTombstoneIdentity(t *testing.T) {
	for _, name := range []string{"pg_delete", "mysql_delete", "mongo_delete", "sqlserver_update"} {
		for _, form := range []string{".bare", ".env"} {
			r := loadRecord(t, name+form)
			d := NewJSONDecoder(Options{})
			del := mustDecode(t, d, r)
			tomb, err := d.Decode(r.topic, r.key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tomb.Tombstone || identity(tomb) != identity(del) || tomb.Entity != del.Entity {
				t.Errorf("%s%s: tombstone %+v, delete %+v", name, form, identity(tomb), identity(del))
			}
			// Declared: the first record may be the tombstone.
			decl, err := NewJSONDecoder(Options{Connector: del.Source.Connector}).Decode(r.topic, r.key, nil)
			if err != nil || identity(decl) != identity(del) {
				t.Errorf("%s%s declared: tombstone %+v (%v), delete %+v", name, form, identity(decl), err, identity(del))
			}
		}
		f, src := fixtureByName(t, name)
		d := NewAvroDecoder(Options{}, src)
		del, err := d.Decode(f.topic, f.key, f.value)
		if err != nil {
			t.Fatal(err)
		}
		tomb, err := d.Decode(f.topic, f.key, nil)
		if err != nil || identity(tomb) != identity(del) {
			t.Errorf("%s avro: tombstone %+v (%v), delete %+v", name, identity(tomb), err, identity(del))
		}
	}
}

// TestTombstoneFirst: a tombstone that is the first record of its topic,
// with no connector declared, is read as PostgreSQL's prefix.schema.table
// and has no connector.
func TestTombstoneFirst(t *testing.T) {
	ev, err := NewJSONDecoder(Options{}).Decode("mysql.inventory.orders", []byte(`{"order_number":1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Source{Name: "mysql", Schema: "inventory", Table: "orders"}
	if identity(ev) != want || ev.Entity != "orders" {
		t.Errorf("tombstone %+v, want %+v", identity(ev), want)
	}
}

// A connector kind ParseTopic does not know is not learned, and learning
// stops at maxTopicKinds topics.
func TestTopicKinds(t *testing.T) {
	var k topicKinds
	k.learn("a.b.c", "cassandra")
	if got := k.kind("", "a.b.c"); got != "" {
		t.Errorf("unknown kind learned: %q", got)
	}
	k.learn("a.b.c", ConnectorMySQL)
	if got := k.kind("", "a.b.c"); got != ConnectorMySQL {
		t.Errorf("kind %q", got)
	}
	if got := k.kind(ConnectorPostgreSQL, "a.b.c"); got != ConnectorPostgreSQL {
		t.Errorf("declared kind not first: %q", got)
	}
	for i := range maxTopicKinds + 10 {
		k.learn(string(rune('a'+i%26))+"."+string(rune(i)), ConnectorMySQL)
	}
	if k.c > maxTopicKinds {
		t.Errorf("%d topics remembered, bound %d", k.c, maxTopicKinds)
	}
}

// FuzzParseTopic: never a panic, the table is always the last part, and
// a reading without error puts the parts back together into the topic.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a.b.c", "a.b.c.d", "p.d.s.t.u", "a..b"} {
		f.Add(s, ConnectorSQLServer)
		f.Add(s, ConnectorMySQL)
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, topic, connector string) {
		tn, err := ParseTopic(topic, connector)
		if !strings.HasSuffix(topic, tn.Table) || strings.Contains(tn.Table, ".") {
			t.Fatalf("%q: table %q is not the last part", topic, tn.Table)
		}
		if err != nil {
			return
		}
		var parts []string
		switch connector {
		case ConnectorMySQL, ConnectorMariaDB, ConnectorMongoDB:
			parts = []string{tn.Prefix, tn.Database, tn.Table}
		case ConnectorSQLServer:
			parts = []string{tn.Prefix, tn.Database, tn.Schema, tn.Table}
			if strings.Count(topic, ".") == 2 {
				parts = []string{tn.Prefix, tn.Schema, tn.Table}
			}
		default:
			parts = []string{tn.Prefix, tn.Schema, tn.Table}
		}
		if got := strings.Join(parts, "."); got != topic {
			t.Fatalf("%q (%s): %+v joins to %q", topic, connector, tn, got)
		}
	})
}
