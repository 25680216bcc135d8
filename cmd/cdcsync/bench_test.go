package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cdcsync bench runs every side in a process of its own and a fresh broker
// process per round, and reports each side's peak RSS; with --profile it
// writes a CPU profile per side and broker and prints the split. Before,
// every side ran in the bench's own process on one broker, so no side had
// a peak RSS of its own and later rounds ran on a broker holding every
// earlier round's records.
func TestBenchSidesInProcessesWithProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker and side processes")
	}
	t.Setenv("CDCSYNC_TEST_AS_MAIN", "1") // the children run main() of this test binary
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	err := runMain(ctx, []string{"bench", "--events", "2000", "--partitions", "2", "--rounds", "2", "--profile", dir}, nil, &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), errb.String())
	}
	o := out.String()
	for _, want := range []string{"a fresh one per round",
		"round 1: passthrough-default", "round 2: passthrough-durable", "round 2: at_least_once",
		"round 1: broker peak RSS", "round 2: broker peak RSS",
		"cdcsync at_least_once", "where the CPU time goes", "broker's share of all CPU", "decode", "sarama produce"} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	// Every side's line carries its own process's peak RSS and CPU.
	for _, line := range strings.Split(o, "\n") {
		if strings.HasPrefix(line, "round ") && strings.Contains(line, "records/s") &&
			(!strings.Contains(line, "peak RSS") || !strings.Contains(line, "CPU")) {
			t.Errorf("a side without its peak RSS or CPU: %q", line)
		}
	}
	for _, f := range []string{"passthrough-default-1.pprof", "passthrough-durable-2.pprof", "at_least_once-2.pprof", "broker-1.pprof", "broker-2.pprof"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
	}
}
