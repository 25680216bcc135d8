package console

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/topology"
)

// Summary is GET /topologies/{name}/dlq.
type Summary struct {
	Topology    string       `json:"topology"`
	Topic       string       `json:"topic"`
	Total       int          `json:"total"`
	FirstSeen   *time.Time   `json:"first_seen,omitempty"`
	LastSeen    *time.Time   `json:"last_seen,omitempty"`
	ByStage     []Count      `json:"by_stage"`
	ByException []Count      `json:"by_exception"`
	Groups      []GroupCount `json:"groups"` // by stage and exception together, largest first
	// Skipped counts records of the topic that are not readable DLQ
	// records (they are in no count above).
	Skipped int `json:"skipped"`
	// Truncated: the topic holds more than Config.MaxEntries dead
	// letters; the counts cover the first ones (partition, offset order).
	Truncated bool `json:"truncated,omitempty"`
}

// DefaultMaxEntries is Config.MaxEntries' default.
const DefaultMaxEntries = 100_000

// Count is one line of a grouping.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// GroupCount counts the entries of one stage and exception class.
type GroupCount struct {
	Stage     string `json:"stage"`
	Exception string `json:"exception"`
	Count     int    `json:"count"`
}

// Origin is where a DLQ record came from.
type Origin struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// RecordSummary is one entry of a list or a replay preview.
type RecordSummary struct {
	Partition int32     `json:"partition"` // in the DLQ topic
	Offset    int64     `json:"offset"`
	Time      time.Time `json:"time"`
	Stage     string    `json:"stage"`
	Exception string    `json:"exception"`
	Message   string    `json:"message"`
	Key       string    `json:"key"` // readable, shortened
	Origin    Origin    `json:"origin"`
}

// RecordList is GET /topologies/{name}/dlq/records.
type RecordList struct {
	Topology string          `json:"topology"`
	Topic    string          `json:"topic"`
	Matched  int             `json:"matched"` // entries matching the filters
	Records  []RecordSummary `json:"records"` // at most limit of them
	Skipped  int             `json:"skipped"`
	// Truncated: more than Config.MaxEntries matched; Matched counts
	// those read.
	Truncated bool `json:"truncated,omitempty"`
}

// Record is GET /topologies/{name}/dlq/records/{partition}/{offset}.
type Record struct {
	Topic        string     `json:"topic"`
	Partition    int32      `json:"partition"`
	Offset       int64      `json:"offset"`
	Origin       Origin     `json:"origin"`
	Topology     string     `json:"topology"`
	Stage        string     `json:"stage"`
	Exception    string     `json:"exception"`
	Class        string     `json:"class"`
	Message      string     `json:"message"`
	Stack        string     `json:"stack,omitempty"`
	Attempts     int        `json:"attempts"`
	FirstFailure *time.Time `json:"first_failure,omitempty"`
	Timestamp    time.Time  `json:"timestamp"`
	EventID      string     `json:"event_id,omitempty"`
	SchemaID     int        `json:"schema_id,omitempty"`
	// Headers are all of the record's headers in order: the source
	// record's own (error false), then the error headers.
	Headers []Header `json:"headers"`
	Key     Bytes    `json:"key"`
	Value   Bytes    `json:"value"`
}

// Header is one record header; a value that is not UTF-8 is quoted.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Error bool   `json:"error"` // an error header added by the DLQ, not the source record's
}

// Bytes is a key or value made readable: "null", "json" (indented),
// "text" or "hex" (a hex dump).
type Bytes struct {
	Encoding string `json:"encoding"`
	Text     string `json:"text"`
	Size     int    `json:"size"`
}

// Replay is POST /topologies/{name}/dlq/replay.
type Replay struct {
	DryRun  bool            `json:"dry_run"`
	Count   int             `json:"count"`   // entries matching the filters: what a replay writes
	Preview []RecordSummary `json:"preview"` // the first of them
	Written int             `json:"written"` // records written (0 in a dry run)
	Last    []Origin        `json:"last,omitempty"`
	Refused string          `json:"refused,omitempty"` // dry run: why the replay would be refused
	// Truncated: more than Config.MaxEntries matched; the replay covers
	// the first ones, and another replay after it the rest (the dedup
	// ledger drops what was already applied).
	Truncated bool `json:"truncated,omitempty"`
}

