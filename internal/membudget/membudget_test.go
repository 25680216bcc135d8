package membudget

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// The policy in one process, in order (it is process-wide and starts
// once): refused while GOGC is set; then the budget is the limit while
// the live heap is small; the limit follows a live heap past half the
// budget, so the collector is never held tighter than Go's default; and
// it returns to the budget once that heap is gone.
func TestPolicy(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })

	t.Setenv("GOGC", "150")
	if Start(64 << 20) {
		t.Fatal("Start applied the policy with GOGC set in the environment")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set, Start changed GOGC to %d", got)
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if Start(0) {
		t.Fatal("Start applied a budget of 0")
	}

	const budget = 64 << 20
	runtime.GC()
	if !Start(budget) {
		t.Fatal("Start did not apply the policy")
	}
	if got := debug.SetGCPercent(GCPercent); got != GCPercent {
		t.Errorf("GOGC = %d, want %d", got, GCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != budget {
		t.Errorf("memory limit with a small live heap = %d, want the budget %d", got, budget)
	}

	// A live heap of 48 MiB, three quarters of the budget: the limit
	// must leave it at least GOGC=100's room, twice the live heap.
	held := make([][]byte, 48)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	follow := waitLimit(t, func(l int64) bool { return l >= 2*48<<20 })
	if follow > 4*48<<20 {
		t.Errorf("limit with 48 MiB live = %d MiB, far above what GOGC=100 allows", follow>>20)
	}
	runtime.KeepAlive(held)
	held = nil

	waitLimit(t, func(l int64) bool { return l == budget })
	if Limit() != budget {
		t.Errorf("Limit() = %d, want %d", Limit(), budget)
	}

	// A second, larger budget (another worker in the process) wins.
	Start(budget * 2)
	if got := waitLimit(t, func(l int64) bool { return l == 2*budget }); got != 2*budget {
		t.Errorf("limit after a larger budget = %d, want %d", got, 2*budget)
	}
}

// waitLimit runs collections until the limit the runtime holds satisfies
// ok (the policy adjusts it after each cycle, on the cleanup goroutine),
// and returns it.
func waitLimit(t *testing.T, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		l := debug.SetMemoryLimit(-1)
		if ok(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory limit stays %d MiB", l>>20)
		}
	}
}
