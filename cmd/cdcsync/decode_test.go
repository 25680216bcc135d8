package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtures are the cdc decoder's golden fixtures: each NAME has a key, a
// value (absent for tombstones), a topic and the decoded event as
// json.MarshalIndent(ev, "", "  ") with source system erp.
const fixtures = "../../processor/cdc/testdata/decode"

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeStdin(t *testing.T) {
	stdout, _, err := run(t, fixture(t, "pg_update.env.value.json")+"\n",
		"decode", "--format", "debezium-json", "--system", "erp",
		"--key", filepath.Join(fixtures, "pg_update.env.key.json"),
		"--topic", strings.TrimSpace(fixture(t, "pg_update.env.topic")))
	wantExit(t, err, 0)
	if want := fixture(t, "pg_update.env.golden.json"); stdout != want {
		t.Errorf("decode output differs from the cdc golden file:\n got %s\nwant %s", stdout, want)
	}
	// The parts the command is for: identity, type, op, changed fields and
	// values converted through the Connect schema.
	var ev struct {
		ID      string   `json:"id"`
		Type    string   `json:"type"`
		Op      string   `json:"op"`
		Changed []string `json:"changed"`
		After   map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.ID) != 32 || ev.Type != "customers.updated" || ev.Op != "u" ||
		strings.Join(ev.Changed, ",") != "email,city,balance" {
		t.Errorf("decoded %+v", ev)
	}
	if string(ev.After["balance"]) != "123.50" || string(ev.After["updated_at"]) != `"2024-06-10T09:39:05.678901"` {
		t.Errorf("values not converted: balance %s, updated_at %s", ev.After["balance"], ev.After["updated_at"])
	}
	if !strings.HasPrefix(stdout, "{\n  \"id\": ") {
		t.Errorf("output is not indented JSON: %.40q", stdout)
	}
}

func TestDecodeValueFile(t *testing.T) {
	stdout, _, err := run(t, "this stdin must not be read",
		"decode", "--system", "erp",
		"--value", filepath.Join(fixtures, "mysql_create.bare.value.json"),
		"--key", filepath.Join(fixtures, "mysql_create.bare.key.json"),
		"--topic", strings.TrimSpace(fixture(t, "mysql_create.bare.topic")))
	wantExit(t, err, 0)
	if want := fixture(t, "mysql_create.bare.golden.json"); stdout != want {
		t.Errorf("decode --value output differs from the golden file:\n got %s\nwant %s", stdout, want)
	}
}

func TestDecodeIDModes(t *testing.T) {
	args := []string{"decode", "--value", filepath.Join(fixtures, "pg_update.env.value.json"),
		"--key", filepath.Join(fixtures, "pg_update.env.key.json")}
	id := func(extra ...string) string {
		t.Helper()
		stdout, _, err := run(t, "", append(append([]string{}, args...), extra...)...)
		wantExit(t, err, 0)
		var ev struct{ ID string }
		if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.ID
	}
	pos, content, field := id(), id("--id", "content"), id("--id", "field:email")
	if pos == content || pos == field || content == field || len(pos) != 32 {
		t.Errorf("ids: position %s, content %s, field %s; want three different ones", pos, content, field)
	}
	if again := id("--id", "position"); again != pos {
		t.Errorf("position id not stable: %s then %s", pos, again)
	}
}

func TestDecodeTombstone(t *testing.T) {
	stdout, _, err := run(t, "\n", "decode", "--system", "erp", "--connector", "postgresql",
		"--key", filepath.Join(fixtures, "tombstone_pg.env.key.json"),
		"--topic", strings.TrimSpace(fixture(t, "tombstone_pg.env.topic")))
	wantExit(t, err, 0)
	if want := fixture(t, "tombstone_pg.env.golden.json"); stdout != want {
		t.Errorf("tombstone:\n got %s\nwant %s", stdout, want)
	}
}

// Regression: a tombstone (empty value) decoded without --topic used to
// succeed with type ".deleted" and an empty entity; the topic is the only
// place a tombstone's table comes from.
func TestDecodeTombstoneNeedsTopic(t *testing.T) {
	stdout, _, err := run(t, "", "decode", "--key", filepath.Join(fixtures, "tombstone_pg.env.key.json"))
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "--topic") {
		t.Errorf("tombstone without --topic: exit %d, err %v, output:\n%s\nwant exit 2 naming --topic", exitCode(err), err, stdout)
	}
}

func TestDecodeBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"not JSON", "{not json", nil, 1, "decode failed: cdc: malformed record: value"},
		// Regression: `printf null | cdcsync decode` exited 0 printing a
		// delete of type ".deleted"; null is not a tombstone.
		{"JSON null", "null", nil, 1, "value: is JSON null, not a change event"},
		// Regression: a BOM gave `cannot parse number: unexpected char: "\xef"`.
		{"BOM", "\xef\xbb\xbf{}", nil, 1, "value: starts with a UTF-8 byte-order mark"},
		{"create without after", `{"op":"c","source":{"table":"t"},"before":{"id":1}}`, nil, 1, `value after: op "c" (a create) needs an after-state`},
		{"unknown op", `{"payload":{"op":"x"}}`, nil, 1, `decode failed: cdc: unknown op: value payload.op: unknown op "x"`},
		{"bad key", fixture(t, "pg_update.bare.value.json"), []string{"--key", writeFile(t, t.TempDir(), "k.json", "{oops")}, 1, "decode failed: cdc: malformed record: key"},
		{"missing value file", "", []string{"--value", filepath.Join(t.TempDir(), "nope.json")}, 1, "nope.json"},
		{"missing key file", "{}", []string{"--key", filepath.Join(t.TempDir(), "nope.json")}, 1, "nope.json"},
		{"avro", "{}", []string{"--format", "debezium-avro"}, 2, `--format "debezium-avro"`},
		{"bad id mode", "{}", []string{"--id", "random"}, 2, `--id "random"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := run(t, tc.stdin, append([]string{"decode"}, tc.args...)...)
			wantExit(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestDecodePrintsSinkText: `cdcsync decode` prints every value with the
// text the JSON sink writes for it (processor/testdata/sink holds the
// sink records of the same fixtures).
//
// Regression: decode printed a year-12000 timestamp as Go's
// "12000-01-01 00:00:00 +0000 UTC", the sink as something else.
func TestDecodePrintsSinkText(t *testing.T) {
	for _, name := range []string{"values_pg_edge_create", "values_pg_edge_read"} {
		stdout, _, err := run(t, "", "decode", "--system", "erp",
			"--value", filepath.Join(fixtures, name+".env.value.json"),
			"--key", filepath.Join(fixtures, name+".env.key.json"),
			"--topic", "pg.public.edge")
		wantExit(t, err, 0)
		var ev struct{ After map[string]json.RawMessage }
		if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
			t.Fatal(err)
		}
		sink, err := os.ReadFile(filepath.Join("..", "..", "processor", "testdata", "sink", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct{ Fields map[string]json.RawMessage }
		if err := json.Unmarshal(sink, &rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.Fields) != len(ev.After) || len(ev.After) < 20 {
			t.Fatalf("%s: decode has %d fields, the sink %d", name, len(ev.After), len(rec.Fields))
		}
		for f, want := range rec.Fields {
			if got := ev.After[f]; string(got) != string(want) {
				t.Errorf("%s: %s: decode prints %s, the sink writes %s", name, f, got, want)
			}
		}
		if got := string(ev.After["tz_y12000"]); got != `"+12000-01-01T00:00:00Z"` {
			t.Errorf("%s: tz_y12000 = %s", name, got)
		}
	}
}
