package processor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// Wait blocks until the count is zero (tests only).
func (c *inflight) Wait() {
	for c.wait(time.Hour) > 0 {
	}
}

// Regression (issue 10): Cleanup's waiter goroutine leaked after the
// timeout and Cleanup returned nil, so a session that ended with records
// still unacknowledged looked clean.
func TestCleanupTimeoutReturnsError(t *testing.T) {
	p := &pipeline{cfg: Config{ShutdownTimeout: 50 * time.Millisecond}, log: zaptest.NewLogger(t)}
	h := &handler{p: p}
	h.inflight.Add(2) // two records consumed, never acknowledged
	start := time.Now()
	err := h.Cleanup(nil)
	if !errors.Is(err, ErrCleanupTimeout) {
		t.Fatalf("Cleanup = %v, want ErrCleanupTimeout", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("Cleanup took %v, want about the 50ms shutdown_timeout", d)
	}
	if want := "2 record(s) still unacknowledged"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}

	// Once the records are acknowledged, Cleanup returns nil at once.
	h.inflight.Add(-2)
	if err := h.Cleanup(nil); err != nil {
		t.Fatalf("Cleanup with nothing in flight = %v", err)
	}
}

// The in-flight count's wait wakes up when the count reaches zero, with
// no goroutine of its own.
func TestInflightWaitWakesAtZero(t *testing.T) {
	var c inflight
	c.Add(1)
	go func() { time.Sleep(20 * time.Millisecond); c.Add(-1) }()
	if n := c.wait(10 * time.Second); n != 0 {
		t.Fatalf("wait = %d left, want 0", n)
	}
	c.Add(1)
	if n := c.wait(10 * time.Millisecond); n != 1 {
		t.Fatalf("wait = %d left, want 1 after the timeout", n)
	}
}
