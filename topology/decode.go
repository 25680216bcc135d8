package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks the YAML node tree of one file onto a Config, recording
// where each option is written and every problem found. It works on nodes
// rather than struct tags so that it can report every unknown field, each
// with its line and dotted path, instead of stopping at the first.
type decoder struct {
	c    *Config
	errs Errors
}

// field is one key a mapping may hold.
type field struct {
	name   string
	decode func(n *yaml.Node, path string)
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeFile parses data onto a new Config holding the static defaults.
// ok is false when the file is not a YAML mapping at all, so there is
// nothing to validate.
func decodeFile(file string, data []byte) (c *Config, errs Errors, ok bool) {
	c = NewConfig()
	c.file = file
	c.lines = map[string]int{}
	c.written = map[string]bool{}
	c.bad = map[string]bool{}
	d := &decoder{c: c}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.fileError(0, ErrMissing, "empty file: a topology needs at least name, systems, source and sink")
		} else {
			d.syntaxError(err, data)
		}
		return c, d.errs, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntaxError(err, data)
		return c, d.errs, false
	default:
		d.fileError(extra.Line, ErrSyntax, "more than one YAML document: a topology file holds exactly one topology")
		return c, d.errs, false
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	root = resolve(root)
	switch {
	case root.Kind == yaml.DocumentNode || isNull(root):
		d.fileError(0, ErrMissing, "empty file: a topology needs at least name, systems, source and sink")
		return c, d.errs, false
	case root.Kind != yaml.MappingNode:
		d.fileError(root.Line, ErrSyntax, "the top level must be a mapping of options (name:, systems:, source:, ...), not %s", kindName(root))
		return c, d.errs, false
	}
	d.mapping(root, "", d.topLevel())
	return c, d.errs, true
}

