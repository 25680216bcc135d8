package schemas

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/riferrei/srclient"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// maxReferenceDepth bounds chains of schema references (a schema that
// references one that references another...), and so cycles.
const maxReferenceDepth = 8

// dereference makes a schema with Confluent schema references
// self-contained: the first use of each referenced named type is replaced
// by its definition, fetched from the registry by subject and version
// (recursively), as Avro's "first use defines the name" rule allows. Some
// converters (Apicurio's, by default) split Debezium's source block into a
// referenced schema; the decoders need one schema text.
func (c *Client) dereference(text string, refs []srclient.Reference, depth int) (string, error) {
	if len(refs) == 0 {
		return text, nil
	}
	if depth >= maxReferenceDepth {
		return "", fmt.Errorf("schema references nested deeper than %d: %w", maxReferenceDepth, cdc.ErrUnknownSchema)
	}
	defs := map[string]any{}
	for _, r := range refs {
		if c.subj == nil {
			return "", fmt.Errorf("schema reference %s: registry client cannot read subjects: %w", r.Name, cdc.ErrUnknownSchema)
		}
		rs, err := c.subj.GetSchemaByVersion(r.Subject, r.Version)
		if err != nil {
			err = classify(err)
			if errors.Is(err, ErrNotFound) {
				err = fmt.Errorf("schema reference %s (%s version %d): %w (%w)", r.Name, r.Subject, r.Version, cdc.ErrUnknownSchema, err)
			}
			return "", err
		}
		rt, err := c.dereference(rs.Schema(), rs.References(), depth+1)
		if err != nil {
			return "", err
		}
		var def any
		if err := json.Unmarshal([]byte(rt), &def); err != nil {
			return "", fmt.Errorf("schema reference %s: %v: %w", r.Name, err, cdc.ErrUnknownSchema)
		}
		defs[r.Name] = def
	}
	var root any
	if err := json.Unmarshal([]byte(text), &root); err != nil {
		return "", fmt.Errorf("schema with references: %v: %w", err, cdc.ErrUnknownSchema)
	}
	root = inline(root, defs)
	out, err := json.Marshal(root)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// inline walks a parsed schema and replaces, in type positions, the first
// use of each name in defs by its definition.
func inline(node any, defs map[string]any) any {
	switch n := node.(type) {
	case string:
		if def, ok := defs[n]; ok {
			delete(defs, n) // later uses refer to the name defined here
			return inline(def, defs)
		}
		return n
	case []any: // a union
		for i := range n {
			n[i] = inline(n[i], defs)
		}
		return n
	case map[string]any:
		for _, k := range []string{"type", "items", "values"} {
			if v, ok := n[k]; ok {
				n[k] = inline(v, defs)
			}
		}
		if fields, ok := n["fields"].([]any); ok {
			for _, f := range fields {
				if fm, ok := f.(map[string]any); ok {
					if v, ok := fm["type"]; ok {
						fm["type"] = inline(v, defs)
					}
				}
			}
		}
		return n
	}
	return node
}
