package topology

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of the apply section.
const (
	DefaultApplyMaxEvents      = 500
	DefaultApplyMaxWait        = 50 * time.Millisecond
	DefaultApplyMaxConcurrency = 8
	DefaultHTTPTimeout         = 10 * time.Second
	DefaultAppliedTable        = "cdcsync_applied"
	DefaultHTTPCreate          = "POST"
	DefaultHTTPUpdate          = "PATCH"
	DefaultHTTPDelete          = "DELETE"
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
	// ApplyTruncateApply applies them (postgres: TRUNCATE the table). An
	// HTTP target has no truncate: apply.kind http refuses it.
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
	Create string
	Update string
	Delete string
}

func (a Apply) clone() Apply {
	a.Postgres.Key = slices.Clone(a.Postgres.Key)
	if a.Postgres.Columns != nil {
		a.Postgres.Columns = maps.Clone(a.Postgres.Columns)
	}
	a.HTTP.SecretsEnv = slices.Clone(a.HTTP.SecretsEnv)
	a.HTTP.SecretsFile = slices.Clone(a.HTTP.SecretsFile)
	return a
}

// defaultApply is the apply section's static defaults (NewConfig).
func defaultApply() Apply {
	return Apply{
		Batch:          ApplyBatch{MaxEvents: DefaultApplyMaxEvents, MaxWait: DefaultApplyMaxWait},
		MaxConcurrency: DefaultApplyMaxConcurrency,
		Truncate:       ApplyTruncateIgnore,
		Postgres:       PostgresApply{OnConflict: ConflictOverwrite, AppliedTable: DefaultAppliedTable},
		HTTP: HTTPApply{
			Methods: HTTPMethods{Create: DefaultHTTPCreate, Update: DefaultHTTPUpdate, Delete: DefaultHTTPDelete},
			Timeout: DefaultHTTPTimeout,
		},
	}
}

// isApply reports whether c is an apply topology: the file writes an
// apply section, or (built in code) sets apply.kind.
func (c *Config) isApply() bool {
	return c.written["apply"] || c.Apply.Kind != ApplyUnset
}

// apply decodes the "apply" section onto the static defaults.
func (d *decoder) apply(n *yaml.Node, path string) {
	a := &d.c.Apply
	d.mapping(n, path, []field{
		{"kind", func(n *yaml.Node, p string) { d.enum(n, p, applyKindNames, (*int)(&a.Kind)) }},
		{"batch", func(n *yaml.Node, p string) {
			d.mapping(n, p, []field{
				{"max_events", func(n *yaml.Node, p string) { d.integer(n, p, &a.Batch.MaxEvents) }},
				{"max_wait", func(n *yaml.Node, p string) { d.duration(n, p, &a.Batch.MaxWait) }},
			})
		}},
		{"max_concurrency", func(n *yaml.Node, p string) { d.integer(n, p, &a.MaxConcurrency) }},
		{"truncate", func(n *yaml.Node, p string) { d.enum(n, p, applyTruncateNames, (*int)(&a.Truncate)) }},
		{"postgres", func(n *yaml.Node, p string) {
			pg := &a.Postgres
			d.mapping(n, p, []field{
				{"dsn_env", func(n *yaml.Node, p string) { d.str(n, p, &pg.DSNEnv) }},
				{"dsn_file", func(n *yaml.Node, p string) { d.str(n, p, &pg.DSNFile) }},
				{"table", func(n *yaml.Node, p string) { d.str(n, p, &pg.Table) }},
				{"key", func(n *yaml.Node, p string) { pg.Key = strList[string](d, n, p) }},
				{"columns", func(n *yaml.Node, p string) { pg.Columns = d.strMap(n, p) }},
				{"on_conflict", func(n *yaml.Node, p string) { d.enum(n, p, onConflictNames, (*int)(&pg.OnConflict)) }},
				{"applied_table", func(n *yaml.Node, p string) { d.str(n, p, &pg.AppliedTable) }},
			})
		}},
		{"http", func(n *yaml.Node, p string) {
			h := &a.HTTP
			d.mapping(n, p, []field{
				{"url", func(n *yaml.Node, p string) { d.str(n, p, &h.URL) }},
				{"methods", func(n *yaml.Node, p string) {
					d.mapping(n, p, []field{
						{"create", func(n *yaml.Node, p string) { d.str(n, p, &h.Methods.Create) }},
						{"update", func(n *yaml.Node, p string) { d.str(n, p, &h.Methods.Update) }},
						{"delete", func(n *yaml.Node, p string) { d.str(n, p, &h.Methods.Delete) }},
					})
				}},
				{"timeout", func(n *yaml.Node, p string) { d.duration(n, p, &h.Timeout) }},
				{"secrets_env", func(n *yaml.Node, p string) { h.SecretsEnv = strList[string](d, n, p) }},
				{"secrets_file", func(n *yaml.Node, p string) { h.SecretsFile = strList[string](d, n, p) }},
			})
		}},
	})
}