func (d *decoder) topLevel() []field {
	c := d.c
	return []field{
		{"name", func(n *yaml.Node, p string) { d.str(n, p, &c.Name) }},
		{"systems", func(n *yaml.Node, p string) { c.Systems = strList[System](d, n, p) }},
		{"source", func(n *yaml.Node, p string) {
			d.mapping(n, p, []field{
				{"topics", func(n *yaml.Node, p string) { c.Source.Topics = strList[Topic](d, n, p) }},
				{"topic_pattern", func(n *yaml.Node, p string) { d.str(n, p, &c.Source.TopicPattern) }},
				{"system", func(n *yaml.Node, p string) { d.str(n, p, (*string)(&c.Source.System)) }},
				{"format", func(n *yaml.Node, p string) { d.enum(n, p, formatNames, (*int)(&c.Source.Format)) }},
				{"tombstones", func(n *yaml.Node, p string) { d.enum(n, p, tombstonesNames, (*int)(&c.Source.Tombstones)) }},
				{"truncate", func(n *yaml.Node, p string) { d.enum(n, p, truncateNames, (*int)(&c.Source.Truncate)) }},
				{"webhook", func(n *yaml.Node, p string) { d.webhook(n, p) }},
			})
		}},
		{"dedup", func(n *yaml.Node, p string) {
			d.mapping(n, p, []field{
				{"key", func(n *yaml.Node, p string) { d.enum(n, p, dedupKeyNames, (*int)(&c.Dedup.Key)) }},
				{"field", func(n *yaml.Node, p string) { d.str(n, p, &c.Dedup.Field) }},
				{"window", func(n *yaml.Node, p string) { d.duration(n, p, &c.Dedup.Window) }},
			})
		}},
		{"authority", func(n *yaml.Node, p string) {
			d.mapping(n, p, []field{
				{"owners", func(n *yaml.Node, p string) { d.owners(n, p) }},
				{"default_owner", func(n *yaml.Node, p string) { d.str(n, p, (*string)(&c.Authority.DefaultOwner)) }},
				{"on_violation", func(n *yaml.Node, p string) { d.enum(n, p, onViolationNames, (*int)(&c.Authority.OnViolation)) }},
			})
		}},
		{"sink", func(n *yaml.Node, p string) {
			d.mapping(n, p, []field{
				{"topic", func(n *yaml.Node, p string) { d.str(n, p, &c.Sink.Topic) }},
				{"key", func(n *yaml.Node, p string) { c.Sink.Key = strList[string](d, n, p) }},
				{"format", func(n *yaml.Node, p string) { d.enum(n, p, sinkFormatNames, (*int)(&c.Sink.Format)) }},
				{"subject_strategy", func(n *yaml.Node, p string) {
					d.enum(n, p, subjectStrategyNames, (*int)(&c.Sink.SubjectStrategy))
				}},
				{"headers", func(n *yaml.Node, p string) {
					d.mapping(n, p, []field{
						{"propagate", func(n *yaml.Node, p string) { c.Sink.Headers.Propagate = strList[string](d, n, p) }},
					})
				}},
			})
		}},
		{"apply", d.apply}, // apply.go
		{"saga", d.saga},   // saga.go
		{"dlq", func(n *yaml.Node, p string) {
			d.mapping(n, p, []field{
				{"topic", func(n *yaml.Node, p string) { d.str(n, p, (*string)(&c.DLQ.Topic)) }},
			})
		}},
		{"errors", func(n *yaml.Node, p string) {
			r := &c.Errors.Retry
			d.mapping(n, p, []field{
				{"retry", func(n *yaml.Node, p string) {
					d.mapping(n, p, []field{
						{"initial", func(n *yaml.Node, p string) { d.duration(n, p, &r.Initial) }},
						{"max", func(n *yaml.Node, p string) { d.duration(n, p, &r.Max) }},
						{"multiplier", func(n *yaml.Node, p string) { d.float(n, p, &r.Multiplier) }},
						{"max_elapsed", func(n *yaml.Node, p string) { d.duration(n, p, &r.MaxElapsed) }},
					})
				}},
				{"breaker", func(n *yaml.Node, p string) {
					b := &c.Errors.Breaker
					d.mapping(n, p, []field{
						{"failures", func(n *yaml.Node, p string) { d.integer(n, p, &b.Failures) }},
						{"open", func(n *yaml.Node, p string) { d.duration(n, p, &b.Open) }},
					})
				}},
				{"tolerance", func(n *yaml.Node, p string) { d.enum(n, p, toleranceNames, (*int)(&c.Errors.Tolerance)) }},
			})
		}},
		{"guarantee", func(n *yaml.Node, p string) { d.enum(n, p, guaranteeNames, (*int)(&c.Guarantee)) }},
		{"commit_interval", func(n *yaml.Node, p string) { d.duration(n, p, &c.CommitInterval) }},
	}
}

// fail records a problem with the value at path and marks the path so
// validation does not report it, or anything under it, a second time.
func (d *decoder) fail(line int, path string, kind error, format string, args ...any) {
	d.c.bad[path] = true
	d.report(line, path, kind, format, args...)
}

// report records a problem without marking the path.
func (d *decoder) report(line int, path string, kind error, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.c.file, Line: line, Field: path, Reason: fmt.Sprintf(format, args...), Err: kind})
}

func (d *decoder) fileError(line int, kind error, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.c.file, Line: line, Reason: fmt.Sprintf(format, args...), Err: kind})
}

// syntaxError turns a yaml.v3 parse error into an *Error with its line.
func (d *decoder) syntaxError(err error, data []byte) {
	msg := err.Error()
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if isParserError(m[2]) {
			line++ // yaml.v3 reports parser (not scanner) errors 0-based
		}
		d.fileError(line, ErrSyntax, "invalid YAML: %s", m[2])
		return
	}
	// Some yaml.v3 errors carry no line. The usual cause is a tab in the
	// indentation, so point at the first one.
	msg = strings.TrimPrefix(msg, "yaml: ")
	for i, l := range strings.Split(string(data), "\n") {
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") {
			d.fileError(i+1, ErrSyntax, "invalid YAML: %s (YAML does not allow tabs for indentation)", msg)
			return
		}
	}
	d.fileError(0, ErrSyntax, "invalid YAML: %s", msg)
}

