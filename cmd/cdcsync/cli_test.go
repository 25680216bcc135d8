package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cdcsync/cdcsync/topology"
)

// Regression (issue 13): `cdcsync -h` did not list `schemas check`. The
// usage text is made from the commands table; this checks every command of
// the table is listed and answers -h.
func TestUsageListsEveryCommand(t *testing.T) {
	for _, h := range []string{"-h", "--help", "help"} {
		stdout, stderr, err := run(t, "", h)
		wantExit(t, err, 0)
		if stderr != "" {
			t.Errorf("%s: stderr %q", h, stderr)
		}
		for _, c := range commands {
			if c.hidden {
				continue
			}
			if !strings.Contains(stdout, "\n  cdcsync "+c.name+" ") && !strings.Contains(stdout, "\n  cdcsync "+c.name+"\n") {
				t.Errorf("%s: usage lacks %q:\n%s", h, c.name, stdout)
			}
		}
		if !strings.Contains(stdout, "  cdcsync --version\n") {
			t.Errorf("%s: usage lacks --version", h)
		}
	}
	// Every command the table has is dispatched: runMain finds it.
	for _, c := range commands {
		got, _, _ := lookup(strings.Fields(c.name))
		if got != c {
			t.Errorf("lookup(%q) = %v", c.name, got)
		}
	}
	// No arguments: the usage on stderr, exit 2.
	_, stderr, err := run(t, "")
	wantExit(t, err, 2)
	if !strings.Contains(stderr, "cdcsync schemas check") {
		t.Errorf("bare usage: %q", stderr)
	}
}

// Regression (issue 13): subcommand -h exited 2, and `topology -h`
// answered `unknown topology command "-h"`. -h and --help print the
// command's usage and flags to stdout and exit 0, everywhere, also after
// other arguments.
func TestHelpExits0Everywhere(t *testing.T) {
	for _, c := range commands {
		if c.hidden {
			continue
		}
		words := strings.Fields(c.name)
		for _, args := range [][]string{
			append(slices.Clone(words), "-h"),
			append(slices.Clone(words), "--help"),
			append(slices.Clone(words), "-help"),
			append(slices.Clone(words), "some-arg", "--help"), // after a positional argument
		} {
			stdout, stderr, err := run(t, "", args...)
			wantExit(t, err, 0)
			if !strings.HasPrefix(stdout, "usage: cdcsync "+c.name+" ") || stderr != "" {
				t.Errorf("%v: stdout %q stderr %q", args, stdout, stderr)
			}
		}
	}
	for _, group := range []string{"topology", "dlq", "schemas"} {
		for _, h := range []string{"-h", "--help"} {
			stdout, stderr, err := run(t, "", group, h)
			wantExit(t, err, 0)
			if !strings.HasPrefix(stdout, "usage:\n  cdcsync "+group+" ") || stderr != "" {
				t.Errorf("%s %s: stdout %q stderr %q", group, h, stdout, stderr)
			}
		}
		_, _, err := run(t, "", group)
		wantExit(t, err, 2)
		_, _, err = run(t, "", group, "frobnicate")
		wantExit(t, err, 2)
		if !strings.Contains(err.Error(), `unknown command "`+group+` frobnicate"`) {
			t.Errorf("%s frobnicate: %v", group, err)
		}
	}
}

// Regression (issue 13): an unknown flag was reported twice, once by the
// flag package on stderr and once by main. It is reported once, in the
// error main prints, with exit 2.
func TestUnknownFlagReportedOnce(t *testing.T) {
	for _, c := range commands {
		if c.hidden {
			continue
		}
		args := append(slices.Clone(strings.Fields(c.name)), "--no-such-flag")
		stdout, stderr, err := run(t, "", args...)
		wantExit(t, err, 2)
		if stdout != "" || stderr != "" {
			t.Errorf("%v: stdout %q stderr %q, want both empty", args, stdout, stderr)
		}
		if msg := err.Error(); strings.Count(msg, "no-such-flag") != 1 || !strings.Contains(msg, "cdcsync "+c.name+" -h") {
			t.Errorf("%v: %q", args, msg)
		}
	}
}

