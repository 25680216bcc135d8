package ledger

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func randID(r *rand.Rand) cdc.ID {
	var id cdc.ID
	binary.LittleEndian.PutUint64(id[0:8], r.Uint64())
	binary.LittleEndian.PutUint64(id[8:16], r.Uint64())
	return id
}

func seqID(i uint64) cdc.ID {
	var id cdc.ID
	binary.BigEndian.PutUint64(id[8:16], i)
	return id
}

func fixedClock(t *time.Time) IndexOption { return WithClock(func() time.Time { return *t }) }

// checkInvariants verifies the Robin Hood table: every entry is findable,
// the count matches, and no probe sequence passes an empty slot.
func checkInvariants(t *testing.T, x *Index) {
	t.Helper()
	n := 0
	for i := range x.slots {
		if x.slots[i].seen == 0 {
			continue
		}
		n++
		if got := x.find(x.slots[i].id); got != i {
			t.Fatalf("slot %d: find returns %d", i, got)
		}
		d := x.dist(uint64(i))
		for k := uint64(1); k <= d; k++ {
			if x.slots[(uint64(i)-k)&x.mask].seen == 0 {
				t.Fatalf("slot %d (dist %d): empty slot %d steps before it", i, d, k)
			}
		}
	}
	if n != x.n {
		t.Fatalf("counted %d entries, Len says %d", n, x.n)
	}
	if x.n*maxLoadDen > len(x.slots)*maxLoadNum {
		t.Fatalf("load %d/%d over the maximum", x.n, len(x.slots))
	}
}

func TestIndexAddSeen(t *testing.T) {
	now := t0
	x := NewIndex(time.Hour, fixedClock(&now))
	a, b := seqID(1), seqID(2)
	if x.Seen(a) {
		t.Fatal("empty index has seen a")
	}
	if !x.Add(a, t0) {
		t.Fatal("first Add returned false")
	}
	if x.Add(a, t0.Add(time.Minute)) {
		t.Fatal("second Add of a live ID returned true")
	}
	if fs, _ := x.FirstSeen(a); !fs.Equal(t0) {
		t.Fatalf("FirstSeen = %v, want the first time %v", fs, t0)
	}
	if !x.Seen(a) || x.Seen(b) {
		t.Fatal("Seen wrong")
	}
	if x.Len() != 1 {
		t.Fatalf("Len = %d", x.Len())
	}
	if !x.Delete(a) || x.Delete(a) || x.Seen(a) || x.Len() != 0 {
		t.Fatal("Delete wrong")
	}
	var zero cdc.ID
	if !x.Add(zero, time.Unix(0, 0)) || !x.SeenAt(zero, time.Unix(10, 0)) {
		t.Fatal("the zero ID at the epoch must be storable")
	}
}

func TestIndexExpiry(t *testing.T) {
	now := t0
	x := NewIndex(time.Hour, fixedClock(&now))
	old, fresh := seqID(1), seqID(2)
	x.Add(old, t0.Add(-2*time.Hour))
	x.Add(fresh, t0.Add(-30*time.Minute))
	if x.Seen(old) {
		t.Fatal("an entry older than the window counts as seen")
	}
	if !x.Seen(fresh) {
		t.Fatal("fresh entry not seen")
	}
	// Exactly at the window edge the entry is still live.
	if !x.SeenAt(fresh, t0.Add(30*time.Minute)) || x.SeenAt(fresh, t0.Add(30*time.Minute+time.Second)) {
		t.Fatal("window edge wrong")
	}
	// An expired entry is replaced by a new Add.
	if !x.Add(old, t0) || !x.Seen(old) {
		t.Fatal("re-adding an expired ID failed")
	}
	x.Add(seqID(3), t0.Add(-3*time.Hour))
	if got := x.Expire(t0); got != 1 || x.Len() != 2 {
		t.Fatalf("Expire dropped %d, Len %d; want 1, 2", got, x.Len())
	}
	checkInvariants(t, x)

	never := NewIndex(0)
	never.Add(old, time.Unix(5, 0))
	if !never.Seen(old) || never.Expire(t0) != 0 {
		t.Fatal("window 0 must never expire")
	}
}

