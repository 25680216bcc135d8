// Package membudget sizes the Go garbage collector to a worker's memory
// budget.
//
// Go's default (GOGC=100) collects whenever the heap has grown by as much
// as is live. A worker's live heap is small (its ledger index, the records
// in flight) and it allocates fast (every record is decoded, encoded and
// produced), so under the default it collects every few tens of
// milliseconds and GC takes an eighth of its CPU (docs/bench-findings.md).
// A budget lets the heap use the memory an operator grants before
// collecting: GC runs less often, for the same work per cycle.
//
// The policy, once Start ran: GOGC=400, and a soft memory limit
// (debug.SetMemoryLimit) of max(budget, follow), where follow is about
// what GOGC=100 would allow for the current live heap: 2.25 times the live
// heap (twice, plus room for the heap's fragmentation, which the limit
// counts), plus the runtime's memory outside the heap. The limit is recomputed after
// every GC cycle. So:
//   - while the live heap is small, the process's Go memory grows to about
//     the budget before a collection (never to 5× the live heap past it);
//   - once the live heap passes half the budget, the limit follows it and
//     GC behaves as under GOGC=100: the budget never makes the collector
//     run harder than Go's default, and never thrashes.
//
// GOGC or GOMEMLIMIT in the environment are the operator's choice: Start
// then changes nothing.
package membudget

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// GCPercent is the GOGC the policy sets: high enough that the memory
// limit, not GOGC, starts collections while the live heap is below half
// the budget.
const GCPercent = 400

var (
	mu      sync.Mutex
	budget  int64 // the largest budget Start was given
	started bool
	limit   int64 // the limit set last
	cycles  int64 // GC cycles the governor has seen
)

// Start applies the policy with the given budget in bytes. It reports
// whether the policy applies: not when budget <= 0, nor when GOGC or
// GOMEMLIMIT is set in the environment. A process has one garbage
// collector: when several workers share a process, the largest budget
// applies.
func Start(b int64) bool {
	if b <= 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	budget = max(budget, b)
	if !started {
		started = true
		debug.SetGCPercent(GCPercent)
		arm()
	}
	adjustLocked()
	return true
}

// Limit returns the soft memory limit the policy set last (0 before
// Start applied it).
func Limit() int64 {
	mu.Lock()
	defer mu.Unlock()
	return limit
}

// sentinel is an object whose cleanup runs once a GC cycle found it
// unreachable: after the first cycle that follows its allocation. It is
// larger than the tiny allocator's 16 bytes, so it dies alone.
type sentinel struct{ _ [32]byte }

// arm allocates a sentinel whose cleanup adjusts the limit and arms the
// next one: one adjustment per GC cycle, on the runtime's cleanup
// goroutine.
func arm() {
	s := new(sentinel)
	runtime.AddCleanup(s, func(struct{}) {
		mu.Lock()
		cycles++
		adjustLocked()
		mu.Unlock()
		arm()
	}, struct{}{})
}

var samples = []metrics.Sample{
	{Name: "/gc/heap/live:bytes"},
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
}

// adjustLocked sets the limit to max(budget, follow) (see the package
// comment). The caller holds mu.
func adjustLocked() {
	metrics.Read(samples)
	v := func(i int) int64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(samples[i].Value.Uint64())
	}
	live := v(0)
	mapped := v(1) - v(2)
	heap := v(3) + v(4) + v(5)
	outside := max(mapped-heap, 0) // stacks, GC metadata, runtime structures
	l := max(budget, live*9/4+outside)
	if l != limit {
		limit = l
		debug.SetMemoryLimit(l)
	}
}