// strMap decodes a mapping of plain strings to plain strings, recording
// each key's line under path.key.
func (d *decoder) strMap(n *yaml.Node, path string) map[string]string {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, ErrInvalid, "must be a mapping of event field to column, e.g. {phone: phone_number}, not %s", kindName(n))
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	firstLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.report(k.Line, path, ErrInvalid, "field names must be plain strings, not %s", kindName(k))
			continue
		}
		p := joinPath(path, k.Value)
		if l, dup := firstLine[k.Value]; dup {
			d.fail(k.Line, p, ErrSyntax, "duplicate key (first at line %d)", l)
			continue
		}
		firstLine[k.Value] = k.Line
		d.c.lines[p] = k.Line
		d.c.written[p] = true
		var s string
		if isNull(v) {
			d.fail(v.Line, p, ErrMissing, "no column given")
			continue
		}
		if d.str(v, p, &s) {
			out[k.Value] = s
		}
	}
	return out
}

// placeholder is one {…} of an apply.http.url template.
var urlPlaceholder = regexp.MustCompile(`\{[^{}]*\}`)

// keyPlaceholder is the field name of a {key.<field>} placeholder.
var keyPlaceholder = regexp.MustCompile(`^\{key\.([^{}]+)\}$`)

// httpMethod is an HTTP method token, as RFC 9110 allows, upper case.
var httpMethod = regexp.MustCompile(`^[A-Z]+$`)

