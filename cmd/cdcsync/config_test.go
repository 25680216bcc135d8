package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadWorkerConfigDefaults(t *testing.T) {
	wf, err := loadWorkerConfig("", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := (workerFile{Config: processor.DefaultConfig(), LogLevel: "info"}); !reflect.DeepEqual(wf, want) {
		t.Errorf("no file, no env:\n got %+v\nwant %+v", wf, want)
	}
}

const workerYAML = `# worker
brokers: [yaml-1:9092, yaml-2:9092]
client_id: from-yaml
kafka_version: 3.6.0
max_in_flight: 100
shutdown_timeout: 45s
session_timeout: 20s
heartbeat: 5s
replication_factor: 3
topologies: /yaml/topologies
log_level: warn
`

// TestLoadWorkerConfigLayers checks defaults < worker YAML < CDCSYNC_* env.
func TestLoadWorkerConfigLayers(t *testing.T) {
	file := writeFile(t, t.TempDir(), "worker.yaml", workerYAML)
	wf, err := loadWorkerConfig(file, envMap(map[string]string{
		"CDCSYNC_BROKERS":             " env-1:9092 , env-2:9092 ",
		"CDCSYNC_MAX_IN_FLIGHT":       "7",
		"CDCSYNC_MAX_IN_FLIGHT_BYTES": "65536",
		"CDCSYNC_MEMORY_BUDGET_BYTES": "0",
		"CDCSYNC_SESSION_TIMEOUT":     "30s",
		"CDCSYNC_COMMIT_INTERVAL":     "250ms",
		"CDCSYNC_LOG_LEVEL":           "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := processor.DefaultConfig()
	want.Brokers = []string{"env-1:9092", "env-2:9092"} // env over YAML
	want.ClientID = "from-yaml"                         // YAML over default
	want.KafkaVersion = "3.6.0"
	want.MaxInFlight = 7
	want.MaxInFlightBytes = 65536
	want.MemoryBudgetBytes = 0
	want.ShutdownTimeout = 45 * time.Second
	want.SessionTimeout = 30 * time.Second
	want.Heartbeat = 5 * time.Second
	want.ReplicationFactor = 3
	want.CommitInterval = 250 * time.Millisecond // env over default
	if !reflect.DeepEqual(wf.Config, want) {
		t.Errorf("config:\n got %+v\nwant %+v", wf.Config, want)
	}
	if wf.Topologies != "/yaml/topologies" || wf.LogLevel != "debug" {
		t.Errorf("topologies %q, log level %q", wf.Topologies, wf.LogLevel)
	}

	// Every variable, on top of the file.
	wf, err = loadWorkerConfig(file, envMap(map[string]string{
		"CDCSYNC_TOPOLOGIES":          "/env/topologies",
		"CDCSYNC_HTTP_ADDR":           "127.0.0.1:0",
		"CDCSYNC_CLIENT_ID":           "from-env",
		"CDCSYNC_KAFKA_VERSION":       "2.8.0",
		"CDCSYNC_REPLICATION_FACTOR":  "-1",
		"CDCSYNC_SHUTDOWN_TIMEOUT":    "1m",
		"CDCSYNC_HEARTBEAT":           "2s",
		"CDCSYNC_TRANSACTION_TIMEOUT": "15s",
		"CDCSYNC_TXN_MAX_RECORDS":     "99",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if wf.Topologies != "/env/topologies" || wf.HTTPAddr != "127.0.0.1:0" || wf.ClientID != "from-env" ||
		wf.KafkaVersion != "2.8.0" || wf.ReplicationFactor != -1 || wf.ShutdownTimeout != time.Minute ||
		wf.Heartbeat != 2*time.Second || wf.TransactionTimeout != 15*time.Second || wf.TxnMaxRecords != 99 ||
		wf.MaxInFlight != 100 || wf.LogLevel != "warn" {
		t.Errorf("env over file: %+v", wf)
	}
}

func TestLoadWorkerConfigFromEnvFile(t *testing.T) {
	file := writeFile(t, t.TempDir(), "worker.yaml", "client_id: via-env-file\n")
	wf, err := loadWorkerConfig("", envMap(map[string]string{"CDCSYNC_CONFIG": file}))
	if err != nil || wf.ClientID != "via-env-file" {
		t.Errorf("CDCSYNC_CONFIG: %+v, %v", wf, err)
	}
	// An explicit file wins over CDCSYNC_CONFIG.
	other := writeFile(t, t.TempDir(), "other.yaml", "client_id: explicit\n")
	wf, err = loadWorkerConfig(other, envMap(map[string]string{"CDCSYNC_CONFIG": file}))
	if err != nil || wf.ClientID != "explicit" {
		t.Errorf("--config over CDCSYNC_CONFIG: %+v, %v", wf, err)
	}
	// An empty file is all defaults.
	empty := writeFile(t, t.TempDir(), "empty.yaml", "")
	if wf, err = loadWorkerConfig(empty, envMap(nil)); err != nil || wf.MaxInFlight != 1024 {
		t.Errorf("empty file: %+v, %v", wf, err)
	}
}

func TestLoadWorkerConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{"unknown field", "brokers: [a:1]\nmax_inflight: 3\n", nil, []string{"worker.yaml", "max_inflight"}},
		{"bad duration", "heartbeat: soon\n", nil, []string{"worker.yaml", "soon"}},
		{"bad type", "max_in_flight: many\n", nil, []string{"worker.yaml", "many"}},
		{"bad env int", "", map[string]string{"CDCSYNC_MAX_IN_FLIGHT": "abc"}, []string{`CDCSYNC_MAX_IN_FLIGHT="abc"`}},
		{"bad env bytes", "", map[string]string{"CDCSYNC_MAX_IN_FLIGHT_BYTES": "8MiB"}, []string{`CDCSYNC_MAX_IN_FLIGHT_BYTES="8MiB"`}},
		{"bad env budget", "", map[string]string{"CDCSYNC_MEMORY_BUDGET_BYTES": "110MiB"}, []string{`CDCSYNC_MEMORY_BUDGET_BYTES="110MiB"`}},
		{"bad env duration", "", map[string]string{"CDCSYNC_HEARTBEAT": "3"}, []string{`CDCSYNC_HEARTBEAT="3"`}},
		{"bad env int16", "", map[string]string{"CDCSYNC_REPLICATION_FACTOR": "40000"}, []string{"CDCSYNC_REPLICATION_FACTOR"}},
		{"bad env txn records", "", map[string]string{"CDCSYNC_TXN_MAX_RECORDS": "1e3"}, []string{"CDCSYNC_TXN_MAX_RECORDS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, dir, "worker.yaml", tc.yaml)
			_, err := loadWorkerConfig(file, envMap(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	_, err := loadWorkerConfig(filepath.Join(dir, "missing.yaml"), envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "--config") || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// clearEnv empties every CDCSYNC_* variable cmdRun reads, for this test,
// and restores sarama's global logger, which cmdRun replaces.
//
// cmdRun writes sarama.Logger (once per process), a package variable that sarama's own
// goroutines read. Goroutines left behind by an earlier test's clients
// (their asynchronous broker closes log) make that write a data race, so
// the tests that reach it live in this file, which sorts before the tests
// that start sarama clients (demo_test.go, dlq_test.go).
func clearEnv(t *testing.T) {
	old := sarama.Logger
	t.Cleanup(func() { sarama.Logger = old })
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "CDCSYNC_") {
			t.Setenv(k, "")
		}
	}
	for _, k := range []string{"CDCSYNC_BROKERS", "CDCSYNC_TOPOLOGIES", "CDCSYNC_CONFIG", "CDCSYNC_LOG_LEVEL", "CDCSYNC_KAFKA_VERSION"} {
		t.Setenv(k, "")
	}
}

// TestRunPrecedence checks, without connecting, that flags win over
// CDCSYNC_* variables, which win over the worker file: each case stops
// at a start-up error that shows which value was used.
func TestRunPrecedence(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "worker.yaml", "topologies: /from/yaml\nlog_level: bogus-yaml\n")

	// Missing topologies everywhere.
	_, _, err := run(t, "", "run", "--brokers", "127.0.0.1:1")
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "--topologies is required") {
		t.Errorf("no topologies: %v", err)
	}

	// The file's log level is used, and refused...
	_, _, err = run(t, "", "run", "--config", file)
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "bogus-yaml") {
		t.Errorf("file log level: %v", err)
	}
	// ...the environment's wins over it...
	t.Setenv("CDCSYNC_LOG_LEVEL", "bogus-env")
	_, _, err = run(t, "", "run", "--config", file)
	if err == nil || !strings.Contains(err.Error(), "bogus-env") {
		t.Errorf("env log level: %v", err)
	}
	// ...and the flag wins over both; the run then stops at the file's
	// topologies.
	_, _, err = run(t, "", "run", "--config", file, "--log-level", "error")
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "topologies refused") || !strings.Contains(err.Error(), "/from/yaml") {
		t.Errorf("flag log level, file topologies: %v", err)
	}
	t.Setenv("CDCSYNC_TOPOLOGIES", "/from/env")
	_, _, err = run(t, "", "run", "--config", file, "--log-level", "error")
	if err == nil || !strings.Contains(err.Error(), "/from/env") || strings.Contains(err.Error(), "/from/yaml") {
		t.Errorf("env topologies: %v", err)
	}
	_, _, err = run(t, "", "run", "--config", file, "--log-level", "error", "--topologies", "/from/flag")
	if err == nil || !strings.Contains(err.Error(), "/from/flag") || strings.Contains(err.Error(), "/from/env") {
		t.Errorf("flag topologies: %v", err)
	}

	// CDCSYNC_CONFIG names the file when --config is absent.
	t.Setenv("CDCSYNC_LOG_LEVEL", "")
	t.Setenv("CDCSYNC_TOPOLOGIES", "")
	t.Setenv("CDCSYNC_CONFIG", file)
	_, _, err = run(t, "", "run")
	if err == nil || !strings.Contains(err.Error(), "bogus-yaml") {
		t.Errorf("CDCSYNC_CONFIG: %v", err)
	}
	t.Setenv("CDCSYNC_CONFIG", "")
}

// TestRunValidatesLayeredConfig stops at processor.New's validation,
// which runs before any connection, to see the layered values.
func TestRunValidatesLayeredConfig(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, t.TempDir(), "worker.yaml", "brokers: []\nmax_in_flight: 0\nhttp_addr: \"\"\n")
	_, _, err := run(t, "", "run", "--config", file, "--topologies", demoTopologies)
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "brokers: at least one broker is required") {
		t.Errorf("no brokers: %v", err)
	}
	// Brokers from the environment get past that check, to the file's
	// max_in_flight.
	t.Setenv("CDCSYNC_BROKERS", "127.0.0.1:1")
	_, _, err = run(t, "", "run", "--config", file, "--topologies", demoTopologies)
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "max_in_flight: must be at least 1, got 0") {
		t.Errorf("file max_in_flight: %v", err)
	}
	t.Setenv("CDCSYNC_MAX_IN_FLIGHT", "10")
	t.Setenv("CDCSYNC_KAFKA_VERSION", "0.10.2.0")
	_, _, err = run(t, "", "run", "--config", file, "--topologies", demoTopologies)
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "kafka_version: 0.10.2.0") {
		t.Errorf("env kafka_version: %v", err)
	}
	// The worker file's unknown field is named.
	bad := writeFile(t, t.TempDir(), "bad.yaml", "brokers: [a:1]\ncommit_intervall: 1s\n")
	_, _, err = run(t, "", "run", "--config", bad, "--topologies", demoTopologies)
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "commit_intervall") || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("unknown field: %v", err)
	}
	// A bad flag is exit 2, reported once: in the error main prints, not
	// also on stderr by the flag package.
	_, stderr, err := run(t, "", "run", "--no-such-flag")
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "no-such-flag") || stderr != "" {
		t.Errorf("bad flag: %v, %q", err, stderr)
	}
}
