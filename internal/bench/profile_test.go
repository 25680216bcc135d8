package bench

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"
)

func TestBucketOf(t *testing.T) {
	for _, tc := range []struct {
		stack []string
		want  string
	}{
		{[]string{"runtime.gcDrain", "runtime.gcBgMarkWorker"}, "GC"},
		{[]string{"encoding/json.Unmarshal", "github.com/cdcsync/cdcsync/processor/cdc.(*JSONDecoder).Decode", "github.com/cdcsync/cdcsync/processor.(*claimCtx).stages"}, "decode"},
		// The content ID of a row state is cdc code, but dedup work.
		{[]string{"github.com/cdcsync/cdcsync/processor/cdc.ComputeID", "github.com/cdcsync/cdcsync/processor.(*claimCtx).rowOf"}, "ledger (dedup, row state)"},
		{[]string{"github.com/cdcsync/cdcsync/processor.appendSinkValue", "github.com/cdcsync/cdcsync/processor.(*claimCtx).route"}, "encode"},
		{[]string{"github.com/IBM/sarama.(*produceSet).buildRequest", "github.com/IBM/sarama.(*brokerProducer).run"}, "sarama produce"},
		{[]string{"github.com/IBM/sarama.(*partitionConsumer).parseRecords"}, "sarama fetch"},
		{[]string{"runtime.futex"}, "runtime, syscalls, other"},
	} {
		if got := bucketOf(tc.stack); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.stack, got, tc.want)
		}
	}
}

// ProfileSplit reads a real profile written by runtime/pprof: every
// sample lands in one bucket, and the buckets add up to the total.
func TestProfileSplit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	sink := 0
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		for i := 0; i < 1e5; i++ {
			sink += i * i
		}
	}
	pprof.StopCPUProfile()
	f.Close()
	split, total, err := ProfileSplit(path)
	if err != nil {
		t.Fatal(err)
	}
	if total <= 0 {
		t.Fatalf("no CPU time in a profile of a busy loop (sink %d)", sink)
	}
	var sum time.Duration
	for _, d := range split {
		sum += d
	}
	if sum != total {
		t.Errorf("buckets add up to %v, total %v", sum, total)
	}
	if _, _, err := ProfileSplit(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing profile gave no error")
	}
}
