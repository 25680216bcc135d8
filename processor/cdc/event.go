package cdc

import (
	"encoding/hex"
	"time"
)

// Op is a Debezium operation code, as found in the payload's "op" field.
type Op byte

// The Debezium operations.
const (
	OpCreate   Op = 'c'
	OpUpdate   Op = 'u'
	OpDelete   Op = 'd'
	OpRead     Op = 'r' // snapshot read
	OpTruncate Op = 't'
	OpMessage  Op = 'm' // logical decoding message (pg_logical_emit_message)
)

// Verb is the past-tense word used in an event Type: created, updated,
// deleted, snapshot, truncated or message.
func (o Op) Verb() string {
	switch o {
	case OpCreate:
		return "created"
	case OpUpdate:
		return "updated"
	case OpDelete:
		return "deleted"
	case OpRead:
		return "snapshot"
	case OpTruncate:
		return "truncated"
	case OpMessage:
		return "message"
	}
	return "unknown"
}

func (o Op) String() string { return string(rune(o)) }

// ID is a deterministic 128-bit event identity. The same change decoded
// twice, from JSON or from Avro, always has the same ID.
type ID [16]byte

// String is the lower-case hex form, 32 characters.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether the ID was never set.
func (id ID) IsZero() bool { return id == ID{} }

// Field is one named value of a row, key or position. Values are Go values
// (see the package documentation for the type of each logical type).
type Field struct {
	Name  string
	Value any
}

// Row is an ordered list of fields, in the order the source wrote them.
// A nil Row means "absent" (for example the before-state of an insert).
type Row []Field

// Get returns the value of the named field.
func (r Row) Get(name string) (any, bool) {
	for i := range r {
		if r[i].Name == name {
			return r[i].Value, true
		}
	}
	return nil, false
}

// Names returns the field names in order.
func (r Row) Names() []string {
	out := make([]string, len(r))
	for i := range r {
		out[i] = r[i].Name
	}
	return out
}

// Source identifies where a change came from, from Debezium's source block
// (falling back to the topic name, read by ParseTopic in the connector's
// shape, when a record has no source block, such as a tombstone).
type Source struct {
	Connector string // "postgresql", "mysql", "sqlserver", "mongodb", ...
	Name      string // the connector's logical name (topic prefix)
	Database  string
	Schema    string // PostgreSQL and SQL Server schema; empty elsewhere
	Table     string // table, or MongoDB collection
	Snapshot  string // "true", "false", "last", "first", "incremental", ...
}

// Transaction is Debezium's optional transaction block.
type Transaction struct {
	ID                  string
	TotalOrder          int64
	DataCollectionOrder int64
}

// Message is the content of an op=m logical decoding message.
type Message struct {
	Prefix  string
	Content []byte
}

// SchemaInfo says which schema a record was written with, when known.
// Version 0 means unknown.
type SchemaInfo struct {
	Name    string // the Connect schema name, e.g. "pg.public.customers.Envelope"
	Version int    // the Connect schema version, or the registry version for Avro
	ID      int    // schema registry ID (Avro only)
	Subject string // schema registry subject (Avro only)
}

// Event is a typed change event: what cdcsync makes of one Debezium record.
type Event struct {
	ID           ID
	Type         string // "<entity>.<verb>", e.g. "customers.updated"
	Op           Op
	Entity       string // the table or collection name
	SourceSystem string // the topology's source system, e.g. "erp"
	Source       Source
	Key          Row // primary key fields, from the record key
	Before       Row // nil when absent
	After        Row // nil when absent
	// Changed lists the fields whose value differs between Before and After,
	// including fields present on only one side. When Before is absent
	// (insert, snapshot, or an update without REPLICA IDENTITY FULL) every
	// After field counts as changed; for a delete, every Before field.
	// Fields whose value is Unavailable (an unchanged TOASTed column) are
	// never changed.
	Changed []string
	// Position is the connector's source position, e.g. lsn, txId and
	// sequence for PostgreSQL, in a fixed order per connector.
	Position    Row
	Schema      SchemaInfo
	OccurredAt  time.Time // when the change happened in the source database
	Tombstone   bool      // a null value: the delete marker that follows a delete
	Transaction *Transaction
	Message     *Message
	Outbox      *OutboxEvent // source.format debezium-outbox (outbox.go)
}
