package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestConfigurationDocKeys checks docs/configuration.md against the worker
// file's keys: every key the YAML decoder accepts is documented (in the
// table, or where the page sends the reader: the security keys in
// docs/security.md, the exactly_once ones in docs/guarantees.md), with the
// CDCSYNC_ variable run.go reads for it when there is one, and every key
// in the table is one the decoder accepts. Written when memory_budget_bytes
// was added, so a new option cannot ship undocumented.
func TestConfigurationDocKeys(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	conf := read("../../docs/configuration.md")
	elsewhere := read("../../docs/security.md") + read("../../docs/guarantees.md")
	runGo := read("run.go")

	rows := map[string]string{} // key -> its table row
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|(.*)$").FindAllStringSubmatch(conf, -1) {
		rows[m[1]] = m[2]
	}
	keys := yamlKeys(reflect.TypeFor[workerFile]())
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in workerFile: %v", len(keys), keys)
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k] = true
		row, inTable := rows[k]
		if !inTable && !strings.Contains(elsewhere, "`"+k+"`") {
			t.Errorf("key %s is in neither docs/configuration.md's table nor docs/security.md or docs/guarantees.md", k)
			continue
		}
		env := "CDCSYNC_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(k))
		if inTable && strings.Contains(runGo, `"`+env+`"`) && !strings.Contains(row, "`"+env+"`") {
			t.Errorf("docs/configuration.md's row of %s does not name %s, which run.go reads", k, env)
		}
	}
	for k := range rows {
		if !known[k] {
			t.Errorf("docs/configuration.md documents %s, which the worker file does not accept", k)
		}
	}
}

// yamlKeys lists the yaml keys of a struct, descending into inline fields.
func yamlKeys(typ reflect.Type) []string {
	var keys []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case name == "-":
		case strings.Contains(opts, "inline"):
			keys = append(keys, yamlKeys(f.Type)...)
		case name != "":
			keys = append(keys, name)
		}
	}
	return keys
}