func TestIndexGrowthAndCollisions(t *testing.T) {
	x := NewIndex(time.Hour)
	// IDs that agree in every bit the hash reads except a few: the mixing
	// must still spread them, and equal homes must still work.
	const n = 100_000
	for i := uint64(0); i < n; i++ {
		if !x.Add(seqID(i), t0) {
			t.Fatalf("Add %d returned false", i)
		}
	}
	checkInvariants(t, x)
	for i := uint64(0); i < n; i++ {
		if !x.SeenAt(seqID(i), t0) {
			t.Fatalf("lost %d after growth", i)
		}
	}
	if x.SeenAt(seqID(n), t0) {
		t.Fatal("phantom")
	}

	// Force full collisions: a tiny table where every key has the same home.
	y := NewIndex(0)
	var ids []cdc.ID
	r := rand.New(rand.NewPCG(1, 2))
	for len(ids) < 12 {
		id := randID(r)
		if y.home(&id) == 3 {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		y.Add(id, t0)
	}
	checkInvariants(t, y)
	for _, id := range ids[:6] {
		y.Delete(id)
		checkInvariants(t, y)
	}
	for _, id := range ids[6:] {
		if !y.Seen(id) {
			t.Fatal("lost a colliding key after deletes")
		}
	}
}

func TestIndexRollback(t *testing.T) {
	now := t0
	x := NewIndex(time.Hour, fixedClock(&now))
	kept, expired, gone := seqID(1), seqID(2), seqID(3)
	x.Add(kept, t0)
	x.Add(expired, t0.Add(-2*time.Hour))
	x.Add(gone, t0)

	x.Mark()
	for i := uint64(10); i < 1000; i++ { // enough to grow the table inside the mark
		x.Add(seqID(i), t0)
	}
	x.Add(kept, t0)    // no-op: not journaled
	x.Add(expired, t0) // refresh of an expired entry
	x.Delete(gone)
	if n := x.Rollback(); n != 990+2 {
		t.Fatalf("Rollback undid %d changes, want 992", n)
	}
	if x.Marked() {
		t.Fatal("mark still open after Rollback")
	}
	if x.Len() != 3 || !x.Seen(kept) || x.Seen(expired) || !x.Seen(gone) || x.Seen(seqID(10)) {
		t.Fatalf("state after rollback wrong: len %d", x.Len())
	}
	if fs, _ := x.FirstSeen(expired); !fs.Equal(t0.Add(-2 * time.Hour)) {
		t.Fatalf("rollback did not restore the old first-seen time: %v", fs)
	}
	checkInvariants(t, x)

	x.Mark()
	x.Add(seqID(5), t0)
	x.Commit()
	if x.Rollback() != 0 || !x.Seen(seqID(5)) {
		t.Fatal("Rollback after Commit must do nothing")
	}
}

// TestIndexProperty runs random operations against a map model.
func TestIndexProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	now := t0
	x := NewIndex(time.Minute, fixedClock(&now))
	model := map[cdc.ID]int64{} // id -> first seen, unix seconds
	var pool []cdc.ID
	for i := 0; i < 4000; i++ {
		pool = append(pool, randID(r))
	}
	live := func(s int64) bool { return s >= now.Unix()-60 }
	var snapshot map[cdc.ID]int64
	for step := 0; step < 200_000; step++ {
		id := pool[r.IntN(len(pool))]
		switch op := r.IntN(100); {
		case op < 50:
			s, ok := model[id]
			want := !ok || !live(s)
			if got := x.Add(id, now); got != want {
				t.Fatalf("step %d: Add = %v, want %v", step, got, want)
			}
			if want {
				model[id] = now.Unix()
			}
		case op < 65:
			_, ok := model[id]
			if got := x.Delete(id); got != ok {
				t.Fatalf("step %d: Delete = %v, want %v", step, got, ok)
			}
			delete(model, id)
		case op < 85:
			now = now.Add(time.Duration(r.IntN(3)) * time.Second)
		case op < 86:
			dropped := 0
			for k, s := range model {
				if !live(s) {
					delete(model, k)
					dropped++
				}
			}
			if got := x.Expire(now); got != dropped {
				t.Fatalf("step %d: Expire = %d, want %d", step, got, dropped)
			}
			checkInvariants(t, x)
		case op < 88 && !x.Marked():
			x.Mark()
			snapshot = make(map[cdc.ID]int64, len(model))
			for k, v := range model {
				snapshot[k] = v
			}
		case op < 90 && x.Marked():
			if r.IntN(2) == 0 {
				x.Commit()
			} else {
				x.Rollback()
				// Entries Expire dropped inside the mark stay dropped; they
				// were not live anyway.
				model = snapshot
				for k, v := range model {
					if _, ok := x.FirstSeen(k); !ok && !live(v) {
						delete(model, k)
					}
				}
			}
		}
		s, ok := model[id]
		if got := x.Seen(id); got != (ok && live(s)) {
			t.Fatalf("step %d: Seen = %v, model %v %v", step, got, ok, ok && live(s))
		}
		if x.Len() != len(model) {
			t.Fatalf("step %d: Len = %d, model %d", step, x.Len(), len(model))
		}
	}
	checkInvariants(t, x)
}