// previewSize is how many entries a replay preview lists.
const previewSize = 20

// filter is a request's record selection: dlq.Filter plus an exact stage
// and exception class.
type filter struct {
	dlq.Filter
	stage, exception string
	stageSet, excSet bool
}

func parseFilter(r *http.Request) (filter, error) {
	q := r.URL.Query()
	f := filter{Filter: dlq.Filter{Reason: q.Get("reason"), Key: q.Get("key")}}
	f.stage, f.stageSet = q.Get("stage"), q.Has("stage")
	f.exception, f.excSet = q.Get("exception"), q.Has("exception")
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(b.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, fmt.Errorf("%s: want RFC 3339, got %q", b.name, s)
			}
			*b.t = t
		}
	}
	return f, nil
}

func (f filter) match(e *dlq.Entry) bool {
	return (!f.stageSet || e.Stage == f.stage) && (!f.excSet || e.ExceptionClass == f.exception)
}

// found is what entries read.
type found struct {
	entries   []dlq.Entry
	skipped   int  // records that are not readable DLQ records
	truncated bool // MaxEntries were read and more may follow
}

// entries reads the topology's DLQ topic, at most Config.MaxEntries matching
// f's dlq.Filter. A missing topic is an empty DLQ: the topology has not
// dead-lettered anything yet.
func (c *Console) entries(r *http.Request, client sarama.Client, p *topology.Plan, f filter) (found, error) {
	all, err := dlq.Read(r.Context(), client, string(p.DLQTopic()), f.Filter, c.cfg.MaxEntries)
	var skipped dlq.Skipped
	switch {
	case errors.As(err, &skipped):
	case errors.Is(err, sarama.ErrUnknownTopicOrPartition):
		return found{}, nil
	case err != nil:
		return found{}, err
	}
	out := found{skipped: len(skipped), truncated: len(all) >= c.cfg.MaxEntries}
	out.entries = all[:0]
	for i := range all {
		if f.match(&all[i]) {
			out.entries = append(out.entries, all[i])
		}
	}
	return out, nil
}

// connect opens the request's client, answering 502 when it cannot.
func (c *Console) connect(rw http.ResponseWriter, r *http.Request) (sarama.Client, bool) {
	client, err := c.cfg.Connect(r.Context())
	if err != nil {
		writeError(rw, http.StatusBadGateway, "connecting to the brokers: "+err.Error())
		return nil, false
	}
	return client, true
}

func (c *Console) brokerError(rw http.ResponseWriter, p *topology.Plan, err error) {
	c.log.Warn("console: reading the DLQ", zap.String("topology", p.Name()), zap.Error(err))
	writeError(rw, http.StatusBadGateway, err.Error())
}

func (c *Console) dlqSummary(rw http.ResponseWriter, r *http.Request, p *topology.Plan) {
	client, ok := c.connect(rw, r)
	if !ok {
		return
	}
	defer client.Close()
	got, err := c.entries(r, client, p, filter{})
	if err != nil {
		c.brokerError(rw, p, err)
		return
	}
	entries := got.entries
	s := dlq.Summarize(entries)
	out := Summary{
		Topology: p.Name(), Topic: string(p.DLQTopic()), Total: s.Total, Skipped: got.skipped, Truncated: got.truncated,
		ByStage: counts(s.ByStage), ByException: counts(s.ByException), Groups: []GroupCount{},
	}
	if !s.FirstSeen.IsZero() {
		out.FirstSeen, out.LastSeen = &s.FirstSeen, &s.LastSeen
	}
	groups := map[[2]string]int{}
	for i := range entries {
		groups[[2]string{entries[i].Stage, entries[i].ExceptionClass}]++
	}
	for k, n := range groups {
		out.Groups = append(out.Groups, GroupCount{Stage: k[0], Exception: k[1], Count: n})
	}
	slices.SortFunc(out.Groups, func(a, b GroupCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Stage, b.Stage), strings.Compare(a.Exception, b.Exception))
	})
	writeJSON(rw, http.StatusOK, out)
}