// sqlName is a PostgreSQL identifier, optionally schema-qualified for a
// table: letters, digits, _ and $, not starting with a digit.
var sqlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// apply checks an apply topology: the apply section, and that the rest
// of the file makes sense for one.
func (v *validator) apply() {
	c := v.c
	a := &c.Apply
	if c.written["sink"] || c.Sink.Topic != "" || len(c.Sink.Key) > 0 {
		v.add("apply", ErrInvalid, "sink and apply cannot be used together: a topology either writes sync records to a sink topic or applies them to a target")
	}
	for _, s := range []string{"dedup.key", "dedup.field", "authority"} {
		if c.written[s] {
			v.add(s, ErrInvalid, "only applies to a sink topology: an apply topology reads events that already passed dedup and authority")
		}
	}
	if c.written["source.tombstones"] {
		v.add("source.tombstones", ErrInvalid, "has no effect in an apply topology: tombstones are skipped, since the delete before them carries the change")
	}
	if c.written["source.truncate"] {
		v.add("source.truncate", ErrInvalid, "has no effect in an apply topology: apply.truncate says what a truncate does")
	}
	if c.Dedup.Window <= 0 {
		v.add("dedup.window", ErrInvalid, "must be greater than 0, got %v", c.Dedup.Window)
	}
	if f := c.Source.Format; f == DebeziumJSON || f == DebeziumAvro {
		v.add("source.format", ErrInvalid, "%v: an apply topology reads cdcsync's sync records, %q or %q", f, formatNames[CdcsyncJSON], formatNames[CdcsyncAvro])
	}
	if c.Guarantee != AtLeastOnce {
		v.add("guarantee", ErrInvalid, "%v does not apply to an apply topology: it is exactly-once into the target through the target's own idempotency (postgres: the applied table; http: Idempotency-Key)", c.Guarantee)
	}
	switch {
	case a.Kind == ApplyUnset:
		v.add("apply.kind", ErrMissing, "required: one of %s", quoteList(applyKindNames[1:]))
	case !validEnum(applyKindNames, int(a.Kind)):
		v.add("apply.kind", ErrInvalid, "%v is not one of %s", a.Kind, quoteList(applyKindNames[1:]))
	}
	if a.Batch.MaxEvents < 1 {
		v.add("apply.batch.max_events", ErrInvalid, "must be at least 1, got %d", a.Batch.MaxEvents)
	}
	if a.Batch.MaxWait <= 0 {
		v.add("apply.batch.max_wait", ErrInvalid, "must be greater than 0, got %v", a.Batch.MaxWait)
	}
	if a.MaxConcurrency < 1 {
		v.add("apply.max_concurrency", ErrInvalid, "must be at least 1, got %d", a.MaxConcurrency)
	}
	if !validEnum(applyTruncateNames, int(a.Truncate)) {
		v.add("apply.truncate", ErrInvalid, "%v is not one of %s", a.Truncate, quoteList(applyTruncateNames))
	}
	switch a.Kind {
	case ApplyPostgres:
		if c.written["apply.http"] {
			v.add("apply.http", ErrInvalid, "only applies to apply.kind: http (apply.kind is postgres)")
		}
		v.postgresApply()
	case ApplyHTTP:
		if c.written["apply.postgres"] {
			v.add("apply.postgres", ErrInvalid, "only applies to apply.kind: postgres (apply.kind is http)")
		}
		if a.Truncate == ApplyTruncateApply {
			v.add("apply.truncate", ErrInvalid, "apply is not possible with apply.kind: http: a truncate has no key to call; leave it at ignore")
		}
		v.httpApply()
	}
}

func (v *validator) postgresApply() {
	pg := &v.c.Apply.Postgres
	switch {
	case pg.DSNEnv == "" && pg.DSNFile == "":
		v.add("apply.postgres", ErrMissing, "one of apply.postgres.dsn_env or apply.postgres.dsn_file is required: where the connection string is (it is never written in the topology, nor logged)")
	case pg.DSNEnv != "" && pg.DSNFile != "":
		v.add("apply.postgres.dsn_file", ErrInvalid, "cannot be used together with apply.postgres.dsn_env; set exactly one")
	}
	if pg.Table == "" {
		v.add("apply.postgres.table", ErrMissing, "required: the target table, e.g. public.contacts")
	} else {
		for _, part := range strings.Split(pg.Table, ".") {
			if !sqlName.MatchString(part) || strings.Count(pg.Table, ".") > 1 {
				v.add("apply.postgres.table", ErrInvalid, "%q is not a table name: [schema.]table, each of letters, digits, _ and $", pg.Table)
				break
			}
		}
	}
	if len(pg.Key) == 0 {
		v.add("apply.postgres.key", ErrMissing, "required: the target's key columns, in the order of the event key, e.g. [id]")
	}
	seen := map[string]int{}
	for i, k := range pg.Key {
		p := fmt.Sprintf("apply.postgres.key[%d]", i)
		if k == "" {
			v.add(p, ErrMissing, "empty column name")
		} else if j, dup := seen[k]; dup {
			v.add(p, ErrInvalid, "duplicate key column %q (also apply.postgres.key[%d])", k, j)
		} else {
			seen[k] = i
		}
	}
	fields := slices.Sorted(maps.Keys(pg.Columns))
	for _, f := range fields {
		if col := pg.Columns[f]; col == "" {
			v.add("apply.postgres.columns."+f, ErrMissing, "empty column name")
		}
	}
	if !validEnum(onConflictNames, int(pg.OnConflict)) {
		v.add("apply.postgres.on_conflict", ErrInvalid, "%v is not one of %s", pg.OnConflict, quoteList(onConflictNames))
	}
	if t := pg.AppliedTable; t == "" {
		v.add("apply.postgres.applied_table", ErrMissing, "empty; leave it out to default to %s", DefaultAppliedTable)
	} else if parts := strings.Split(t, "."); len(parts) > 2 || !sqlName.MatchString(parts[0]) || len(parts) == 2 && !sqlName.MatchString(parts[1]) {
		v.add("apply.postgres.applied_table", ErrInvalid, "%q is not a table name: [schema.]table, each of letters, digits, _ and $", t)
	}
}