func TestIndexShrinksAfterExpire(t *testing.T) {
	x := NewIndex(time.Hour)
	for i := uint64(0); i < 50_000; i++ {
		x.Add(seqID(i), t0.Add(-2*time.Hour))
	}
	x.Add(seqID(1<<40), t0)
	big := x.Bytes()
	if got := x.Expire(t0); got != 50_000 {
		t.Fatalf("Expire = %d", got)
	}
	if x.Bytes() >= big/100 || !x.SeenAt(seqID(1<<40), t0) {
		t.Fatalf("did not shrink: %d -> %d bytes", big, x.Bytes())
	}
	checkInvariants(t, x)
}

// heapPerKey loads n random keys into a fresh Index and returns the resident
// heap growth per key, after a GC.
func heapPerKey(n int) (float64, *Index) {
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]cdc.ID, n)
	for i := range ids {
		ids[i] = randID(r)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := NewIndex(time.Hour)
	for _, id := range ids {
		x.Add(id, t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ids)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n), x
}

func TestIndexMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a million keys")
	}
	// 1M keys, and the worst case: the count right after a growth step.
	for _, n := range []int{1_000_000, 1<<20*maxLoadNum/maxLoadDen + 1} {
		perKey, x := heapPerKey(n)
		t.Logf("%d keys: %.1f bytes/key resident (Bytes() says %.1f)", n, perKey, float64(x.Bytes())/float64(n))
		if perKey > 64 {
			t.Errorf("%d keys: %.1f bytes/key, target 64", n, perKey)
		}
		runtime.KeepAlive(x)
	}
}

func BenchmarkIndexMemory1M(b *testing.B) {
	var perKey float64
	for b.Loop() {
		var x *Index
		perKey, x = heapPerKey(1_000_000)
		runtime.KeepAlive(x)
	}
	b.ReportMetric(perKey, "bytes/key")
}

func BenchmarkIndexAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	ids := make([]cdc.ID, 1<<20)
	for i := range ids {
		ids[i] = randID(r)
	}
	b.ResetTimer()
	x := NewIndex(time.Hour)
	for i := 0; b.Loop(); i++ {
		if i&(len(ids)-1) == 0 {
			x = NewIndex(time.Hour)
		}
		x.Add(ids[i&(len(ids)-1)], t0)
	}
}

func BenchmarkIndexSeen(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	x := NewIndex(time.Hour, WithClock(func() time.Time { return t0 }))
	ids := make([]cdc.ID, 1<<20)
	for i := range ids {
		ids[i] = randID(r)
		if i%2 == 0 {
			x.Add(ids[i], t0)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		x.Seen(ids[i&(len(ids)-1)]) // half hits, half misses
	}
}
