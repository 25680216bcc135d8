package main

import (
	"net"
	"strings"
	"testing"
)

// jsonTopology is a topology that needs no registry, so a run gets past
// processor.New without one.
const jsonTopology = `name: addr-test
systems: [erp, crm]
source: {topics: [erp.public.contacts], system: erp, format: debezium-json}
sink: {topic: sync.contacts, key: [id]}
`

// Regression (issue 9, item 8): malformed broker and registry addresses
// (foo, 127.0.0.1:99999, http://host:port as a broker, ht!tp://x as a
// registry, empty entries) were accepted and retried forever as "cannot
// reach". The worker now refuses them at start, exit 2, naming the key,
// the entry and where the value was set: file, variable or flag.
func TestRunRefusesMalformedAddresses(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	topo := writeFile(t, dir, "t.yaml", jsonTopology)
	for _, tc := range []struct {
		name string
		file string            // worker YAML, "" for none
		env  map[string]string // CDCSYNC_* variables
		args []string          // extra flags
		want []string
	}{
		{"file broker URL", "brokers: [k:9092, \"http://k:9092\"]\n", nil, nil,
			[]string{`brokers[1]: "http://k:9092" is a URL; want host:port`, "set by " + dir}},
		{"file broker without port", "brokers: [foo]\n", nil, nil,
			[]string{`brokers[0]: "foo" is not host:port (missing port in address)`}},
		{"file empty broker entry", "brokers: [k:9092, \"\"]\n", nil, nil,
			[]string{`brokers[1]: empty address`}},
		{"env broker port out of range", "", map[string]string{"CDCSYNC_BROKERS": "127.0.0.1:99999"}, nil,
			[]string{`brokers[0]: "127.0.0.1:99999": port 99999 is out of range 1-65535`, "set by CDCSYNC_BROKERS"}},
		{"env empty entry between commas", "", map[string]string{"CDCSYNC_BROKERS": "a:1,,b:2"}, nil,
			[]string{`brokers[1]: empty address`, "set by CDCSYNC_BROKERS"}},
		{"flag broker URL over a good env", "", map[string]string{"CDCSYNC_BROKERS": "k:9092"}, []string{"--brokers", "k:9092,http://k:9092"},
			[]string{`brokers[1]: "http://k:9092" is a URL`, "set by --brokers"}},
		{"flag registry", "", nil, []string{"--brokers", "k:9092", "--registry", "ht!tp://x"},
			[]string{`registry_url: "ht!tp://x" is not a URL`, "set by --registry"}},
		{"env registry", "", map[string]string{"CDCSYNC_BROKERS": "k:9092", "CDCSYNC_REGISTRY_URL": "schema-registry:8081"}, nil,
			[]string{`registry_url: "schema-registry:8081": scheme must be http or https`, "set by CDCSYNC_REGISTRY_URL"}},
		{"file registry", "brokers: [k:9092]\nregistry_url: http://r:99999\n", nil, nil,
			[]string{`registry_url: "http://r:99999": port 99999 is out of range`, "worker.yaml"}},
		{"flag http addr", "", nil, []string{"--brokers", "k:9092", "--http-addr", "9102"},
			[]string{`http_addr: "9102" is not [host]:port`, "set by --http-addr"}},
		{"env kafka version too old", "", map[string]string{"CDCSYNC_BROKERS": "k:9092", "CDCSYNC_KAFKA_VERSION": "0.10.2"}, nil,
			[]string{"kafka_version: 0.10.2 is older than 0.11.0", "set by CDCSYNC_KAFKA_VERSION"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := []string{"run", "--topologies", topo}
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, dir, "worker.yaml", tc.file))
			}
			_, _, err := run(t, "", append(args, tc.args...)...)
			wantExit(t, err, 2)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// Regression (issue 9): http_addr already in use exited 1 with "invalid
// configuration"; the README says configuration errors exit 2. The same
// run shows kafka_version 0.11.0, the README's own wording of the minimum,
// is accepted (it used to be refused before http_addr was ever reached).
func TestRunHTTPAddrInUseExits2(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	topo := writeFile(t, t.TempDir(), "t.yaml", jsonTopology)
	t.Setenv("CDCSYNC_KAFKA_VERSION", "0.11.0")
	_, _, err = run(t, "", "run", "--topologies", topo, "--brokers", "127.0.0.1:1", "--http-addr", ln.Addr().String())
	wantExit(t, err, 2)
	for _, w := range []string{"invalid configuration: http_addr:", "address already in use", ln.Addr().String()} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// Regression (issue 9, item 8): the tools took any broker or registry
// string and retried it as unreachable. They refuse it, exit 2, naming the
// flag or variable and the entry.
func TestToolsRefuseMalformedAddresses(t *testing.T) {
	clearEnv(t)
	topo := writeFile(t, t.TempDir(), "t.yaml", jsonTopology)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"dlq", "inspect", "--brokers", "http://k:9092", "dlq.x"}, `--brokers[0]: "http://k:9092" is a URL; want host:port`},
		{nil, []string{"dlq", "replay", "--brokers", "k:9092,foo", "dlq.x"}, `--brokers[1]: "foo" is not host:port`},
		{nil, []string{"dlq", "inspect", "--brokers", "k:9092,", "dlq.x"}, `--brokers[1]: empty address`},
		{map[string]string{"CDCSYNC_BROKERS": "127.0.0.1:99999"}, []string{"dlq", "inspect", "dlq.x"}, `CDCSYNC_BROKERS[0]: "127.0.0.1:99999": port 99999 is out of range`},
		{nil, []string{"dlq", "inspect", "--brokers", "k:9092", "--kafka-version", "0.10.2", "dlq.x"}, "--kafka-version: 0.10.2 is older than 0.11.0"},
		{nil, []string{"bench", "--brokers", "127.0.0.1:99999"}, `--brokers[0]: "127.0.0.1:99999": port 99999 is out of range`},
		{nil, []string{"bench", "--brokers", "tcp://k:9092"}, `--brokers[0]: "tcp://k:9092" is a URL`},
		{nil, []string{"schemas", "check", "--registry", "ht!tp://x", topo}, `--registry: "ht!tp://x" is not a URL`},
		{map[string]string{"CDCSYNC_REGISTRY_URL": "registry:8081"}, []string{"schemas", "check", topo}, `CDCSYNC_REGISTRY_URL: "registry:8081": scheme must be http or https`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, _, err := run(t, "", tc.args...)
			wantExit(t, err, 2)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}
