package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// run calls runMain as main does, with the given stdin, and returns
// stdout, stderr and the error.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	var in io.Reader = strings.NewReader(stdin)
	err = runMain(ctx, args, in, &out, &errb)
	return out.String(), errb.String(), err
}

// exitCode is the process exit code main would use for err.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func wantExit(t *testing.T, err error, code int) {
	t.Helper()
	if got := exitCode(err); got != code {
		t.Fatalf("exit code %d (err %v), want %d", got, err, code)
	}
}

func TestUsage(t *testing.T) {
	_, stderr, err := run(t, "")
	wantExit(t, err, 2)
	if !strings.Contains(stderr, "Usage:") {
		t.Errorf("no usage on stderr: %q", stderr)
	}
	stdout, _, err := run(t, "", "help")
	wantExit(t, err, 0)
	if !strings.Contains(stdout, "cdcsync topology validate") {
		t.Errorf("help: %q", stdout)
	}
	_, _, err = run(t, "", "frobnicate")
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %v", err)
	}
}

// bench --broker-pid reads a broker of one's own from /proc: it needs
// --brokers, and a PID whose CPU time cannot be read is refused before
// anything is measured (exit 2, with the PID in the message).
func TestBenchBrokerPID(t *testing.T) {
	_, _, err := run(t, "", "bench", "--broker-pid", "1")
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "--broker-pid needs --brokers") {
		t.Errorf("without --brokers: %v", err)
	}
	_, _, err = run(t, "", "bench", "--brokers", "127.0.0.1:1", "--broker-pid", "2147483647")
	wantExit(t, err, 2)
	if !strings.Contains(err.Error(), "--broker-pid 2147483647: cannot read /proc/2147483647/stat") {
		t.Errorf("an unknown PID: %v", err)
	}
}
