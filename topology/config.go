package topology

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults of the options that have one. doc.go lists them for users.
const (
	DefaultDedupWindow     = 168 * time.Hour
	DefaultRetryInitial    = 100 * time.Millisecond
	DefaultRetryMax        = 30 * time.Second
	DefaultRetryMultiplier = 2.0
	DefaultRetryMaxElapsed = time.Duration(0) // retry forever
	DefaultCommitInterval  = 100 * time.Millisecond
	DefaultBreakerFailures = 5
	DefaultBreakerOpen     = time.Second
)

// maxNameLen keeps every name derived from a topology name a legal Kafka
// topic: "<name>.ledger" and "dlq.<name>" must fit in 249 bytes.
const maxNameLen = maxTopicLen - len(".ledger")

// Config is one topology as written: the parsed file before compilation.
// Start from NewConfig, which holds the static defaults; Parse decodes a
// file onto it. Options whose default depends on other options
// (dlq.topic, authority.default_owner) are left empty and filled in by
// Compile and Validate. A Config is a plain mutable value; the compiled,
// immutable form is a *Plan.
type Config struct {
	Name           string
	Systems        []System
	Source         Source
	Dedup          Dedup
	Authority      Authority
	Sink           Sink
	Apply          Apply // an apply topology (apply.go); never together with Sink
	Saga           Saga  // a saga topology (saga.go); never together with Sink or Apply
	DLQ            DLQ
	Errors         ErrorPolicy
	Guarantee      Guarantee
	CommitInterval time.Duration // exactly_once only

	// Where the config came from, for error messages and Describe. Empty
	// for a Config built in code.
	file    string
	lines   map[string]int  // dotted path -> line where it is written
	written map[string]bool // paths written with a non-null value
	bad     map[string]bool // paths that already failed to decode
}

// Source is the "source" section: where changes come from.
type Source struct {
	Topics       []Topic // exactly one of Topics and TopicPattern
	TopicPattern string  // regexp matched against the whole topic name
	System       System
	Format       Format
	Tombstones   Tombstones
	Truncate     Truncate
	Webhook      Webhook // source.format: webhook only (webhook.go)
}

// Dedup is the "dedup" section: how event IDs are derived and how long the
// ledger remembers them.
type Dedup struct {
	Key    DedupKey
	Field  string        // the ID field when Key is DedupField
	Window time.Duration // ledger retention (retention.ms of <name>.ledger)
}

// Authority is the "authority" section: which system owns which field.
type Authority struct {
	Owners       map[string]System // field -> owning system
	DefaultOwner System            // owner of unlisted fields; empty means Source.System
	OnViolation  OnViolation
}

// Sink is the "sink" section: where and how output records are written.
type Sink struct {
	Topic           string   // template with {db}, {schema}, {table}, {entity}
	Key             []string // partition-key fields
	Format          SinkFormat
	SubjectStrategy SubjectStrategy // Avro only
	Headers         SinkHeaders
}

// SinkHeaders is the "sink.headers" section.
type SinkHeaders struct {
	// Propagate names the source record headers copied onto the sink
	// records, matched exactly (e.g. traceparent, tracestate); every
	// occurrence is copied, in source order, after cdcsync's own headers.
	// Empty (the default) copies none. Names starting with "cdcsync." are
	// refused: those headers are cdcsync's own.
	Propagate []string
}

// reservedHeaderPrefix starts the names of the headers cdcsync writes.
const reservedHeaderPrefix = "cdcsync."

// DLQ is the "dlq" section.
type DLQ struct {
	Topic Topic // empty means "dlq.<name>"
}

// ErrorPolicy is the "errors" section.
type ErrorPolicy struct {
	Retry     Retry
	Breaker   Breaker
	Tolerance Tolerance
}

// Breaker is the circuit breaker of each dependency (the producer path, the
// schema registry): after Failures consecutive transient failures it opens
// and the topology's partitions pause; after Open (growing like Retry on
// each reopen) one probe is let through.
type Breaker struct {
	Failures int           // consecutive transient failures that open it, >= 1
	Open     time.Duration // first open period, > 0
}