// Regression (issue 13): the dlq commands shared one flag set, so
// `dlq replay --show 0/3` replayed everything and exited 0, and `dlq
// replay --list` was ignored. Each command has only its own flags.
func TestSubcommandsHaveOnlyTheirFlags(t *testing.T) {
	for _, args := range [][]string{
		{"dlq", "replay", "--show", "0/3", "dlq.x"},
		{"dlq", "replay", "--list", "dlq.x"},
		{"dlq", "inspect", "--dry-run", "dlq.x"},
		{"dlq", "inspect", "--topologies", ".", "dlq.x"},
		{"topology", "validate", "--brokers", "b:1", "x.yaml"},
		{"schemas", "check", "--output", "json", "x.yaml"},
		{"decode", "--output", "json"},
	} {
		_, _, err := run(t, "", args...)
		wantExit(t, err, 2)
		if !strings.Contains(err.Error(), "flag provided but not defined") {
			t.Errorf("%v: %v", args, err)
		}
	}
	// Bad combinations and values are refused before connecting.
	for _, args := range [][]string{
		{"dlq", "inspect", "--brokers", "127.0.0.1:1", "--list", "--show", "0/1", "dlq.x"},
		{"dlq", "inspect", "--brokers", "127.0.0.1:1", "--output", "yaml", "dlq.x"},
		{"dlq", "replay", "--brokers", "127.0.0.1:1", "--output", "xml", "--dry-run", "dlq.x"},
	} {
		_, _, err := run(t, "", args...)
		wantExit(t, err, 2)
	}
	// Which is which in the help.
	inspect, _, _ := run(t, "", "dlq", "inspect", "-h")
	replay, _, _ := run(t, "", "dlq", "replay", "-h")
	for _, f := range []string{"-list", "-show", "-output"} {
		if !strings.Contains(inspect, "  "+f) {
			t.Errorf("dlq inspect -h lacks %s", f)
		}
	}
	for _, f := range []string{"-dry-run", "-topologies", "-output"} {
		if !strings.Contains(replay, "  "+f) {
			t.Errorf("dlq replay -h lacks %s", f)
		}
	}
	for _, f := range []string{"-list ", "-show "} {
		if strings.Contains(replay, "  "+f) {
			t.Errorf("dlq replay -h lists %s", f)
		}
	}
}

// Regression (issue 13): Go's flag package stops at the first positional
// argument, so flags after it were taken as arguments. Flags may come
// before and after positional arguments; "--" ends the flags.
func TestFlagsBeforeAndAfterArgs(t *testing.T) {
	crm := filepath.Join(demoTopologies, "contacts-crm-to-erp.yaml")
	erp := filepath.Join(demoTopologies, "contacts-erp-to-crm.yaml")
	before, _, err := run(t, "", "topology", "validate", "--output", "json", crm, erp)
	wantExit(t, err, 0)
	for _, args := range [][]string{
		{"topology", "validate", crm, "--output", "json", erp},
		{"topology", "validate", crm, erp, "--output", "json"},
		{"topology", "validate", crm, erp, "--output=json"},
	} {
		after, _, err := run(t, "", args...)
		wantExit(t, err, 0)
		if after != before {
			t.Errorf("%v:\n%s\nwant\n%s", args, after, before)
		}
	}
	// After "--", a dash-led word is a path, not a flag.
	stdout, _, err := run(t, "", "topology", "validate", "--", "--output")
	wantExit(t, err, 1)
	if !strings.Contains(stdout, "--output") {
		t.Errorf("-- then --output: %v %q", err, stdout)
	}
	// Positional arguments a command does not take are refused.
	for _, args := range [][]string{
		{"run", "extra", "--topologies", demoTopologies},
		{"topology", "describe", crm, erp},
		{"topology", "describe"},
		{"decode", "value.json"},
		{"demo", "now"},
		{"dlq", "inspect", "--brokers", "127.0.0.1:1", "a", "b"},
	} {
		_, _, err := run(t, "", args...)
		wantExit(t, err, 2)
		if !strings.Contains(err.Error(), "usage: cdcsync ") {
			t.Errorf("%v: %v", args, err)
		}
	}
	_, _, err = run(t, "", "topology", "describe", "--output", "yaml", crm)
	wantExit(t, err, 2)
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		stdout, _, err := run(t, "", args...)
		wantExit(t, err, 0)
		want := "cdcsync " + versionString() + "\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
		if stdout != want {
			t.Errorf("%v: %q, want %q", args, stdout, want)
		}
	}
	if v := versionString(); v == "" || strings.ContainsAny(v, " \n") {
		t.Errorf("unstamped version %q", v)
	}
}

// TestVersionStamped builds the command as the Dockerfile does, with the
// version stamped by -ldflags -X, and runs --version.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), "-X main.version=${VERSION}") {
		t.Errorf("the Dockerfile does not stamp the version (-X main.version=${VERSION})")
	}
	bin := filepath.Join(t.TempDir(), "cdcsync")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "cdcsync v9.8.7-test\n" + runtime.Version() + " "; !strings.HasPrefix(string(out), want) {
		t.Errorf("--version: %q, want prefix %q", out, want)
	}
}

