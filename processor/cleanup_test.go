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

// The count changes without the mutex while it stays above zero (Add's
// fast path); changes to and from zero, from many goroutines at once,
// must still leave the zero channel closed exactly when the count is zero:
// a waiter started while records are in flight wakes when the last one is
// done, and the count ends at zero. Run under -race.
func TestInflightConcurrentZeroCrossings(t *testing.T) {
	var c inflight
	c.Add(1) // held until the end, so the waiter below has something to wait for
	woke := make(chan int, 1)
	go func() { woke <- c.wait(time.Minute) }()
	done := make(chan struct{})
	var inner inflight // crosses zero all the time
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 20_000; i++ {
				inner.Add(1)
				if i%3 == 0 {
					inner.Add(1)
					inner.Add(-1)
				}
				inner.Add(-1)
			}
			done <- struct{}{}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
	if n := inner.wait(time.Second); n != 0 {
		t.Fatalf("after every Add(1) was matched, wait = %d left", n)
	}
	select {
	case n := <-woke:
		t.Fatalf("the waiter returned %d while a record was still in flight", n)
	case <-time.After(20 * time.Millisecond):
	}
	c.Add(-1)
	if n := <-woke; n != 0 {
		t.Fatalf("waiter = %d left, want 0", n)
	}
}