func (v *validator) httpApply() {
	h := &v.c.Apply.HTTP
	if h.URL == "" {
		v.add("apply.http.url", ErrMissing, "required: the endpoint, a template such as https://crm.example/api/{entity}/{key.id}")
	} else if reason := checkURLTemplate(h.URL); reason != "" {
		v.add("apply.http.url", ErrInvalid, "%s", reason)
	}
	for _, m := range []struct{ path, method string }{
		{"apply.http.methods.create", h.Methods.Create},
		{"apply.http.methods.update", h.Methods.Update},
		{"apply.http.methods.delete", h.Methods.Delete},
	} {
		if !httpMethod.MatchString(m.method) {
			v.add(m.path, ErrInvalid, "%q is not an HTTP method: upper-case letters, e.g. POST, PUT, PATCH or DELETE", m.method)
		}
	}
	if h.Timeout <= 0 {
		v.add("apply.http.timeout", ErrInvalid, "must be greater than 0, got %v", h.Timeout)
	}
	switch {
	case len(h.SecretsEnv) == 0 && len(h.SecretsFile) == 0:
		v.add("apply.http", ErrMissing, "one of apply.http.secrets_env or apply.http.secrets_file is required: the whsec_ signing secrets (Standard Webhooks)")
	case len(h.SecretsEnv) > 0 && len(h.SecretsFile) > 0:
		v.add("apply.http.secrets_file", ErrInvalid, "cannot be used together with apply.http.secrets_env; set exactly one")
	}
	for i, e := range h.SecretsEnv {
		if e == "" {
			v.add(fmt.Sprintf("apply.http.secrets_env[%d]", i), ErrMissing, "empty environment variable name")
		}
	}
	for i, f := range h.SecretsFile {
		if f == "" {
			v.add(fmt.Sprintf("apply.http.secrets_file[%d]", i), ErrMissing, "empty file name")
		}
	}
}

// checkURLTemplate returns why an apply.http.url template is unusable, or "".
func checkURLTemplate(t string) string {
	for _, ph := range urlPlaceholder.FindAllString(t, -1) {
		if ph != "{entity}" && !keyPlaceholder.MatchString(ph) {
			return fmt.Sprintf("unknown placeholder %s: use {entity} or {key.<field>}", ph)
		}
	}
	if strings.ContainsAny(urlPlaceholder.ReplaceAllString(t, ""), "{}") {
		return fmt.Sprintf("%q has an unmatched { or }", t)
	}
	u, err := url.Parse(urlPlaceholder.ReplaceAllString(t, "x"))
	if err != nil {
		return fmt.Sprintf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Sprintf("%q must be an absolute http:// or https:// URL", t)
	}
	_, rest, _ := strings.Cut(t, "://")
	if host, _, _ := strings.Cut(rest, "/"); strings.Contains(host, "{") {
		return fmt.Sprintf("%q has a placeholder in the host: placeholders go in the path or query", t)
	}
	return ""
}

// IsApply reports whether the plan is an apply topology (it has an apply
// section instead of a sink).
func (p *Plan) IsApply() bool { return p.cfg.isApply() }

// Apply is the apply section (a copy).
func (p *Plan) Apply() Apply { return p.cfg.Apply.clone() }

// Line is the line where the option at a dotted path (or the nearest
// enclosing option written) is, 0 if none is or the plan was built in code.
func (p *Plan) Line(path string) int { return p.cfg.line(path) }

// Where is "FILE:LINE: path" for an option, as configuration errors name
// it: for a start-up refusal at an option the plan does not check itself,
// e.g. `contacts.yaml:14: apply.postgres.columns.phone`.
func (p *Plan) Where(path string) string {
	file := p.cfg.file
	if file == "" {
		file = "topology " + p.cfg.Name
	}
	if l := p.cfg.line(path); l > 0 {
		return file + ":" + strconv.Itoa(l) + ": " + path
	}
	return file + ": " + path
}