// Retry is the backoff for transient failures: exponential with full
// jitter. Attempt n waits a random time in [0, min(Max, Initial*Multiplier^n)).
type Retry struct {
	Initial    time.Duration // first backoff ceiling
	Max        time.Duration // largest backoff ceiling
	Multiplier float64       // growth per attempt, >= 1
	MaxElapsed time.Duration // give up (permanent failure) after this long; 0 retries forever
}

// NewConfig returns a Config holding every static default. Name, Systems,
// Source.Topics or Source.TopicPattern, Source.System, Source.Format,
// Sink.Topic and Sink.Key have no default and must be set.
func NewConfig() *Config {
	c := &Config{
		Dedup: Dedup{Key: DedupPosition, Window: DefaultDedupWindow},
		Errors: ErrorPolicy{
			Retry: Retry{
				Initial:    DefaultRetryInitial,
				Max:        DefaultRetryMax,
				Multiplier: DefaultRetryMultiplier,
				MaxElapsed: DefaultRetryMaxElapsed,
			},
			Breaker:   Breaker{Failures: DefaultBreakerFailures, Open: DefaultBreakerOpen},
			Tolerance: TolerateAll,
		},
		Guarantee:      AtLeastOnce,
		CommitInterval: DefaultCommitInterval,
		Apply:          defaultApply(),
		Saga:           defaultSaga(),
	}
	c.Source.Webhook.defaults()
	return c
}

// clone returns a deep copy, sharing only the read-only position maps.
func (c *Config) clone() *Config {
	d := *c
	d.Systems = slices.Clone(c.Systems)
	d.Source.Topics = slices.Clone(c.Source.Topics)
	d.Sink.Key = slices.Clone(c.Sink.Key)
	d.Sink.Headers.Propagate = slices.Clone(c.Sink.Headers.Propagate)
	d.Apply = c.Apply.clone()
	d.Source.Webhook = (&Plan{cfg: c}).Webhook()
	d.Saga = c.Saga.clone()
	if c.Authority.Owners != nil {
		d.Authority.Owners = make(map[string]System, len(c.Authority.Owners))
		for f, s := range c.Authority.Owners {
			d.Authority.Owners[f] = s
		}
	}
	return &d
}

// withDerivedDefaults returns a copy with the options whose default depends
// on other options filled in.
func (c *Config) withDerivedDefaults() *Config {
	d := c.clone()
	if d.DLQ.Topic == "" && !d.written["dlq.topic"] && namePattern.MatchString(d.Name) && len(d.Name) <= maxNameLen {
		d.DLQ.Topic = Topic("dlq." + d.Name)
	}
	if d.Authority.DefaultOwner == "" && !d.written["authority.default_owner"] {
		d.Authority.DefaultOwner = d.Source.System
	}
	return d
}

// Validate checks c as Compile would, after filling in the derived
// defaults, and returns Errors listing every problem, or nil.
func (c *Config) Validate() error {
	_, err := c.compile()
	return err
}

// line returns the line where path, or the nearest enclosing option that
// is written, appears; 0 if none is.
func (c *Config) line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath strips the last ".field" or "[i]" from a dotted path.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// isDefault reports whether the option at path took its default: for a
// parsed file, whether the file leaves it out; for a Config built in code,
// whether its value equals the default.
func (c *Config) isDefault(path string, equalsDefault bool) bool {
	if c.written == nil {
		return equalsDefault
	}
	return !c.written[path]
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// validator collects the problems of one Config.
type validator struct {
	c    *Config
	errs Errors
}

func (v *validator) add(path string, kind error, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if v.c.bad[p] {
			return // already reported while decoding
		}
	}
	v.errs = append(v.errs, &Error{
		File:   v.c.file,
		Line:   v.c.line(path),
		Field:  path,
		Reason: fmt.Sprintf(format, args...),
		Err:    kind,
	})
}

// validate checks a Config that already has its derived defaults.
func (c *Config) validate() Errors {
	v := &validator{c: c}
	v.name()
	if c.isSaga() {
		v.saga() // saga.go
		v.dlq()
		return v.errs
	}
	declared := v.systems()
	v.source(declared)
	if c.isApply() {
		v.apply() // apply.go
	} else {
		v.dedup()
		v.authority(declared)
		v.sink()
		v.outbox() // outbox.go
	}
	v.dlq()
	v.errorPolicy()
	v.guarantee()
	return v.errs
}

