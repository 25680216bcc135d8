//go:build realstack

package integration

// Helpers of the real-stack tier: the stack's state file, PostgreSQL
// through psql, Kafka Connect's REST API, kcat, and polling.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// stack is what integration/realstack/up.sh started, read from its state
// file.
type stack struct {
	PGBin, PGPort, PGUser string
	KafkaPort             string
	ConnectPort           string
	RegistryPort          string // Apicurio Registry; empty for a state file of an older up.sh
	brokers               []string
	connectURL            string
}

func loadStack(t *testing.T) *stack {
	t.Helper()
	path := os.Getenv("CDCSYNC_REALSTACK_STATE")
	if path == "" {
		path = filepath.Join(".cache", "realstack", "state.env")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("real stack not up (%v): run integration/realstack/run.sh, or setup.sh and up.sh first", err)
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	s := &stack{PGBin: kv["PG_BIN"], PGPort: kv["PG_PORT"], PGUser: kv["PG_USER"], KafkaPort: kv["KAFKA_PORT"], ConnectPort: kv["CONNECT_PORT"], RegistryPort: kv["REGISTRY_PORT"]}
	if s.PGPort == "" || s.KafkaPort == "" || s.ConnectPort == "" {
		t.Fatalf("%s: incomplete state file:\n%s", path, data)
	}
	s.brokers = []string{"127.0.0.1:" + s.KafkaPort}
	s.connectURL = "http://127.0.0.1:" + s.ConnectPort
	return s
}

// runID makes names unique per run, so the suite can run again against a
// stack that is still up.
func runID() string { return strconv.FormatInt(time.Now().Unix()%1_000_000, 36) }

// psql runs SQL in database db and returns psql's unaligned, tuples-only
// output.
func (s *stack) psql(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := s.psqlErr(db, sql)
	if err != nil {
		t.Fatalf("psql -d %s: %v\nSQL: %s", db, err, sql)
	}
	return out
}

func (s *stack) psqlErr(db, sql string) (string, error) {
	cmd := exec.Command(filepath.Join(s.PGBin, "psql"), "-h", "127.0.0.1", "-p", s.PGPort, "-U", s.PGUser, "-d", db,
		"-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-F", "\t")
	cmd.Stdin = strings.NewReader(sql)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, stderr.String())
	}
	return strings.TrimRight(string(out), "\n"), nil
}

