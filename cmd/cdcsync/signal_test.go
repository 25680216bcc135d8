package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this test binary as the cdcsync command: with
// CDCSYNC_TEST_AS_MAIN=1 it calls main with the arguments after the
// binary's name, so the test exercises main's real signal handling and
// exit codes.
func TestMain(m *testing.M) {
	if os.Getenv("CDCSYNC_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// closedPort returns a local address nothing listens on: connecting to it
// is refused at once.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Regression (issue 10): SIGTERM while the worker was still connecting
// (brokers unreachable) exited 1, because Run returned the context's
// cancellation as an error; the README promises exit 0 after a clean
// shutdown. The real command runs in a child process and gets a real
// signal.
func TestRunSIGTERMWhileConnectingExits0(t *testing.T) {
	dir := t.TempDir()
	topo := writeFile(t, dir, "t.yaml", jsonTopology)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CDCSYNC_") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(os.Args[0], "run", "--brokers", closedPort(t), "--topologies", topo,
		"--http-addr", "127.0.0.1:0", "--log-level", "info")
	cmd.Env = append(env, "CDCSYNC_TEST_AS_MAIN=1")
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "cannot reach the brokers, retrying") {
		if time.Now().After(deadline) {
			t.Fatalf("the worker never started connecting:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM while connecting: %v, want exit 0\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit within 15s of SIGTERM while connecting:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "worker stopped cleanly") {
		t.Errorf("no clean-stop log line:\n%s", stderr.String())
	}
}

// The first signal starts the soft shutdown (the context is cancelled);
// a second signal exits at once with 130, however long the shutdown
// would take. Real signals are sent to this process; notifyContext
// catches them.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	exited := make(chan int, 1)
	ctx, stop := notifyContext(func(code int) { exited <- code }, syscall.SIGUSR1)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not start the shutdown")
	}
	select {
	case code := <-exited:
		t.Fatalf("the first signal exited (%d); it must only start the soft shutdown", code)
	case <-time.After(100 * time.Millisecond):
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 130 {
			t.Errorf("second signal exit code %d, want 130", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not exit")
	}
}
