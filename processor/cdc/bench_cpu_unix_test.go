//go:build unix

package cdc

import (
	"syscall"
	"testing"
	"time"
)

// cpuMeter reports the process's CPU time per op ("cpu-ns/op") next to
// the wall time: on the shared machine a benchmark is often descheduled,
// which inflates ns/op but not the CPU it used.
type cpuMeter struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter { return cpuMeter{start: processCPU()} }

func (m cpuMeter) report(b *testing.B) {
	if n := b.N; n > 0 {
		b.ReportMetric(float64(processCPU()-m.start)/float64(n), "cpu-ns/op")
	}
}
