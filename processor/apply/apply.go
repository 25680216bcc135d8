package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/topology"
)

// Field is one named value of a sync event, in the order the sync record
// gives it. Raw is the value's JSON text exactly as cdcsync's sink writes
// it (cdc.AppendJSONValue): null, true/false, a number literal (exact
// digits, never float-rounded), a string, an array or an object. The Avro
// sink format is converted to the same text by the source reader, so an
// applier has ONE conversion path: JSON text -> target type.
type Field struct {
	Name string
	Raw  json.RawMessage
}

// Event is one sync event read from a cdcsync sync topic (source.format
// cdcsync-json or cdcsync-avro).
type Event struct {
	ID            string // the event ID (32 hex), also the idempotency key
	Op            byte   // 'c' 'u' 'd' 'r' 't' (Debezium letters)
	Type          string // <entity>.<created|updated|deleted|snapshot|truncated>
	Entity        string
	SourceSystem  string
	Key           []Field // the source primary key
	Fields        []Field // owned, changed fields: after values (none for deletes)
	Before        []Field // the same fields' before values, when known (nil when unknown)
	OccurredAt    time.Time
	SchemaVersion int

	// Where it was read.
	Topic     string
	Partition int32
	Offset    int64

	// Value is the sync record's value as the sink wrote it: JSON text for
	// cdcsync-json, the same event re-encoded as sink JSON for
	// cdcsync-avro. The HTTP applier sends it as the request body.
	Value []byte
}

// Rejected is a permanent failure of one event: it goes to the DLQ with
// stage "apply", Reason as the error and Headers added to the record.
type Rejected struct {
	Reason  string            // human-readable, e.g. `23505 unique_violation: duplicate key ...`
	Headers map[string]string // extra DLQ headers, e.g. cdcsync.apply.pg.code, cdcsync.apply.http.status
	Err     error
}

func (r *Rejected) Error() string {
	if r.Err != nil && r.Reason == "" {
		return r.Err.Error()
	}
	return r.Reason
}

func (r *Rejected) Unwrap() error { return r.Err }

// RetryAfter, wrapped in a transient error, asks the framework to wait at
// least D before offering the events again (HTTP Retry-After).
type RetryAfter struct {
	D   time.Duration
	Err error
}

func (r *RetryAfter) Error() string {
	return fmt.Sprintf("%v (retry after %v)", r.Err, r.D)
}

func (r *RetryAfter) Unwrap() error { return r.Err }

// Applier writes events into a target.
//
// Apply is given events of ONE partition, in offset order. The framework
// calls Apply concurrently for different partitions (at most
// apply.max_concurrency at once) but never concurrently for the same
// partition, and a partition's calls follow its offset order.
//
// Apply returns one outcome per event it finished, in order: nil (applied,
// or skipped because already applied, or skipped by policy) or a
// *Rejected. It finishes a prefix: len(outcomes) = n <= len(events). A
// non-nil err is TRANSIENT (target down, timeout, serialization failure,
// deadlock, 5xx/429...): events[n:] were not applied and will be offered
// again (from events[n]) after a backoff; the framework counts it for the
// breaker of dependency "apply". An err may wrap *RetryAfter to ask for a
// minimum wait. The framework commits the Kafka offsets of events[:n] only
// after Apply returned them, so a crash replays at most unfinished events
// (the applier's own idempotency — the PostgreSQL applied table, the HTTP
// Idempotency-Key — makes a replay harmless). When ctx ends, Apply returns
// promptly with what it finished and ctx's error.
type Applier interface {
	Apply(ctx context.Context, events []Event) (outcomes []error, err error)
	Close() error
}

// Options is what a constructor of an Applier gets.
type Options struct {
	Topology string         // the topology name, the "topology" label of metrics
	Config   topology.Apply // the decoded, validated apply section
	// Where returns "FILE:LINE: path" for a dotted option path such as
	// "apply.postgres.columns.phone", to refuse a start at the option.
	Where      func(path string) string
	Registerer prometheus.Registerer // for the applier's own metrics
	Log        *zap.Logger
}
