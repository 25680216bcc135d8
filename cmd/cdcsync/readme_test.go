package main

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeDescribe checks that the README's `topology describe` sample is
// what the command prints for the demo topologies. Regression: the sample
// lacked source.truncate, which describe prints since the option exists.
func TestReadmeDescribe(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "```\ntopology contacts-erp-to-crm (")
	if start < 0 {
		t.Fatal("README.md has no `topology describe` sample for contacts-erp-to-crm")
	}
	sample := readme[start+4:]
	sample = sample[:strings.Index(sample, "```")]
	stdout, stderr, err := run(t, "", "topology", "describe", "../../internal/demo/topologies")
	wantExit(t, err, 0)
	got := strings.ReplaceAll(stdout, "../../internal/", "internal/")
	if !strings.Contains(got, sample) {
		t.Errorf("README.md's describe sample:\n%s\nis not in what describe prints:\n%s%s", sample, stdout, stderr)
	}
}

// TestReadmeCommands checks that the README's command list is the usage
// text's, which the commands table makes. Regression: the usage lacked
// `schemas check` and decode's --topic and --connector, which the README
// listed.
func TestReadmeCommands(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "## Commands\n\n```\n")
	if start < 0 {
		t.Fatal("README.md has no command list under ## Commands")
	}
	list := readme[start+len("## Commands\n\n```\n"):]
	list = list[:strings.Index(list, "```")]
	if want := commandList(); list != want {
		t.Errorf("README.md lists:\n%s\nthe usage text says:\n%s", list, want)
	}
}
