package dlq

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Summary counts DLQ entries.
type Summary struct {
	Total       int
	ByTopology  map[string]int
	ByStage     map[string]int
	ByException map[string]int // by ExceptionClass
	// FirstSeen and LastSeen bound Entry.Time() over the entries; zero
	// when there are none.
	FirstSeen, LastSeen time.Time
}

// Summarize counts entries by topology, stage and exception class.
func Summarize(entries []Entry) Summary {
	s := Summary{ByTopology: map[string]int{}, ByStage: map[string]int{}, ByException: map[string]int{}}
	for i := range entries {
		e := &entries[i]
		s.Total++
		s.ByTopology[e.Topology]++
		s.ByStage[e.Stage]++
		s.ByException[e.ExceptionClass]++
		t := e.Time()
		if t.IsZero() {
			continue
		}
		if s.FirstSeen.IsZero() || t.Before(s.FirstSeen) {
			s.FirstSeen = t
		}
		if t.After(s.LastSeen) {
			s.LastSeen = t
		}
	}
	return s
}

// WriteSummary writes s as plain text: totals, then each grouping with the
// largest count first.
func WriteSummary(w io.Writer, s Summary) error {
	ew := &errWriter{w: w}
	ew.printf("records:    %d\n", s.Total)
	if s.Total > 0 {
		ew.printf("first seen: %s\n", fmtTime(s.FirstSeen))
		ew.printf("last seen:  %s\n", fmtTime(s.LastSeen))
	}
	for _, g := range []struct {
		title string
		m     map[string]int
	}{{"by topology", s.ByTopology}, {"by stage", s.ByStage}, {"by exception", s.ByException}} {
		if len(g.m) == 0 {
			continue
		}
		ew.printf("\n%s:\n", g.title)
		for _, k := range sortedByCount(g.m) {
			name := k
			if name == "" {
				name = "(none)"
			}
			ew.printf("  %7d  %s\n", g.m[k], name)
		}
	}
	return ew.err
}

func sortedByCount(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return keys
}

// WriteList writes one line per entry: DLQ partition/offset, time,
// topology, stage, exception class, key and a shortened message.
func WriteList(w io.Writer, entries []Entry) error {
	ew := &errWriter{w: w}
	for i := range entries {
		e := &entries[i]
		ew.printf("%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.DLQPartition, e.DLQOffset, fmtTime(e.Time()), orDash(e.Topology), orDash(e.Stage),
			orDash(e.ExceptionClass), shortBytes(e.Key, 40), short(firstLine(e.Message), 80))
	}
	return ew.err
}

// WriteShow writes everything about one entry: where it is, where it came
// from, every header (original and error), the key, and the value as
// indented JSON when it is JSON, else quoted text when it is printable
// UTF-8, else a hex dump.
func WriteShow(w io.Writer, e Entry) error {
	ew := &errWriter{w: w}
	ew.printf("dlq:        %s/%d@%d\n", e.DLQTopic, e.DLQPartition, e.DLQOffset)
	ew.printf("origin:     %s/%d@%d\n", e.Topic, e.Partition, e.Offset)
	ew.printf("topology:   %s\n", e.Topology)
	ew.printf("stage:      %s\n", e.Stage)
	ew.printf("exception:  %s\n", e.ExceptionClass)
	ew.printf("message:    %s\n", e.Message)
	ew.printf("attempts:   %d\n", e.Attempts)
	ew.printf("failed at:  %s\n", fmtTime(e.FirstFailure))
	ew.printf("timestamp:  %s\n", fmtTime(e.Timestamp))
	if e.EventID != "" {
		ew.printf("event id:   %s\n", e.EventID)
	}
	if e.ReplayOf != "" {
		ew.printf("replay of:  %s\n", e.ReplayOf)
	}
	ew.printf("\nheaders (%d original, %d error):\n", len(e.OriginalHeaders), len(e.Headers)-len(e.OriginalHeaders))
	for i, h := range e.Headers {
		if h == nil {
			continue
		}
		mark := " "
		if i >= len(e.OriginalHeaders) {
			mark = "*"
		}
		v := string(h.Value)
		if !utf8.Valid(h.Value) {
			v = strconv.Quote(v)
		}
		v = strings.ReplaceAll(strings.TrimRight(v, "\n"), "\n", "\n      ")
		ew.printf("  %s %s: %s\n", mark, h.Key, v)
	}
	ew.printf("\nkey:\n%s\n", indent(readable(e.Key)))
	ew.printf("\nvalue:\n%s\n", indent(readable(e.Value)))
	return ew.err
}

// readable renders bytes for a person: null, pretty JSON, quoted text or
// a hex dump.
func readable(b []byte) string {
	if b == nil {
		return "(null)"
	}
	if len(b) > 0 && json.Valid(b) {
		var buf bytes.Buffer
		if json.Indent(&buf, b, "", "  ") == nil {
			return buf.String()
		}
	}
	if utf8.Valid(b) && printable(string(b)) {
		return strconv.Quote(string(b))
	}
	return strings.TrimRight(hex.Dump(b), "\n")
}

func printable(s string) bool {
	for _, r := range s {
		if !strconv.IsPrint(r) && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

func shortBytes(b []byte, n int) string {
	if b == nil {
		return "(null)"
	}
	if utf8.Valid(b) && printable(string(b)) {
		return short(string(b), n)
	}
	return short("0x"+hex.EncodeToString(b), n)
}

func short(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// errWriter keeps the first write error so the writers can report it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (ew *errWriter) printf(format string, args ...any) {
	if ew.err == nil {
		_, ew.err = fmt.Fprintf(ew.w, format, args...)
	}
}

// WriteReplayPlan writes one line per entry a replay writes: the DLQ
// position, the target topic partition, the stage, the exception class
// and the key. `dlq replay --dry-run` prints it under its count.
func WriteReplayPlan(w io.Writer, entries []Entry) error {
	ew := &errWriter{w: w}
	for i := range entries {
		e := &entries[i]
		ew.printf("  %d/%d -> %s/%d\t%s\t%s\t%s\n", e.DLQPartition, e.DLQOffset, orDash(e.Topic), e.Partition,
			orDash(e.Stage), orDash(e.ExceptionClass), shortBytes(e.Key, 40))
	}
	return ew.err
}