// isParserError reports whether msg is one of yaml.v3's parser errors,
// whose line numbers are 0-based, unlike its scanner errors.
func isParserError(msg string) bool {
	for _, prefix := range []string{"did not find expected", "found duplicate %", "found incompatible YAML", "found undefined tag"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// mapping decodes the keys of n that fields name and reports every other
// key as unknown. A key with a null value (`dlq:` with nothing after it)
// is recorded but leaves the option at its default.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, ErrInvalid, "must be a mapping, not %s", kindName(n))
		return
	}
	firstLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.report(k.Line, path, ErrSyntax, "keys must be plain names, not %s", kindName(k))
			continue
		}
		p := joinPath(path, k.Value)
		if k.Tag == "!!merge" {
			d.report(k.Line, path, ErrSyntax, "merge keys (<<) are not supported")
			continue
		}
		if l, dup := firstLine[k.Value]; dup {
			d.fail(k.Line, p, ErrSyntax, "duplicate key (first at line %d)", l)
			continue
		}
		firstLine[k.Value] = k.Line
		f := findField(fields, k.Value)
		if f == nil {
			d.fail(k.Line, p, ErrUnknownField, "unknown field%s", suggest(k.Value, fields))
			continue
		}
		d.c.lines[p] = k.Line
		if isNull(resolve(v)) {
			continue
		}
		d.c.written[p] = true
		f.decode(v, p)
	}
}

func (d *decoder) owners(n *yaml.Node, path string) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, ErrInvalid, "must be a mapping of field to owning system, e.g. {email: crm}, not %s", kindName(n))
		return
	}
	owners := make(map[string]System, len(n.Content)/2)
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
			d.fail(v.Line, p, ErrMissing, "no owner given")
			continue
		}
		if d.str(v, p, &s) {
			owners[k.Value] = System(s)
		}
	}
	d.c.Authority.Owners = owners
}

// str decodes a scalar as a string. Any scalar is accepted, so a topic
// named 2024 need not be quoted.
func (d *decoder) str(n *yaml.Node, path string, dst *string) bool {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, path, ErrInvalid, "must be a string, not %s", kindName(n))
		return false
	}
	*dst = n.Value
	return true
}

// strList decodes a sequence of scalars, recording each item's line.
func strList[T ~string](d *decoder, n *yaml.Node, path string) []T {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, path, ErrInvalid, "must be a list, e.g. [a, b], not %s", kindName(n))
		return nil
	}
	out := make([]T, 0, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		item = resolve(item)
		d.c.lines[p] = item.Line
		var s string
		if isNull(item) {
			s = "" // reported as empty by validation
		} else if !d.str(item, p, &s) {
			continue
		}
		out = append(out, T(s))
	}
	return out
}

func (d *decoder) enum(n *yaml.Node, path string, names []string, dst *int) {
	var s string
	if !d.str(n, path, &s) {
		return
	}
	for i, name := range names {
		if name != "" && name == s {
			*dst = i
			return
		}
	}
	d.fail(resolve(n).Line, path, ErrInvalid, "%q is not one of %s", s, quoteList(names))
}

func (d *decoder) duration(n *yaml.Node, path string, dst *time.Duration) {
	var s string
	if !d.str(n, path, &s) {
		return
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fail(resolve(n).Line, path, ErrInvalid, "invalid duration %q: want a number with a unit, e.g. 100ms, 30s, 168h", s)
		return
	}
	*dst = v
}

func (d *decoder) float(n *yaml.Node, path string, dst *float64) {
	var s string
	if !d.str(n, path, &s) {
		return
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.fail(resolve(n).Line, path, ErrInvalid, "invalid number %q", s)
		return
	}
	*dst = v
}

func (d *decoder) integer(n *yaml.Node, path string, dst *int) {
	var s string
	if !d.str(n, path, &s) {
		return
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		d.fail(resolve(n).Line, path, ErrInvalid, "invalid whole number %q", s)
		return
	}
	*dst = v
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "a YAML document"
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func findField(fields []field, name string) *field {
	for i := range fields {
		if fields[i].name == name {
			return &fields[i]
		}
	}
	return nil
}

// suggest names the closest known field, or lists them all.
func suggest(name string, fields []field) string {
	best, bestDist := "", 3 // more than two edits away is no suggestion
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
		if dist := editDistance(name, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return " (known here: " + strings.Join(names, ", ") + ")"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