func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{Name: k, Count: n})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Name, b.Name)) })
	return out
}

// listLimit bounds a list: ?limit, default 100, at most 1000.
func listLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("limit: want 1..1000, got %q", s)
	}
	return n, nil
}

func (c *Console) dlqRecords(rw http.ResponseWriter, r *http.Request, p *topology.Plan) {
	f, err := parseFilter(r)
	if err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := listLimit(r)
	if err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	client, ok := c.connect(rw, r)
	if !ok {
		return
	}
	defer client.Close()
	got, err := c.entries(r, client, p, f)
	if err != nil {
		c.brokerError(rw, p, err)
		return
	}
	entries := got.entries
	out := RecordList{Topology: p.Name(), Topic: string(p.DLQTopic()), Matched: len(entries), Skipped: got.skipped,
		Truncated: got.truncated, Records: []RecordSummary{}}
	for i := range entries[:min(limit, len(entries))] {
		out.Records = append(out.Records, summarize(&entries[i]))
	}
	writeJSON(rw, http.StatusOK, out)
}

func summarize(e *dlq.Entry) RecordSummary {
	return RecordSummary{
		Partition: e.DLQPartition, Offset: e.DLQOffset, Time: e.Time(), Stage: e.Stage,
		Exception: e.ExceptionClass, Message: shorten(e.Message, 200), Key: shortKey(e.Key),
		Origin: Origin{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset},
	}
}

func (c *Console) dlqRecord(rw http.ResponseWriter, r *http.Request, p *topology.Plan) {
	part, off, err := position(r)
	if err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	client, ok := c.connect(rw, r)
	if !ok {
		return
	}
	defer client.Close()
	e, err := dlq.ReadAt(r.Context(), client, string(p.DLQTopic()), part, off)
	var pe *dlq.ParseError
	switch {
	case errors.Is(err, dlq.ErrNoRecord), errors.Is(err, sarama.ErrUnknownTopicOrPartition):
		writeError(rw, http.StatusNotFound, err.Error())
		return
	case errors.As(err, &pe):
		writeError(rw, http.StatusNotFound, fmt.Sprintf("%s %d/%d is not a readable DLQ record: %s", p.DLQTopic(), part, off, pe.Reason()))
		return
	case err != nil:
		c.brokerError(rw, p, err)
		return
	}
	out := Record{
		Topic: e.DLQTopic, Partition: e.DLQPartition, Offset: e.DLQOffset,
		Origin:   Origin{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset},
		Topology: e.Topology, Stage: e.Stage, Exception: e.ExceptionClass, Class: e.Class,
		Message: e.Message, Stack: e.Stack, Attempts: e.Attempts, Timestamp: e.Timestamp,
		EventID: e.EventID, SchemaID: e.SchemaID, Key: readable(e.Key), Value: readable(e.Value),
		Headers: make([]Header, 0, len(e.Headers)),
	}
	if !e.FirstFailure.IsZero() {
		out.FirstFailure = &e.FirstFailure
	}
	for i, h := range e.Headers {
		if h == nil {
			continue
		}
		v := string(h.Value)
		if !utf8.Valid(h.Value) {
			v = strconv.Quote(v)
		}
		out.Headers = append(out.Headers, Header{Key: string(h.Key), Value: v, Error: i >= len(e.OriginalHeaders)})
	}
	writeJSON(rw, http.StatusOK, out)
}

func (c *Console) dlqReplay(rw http.ResponseWriter, r *http.Request, p *topology.Plan) {
	dryRun := true // a replay is asked for explicitly
	if s := r.URL.Query().Get("dry_run"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(rw, http.StatusBadRequest, fmt.Sprintf("dry_run: want true or false, got %q", s))
			return
		}
		dryRun = b
	}
	if !dryRun {
		// A replay changes state: api_token, as the API's pause does.
		c.auth.Write(func(rw http.ResponseWriter, r *http.Request) { c.replay(rw, r, p, false) })(rw, r)
		return
	}
	c.replay(rw, r, p, true)
}