func (v *validator) name() {
	switch n := v.c.Name; {
	case n == "":
		v.add("name", ErrMissing, "required: the topology name, e.g. contacts-erp-to-crm")
	case !namePattern.MatchString(n):
		v.add("name", ErrInvalid, "%q must match [a-z0-9][a-z0-9._-]*", n)
	case len(n) > maxNameLen:
		v.add("name", ErrInvalid, "%d bytes is longer than %d, the most that keeps %q a legal topic name", len(n), maxNameLen, n+".ledger")
	}
}

// systems checks the declared systems and returns them as a set.
func (v *validator) systems() map[System]bool {
	declared := make(map[System]bool, len(v.c.Systems))
	if len(v.c.Systems) == 0 {
		v.add("systems", ErrMissing, "required: the systems of record, e.g. [erp, crm]")
	}
	for i, s := range v.c.Systems {
		p := fmt.Sprintf("systems[%d]", i)
		switch {
		case s == "":
			v.add(p, ErrMissing, "empty system name")
		case !namePattern.MatchString(string(s)):
			v.add(p, ErrInvalid, "%q must match [a-z0-9][a-z0-9._-]*", s)
		case declared[s]:
			v.add(p, ErrInvalid, "duplicate system %q", s)
		}
		declared[s] = true
	}
	return declared
}

