package topology

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Describe returns a human-readable account of the compiled plan, one
// option per line under its dotted name, with the names derived from the
// topology name and a "(default)" mark on every option the file left out.
// `cdcsync topology describe` prints it.
func (p *Plan) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "topology %s", p.cfg.Name)
	if p.cfg.file != "" {
		fmt.Fprintf(&b, " (%s)", p.cfg.file)
	}
	b.WriteString("\n")
	for _, o := range p.Options() {
		value := o.Value
		switch {
		case o.Default && o.DefaultNote != "":
			value += "  (default: " + o.DefaultNote + ")"
		case o.Default:
			value += "  (default)"
		}
		fmt.Fprintf(&b, "  %-28s %s\n", o.Key, value)
	}
	return b.String()
}

// Option is one line of Describe: a compiled option under its dotted name
// (or a derived name such as "consumer group"), its value as Describe
// prints it, and whether the file left it out. DefaultNote says where a
// default came from when it is not a constant ("source.system").
// The JSON form of a plan (PlanJSON) carries the same list, so the text
// and JSON descriptions cannot disagree.
type Option struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	Default     bool   `json:"default"`
	DefaultNote string `json:"default_note,omitempty"`
}

// Options lists the compiled options in Describe's order.
func (p *Plan) Options() []Option {
	c := p.cfg
	if c.isApply() {
		return p.applyOptions() // apply.go
	}
	if c.isSaga() {
		return p.sagaOptions() // saga.go
	}
	var out []Option
	line := func(key, value string, isDefault bool, defNote string) {
		if !isDefault {
			defNote = ""
		}
		out = append(out, Option{Key: key, Value: value, Default: isDefault, DefaultNote: strings.TrimPrefix(defNote, ": ")})
	}
	def := func(path string, equalsDefault bool) bool { return c.isDefault(path, equalsDefault) }

	line("consumer group", string(p.Group()), false, "")
	line("ledger topic", string(p.LedgerTopic()), false, "")
	line("systems", joinSystems(c.Systems), false, "")

	if c.Source.TopicPattern != "" {
		line("source.topic_pattern", c.Source.TopicPattern+"  (matches whole topic names)", false, "")
	} else {
		line("source.topics", joinTopics(c.Source.Topics), false, "")
	}
	line("source.system", string(c.Source.System), false, "")
	line("source.format", c.Source.Format.String(), false, "")
	line("source.tombstones", c.Source.Tombstones.String(), def("source.tombstones", c.Source.Tombstones == TombstonesPass), "")
	line("source.truncate", c.Source.Truncate.String(), def("source.truncate", c.Source.Truncate == TruncateDLQ), "")
	if c.Source.Format == WebhookJSON {
		describeWebhook(c, line, def)
	}

	if c.Source.Format == DebeziumOutbox { // outbox.go
		line("dedup.key", "the outbox id", false, "")
	} else {
		line("dedup.key", c.Dedup.Key.String(), def("dedup.key", c.Dedup.Key == DedupPosition), "")
	}
	if c.Dedup.Key == DedupField {
		line("dedup.field", c.Dedup.Field, false, "")
	}
	line("dedup.window", fmtDuration(c.Dedup.Window), def("dedup.window", c.Dedup.Window == DefaultDedupWindow), "")

	fields := make([]string, 0, len(c.Authority.Owners))
	for f := range c.Authority.Owners {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	if len(fields) == 0 {
		line("authority.owners", "none", def("authority.owners", true), "")
	}
	for _, f := range fields {
		line("authority.owners."+f, string(c.Authority.Owners[f]), false, "")
	}
	line("authority.default_owner", string(c.Authority.DefaultOwner),
		def("authority.default_owner", c.Authority.DefaultOwner == c.Source.System), ": source.system")
	line("authority.on_violation", c.Authority.OnViolation.String(),
		def("authority.on_violation", c.Authority.OnViolation == ViolationDropField), "")

	line("sink.topic", c.Sink.Topic, false, "")
	if c.Source.Format == DebeziumOutbox {
		line("sink.key", "the aggregateid", false, "")
	} else {
		line("sink.key", strings.Join(c.Sink.Key, ", "), false, "")
	}
	line("sink.format", c.Sink.Format.String(), def("sink.format", c.Sink.Format == SinkJSON), "")
	if c.Sink.Format == SinkAvro {
		line("sink.subject_strategy", c.Sink.SubjectStrategy.String(),
			def("sink.subject_strategy", c.Sink.SubjectStrategy == SubjectTopic), "")
	}
	propagate := "none"
	if len(c.Sink.Headers.Propagate) > 0 {
		propagate = strings.Join(c.Sink.Headers.Propagate, ", ")
	}
	line("sink.headers.propagate", propagate, def("sink.headers.propagate", len(c.Sink.Headers.Propagate) == 0), "")
	line("dlq.topic", string(c.DLQ.Topic), def("dlq.topic", c.DLQ.Topic == Topic("dlq."+c.Name)), ": dlq.<name>")

	r := c.Errors.Retry
	line("errors.retry.initial", fmtDuration(r.Initial), def("errors.retry.initial", r.Initial == DefaultRetryInitial), "")
	line("errors.retry.max", fmtDuration(r.Max), def("errors.retry.max", r.Max == DefaultRetryMax), "")
	line("errors.retry.multiplier", fmt.Sprint(r.Multiplier), def("errors.retry.multiplier", r.Multiplier == DefaultRetryMultiplier), "")
	maxElapsed := fmtDuration(r.MaxElapsed)
	if r.MaxElapsed == 0 {
		maxElapsed = "0 (retry forever)"
	}
	line("errors.retry.max_elapsed", maxElapsed, def("errors.retry.max_elapsed", r.MaxElapsed == DefaultRetryMaxElapsed), "")
	br := c.Errors.Breaker
	line("errors.breaker.failures", fmt.Sprint(br.Failures), def("errors.breaker.failures", br.Failures == DefaultBreakerFailures), "")
	line("errors.breaker.open", fmtDuration(br.Open), def("errors.breaker.open", br.Open == DefaultBreakerOpen), "")
	line("errors.tolerance", c.Errors.Tolerance.String(), def("errors.tolerance", c.Errors.Tolerance == TolerateAll), "")

	line("guarantee", c.Guarantee.String(), def("guarantee", c.Guarantee == AtLeastOnce), "")
	if c.Guarantee == ExactlyOnce {
		line("commit_interval", fmtDuration(c.CommitInterval), def("commit_interval", c.CommitInterval == DefaultCommitInterval), "")
	}
	return out
}

// fmtDuration prints a duration the way people write it in the file:
// "168h" rather than "168h0m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func joinSystems(ss []System) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

func joinTopics(ts []Topic) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return strings.Join(out, ", ")
}
