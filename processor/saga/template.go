package saga

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// A payload template is a string with placeholders in braces, each a
// dotted path into the saga's context:
//
//	{saga.id}                   the saga ID
//	{trigger.<path>}            a field of the trigger's JSON payload
//	{steps.<step>.<path>}       a field of an earlier step's reply result
//
// A template that is exactly one placeholder inserts the JSON value as it
// is (a number stays a number, an object an object); a placeholder inside
// other text inserts the value's text. A path that does not resolve gives
// null (alone) or the empty string (inside text). "{{" and "}}" are
// literal braces. There is nothing else: no expressions, no functions.
type Template struct {
	parts []tplPart
}

type tplPart struct {
	lit  string
	path []string // nil for a literal
}

// ErrTemplate is returned by ParseTemplate.
var ErrTemplate = errors.New("saga: bad template")

// ParseTemplate compiles a payload template.
func ParseTemplate(s string) (Template, error) {
	var t Template
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return t, fmt.Errorf("%w: %q: unmatched }", ErrTemplate, s)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return t, fmt.Errorf("%w: %q: unmatched {", ErrTemplate, s)
			}
			path := strings.Split(s[i+1:i+end], ".")
			if err := checkPath(path); err != nil {
				return t, fmt.Errorf("%w: %q: %v", ErrTemplate, s, err)
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, tplPart{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, tplPart{path: path})
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 || len(t.parts) == 0 {
		t.parts = append(t.parts, tplPart{lit: lit.String()})
	}
	return t, nil
}

func checkPath(p []string) error {
	for _, e := range p {
		if e == "" {
			return errors.New("empty path element")
		}
	}
	switch p[0] {
	case "saga":
		if len(p) != 2 || p[1] != "id" {
			return errors.New("the only saga placeholder is {saga.id}")
		}
	case "trigger":
	case "steps":
		if len(p) < 2 {
			return errors.New("{steps.<step>...} needs a step name")
		}
	default:
		return fmt.Errorf("unknown root %q: use saga, trigger or steps", p[0])
	}
	return nil
}

// Steps returns the step names the template refers to.
func (t Template) Steps() []string {
	var out []string
	for _, p := range t.parts {
		if len(p.path) >= 2 && p.path[0] == "steps" {
			out = append(out, p.path[1])
		}
	}
	return out
}

// expand renders the template against a saga's context.
func (t Template) expand(ctx map[string]any) any {
	if len(t.parts) == 1 && t.parts[0].path != nil {
		return lookup(ctx, t.parts[0].path)
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.path == nil {
			b.WriteString(p.lit)
			continue
		}
		switch v := lookup(ctx, p.path).(type) {
		case nil:
		case string:
			b.WriteString(v)
		default:
			j, _ := json.Marshal(v)
			b.Write(j)
		}
	}
	return b.String()
}

func lookup(v any, path []string) any {
	for _, e := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[e]
	}
	return v
}

// buildPayload renders a command's payload: a JSON object of its fields.
func buildPayload(c *Command, ctx map[string]any) json.RawMessage {
	obj := make(map[string]any, len(c.Payload))
	for f, s := range c.Payload {
		t, err := ParseTemplate(s)
		if err != nil { // Validate refuses it; never reached
			obj[f] = nil
			continue
		}
		obj[f] = t.expand(ctx)
	}
	b, _ := json.Marshal(obj) // map keys are sorted: the payload is deterministic
	return b
}