// replay answers a dry run, or replays (the token was checked).
func (c *Console) replay(rw http.ResponseWriter, r *http.Request, p *topology.Plan, dryRun bool) {
	f, err := parseFilter(r)
	if err != nil {
		writeError(rw, http.StatusBadRequest, err.Error())
		return
	}
	client, ok := c.connect(rw, r)
	if !ok {
		return
	}
	defer client.Close()
	got, err := c.entries(r, client, p, f)
	if err != nil {
		c.brokerError(rw, p, err)
		return
	}
	entries := got.entries
	out := Replay{DryRun: dryRun, Count: len(entries), Truncated: got.truncated, Preview: []RecordSummary{}}
	for i := range entries[:min(previewSize, len(entries))] {
		out.Preview = append(out.Preview, summarize(&entries[i]))
	}
	// ?expect=N: the count the operator previewed. A DLQ that changed
	// since is refused rather than replaying what was not shown.
	if s := r.URL.Query().Get("expect"); s != "" && !dryRun {
		n, err := strconv.Atoi(s)
		if err != nil {
			writeError(rw, http.StatusBadRequest, fmt.Sprintf("expect: want a count, got %q", s))
			return
		}
		if n != len(entries) {
			writeError(rw, http.StatusConflict, fmt.Sprintf("the preview counted %d record(s), %d match now: the DLQ changed; preview again", n, len(entries)))
			return
		}
	}
	// The same checks and writes as `cdcsync dlq replay`.
	if err := dlq.CheckTargets(entries, c.forbidden); err != nil {
		if dryRun {
			out.Refused = err.Error()
			writeJSON(rw, http.StatusOK, out)
			return
		}
		writeError(rw, http.StatusConflict, err.Error())
		return
	}
	if dryRun {
		writeJSON(rw, http.StatusOK, out)
		return
	}
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		c.brokerError(rw, p, err)
		return
	}
	defer prod.Close()
	rep, err := dlq.ReplayAll(r.Context(), prod, entries)
	out.Written = rep.Written
	for _, pos := range rep.Last {
		out.Last = append(out.Last, Origin(pos))
	}
	if err != nil {
		c.log.Warn("console: replay stopped", zap.String("topology", p.Name()), zap.Int("written", rep.Written), zap.Error(err))
		writeJSON(rw, http.StatusBadGateway, struct {
			Replay
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}{out, http.StatusBadGateway, fmt.Sprintf("%v; the %d record(s) before it were written; replaying again is safe, the dedup ledger drops any already applied", err, rep.Written)})
		return
	}
	c.log.Info("console: replayed DLQ records", zap.String("topology", p.Name()), zap.Int("written", rep.Written))
	writeJSON(rw, http.StatusOK, out)
}

// readable renders a key or value for a person, as `cdcsync dlq inspect
// --show` does: null, indented JSON, text, or a hex dump.
func readable(b []byte) Bytes {
	out := Bytes{Size: len(b)}
	switch {
	case b == nil:
		out.Encoding, out.Text = "null", "null"
	case len(b) > 0 && json.Valid(b):
		var buf bytes.Buffer
		if json.Indent(&buf, b, "", "  ") == nil {
			out.Encoding, out.Text = "json", buf.String()
			break
		}
		fallthrough
	case utf8.Valid(b) && printable(string(b)):
		out.Encoding, out.Text = "text", string(b)
	default:
		out.Encoding, out.Text = "hex", strings.TrimRight(hex.Dump(b), "\n")
	}
	return out
}

func printable(s string) bool {
	for _, r := range s {
		if !strconv.IsPrint(r) && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

// shortKey is a key on one line: its text when printable (JSON as
// written, not indented), else its hex.
func shortKey(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case utf8.Valid(b) && printable(string(b)):
		return shorten(string(b), 60)
	}
	return shorten("0x"+hex.EncodeToString(b), 60)
}

func shorten(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
