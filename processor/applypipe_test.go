package processor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestDrainContext pins drainContext, the context an apply claim applies
// its batch with (issue 14): it lives on for the grace after the session's
// context ends, so the batch already read is applied and committed with
// the session instead of being delivered again by the next owner; it ends
// when the grace is over, and at once when the claim stops it. The clock
// is synctest's, so the durations are exact.
func TestDrainContext(t *testing.T) {
	const grace = 10 * time.Second
	type key struct{}

	t.Run("outlives the parent by the grace", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, end := context.WithCancel(context.WithValue(context.Background(), key{}, "session"))
			work, stop := drainContext(parent, grace)
			defer stop()
			if v := work.Value(key{}); v != "session" {
				t.Errorf("value %v, want the parent's", v)
			}
			time.Sleep(time.Hour)
			if work.Err() != nil {
				t.Fatalf("ended while its parent lives: %v", work.Err())
			}
			end()
			ended := time.Now()
			time.Sleep(grace - time.Nanosecond)
			synctest.Wait()
			if work.Err() != nil {
				t.Fatalf("ended %v after its parent, before the grace %v", time.Since(ended), grace)
			}
			<-work.Done()
			if d := time.Since(ended); d != grace {
				t.Errorf("ended %v after its parent, want the grace %v", d, grace)
			}
			if !errors.Is(work.Err(), context.Canceled) {
				t.Errorf("Err %v, want context.Canceled", work.Err())
			}
		})
	})

	t.Run("parent already ended", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, end := context.WithCancel(context.Background())
			end()
			start := time.Now()
			work, stop := drainContext(parent, grace)
			defer stop()
			synctest.Wait()
			if work.Err() != nil {
				t.Fatalf("ended at once: %v", work.Err())
			}
			<-work.Done()
			if d := time.Since(start); d != grace {
				t.Errorf("ended after %v, want the grace %v", d, grace)
			}
		})
	})

	t.Run("stop ends it at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// Before the parent ends.
			parent, end := context.WithCancel(context.Background())
			defer end()
			work, stop := drainContext(parent, grace)
			stop()
			if work.Err() == nil {
				t.Errorf("alive after stop, its parent alive")
			}
			// In the grace.
			parent2, end2 := context.WithCancel(context.Background())
			work2, stop2 := drainContext(parent2, grace)
			end2()
			time.Sleep(grace / 2)
			if work2.Err() != nil {
				t.Fatalf("ended %v into the grace %v", grace/2, grace)
			}
			stop2()
			if work2.Err() == nil {
				t.Errorf("alive after stop, in the grace")
			}
			stop2() // a second call is harmless
		})
	})

	// Under -race: the parent ending while the claim stops (ConsumeClaim
	// returns as the session ends) shares the grace timer.
	t.Run("stop races the parent", func(t *testing.T) {
		for range 100 {
			parent, end := context.WithCancel(context.Background())
			work, stop := drainContext(parent, grace)
			var wg sync.WaitGroup
			wg.Go(end)
			wg.Go(stop)
			wg.Wait()
			if work.Err() == nil {
				t.Fatal("alive after stop")
			}
		}
	})
}