// systemList is the declared systems for error messages.
func (v *validator) systemList() string {
	if len(v.c.Systems) == 0 {
		return "none declared"
	}
	names := make([]string, len(v.c.Systems))
	for i, s := range v.c.Systems {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func (v *validator) source(declared map[System]bool) {
	s := &v.c.Source
	hasTopics, hasPattern := len(s.Topics) > 0, s.TopicPattern != ""
	switch {
	case hasTopics && hasPattern:
		v.add("source.topic_pattern", ErrInvalid, "cannot be used together with source.topics; set exactly one")
	case !hasTopics && !hasPattern:
		if v.c.written["source.topics"] {
			v.add("source.topics", ErrMissing, "empty: list at least one topic, or use source.topic_pattern")
		} else {
			v.add("source", ErrMissing, "one of source.topics or source.topic_pattern is required")
		}
	}
	seen := make(map[Topic]int, len(s.Topics))
	for i, t := range s.Topics {
		p := fmt.Sprintf("source.topics[%d]", i)
		if reason := checkTopic(string(t)); reason != "" {
			v.add(p, ErrInvalid, "%s", reason)
		} else if j, dup := seen[t]; dup {
			v.add(p, ErrInvalid, "duplicate topic %q (also source.topics[%d])", t, j)
		} else {
			seen[t] = i
		}
	}
	if hasPattern {
		if re, err := compilePattern(s.TopicPattern); err != nil {
			v.add("source.topic_pattern", ErrInvalid, "invalid regexp %q: %v", s.TopicPattern, regexpReason(err))
		} else if l, ok := v.ledger(); ok && re.MatchString(l) {
			v.add("source.topic_pattern", ErrInvalid, "%q matches the topology's own ledger topic %q: the topology would consume its dedup ledger", s.TopicPattern, l)
		}
	}
	if l, ok := v.ledger(); ok {
		for i, t := range s.Topics {
			if how := topicClash(string(t), l); how != "" {
				v.add(fmt.Sprintf("source.topics[%d]", i), ErrInvalid, "%q %s the topology's own ledger topic %q%s: the topology would consume its dedup ledger", t, how, l, collideNote(how))
			}
		}
	}
	switch {
	case s.System == "":
		v.add("source.system", ErrMissing, "required: the system of record the source topics come from (systems: %s)", v.systemList())
	case !declared[s.System] && len(declared) > 0:
		v.add("source.system", ErrInvalid, "%q is not a declared system (systems: %s)", s.System, v.systemList())
	}
	switch {
	case s.Format == FormatUnset:
		v.add("source.format", ErrMissing, "required: one of %s", quoteList(formatNames[1:]))
	case !validEnum(formatNames, int(s.Format)):
		v.add("source.format", ErrInvalid, "%v is not one of %s", s.Format, quoteList(formatNames[1:]))
	}
	if !validEnum(tombstonesNames, int(s.Tombstones)) {
		v.add("source.tombstones", ErrInvalid, "%v is not one of %s", s.Tombstones, quoteList(tombstonesNames))
	}
	if !validEnum(truncateNames, int(s.Truncate)) {
		v.add("source.truncate", ErrInvalid, "%v is not one of %s", s.Truncate, quoteList(truncateNames))
	}
	v.webhook()
}

func (v *validator) dedup() {
	d := &v.c.Dedup
	if !validEnum(dedupKeyNames, int(d.Key)) {
		v.add("dedup.key", ErrInvalid, "%v is not one of %s", d.Key, quoteList(dedupKeyNames))
	}
	switch {
	case d.Key == DedupField && d.Field == "":
		v.add("dedup.field", ErrMissing, "required when dedup.key is field: the field holding the event ID")
	case d.Key != DedupField && d.Field != "":
		v.add("dedup.field", ErrInvalid, "only valid with dedup.key: field (dedup.key is %v)", d.Key)
	}
	if d.Window <= 0 {
		v.add("dedup.window", ErrInvalid, "must be greater than 0, got %v", d.Window)
	}
}

func (v *validator) authority(declared map[System]bool) {
	a := &v.c.Authority
	fields := make([]string, 0, len(a.Owners))
	for f := range a.Owners {
		fields = append(fields, f)
	}
	slices.SortFunc(fields, func(x, y string) int { return v.c.line("authority.owners."+x) - v.c.line("authority.owners."+y) })
	for _, f := range fields {
		p := "authority.owners." + f
		switch owner := a.Owners[f]; {
		case f == "":
			v.add("authority.owners", ErrInvalid, "empty field name")
		case owner == "":
			v.add(p, ErrMissing, "no owner given (systems: %s)", v.systemList())
		case !declared[owner] && len(declared) > 0:
			v.add(p, ErrInvalid, "owner %q is not a declared system (systems: %s)", owner, v.systemList())
		}
	}
	// An empty DefaultOwner here means it defaulted to an empty
	// source.system, which is reported there.
	if o := a.DefaultOwner; o != "" && !declared[o] && len(declared) > 0 {
		v.add("authority.default_owner", ErrInvalid, "%q is not a declared system (systems: %s)", o, v.systemList())
	} else if o == "" && v.c.written["authority.default_owner"] {
		v.add("authority.default_owner", ErrMissing, "empty; leave it out to default to source.system")
	}
	if !validEnum(onViolationNames, int(a.OnViolation)) {
		v.add("authority.on_violation", ErrInvalid, "%v is not one of %s", a.OnViolation, quoteList(onViolationNames))
	}
}

func (v *validator) sink() {
	s := &v.c.Sink
	if s.Topic == "" {
		v.add("sink.topic", ErrMissing, "required: the output topic, a template such as sync.{entity}")
	} else if t, reason := parseTemplate(s.Topic); reason != "" {
		v.add("sink.topic", ErrInvalid, "%s", reason)
	} else if lit, ok := t.literal(); ok && v.c.Source.matches(Topic(lit)) {
		v.add("sink.topic", ErrInvalid, "%q is also a source topic: the topology would consume its own output", lit)
	} else if ok {
		v.sinkClashes(lit)
	}
	if len(s.Key) == 0 && v.c.Source.Format != DebeziumOutbox {
		v.add("sink.key", ErrMissing, "required: at least one partition-key field, e.g. [id]")
	}
	seen := make(map[string]int, len(s.Key))
	for i, f := range s.Key {
		p := fmt.Sprintf("sink.key[%d]", i)
		if f == "" {
			v.add(p, ErrMissing, "empty field name")
		} else if j, dup := seen[f]; dup {
			v.add(p, ErrInvalid, "duplicate key field %q (also sink.key[%d])", f, j)
		} else {
			seen[f] = i
		}
	}
	v.sinkHeaders()
	if !validEnum(sinkFormatNames, int(s.Format)) {
		v.add("sink.format", ErrInvalid, "%v is not one of %s", s.Format, quoteList(sinkFormatNames))
	}
	if !validEnum(subjectStrategyNames, int(s.SubjectStrategy)) {
		v.add("sink.subject_strategy", ErrInvalid, "%v is not one of %s", s.SubjectStrategy, quoteList(subjectStrategyNames))
	} else if s.Format != SinkAvro && !v.c.isDefault("sink.subject_strategy", s.SubjectStrategy == SubjectTopic) {
		v.add("sink.subject_strategy", ErrInvalid, "only applies to sink.format: avro (sink.format is %v)", s.Format)
	}
}

// sinkHeaders checks sink.headers.propagate: non-empty, distinct names,
// none of them cdcsync's own.
func (v *validator) sinkHeaders() {
	seen := map[string]int{}
	for i, h := range v.c.Sink.Headers.Propagate {
		p := fmt.Sprintf("sink.headers.propagate[%d]", i)
		switch j, dup := seen[h]; {
		case h == "":
			v.add(p, ErrMissing, "empty header name")
		case dup:
			v.add(p, ErrInvalid, "duplicate header %q (also sink.headers.propagate[%d])", h, j)
		case strings.HasPrefix(h, reservedHeaderPrefix):
			v.add(p, ErrInvalid, "%q starts with %q: cdcsync writes those headers itself", h, reservedHeaderPrefix)
		default:
			seen[h] = i
		}
	}
}

func (v *validator) dlq() {
	t := v.c.DLQ.Topic
	if t == "" {
		if v.c.written["dlq.topic"] {
			v.add("dlq.topic", ErrMissing, "empty; leave it out to default to dlq.<name>")
		}
		return // no name, reported there
	}
	if reason := checkTopic(string(t)); reason != "" {
		v.add("dlq.topic", ErrInvalid, "%s", reason)
	} else if v.c.Source.matches(t) {
		v.add("dlq.topic", ErrInvalid, "%q is also a source topic: the topology would consume its own dead letters", t)
	} else if i, how := v.collidesWithSource(string(t)); how != "" {
		v.add("dlq.topic", ErrInvalid, "%q %s source.topics[%d] %q%s: the topology would consume its own dead letters", t, how, i, v.c.Source.Topics[i], collideNote(how))
	} else if l, ok := v.ledger(); ok && topicClash(string(t), l) != "" {
		how := topicClash(string(t), l)
		v.add("dlq.topic", ErrInvalid, "%q %s the topology's ledger topic %q%s: dead letters would corrupt the dedup ledger", t, how, l, collideNote(how))
	}
}

// ledger is the topology's ledger topic, when its name is valid.
func (v *validator) ledger() (string, bool) {
	n := v.c.Name
	if n == "" || !namePattern.MatchString(n) || len(n) > maxNameLen {
		return "", false
	}
	return n + ".ledger", true
}

// sinkClashes refuses a literal sink topic that is, or that Kafka would
// confuse with, the DLQ topic, the ledger topic or a listed source topic.
// (A sink topic the source reads is reported by sink already.)
func (v *validator) sinkClashes(sink string) {
	if d := string(v.c.DLQ.Topic); d != "" {
		if how := topicClash(sink, d); how != "" {
			v.add("sink.topic", ErrInvalid, "%q %s the DLQ topic %q%s: sync records would be counted as dead letters", sink, how, d, collideNote(how))
			return
		}
	}
	if l, ok := v.ledger(); ok {
		if how := topicClash(sink, l); how != "" {
			v.add("sink.topic", ErrInvalid, "%q %s the topology's ledger topic %q%s: sync records would corrupt the dedup ledger", sink, how, l, collideNote(how))
			return
		}
	}
	if i, how := v.collidesWithSource(sink); how != "" {
		v.add("sink.topic", ErrInvalid, "%q %s source.topics[%d] %q%s: the topology would consume its own output", sink, how, i, v.c.Source.Topics[i], collideNote(how))
	}
}

// collidesWithSource returns the first listed source topic t collides
// with, and how; "" when none. Equality is reported by Source.matches.
func (v *validator) collidesWithSource(t string) (int, string) {
	for i, s := range v.c.Source.Topics {
		if TopicsCollide(t, string(s)) {
			return i, "collides with"
		}
	}
	return 0, ""
}

// topicClash says how a and b clash: "is" when equal, "collides with" when
// Kafka treats them as the same name; "" when they do not.
func topicClash(a, b string) string {
	switch {
	case a == b:
		return "is"
	case TopicsCollide(a, b):
		return "collides with"
	}
	return ""
}

// collideNote explains a collision.
func collideNote(how string) string {
	if how == "collides with" {
		return " (Kafka treats '.' and '_' in topic names as the same)"
	}
	return ""
}

func (v *validator) errorPolicy() {
	r := &v.c.Errors.Retry
	if r.Initial <= 0 {
		v.add("errors.retry.initial", ErrInvalid, "must be greater than 0, got %v", r.Initial)
	}
	if r.Max < r.Initial {
		v.add("errors.retry.max", ErrInvalid, "%v is less than errors.retry.initial (%v)", r.Max, r.Initial)
	}
	if math.IsNaN(r.Multiplier) || math.IsInf(r.Multiplier, 0) || r.Multiplier < 1 {
		v.add("errors.retry.multiplier", ErrInvalid, "must be a number of at least 1, got %v", r.Multiplier)
	}
	if r.MaxElapsed < 0 {
		v.add("errors.retry.max_elapsed", ErrInvalid, "must be 0 (retry forever) or greater, got %v", r.MaxElapsed)
	}
	if b := v.c.Errors.Breaker; b.Failures < 1 {
		v.add("errors.breaker.failures", ErrInvalid, "must be at least 1, got %d", b.Failures)
	}
	if b := v.c.Errors.Breaker; b.Open <= 0 {
		v.add("errors.breaker.open", ErrInvalid, "must be greater than 0, got %v", b.Open)
	}
	if t := v.c.Errors.Tolerance; !validEnum(toleranceNames, int(t)) {
		v.add("errors.tolerance", ErrInvalid, "%v is not one of %s", t, quoteList(toleranceNames))
	}
}

func (v *validator) guarantee() {
	g := v.c.Guarantee
	if !validEnum(guaranteeNames, int(g)) {
		v.add("guarantee", ErrInvalid, "%v is not one of %s", g, quoteList(guaranteeNames))
	}
	switch ci := v.c.CommitInterval; {
	case ci <= 0:
		v.add("commit_interval", ErrInvalid, "must be greater than 0, got %v", ci)
	case g != ExactlyOnce && !v.c.isDefault("commit_interval", ci == DefaultCommitInterval):
		v.add("commit_interval", ErrInvalid, "only applies to guarantee: exactly_once (guarantee is %v)", g)
	}
}

// matches reports whether topic t is read by this source, as far as a
// Config that may not be valid can tell.
func (s *Source) matches(t Topic) bool {
	if slices.Contains(s.Topics, t) {
		return true
	}
	if s.TopicPattern == "" {
		return false
	}
	re, err := compilePattern(s.TopicPattern)
	return err == nil && re.MatchString(string(t))
}

// compilePattern compiles a topic pattern anchored to the whole topic name.
func compilePattern(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err // report the error against the pattern as written
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

// regexpReason trims regexp's "error parsing regexp: " prefix.
func regexpReason(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// maxTopicLen is Kafka's limit on topic name length.
const maxTopicLen = 249

// checkTopic returns why t is not a legal Kafka topic name, or "".
func checkTopic(t string) string {
	switch {
	case t == "":
		return "empty topic name"
	case t == "." || t == "..":
		return fmt.Sprintf("%q is not a legal topic name", t)
	case len(t) > maxTopicLen:
		return fmt.Sprintf("topic name is %d bytes, longer than Kafka's limit of %d", len(t), maxTopicLen)
	}
	for i := 0; i < len(t); i++ {
		if !topicChar(t[i]) {
			return fmt.Sprintf("topic %q has illegal character %q (allowed: a-z A-Z 0-9 . _ -)", t, t[i])
		}
	}
	return ""
}

func topicChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// quoteList formats allowed values as `"a", "b" or "c"`.
func quoteList(names []string) string {
	q := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" {
			q = append(q, fmt.Sprintf("%q", n))
		}
	}
	if len(q) <= 1 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
