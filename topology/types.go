package topology

import "fmt"

// Topic is a Kafka topic name.
type Topic string

// GroupID is a Kafka consumer group ID.
type GroupID string

// System is the name of a system of record, such as "erp" or "crm": the
// source of a topology's changes and the owner of fields.
type System string

// Format is how the source topics are encoded.
type Format int

const (
	// FormatUnset is the zero Format; a valid plan never has it.
	FormatUnset Format = iota
	// DebeziumJSON is Debezium through Kafka Connect's JSON converter, with
	// or without the {schema, payload} envelope.
	DebeziumJSON
	// DebeziumAvro is Debezium through the Avro converter: Confluent wire
	// format with the writer schema in the schema registry.
	DebeziumAvro
	// CdcsyncJSON is what a cdcsync sink writes with sink.format json: the
	// source of an apply topology.
	CdcsyncJSON
	// CdcsyncAvro is what a cdcsync sink writes with sink.format avro.
	CdcsyncAvro
	// WebhookJSON is the raw topic of a webhook ingress (source.webhook):
	// each record's value is a verified delivery's body.
	WebhookJSON
	// DebeziumOutbox is a transactional outbox table through Debezium, JSON
	// or Avro, raw or transformed by the EventRouter SMT (outbox.go).
	DebeziumOutbox
)

// Tombstones says what happens to a tombstone (a record with a null value,
// which Debezium writes after a delete for log compaction).
type Tombstones int

const (
	// TombstonesPass forwards a tombstone as a delete marker (the default).
	TombstonesPass Tombstones = iota
	// TombstonesDrop drops tombstones.
	TombstonesDrop
)

// Truncate says what happens to a TRUNCATE event (op t). A truncate
// concerns every key of the table, so it cannot be kept in order with the
// changes of other source partitions; see the README's source.truncate.
type Truncate int

const (
	// TruncateDLQ sends truncates to the DLQ, stage route (the default):
	// nothing is lost, and an operator decides.
	TruncateDLQ Truncate = iota
	// TruncatePass forwards a truncate to every sink partition.
	TruncatePass
	// TruncateDrop drops truncates, as Debezium's default
	// skipped.operations=t does at the source.
	TruncateDrop
)

// DedupKey says how an event's ID, the dedup ledger's key, is derived.
type DedupKey int

const (
	// DedupPosition hashes connector, database, table, primary key and the
	// connector's source position (the default). Snapshot reads use the
	// content key regardless, because they have no stable position.
	DedupPosition DedupKey = iota
	// DedupContent hashes table, primary key and the after-state, so an
	// identical row state is applied once however it arrives.
	DedupContent
	// DedupField uses the value of one named field, e.g. an outbox "id".
	DedupField
)

// OnViolation says what happens to a changed field that the source system
// does not own.
type OnViolation int

const (
	// ViolationDropField drops the field and counts it (the default).
	ViolationDropField OnViolation = iota
	// ViolationDLQ drops the field and also writes the record to the DLQ.
	ViolationDLQ
)

// SinkFormat is how output records are encoded.
type SinkFormat int

const (
	// SinkJSON writes JSON (the default).
	SinkJSON SinkFormat = iota
	// SinkAvro writes Avro in Confluent wire format, registering the schema.
	SinkAvro
	// SinkPayload writes an outbox event's payload itself as the value
	// (source.format debezium-outbox only; outbox.go).
	SinkPayload
)

// SubjectStrategy is the schema registry subject naming strategy for Avro
// output.
type SubjectStrategy int

const (
	// SubjectTopic is "<topic>-value" (the default; Confluent's
	// TopicNameStrategy).
	SubjectTopic SubjectStrategy = iota
	// SubjectRecord is "<record full name>" (RecordNameStrategy).
	SubjectRecord
	// SubjectTopicRecord is "<topic>-<record full name>"
	// (TopicRecordNameStrategy).
	SubjectTopicRecord
)

// Tolerance says what a permanent failure (undecodable bytes, missing key
// fields, a rule violation) does. Transient failures are always retried and
// never reach the DLQ.
type Tolerance int

const (
	// TolerateAll sends the record to the DLQ and keeps the partition
	// flowing (the default; Kafka Connect's errors.tolerance=all).
	TolerateAll Tolerance = iota
	// TolerateNone stops the worker on the first permanent failure (Kafka
	// Connect's errors.tolerance=none).
	TolerateNone
)

// Guarantee is the processing guarantee.
type Guarantee int

const (
	// AtLeastOnce marks offsets after outputs and ledger writes are acked; a
	// crash can re-emit and the ledger catches the redelivery (the default).
	AtLeastOnce Guarantee = iota
	// ExactlyOnce commits outputs, DLQ records, ledger records and offsets
	// in one Kafka transaction every commit interval.
	ExactlyOnce
)

// The spellings of each enum in topology files, indexed by value. The first
// spelling of each table is the default unless the zero value is "unset".
var (
	formatNames          = []string{"", "debezium-json", "debezium-avro", "cdcsync-json", "cdcsync-avro", "webhook", "debezium-outbox"}
	tombstonesNames      = []string{"pass", "drop"}
	truncateNames        = []string{"dlq", "pass", "drop"}
	dedupKeyNames        = []string{"position", "content", "field"}
	onViolationNames     = []string{"drop_field", "dlq"}
	sinkFormatNames      = []string{"json", "avro", "payload"}
	subjectStrategyNames = []string{"topic", "record", "topic-record"}
	toleranceNames       = []string{"all", "none"}
	guaranteeNames       = []string{"at_least_once", "exactly_once"}
)

func enumString(names []string, v int, typ string) string {
	if v >= 0 && v < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

// String returns the spelling used in topology files.
func (f Format) String() string { return enumString(formatNames, int(f), "Format") }

// String returns the spelling used in topology files.
func (t Tombstones) String() string { return enumString(tombstonesNames, int(t), "Tombstones") }

// String returns the spelling used in topology files.
func (t Truncate) String() string { return enumString(truncateNames, int(t), "Truncate") }

// String returns the spelling used in topology files.
func (k DedupKey) String() string { return enumString(dedupKeyNames, int(k), "DedupKey") }

// String returns the spelling used in topology files.
func (v OnViolation) String() string { return enumString(onViolationNames, int(v), "OnViolation") }

// String returns the spelling used in topology files.
func (f SinkFormat) String() string { return enumString(sinkFormatNames, int(f), "SinkFormat") }

// String returns the spelling used in topology files.
func (s SubjectStrategy) String() string {
	return enumString(subjectStrategyNames, int(s), "SubjectStrategy")
}

// String returns the spelling used in topology files.
func (t Tolerance) String() string { return enumString(toleranceNames, int(t), "Tolerance") }

// String returns the spelling used in topology files.
func (g Guarantee) String() string { return enumString(guaranteeNames, int(g), "Guarantee") }

// validEnum reports whether v is a spelt value of names.
func validEnum(names []string, v int) bool {
	return v >= 0 && v < len(names) && names[v] != ""
}
