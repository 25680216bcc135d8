package topology

import (
	"fmt"
	"strings"
)

// placeholder is one of the values a sink topic template can insert.
type placeholder int8

const (
	phNone placeholder = iota // a literal part
	phDB
	phSchema
	phTable
	phEntity
	phAggregateType // source.format debezium-outbox; expands like {entity}
)

var placeholderNames = map[string]placeholder{
	"db":     phDB,
	"schema": phSchema,
	"table":  phTable,
	"entity": phEntity,
	// The outbox event's aggregate type, which is its entity (outbox.go).
	"aggregatetype": phAggregateType,
}

// templatePart is a literal or a placeholder.
type templatePart struct {
	lit string
	ph  placeholder
}

// template is a compiled sink topic template: the parts in order, and the
// total length of the literal parts so expansion allocates once.
type template struct {
	parts  []templatePart
	litLen int
}

// parseTemplate compiles s, or returns why it is not a valid template.
// Literal text must be legal in a topic name; "{" and "}" only delimit
// placeholders.
func parseTemplate(s string) (template, string) {
	var t template
	rest := s
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.addLit(rest)
			break
		}
		if rest[open] == '}' {
			return template{}, fmt.Sprintf("template %q has a \"}\" without a matching \"{\"", s)
		}
		t.addLit(rest[:open])
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return template{}, fmt.Sprintf("template %q has an unclosed \"{\"", s)
		}
		name := rest[open+1 : open+1+end]
		ph, ok := placeholderNames[name]
		if !ok {
			return template{}, fmt.Sprintf("unknown placeholder \"{%s}\" in %q (known: {db}, {schema}, {table}, {entity}, {aggregatetype})", name, s)
		}
		t.parts = append(t.parts, templatePart{ph: ph})
		rest = rest[open+1+end+1:]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '{' && c != '}' && !topicChar(c) {
			return template{}, fmt.Sprintf("template %q has illegal character %q (allowed outside placeholders: a-z A-Z 0-9 . _ -)", s, c)
		}
	}
	// {db}, {table} and {entity} are never empty, so each adds at least a
	// byte ({schema} is empty for MySQL). A template whose shortest
	// expansion is too long can never give a legal topic: every record
	// would fail at run time.
	if n := t.minLen(); n > maxTopicLen {
		return template{}, fmt.Sprintf("template %q has %d bytes of literal text and %d placeholder(s) of at least 1 byte, so every topic it gives is at least %d bytes, longer than Kafka's topic name limit of %d",
			s, t.litLen, n-t.litLen, n, maxTopicLen)
	}
	if lit, ok := t.literal(); ok {
		if reason := checkTopic(lit); reason != "" {
			return template{}, reason
		}
	}
	return t, ""
}

// minLen is the length of the shortest expansion: the literal text plus
// one byte per placeholder that is never empty (all but {schema}).
func (t template) minLen() int {
	n := t.litLen
	for _, p := range t.parts {
		if p.ph != phNone && p.ph != phSchema {
			n++
		}
	}
	return n
}

func (t *template) addLit(s string) {
	if s == "" {
		return
	}
	t.parts = append(t.parts, templatePart{lit: s})
	t.litLen += len(s)
}

// literal returns the topic when the template has no placeholders.
func (t template) literal() (string, bool) {
	switch {
	case len(t.parts) == 0:
		return "", true
	case len(t.parts) == 1 && t.parts[0].ph == phNone:
		return t.parts[0].lit, true
	}
	return "", false
}

// expand fills in the placeholders. It allocates exactly once (or not at
// all for a template without placeholders) and does not check that the
// result is a legal topic name.
func (t template) expand(db, schema, table, entity string) string {
	if lit, ok := t.literal(); ok {
		return lit
	}
	n := t.litLen
	for _, p := range t.parts {
		switch p.ph {
		case phDB:
			n += len(db)
		case phSchema:
			n += len(schema)
		case phTable:
			n += len(table)
		case phEntity, phAggregateType:
			n += len(entity)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range t.parts {
		switch p.ph {
		case phNone:
			b.WriteString(p.lit)
		case phDB:
			b.WriteString(db)
		case phSchema:
			b.WriteString(schema)
		case phTable:
			b.WriteString(table)
		case phEntity, phAggregateType:
			b.WriteString(entity)
		}
	}
	return b.String()
}
