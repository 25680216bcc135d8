package topology

import "time"

// Defaults of the apply section.
const (
	DefaultApplyMaxEvents      = 500
	DefaultApplyMaxWait        = 50 * time.Millisecond
	DefaultApplyMaxConcurrency = 8
	DefaultHTTPTimeout         = 10 * time.Second
	DefaultAppliedTable        = "cdcsync_applied"
)

// ApplyKind is the kind of target an apply topology writes to.
type ApplyKind int

const (
	// ApplyUnset is the zero ApplyKind; a topology without apply has it.
	ApplyUnset ApplyKind = iota
	// ApplyPostgres writes rows into a PostgreSQL table (processor/apply/pgapply).
	ApplyPostgres
	// ApplyHTTP calls an HTTP endpoint per event, signed as Standard Webhooks.
	ApplyHTTP
)

// ApplyTruncate says what an apply topology does with a truncate event.
type ApplyTruncate int

const (
	// ApplyTruncateIgnore skips truncates and counts them (the default).
	ApplyTruncateIgnore ApplyTruncate = iota
	// ApplyTruncateApply applies them (postgres: TRUNCATE the table; http:
	// one request with the truncate method).
	ApplyTruncateApply
)

// OnConflict says what the PostgreSQL applier does when the target row was
// changed since the event's before values.
type OnConflict int

const (
	// ConflictOverwrite writes the event's values anyway (the default).
	ConflictOverwrite OnConflict = iota
	// ConflictSkip keeps the target's values and counts the conflict.
	ConflictSkip
	// ConflictDLQ sends the event to the DLQ, stage apply.
	ConflictDLQ
)

var (
	applyKindNames     = []string{"", "postgres", "http"}
	applyTruncateNames = []string{"ignore", "apply"}
	onConflictNames    = []string{"overwrite", "skip", "dlq"}
)

// String returns the spelling used in topology files.
func (k ApplyKind) String() string { return enumString(applyKindNames, int(k), "ApplyKind") }

// String returns the spelling used in topology files.
func (t ApplyTruncate) String() string {
	return enumString(applyTruncateNames, int(t), "ApplyTruncate")
}

// String returns the spelling used in topology files.
func (c OnConflict) String() string { return enumString(onConflictNames, int(c), "OnConflict") }

// Apply is the "apply" section: the topology reads cdcsync sync topics
// (source.format cdcsync-json or cdcsync-avro) and writes each event into a
// target system. A topology has either sink or apply, never both.
type Apply struct {
	Kind           ApplyKind
	Batch          ApplyBatch
	MaxConcurrency int // partitions applied at once, >= 1
	Truncate       ApplyTruncate
	Postgres       PostgresApply // Kind == ApplyPostgres
	HTTP           HTTPApply     // Kind == ApplyHTTP
}

// ApplyBatch bounds the batches handed to an applier: up to MaxEvents
// events of one partition, or what arrived within MaxWait of the first.
type ApplyBatch struct {
	MaxEvents int           // >= 1
	MaxWait   time.Duration // > 0
}

// PostgresApply is "apply.postgres".
type PostgresApply struct {
	DSNEnv       string            // environment variable holding the DSN; exactly one of DSNEnv and DSNFile
	DSNFile      string            // file holding the DSN
	Table        string            // target table, optionally schema-qualified
	Key          []string          // target key columns, in event key order
	Columns      map[string]string // event field -> column; unlisted fields map to themselves
	OnConflict   OnConflict
	AppliedTable string // table recording applied event IDs
}

// HTTPApply is "apply.http".
type HTTPApply struct {
	URL         string        // template with {entity} and {key.<field>}
	Methods     HTTPMethods   // method per operation
	Timeout     time.Duration // per request, > 0
	SecretsEnv  []string      // environment variables holding whsec_ secrets; or SecretsFile
	SecretsFile []string      // files holding whsec_ secrets
}

// HTTPMethods is the HTTP method of each operation. A snapshot read is
// sent like a create.
type HTTPMethods struct {
	Create   string
	Update   string
	Delete   string
	Truncate string
}