// connector registers a Debezium PostgreSQL connector for database db
// with the given topic prefix; extra overrides or adds settings.
func (s *stack) connector(t *testing.T, name, db, prefix string, extra map[string]string) {
	t.Helper()
	cfg := map[string]string{
		"connector.class":             "io.debezium.connector.postgresql.PostgresConnector",
		"tasks.max":                   "1",
		"plugin.name":                 "pgoutput",
		"database.hostname":           "127.0.0.1",
		"database.port":               s.PGPort,
		"database.user":               s.PGUser,
		"database.password":           "unused",
		"database.dbname":             db,
		"topic.prefix":                prefix,
		"slot.name":                   strings.ReplaceAll(name, "-", "_"),
		"publication.name":            strings.ReplaceAll(name, "-", "_") + "_pub",
		"publication.autocreate.mode": "all_tables",
		"skipped.operations":          "none", // Debezium skips truncates by default
		"snapshot.mode":               "initial",
		"slot.drop.on.stop":           "false",
		// Topics that Connect creates for the connector: 3 partitions, so
		// both cdcsync workers get a share.
		"topic.creation.default.partitions":         "3",
		"topic.creation.default.replication.factor": "1",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	body, _ := json.Marshal(cfg)
	s.rest(t, http.MethodPut, "/connectors/"+name+"/config", body, http.StatusCreated, http.StatusOK)
	s.waitConnector(t, name, 60*time.Second)
	t.Cleanup(func() {
		// Delete the connector and its replication slot, so a stack that
		// stays up does not keep WAL for it.
		req, _ := http.NewRequest(http.MethodDelete, s.connectURL+"/connectors/"+name, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		slot := strings.ReplaceAll(name, "-", "_")
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			_, err := s.psqlErr(db, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '"+slot+"'")
			if err == nil {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}

// restartConnector restarts the connector and its task (Connect REST
// "restart?includeTasks=true"); under snapshot.mode=always the task
// snapshots every table again.
func (s *stack) restartConnector(t *testing.T, name string) {
	t.Helper()
	s.rest(t, http.MethodPost, "/connectors/"+name+"/restart?includeTasks=true&onlyFailed=false", nil, http.StatusOK, http.StatusAccepted, http.StatusNoContent)
	s.waitConnector(t, name, 60*time.Second)
}

func (s *stack) waitConnector(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.connectURL + "/connectors/" + name + "/status")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			var st struct {
				Connector struct{ State string }
				Tasks     []struct{ State, Trace string }
			}
			if json.Unmarshal(b, &st) == nil && st.Connector.State == "RUNNING" && len(st.Tasks) > 0 {
				if st.Tasks[0].State == "FAILED" {
					t.Fatalf("connector %s task failed:\n%s", name, st.Tasks[0].Trace)
				}
				if st.Tasks[0].State == "RUNNING" {
					return
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("connector %s not running within %v: %s", name, timeout, last)
}

func (s *stack) rest(t *testing.T, method, path string, body []byte, ok ...int) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, s.connectURL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, code := range ok {
		if resp.StatusCode == code {
			return b
		}
	}
	t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	return nil
}

// hwm is the sum of the high-water marks of topic's partitions, 0 when
// the topic does not exist yet.
func (s *stack) hwm(t *testing.T, topic string) int64 {
	t.Helper()
	c := newClient(t, s.brokers)
	return sumHWM(t, c, topic)
}

// eventually polls cond every 200ms until it returns "" or timeout
// passes; the last non-empty answer is the failure message.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if last = cond(); last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sinkState folds a sink topic into the latest record per key: nil for a
// tombstone. It also returns every record in partition/offset order.
func sinkState(t *testing.T, s *stack, topic string) (map[string]*sarama.ConsumerMessage, []*sarama.ConsumerMessage) {
	t.Helper()
	if s.hwm(t, topic) == 0 {
		return map[string]*sarama.ConsumerMessage{}, nil
	}
	msgs := readAll(t, s.brokers, topic)
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].Partition != msgs[j].Partition {
			return msgs[i].Partition < msgs[j].Partition
		}
		return msgs[i].Offset < msgs[j].Offset
	})
	last := map[string]*sarama.ConsumerMessage{}
	for _, m := range msgs {
		if m.Value == nil {
			last[string(m.Key)] = nil
		} else {
			last[string(m.Key)] = m
		}
	}
	return last, msgs
}

// kcatRecords reads topic from the beginning to its end with kcat, an
// independent client (librdkafka), as "partition<TAB>offset<TAB>key<TAB>value"
// lines, sorted; a null key or value reads NULL. cdcsync's JSON values
// hold no raw newlines or tabs.
func (s *stack) kcatRecords(t *testing.T, topic string) []string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not installed (integration/realstack/setup.sh installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-b", s.brokers[0], "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%p\t%o\t%k\t%s\n", "-Z")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("kcat -C -t %s: %v: %s", topic, err, stderr)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

// sumMetric adds a metric over worker processes.
func sumMetric(t *testing.T, ps []*proc, name string, labels ...string) float64 {
	t.Helper()
	var n float64
	for _, p := range ps {
		v, err := p.metric(name, labels...)
		if err == nil {
			n += v
		}
	}
	return n
}

// startWorkers runs one `cdcsync run` process per name on the topology
// directory and waits until each is ready.
func startWorkers(t *testing.T, s *stack, dir string, names ...string) []*proc {
	t.Helper()
	var ps []*proc
	for _, n := range names {
		p := startProcess(t, n, s.brokers, dir, "CDCSYNC_COMMIT_INTERVAL=200ms")
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.waitReady(60 * time.Second); err != nil {
			t.Fatalf("worker not ready: %v\n%s", err, tail(p.log.String(), 40))
		}
	}
	return ps
}
