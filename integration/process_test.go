package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// binary is the cdcsync command built once for the tests that run real
// worker processes.
var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func cdcsyncBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		// run-parallel.sh builds one binary for all its test processes.
		if p := os.Getenv("CDCSYNC_TEST_BINARY"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "cdcsync-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "cdcsync")
		cmd := exec.Command("go", "build", "-o", binPath, "../cmd/cdcsync")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a `cdcsync run` worker process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	http string
	log  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProcess runs `cdcsync run` on the topology directory. env adds
// CDCSYNC_* variables.
func startProcess(t *testing.T, name string, brokers []string, topoDir string, env ...string) *proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(cdcsyncBinary(t), "run", "--brokers", strings.Join(brokers, ","), "--topologies", topoDir,
		"--http-addr", addr, "--client-id", name)
	cmd.Env = append(append(os.Environ(), "CDCSYNC_SESSION_TIMEOUT=6s", "CDCSYNC_HEARTBEAT=500ms"), env...)
	p := &proc{t: t, cmd: cmd, http: addr, log: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		// CDCSYNC_IT_DIAG=DIR: a failed test's live workers dump their
		// goroutines (SIGQUIT) and every worker's whole log goes to DIR.
		diag := os.Getenv("CDCSYNC_IT_DIAG")
		if diag != "" && t.Failed() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-p.done:
				case <-time.After(5 * time.Second):
				}
			}
			_ = os.WriteFile(filepath.Join(diag, name+".log"), []byte(p.log.String()), 0o644)
		}
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("log of worker %s:\n%s", name, tail(p.log.String(), 60))
		}
	})
	return p
}

// settleKfakeGroup returns once group is stable with no more members than
// the live workers, starting one more worker while it is not.
//
// kfake never expires a member that died while its JoinGroup was pending:
// it stops the member's session timer when the join arrives and re-arms it
// only when the join's answer is delivered, and the leader's SyncGroup then
// ends the wait for the dead member's SyncGroup. The dead member keeps its
// partitions for ever (seen as a partition no live worker held, its sagas
// never advancing); Kafka expires it after session.timeout.ms. A join
// after the group has settled makes kfake rebalance, and the dead member,
// which cannot rejoin, is dropped at the rebalance timeout. A join during
// the same rebalance is not enough (the dead member is then in the new
// generation too), hence the loop.
func settleKfakeGroup(t *testing.T, brokers []string, group string, workers []*proc, start func() *proc) []*proc {
	t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ds, err := admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(ds) == 1 && ds[0].State == "Stable" {
			if len(ds[0].Members) <= len(workers) {
				return workers
			}
			t.Logf("group %s is stable with %d members for %d live workers (kfake keeps a member that died mid-join): one more worker joins",
				group, len(ds[0].Members), len(workers))
			workers = append(workers, start())
			time.Sleep(2 * time.Second) // the join starts a rebalance; it is not stable before the rebalance timeout
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not settle with %d live workers: %v %+v", group, len(workers), err, ds)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// kill ends the process with SIGKILL: no flush, no commit.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM and returns the exit error.
func (p *proc) terminate(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("no exit within %v after SIGTERM", timeout)
	}
}

// metric reads one sample from the worker's /metrics, summing label sets
// that match every given label="value" pair.
func (p *proc) metric(name string, labels ...string) (float64, error) {
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, err
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("metric %s%v not found", name, labels)
	}
	return sum, nil
}

// waitReady polls /readyz.
func (p *proc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("worker exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready within %v", timeout)
}
