package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const demoTopologies = "../../internal/demo/topologies"

func TestTopologyValidateDemo(t *testing.T) {
	stdout, _, err := run(t, "", "topology", "validate", demoTopologies)
	wantExit(t, err, 0)
	for _, want := range []string{
		"ok  " + filepath.Join(demoTopologies, "contacts-crm-to-erp.yaml") + "  (contacts-crm-to-erp)\n",
		"ok  " + filepath.Join(demoTopologies, "contacts-erp-to-crm.yaml") + "  (contacts-erp-to-crm)\n",
		"ok  " + filepath.Join(demoTopologies, "crm-apply.yaml") + "  (crm-apply)\n",
		"ok  " + filepath.Join(demoTopologies, "customers-avro.yaml") + "  (customers-avro)\n",
		"ok  " + filepath.Join(demoTopologies, "order-saga.yaml") + "  (order-saga)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, "\n"); n != 5 {
		t.Errorf("%d lines, want 5:\n%s", n, stdout)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTopologyValidateInvalid checks that every problem of every file is
// printed as file:line: field: reason, and that the exit code is 1.
func TestTopologyValidateInvalid(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", `name: Bad Name
systems: [erp, crm]
source:
  topics: [erp.public.contacts]
  system: erp
  format: debezium-xml
dedup:
  window: 7d
authority:
  owners: {email: crmx}
sink:
  topic: sync.{tabel}
  key: [id, id]
  partitions: 3
`)
	b := writeFile(t, dir, "b.yaml", `name: good-name
systems: [erp]
source:
  topics: [erp.public.orders]
  system: erp
  format: debezium-json
sink:
  topic: sync.{table}
  key: [id]
guarantee: exactly_twice
`)
	ok := writeFile(t, dir, "ok.yaml", `name: fine
systems: [erp, crm]
source:
  topics: [erp.public.contacts]
  system: erp
  format: debezium-json
sink:
  topic: sync.crm.{table}
  key: [id]
`)
	stdout, _, err := run(t, "", "topology", "validate", a, b, ok)
	wantExit(t, err, 1)
	want := []struct{ file, line, field, reason string }{
		{a, "1", "name", `"Bad Name" must match`},
		{a, "6", "source.format", `"debezium-xml" is not one of`},
		{a, "8", "dedup.window", `invalid duration "7d"`},
		{a, "10", "authority.owners.email", `owner "crmx" is not a declared system`},
		{a, "12", "sink.topic", `unknown placeholder "{tabel}"`},
		{a, "13", "sink.key[1]", `duplicate key field "id"`},
		{a, "14", "sink.partitions", "unknown field"},
		{b, "10", "guarantee", `"exactly_twice"`},
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	lineRE := regexp.MustCompile(`^(.+):(\d+): ([a-z_.\[\]0-9]+): (.+)$`)
	for _, l := range lines {
		if !lineRE.MatchString(l) {
			t.Errorf("line not in file:line: field: reason form: %q", l)
		}
		if strings.Contains(l, ok) {
			t.Errorf("a valid file is reported: %q", l)
		}
	}
	for _, w := range want {
		prefix := w.file + ":" + w.line + ": " + w.field + ": "
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, w.reason) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line %q…%q in:\n%s", prefix, w.reason, stdout)
		}
	}
	if !strings.Contains(err.Error(), "problem(s) found") {
		t.Errorf("error %q does not count the problems", err)
	}
	if strings.Contains(stdout, "ok  ") {
		t.Errorf("ok lines printed although the run failed:\n%s", stdout)
	}
}

func TestTopologyValidateErrors(t *testing.T) {
	_, _, err := run(t, "", "topology", "validate")
	wantExit(t, err, 2)
	_, _, err = run(t, "", "topology")
	wantExit(t, err, 2)
	_, _, err = run(t, "", "topology", "lint", "x")
	wantExit(t, err, 2)

	stdout, _, err := run(t, "", "topology", "validate", filepath.Join(t.TempDir(), "missing.yaml"))
	wantExit(t, err, 1)
	if !strings.Contains(stdout+err.Error(), "missing.yaml") {
		t.Errorf("a missing file is not named: %q, %v", stdout, err)
	}
	dir := t.TempDir()
	syntax := writeFile(t, dir, "s.yaml", "name: [unclosed\n")
	stdout, _, err = run(t, "", "topology", "validate", syntax)
	wantExit(t, err, 1)
	if !strings.HasPrefix(stdout, syntax+":") {
		t.Errorf("syntax error not reported against the file: %q", stdout)
	}
	empty := writeFile(t, t.TempDir(), "empty.yaml", "")
	_, _, err = run(t, "", "topology", "validate", empty)
	wantExit(t, err, 1)
}

func TestTopologyDescribe(t *testing.T) {
	file := filepath.Join(demoTopologies, "contacts-erp-to-crm.yaml")
	stdout, _, err := run(t, "", "topology", "describe", file)
	wantExit(t, err, 0)
	for _, want := range []string{
		"topology contacts-erp-to-crm (" + file + ")",
		"consumer group               cdcsync.contacts-erp-to-crm",
		"ledger topic                 contacts-erp-to-crm.ledger",
		"source.topics                erp.public.contacts",
		"authority.owners.email       crm",
		"authority.on_violation       drop_field",
		"sink.topic                   sync.crm.{table}",
		"dlq.topic                    dlq.contacts-erp-to-crm",
		"errors.tolerance             all  (default)",
		"guarantee                    at_least_once",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("describe lacks %q:\n%s", want, stdout)
		}
	}
	// A directory describes each plan, separated by a blank line.
	stdout, _, err = run(t, "", "topology", "describe", demoTopologies)
	wantExit(t, err, 0)
	if strings.Count(stdout, "topology contacts-") != 2 || !strings.Contains(stdout, "\n\ntopology ") {
		t.Errorf("describe of a directory:\n%s", stdout)
	}
	_, _, err = run(t, "", "topology", "describe")
	wantExit(t, err, 2)
	_, _, err = run(t, "", "topology", "describe", file, file)
	wantExit(t, err, 2)
	bad := writeFile(t, t.TempDir(), "bad.yaml", "name: x\nbogus: 1\n")
	_, _, err = run(t, "", "topology", "describe", bad)
	wantExit(t, err, 1)
}