// describeApply is Describe for an apply topology.
func (p *Plan) applyOptions() []Option {
	c := p.cfg
	a := c.Apply
	var out []Option
	line := func(key, value string, isDefault bool, defNote string) {
		if !isDefault {
			defNote = ""
		}
		out = append(out, Option{Key: key, Value: value, Default: isDefault, DefaultNote: strings.TrimPrefix(defNote, ": ")})
	}
	def := func(path string, equalsDefault bool) bool { return c.isDefault(path, equalsDefault) }
	d := defaultApply()

	line("consumer group", string(p.Group()), false, "")
	line("systems", joinSystems(c.Systems), false, "")
	if c.Source.TopicPattern != "" {
		line("source.topic_pattern", c.Source.TopicPattern+"  (matches whole topic names)", false, "")
	} else {
		line("source.topics", joinTopics(c.Source.Topics), false, "")
	}
	line("source.system", string(c.Source.System), false, "")
	line("source.format", c.Source.Format.String(), false, "")
	line("dedup.window", fmtDuration(c.Dedup.Window), def("dedup.window", c.Dedup.Window == DefaultDedupWindow), "")
	line("apply.kind", a.Kind.String(), false, "")
	line("apply.batch.max_events", strconv.Itoa(a.Batch.MaxEvents), def("apply.batch.max_events", a.Batch.MaxEvents == d.Batch.MaxEvents), "")
	line("apply.batch.max_wait", fmtDuration(a.Batch.MaxWait), def("apply.batch.max_wait", a.Batch.MaxWait == d.Batch.MaxWait), "")
	line("apply.max_concurrency", strconv.Itoa(a.MaxConcurrency), def("apply.max_concurrency", a.MaxConcurrency == d.MaxConcurrency), "")
	line("apply.truncate", a.Truncate.String(), def("apply.truncate", a.Truncate == d.Truncate), "")
	switch a.Kind {
	case ApplyPostgres:
		pg := a.Postgres
		if pg.DSNEnv != "" {
			line("apply.postgres.dsn_env", pg.DSNEnv, false, "")
		} else {
			line("apply.postgres.dsn_file", pg.DSNFile, false, "")
		}
		line("apply.postgres.table", pg.Table, false, "")
		line("apply.postgres.key", strings.Join(pg.Key, ", "), false, "")
		if len(pg.Columns) == 0 {
			line("apply.postgres.columns", "none", def("apply.postgres.columns", true), "")
		}
		for _, f := range slices.Sorted(maps.Keys(pg.Columns)) {
			line("apply.postgres.columns."+f, pg.Columns[f], false, "")
		}
		line("apply.postgres.on_conflict", pg.OnConflict.String(), def("apply.postgres.on_conflict", pg.OnConflict == d.Postgres.OnConflict), "")
		line("apply.postgres.applied_table", pg.AppliedTable, def("apply.postgres.applied_table", pg.AppliedTable == d.Postgres.AppliedTable), "")
	case ApplyHTTP:
		h := a.HTTP
		line("apply.http.url", h.URL, false, "")
		line("apply.http.methods.create", h.Methods.Create, def("apply.http.methods.create", h.Methods.Create == d.HTTP.Methods.Create), "")
		line("apply.http.methods.update", h.Methods.Update, def("apply.http.methods.update", h.Methods.Update == d.HTTP.Methods.Update), "")
		line("apply.http.methods.delete", h.Methods.Delete, def("apply.http.methods.delete", h.Methods.Delete == d.HTTP.Methods.Delete), "")
		line("apply.http.timeout", fmtDuration(h.Timeout), def("apply.http.timeout", h.Timeout == d.HTTP.Timeout), "")
		if len(h.SecretsEnv) > 0 {
			line("apply.http.secrets_env", strings.Join(h.SecretsEnv, ", "), false, "")
		} else {
			line("apply.http.secrets_file", strings.Join(h.SecretsFile, ", "), false, "")
		}
	}
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
	return out
}
