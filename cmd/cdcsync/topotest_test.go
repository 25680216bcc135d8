package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures shipped beside the demo and deploy topologies pass (CI
// runs them with the same command), the Avro one through an in-process
// registry.
func TestTopologyTestShippedFixtures(t *testing.T) {
	stdout, _, err := run(t, "", "topology", "test", "../../deploy/topologies", demoTopologies)
	wantExit(t, err, 0)
	if !strings.Contains(stdout, "29 case(s): 29 passed, 0 failed\n") || strings.Contains(stdout, "FAIL") {
		t.Errorf("stdout:\n%s", stdout)
	}
	stdout, _, err = run(t, "", "topology", "test", "--output", "json", "../../deploy/topologies/contacts-erp-to-crm.yaml")
	wantExit(t, err, 0)
	var rep testReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if !rep.OK || rep.Passed != 7 || len(rep.Files) != 1 || rep.Files[0].Topology != "contacts-erp-to-crm" {
		t.Errorf("report %+v", rep)
	}
	outcomes := map[string]int{}
	for _, c := range rep.Files[0].Cases {
		outcomes[c.Outcome]++
	}
	if outcomes["sink"] != 4 || outcomes["duplicate"] != 1 || outcomes["authority_drop"] != 1 || outcomes["dlq"] != 1 {
		t.Errorf("outcomes %v", outcomes)
	}
}

// brokenFixture copies the deploy topology and a fixture with a wrong
// expectation into a temporary directory, and returns the directory.
func brokenFixture(t *testing.T, cases string) string {
	t.Helper()
	dir := t.TempDir()
	topo, err := os.ReadFile("../../deploy/topologies/contacts-erp-to-crm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "contacts-erp-to-crm.yaml", string(topo))
	if err := os.Mkdir(filepath.Join(dir, "contacts-erp-to-crm_test"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "contacts-erp-to-crm_test"), "cases.yaml", cases)
	return dir
}

const fixtureUpdate = `  - name: phone change
    input:
      key: {id: 1}
      value:
        before: {id: 1, email: a@example.com, phone: "1"}
        after: {id: 1, email: a@example.com, phone: "2"}
        source: {version: 3.6.1.Final, connector: postgresql, name: erp, ts_ms: 1764230400000, snapshot: "false", db: erp, sequence: '["24000000","24000088"]', schema: public, table: contacts, txId: 701, lsn: 24000088}
        op: u
        ts_ms: 1764230400003
`

// A fixture whose expectation is wrong fails with exit 1 and a diff that
// names the case, its line, and what differs.
func TestTopologyTestBrokenFixture(t *testing.T) {
	dir := brokenFixture(t, `cases:
`+fixtureUpdate+`    expect:
      sink:
        - topic: sync.crm.contacts
          key: {id: 1}
          value: {type: contacts.updated, fields: {phone: "3"}, before: {phone: "1"}, key: {id: 1}}
          headers: {cdcsync.source.system: crm}
`+fixtureUpdate+`    expect:
      dlq: {stage: decode}
`)
	stdout, _, err := run(t, "", "topology", "test", dir)
	wantExit(t, err, 1)
	for _, want := range []string{
		"  FAIL  line 2: phone change\n",
		"        sink[0] header cdcsync.source.system:\n        - crm\n        + erp\n",
		"        sink[0] value:\n          {\n            \"before\": {\n",
		"        +   \"entity\": \"contacts\",\n            \"fields\": {\n        -     \"phone\": \"3\"\n        +     \"phone\": \"2\"\n            },\n",
		"  FAIL  line 17: phone change\n        outcome:\n        - dlq\n        + duplicate\n",
		"2 case(s): 0 passed, 2 failed\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if err.Error() != "2 of 2 case(s) failed" {
		t.Errorf("error %q", err)
	}
}

// A bad fixture or topology is exit 2, naming the file and the problem.
func TestTopologyTestBadFixture(t *testing.T) {
	for _, tc := range []struct{ cases, want string }{
		{"cases:\n" + fixtureUpdate + "    expect: {duplicate: true, authority_drop: true}\n", "exactly one of"},
		{"cases:\n" + fixtureUpdate + "    expect: {dupliate: true}\n", "field dupliate not found"},
		{"cases:\n" + fixtureUpdate + "      topic: crm.public.contacts\n    expect: {duplicate: true}\n", "not a source topic"},
		{"cases:\n" + fixtureUpdate + "      value_file: nope.json\n    expect: {duplicate: true}\n", "value and value_file"},
		{"cases: []\n", "no cases"},
		{"topology: missing.yaml\ncases:\n" + fixtureUpdate + "    expect: {duplicate: true}\n", "missing.yaml"},
	} {
		dir := brokenFixture(t, tc.cases)
		_, _, err := run(t, "", "topology", "test", dir)
		wantExit(t, err, 2)
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "cases.yaml") {
			t.Errorf("%q: %v", tc.want, err)
		}
	}
	// An Avro topology's input needs its writer schema.
	dir := t.TempDir()
	avro, _ := os.ReadFile(filepath.Join(demoTopologies, "customers-avro.yaml"))
	writeFile(t, dir, "customers-avro.yaml", string(avro))
	_ = os.Mkdir(filepath.Join(dir, "customers-avro_test"), 0o755)
	writeFile(t, filepath.Join(dir, "customers-avro_test"), "cases.yaml", "cases:\n  - name: x\n    input: {key: {id: 1}}\n    expect: {duplicate: true}\n")
	_, _, err := run(t, "", "topology", "test", dir)
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "needs its writer schema: schemas.key or key_schema") {
		t.Errorf("avro: %v", err)
	}
	// A directory without fixtures.
	_, _, err = run(t, "", "topology", "test", t.TempDir())
	wantExit(t, err, 2)
}
