package dlq

import (
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// The JSON shapes of `cdcsync dlq inspect --output json` (summary, --list,
// --show) and `cdcsync dlq replay --dry-run --output json`. They are meant
// for any JSON surface that shows DLQ records (the REST API, the console),
// so that all of them agree; docs/cli.md shows examples. Fields are only
// ever added.

// Payload is a record key or value for JSON: its size and exactly one of
// JSON (when the bytes are valid JSON, embedded as is), Text (valid UTF-8
// that is not JSON) or Base64 (anything else). A null key or value is a
// nil *Payload, null in JSON.
type Payload struct {
	Bytes  int             `json:"bytes"`
	JSON   json.RawMessage `json:"json,omitempty"`
	Text   *string         `json:"text,omitempty"`
	Base64 string          `json:"base64,omitempty"`
}

// NewPayload describes b; nil for nil.
func NewPayload(b []byte) *Payload {
	if b == nil {
		return nil
	}
	p := &Payload{Bytes: len(b)}
	switch {
	case len(b) > 0 && json.Valid(b):
		p.JSON = json.RawMessage(b)
	case utf8.Valid(b):
		s := string(b)
		p.Text = &s
	default:
		p.Base64 = base64.StdEncoding.EncodeToString(b)
	}
	return p
}

// HeaderView is one header of a DLQ record. Value is the value as text
// when it is valid UTF-8; otherwise Base64 holds it. Error is true for the
// error headers the DLQ writer appended, false for the source record's own.
type HeaderView struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Base64 string `json:"base64,omitempty"`
	Error  bool   `json:"error"`
}

// ListItem is one DLQ record in a list: where it is, where it came from,
// why it failed, its key, and the first line of the error message.
type ListItem struct {
	DLQ            Position   `json:"dlq"`
	Origin         Position   `json:"origin"`
	Time           *time.Time `json:"time"` // Entry.Time(); null when unknown
	Topology       string     `json:"topology"`
	Stage          string     `json:"stage"`
	ExceptionClass string     `json:"exception_class"`
	Message        string     `json:"message"` // first line
	Key            *Payload   `json:"key"`
	ReplayOf       string     `json:"replay_of,omitempty"` // Entry.ReplayOf
}

// View is everything about one DLQ record (`dlq inspect --show`).
type View struct {
	ListItem
	Message      string       `json:"message"` // whole
	Class        string       `json:"class"`
	Stack        string       `json:"stack,omitempty"`
	Attempts     int          `json:"attempts"`
	FirstFailure *time.Time   `json:"first_failure"`
	Timestamp    *time.Time   `json:"timestamp"`
	EventID      string       `json:"event_id,omitempty"`
	SchemaID     int          `json:"schema_id,omitempty"`
	TaskID       string       `json:"task_id,omitempty"`
	Truncated    string       `json:"truncated,omitempty"` // HeaderTruncated: the copy is not the original
	Headers      []HeaderView `json:"headers"`
	Value        *Payload     `json:"value"`
}

// SkippedRecord is a record of a DLQ topic that is not a readable DLQ
// record (see Skipped).
type SkippedRecord struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Reason    string `json:"reason"`
}

// SummaryView is Summary with the skipped records (`dlq inspect`).
type SummaryView struct {
	Topic       string          `json:"topic"`
	Total       int             `json:"total"`
	FirstSeen   *time.Time      `json:"first_seen"`
	LastSeen    *time.Time      `json:"last_seen"`
	ByTopology  map[string]int  `json:"by_topology"`
	ByStage     map[string]int  `json:"by_stage"`
	ByException map[string]int  `json:"by_exception"`
	Skipped     []SkippedRecord `json:"skipped"`
}

// ListView is a list of DLQ records (`dlq inspect --list`).
type ListView struct {
	Topic   string          `json:"topic"`
	Records []ListItem      `json:"records"`
	Skipped []SkippedRecord `json:"skipped"`
}

// ReplayItem is one record a replay writes (or would write): the DLQ
// record and the topic partition it goes back to.
type ReplayItem struct {
	DLQ            Position `json:"dlq"`
	Target         Target   `json:"target"`
	Stage          string   `json:"stage"`
	ExceptionClass string   `json:"exception_class"`
	Key            *Payload `json:"key"`
	ReplayOf       string   `json:"replay_of,omitempty"` // the link the replayed record carries: the DLQ record
}