func TestTopologyValidateJSON(t *testing.T) {
	stdout, _, err := run(t, "", "topology", "validate", "--output", "json", demoTopologies)
	wantExit(t, err, 0)
	var ok validateJSON
	if err := json.Unmarshal([]byte(stdout), &ok); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if !ok.OK || len(ok.Topologies) != 5 || len(ok.Problems) != 0 || ok.Topologies[3].Name != "customers-avro" || ok.Topologies[4].Name != "order-saga" {
		t.Errorf("valid: %+v", ok)
	}

	bad := writeFile(t, t.TempDir(), "bad.yaml", "name: bad\nsystems: [erp]\nsource: {topics: [erp.public.x], system: erp, format: debezium-json}\nsink: {topic: sync.x, key: [id]}\nguarantee: maybe\n")
	stdout, _, err = run(t, "", "topology", "validate", bad, "--output", "json")
	wantExit(t, err, 1)
	var got validateJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if got.OK || len(got.Problems) != 1 {
		t.Fatalf("invalid: %+v", got)
	}
	p := got.Problems[0]
	if p.File != bad || p.Line != 5 || p.Field != "guarantee" || p.Reason == "" || !strings.HasPrefix(p.Text, bad+":5: guarantee: ") {
		t.Errorf("problem %+v", p)
	}
}

func TestTopologyDescribeJSON(t *testing.T) {
	file := filepath.Join(demoTopologies, "customers-avro.yaml")
	stdout, _, err := run(t, "", "topology", "describe", file, "--output", "json")
	wantExit(t, err, 0)
	var plans []topology.PlanJSON
	if err := json.Unmarshal([]byte(stdout), &plans); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if len(plans) != 1 {
		t.Fatalf("%d plans", len(plans))
	}
	p := plans[0]
	if p.Name != "customers-avro" || p.Group != "cdcsync.customers-avro" || p.LedgerTopic != "customers-avro.ledger" ||
		p.DLQTopic != "dlq.customers-avro" || p.SinkTopic != "sync.crm.{table}" || p.Guarantee != "at_least_once" {
		t.Errorf("plan header: %+v", p)
	}
	opts := map[string]topology.Option{}
	for _, o := range p.Options {
		opts[o.Key] = o
	}
	for key, want := range map[string]string{
		"source.format":              "debezium-avro",
		"source.system":              "shop",
		"dedup.window":               "168h",
		"authority.owners.last_name": "crm",
		"authority.default_owner":    "shop",
		"sink.format":                "avro",
		"sink.subject_strategy":      "topic",
		"guarantee":                  "at_least_once",
	} {
		if got := opts[key].Value; got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if !opts["errors.tolerance"].Default || opts["sink.format"].Default {
		t.Errorf("default marks: tolerance %+v, sink.format %+v", opts["errors.tolerance"], opts["sink.format"])
	}
	// One source: the JSON is the plan's own JSON form, the one the REST
	// API serves, and every option the text prints is in it, in order.
	plan, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(plan[0].JSON())
	got, _ := json.Marshal(p)
	if string(got) != string(want) {
		t.Errorf("describe JSON is not Plan.JSON():\n got %s\nwant %s", got, want)
	}
	text, _, _ := run(t, "", "topology", "describe", file)
	for _, o := range p.Options {
		if !strings.Contains(text, o.Key) || !strings.Contains(text, o.Value) {
			t.Errorf("option %s = %q not in the text:\n%s", o.Key, o.Value, text)
		}
	}
}

var updateCLIDoc = flag.Bool("update-cli-doc", false, "rewrite docs/cli.md's command list and flag sections from the usage text")

// TestCLIDoc checks docs/cli.md against the usage text: the command list,
// and each command's -h output. When a command or flag changes, run
// go test ./cmd/cdcsync -run TestCLIDoc -args -update-cli-doc to rewrite them.
func TestCLIDoc(t *testing.T) {
	clearEnv(t)
	const path = "../../docs/cli.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	list := "## Commands\n\n```\n" + commandList() + "```\n"
	if *updateCLIDoc {
		doc = replaceBlock(doc, "## Commands\n\n```\n", list)
	}
	if !strings.Contains(doc, list) {
		t.Errorf("docs/cli.md's command list is not the usage text's:\n%s", commandList())
	}
	for _, c := range commands {
		if c.hidden {
			continue
		}
		help, _, err := run(t, "", append(strings.Fields(c.name), "-h")...)
		wantExit(t, err, 0)
		head := "### cdcsync " + c.name + "\n\n```\n"
		if *updateCLIDoc {
			if !strings.Contains(doc, head) {
				doc = strings.TrimRight(doc, "\n") + "\n\n" + head + "```\n"
			}
			doc = replaceBlock(doc, head, head+help+"```\n")
		}
		if !strings.Contains(doc, head+help+"```\n") {
			t.Errorf("docs/cli.md lacks the -h output of %s (run with -update-cli-doc):\n%s", c.name, help)
		}
	}
	if *updateCLIDoc {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// replaceBlock replaces the text from head to the end of the code block
// that follows it with block.
func replaceBlock(doc, head, block string) string {
	i := strings.Index(doc, head)
	if i < 0 {
		return doc
	}
	j := strings.Index(doc[i+len(head):], "```\n")
	if j < 0 {
		return doc
	}
	return doc[:i] + block + doc[i+len(head)+j+len("```\n"):]
}