// Target is a topic partition a record is replayed to.
type Target struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// ReplayPlan is what a replay wrote, or would write with --dry-run.
type ReplayPlan struct {
	Topic   string          `json:"topic"`
	DryRun  bool            `json:"dry_run"`
	Count   int             `json:"count"`
	Records []ReplayItem    `json:"records"`
	Skipped []SkippedRecord `json:"skipped"`
	// LastWritten is ReplayReport.Last: after a replay, the offset of the
	// last record written to each topic partition. Empty for a dry run.
	LastWritten []Position `json:"last_written,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// NewListItem describes e for a list.
func NewListItem(e *Entry) ListItem {
	return ListItem{
		DLQ:            Position{Topic: e.DLQTopic, Partition: e.DLQPartition, Offset: e.DLQOffset},
		Origin:         Position{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset},
		Time:           timePtr(e.Time()),
		Topology:       e.Topology,
		Stage:          e.Stage,
		ExceptionClass: e.ExceptionClass,
		Message:        firstLine(e.Message),
		Key:            NewPayload(e.Key),
		ReplayOf:       e.ReplayOf,
	}
}

// NewView describes everything about e.
func NewView(e *Entry) View {
	v := View{
		ListItem: NewListItem(e), Message: e.Message, Class: e.Class, Stack: e.Stack, Attempts: e.Attempts,
		FirstFailure: timePtr(e.FirstFailure), Timestamp: timePtr(e.Timestamp), EventID: e.EventID,
		SchemaID: e.SchemaID, TaskID: e.TaskID, Truncated: truncated(e), Value: NewPayload(e.Value),
		Headers: make([]HeaderView, 0, len(e.Headers)),
	}
	for i, h := range e.Headers {
		if h == nil {
			continue
		}
		hv := HeaderView{Key: string(h.Key), Error: i >= len(e.OriginalHeaders)}
		if utf8.Valid(h.Value) {
			hv.Value = string(h.Value)
		} else {
			hv.Base64 = base64.StdEncoding.EncodeToString(h.Value)
		}
		v.Headers = append(v.Headers, hv)
	}
	return v
}

// SkippedRecords lists s for JSON; never nil.
func SkippedRecords(s Skipped) []SkippedRecord {
	out := make([]SkippedRecord, 0, len(s))
	for _, pe := range s {
		out = append(out, SkippedRecord{Partition: pe.Partition, Offset: pe.Offset, Reason: pe.Reason()})
	}
	return out
}

// NewSummaryView describes s and the records skipped.
func NewSummaryView(topic string, s Summary, skipped Skipped) SummaryView {
	return SummaryView{
		Topic: topic, Total: s.Total, FirstSeen: timePtr(s.FirstSeen), LastSeen: timePtr(s.LastSeen),
		ByTopology: nonNil(s.ByTopology), ByStage: nonNil(s.ByStage), ByException: nonNil(s.ByException),
		Skipped: SkippedRecords(skipped),
	}
}

// NewListView lists entries and the records skipped.
func NewListView(topic string, entries []Entry, skipped Skipped) ListView {
	l := ListView{Topic: topic, Records: make([]ListItem, len(entries)), Skipped: SkippedRecords(skipped)}
	for i := range entries {
		l.Records[i] = NewListItem(&entries[i])
	}
	return l
}

// NewReplayPlan lists what replaying entries writes.
func NewReplayPlan(topic string, entries []Entry, skipped Skipped, dryRun bool) ReplayPlan {
	p := ReplayPlan{Topic: topic, DryRun: dryRun, Count: len(entries), Records: make([]ReplayItem, len(entries)),
		Skipped: SkippedRecords(skipped)}
	for i := range entries {
		e := &entries[i]
		p.Records[i] = ReplayItem{
			DLQ:    Position{Topic: e.DLQTopic, Partition: e.DLQPartition, Offset: e.DLQOffset},
			Target: Target{Topic: e.Topic, Partition: e.Partition}, Stage: e.Stage, ExceptionClass: e.ExceptionClass,
			Key: NewPayload(e.Key), ReplayOf: e.Link(),
		}
	}
	return p
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}
