package bench

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Where the time goes: cdcsync bench --profile writes a CPU profile of
// every side process (and of the broker), and ProfileReport sorts each
// sample into a bucket by the functions on its stack. The rules are
// checked in order; the first whose pattern any frame of the stack
// contains wins, so GC work is GC wherever it runs, and a sarama frame
// counts only when no cdcsync frame is on the stack.
var buckets = []struct {
	name     string
	patterns []string
}{
	{"GC", []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcStart", "runtime.markroot", "runtime.gcDrain"}},
	{"ledger (dedup, row state)", []string{"processor/ledger.", "processor.(*claimCtx).rowOf", "processor.(*claimCtx).duplicate", "processor.(*claimCtx).ledgerRecord",
		"processor.(*claimCtx).staleTombstone", "processor.(*aloWriter).addLedger", "processor.(*aloWriter).writeBatch", "processor.(*aloWriter).ledAcks", "processor.(*txnEmitter).flushLedger"}},
	{"authority", []string{"processor/authority."}},
	{"encode", []string{"processor.appendSinkValue", "cdcsync/schemas.", "processor.(*claimCtx).sinkHeaders", "processor.checkSize"}},
	{"route", []string{"processor/route.", "processor.(*claimCtx).route", "processor.(*pipeline).usable", "processor.(*sinkTopics)"}},
	{"decode", []string{"processor/cdc."}},
	// The claim goroutine runs under sarama's consumerGroupSession: its
	// own work (the claim loop, the tracker, channel sends to the
	// producer, the record copy) is the pipeline's, not sarama's fetch.
	{"pipeline hand-offs", []string{"cdcsync/processor.", "internal/bench.(*passHandler)"}},
	{"sarama produce", []string{"sarama.(*asyncProducer)", "sarama.(*brokerProducer)", "sarama.(*partitionProducer)", "sarama.(*topicProducer)", "sarama.(*produceSet)", "sarama.(*transactionManager)", "sarama.(*Broker).Produce", "sarama.(*ProduceRequest)", "sarama.(*syncProducer)"}},
	{"sarama fetch", []string{"sarama.(*consumerGroup", "sarama.(*brokerConsumer)", "sarama.(*partitionConsumer)", "sarama.(*Broker).Fetch", "sarama.(*FetchResponse)", "sarama.(*FetchRequest)", "sarama.(*offsetManager)", "sarama.(*partitionOffsetManager)"}},
	{"other sarama", []string{"IBM/sarama."}},
}

// Buckets is the order ProfileReport prints the buckets in.
func Buckets() []string {
	var names []string
	for _, b := range buckets {
		names = append(names, b.name)
	}
	return append(names, "runtime, syscalls, other")
}

// bucketOf sorts one stack (function names, leaf first).
func bucketOf(stack []string) string {
	for _, b := range buckets {
		for _, fn := range stack {
			for _, p := range b.patterns {
				if strings.Contains(fn, p) {
					return b.name
				}
			}
		}
	}
	return "runtime, syscalls, other"
}

// ProfileSplit reads a CPU profile file and returns the CPU time of each
// bucket, and the total.
func ProfileSplit(path string) (map[string]time.Duration, time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	p, err := parseProfile(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]time.Duration{}
	var total time.Duration
	var stack []string
	for _, s := range p.samples {
		stack = stack[:0]
		for _, loc := range s.locs {
			for _, fn := range p.locations[loc] {
				stack = append(stack, p.strings[p.functions[fn]])
			}
		}
		var v int64
		if p.valueIndex < len(s.values) {
			v = s.values[p.valueIndex]
		}
		d := time.Duration(v)
		out[bucketOf(stack)] += d
		total += d
	}
	return out, total, nil
}

// ProfileReport prints, for each side, the share of its process's CPU
// time in each bucket (summed over the rounds' profiles in dir), and the
// broker's share of the CPU time spent while the side ran.
func ProfileReport(w io.Writer, dir string, res *Result) error {
	sides := []Side{SideDefault, SideDurable, SideAtLeastOnce, SideExactlyOnce}
	names := Buckets()
	fmt.Fprintf(w, "\nwhere the CPU time goes (profiles in %s; share of each side process's CPU, summed over the rounds)\n", dir)
	fmt.Fprintf(w, "%-28s", "bucket")
	var shown []Side
	for _, side := range sides {
		if len(res.Sides[side]) > 0 {
			shown = append(shown, side)
			fmt.Fprintf(w, " %20s", side)
		}
	}
	fmt.Fprintln(w)
	split := map[Side]map[string]time.Duration{}
	totals := map[Side]time.Duration{}
	for _, side := range shown {
		split[side] = map[string]time.Duration{}
		files, _ := filepath.Glob(filepath.Join(dir, string(side)+"-*.pprof"))
		if len(files) == 0 {
			return errors.New("no profile of " + string(side))
		}
		for _, file := range files {
			m, total, err := ProfileSplit(file)
			if err != nil {
				return err
			}
			for k, v := range m {
				split[side][k] += v
			}
			totals[side] += total
		}
	}
	for _, name := range names {
		fmt.Fprintf(w, "%-28s", name)
		for _, side := range shown {
			fmt.Fprintf(w, " %19.1f%%", pct(split[side][name], totals[side]))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%-28s", "side CPU (profiled)")
	for _, side := range shown {
		fmt.Fprintf(w, " %20v", totals[side].Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-28s", "broker's share of all CPU")
	for _, side := range shown {
		var bcpu, scpu time.Duration
		for _, r := range res.Sides[side] {
			bcpu += r.BrokerCPU
			scpu += r.CPU
		}
		fmt.Fprintf(w, " %19.1f%%", pct(bcpu, bcpu+scpu))
	}
	fmt.Fprintln(w)
	return nil
}

func pct(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// A minimal reader of the pprof protobuf format (profile.proto): only the
// fields the split needs.
type profile struct {
	samples    []sample
	locations  map[uint64][]uint64 // location ID -> function IDs, leaf first
	functions  map[uint64]int64    // function ID -> name's string index
	strings    []string
	valueIndex int // the sample value in nanoseconds (cpu)
}

type sample struct {
	locs   []uint64
	values []int64
}

var errProto = errors.New("bad profile")

func parseProfile(b []byte) (*profile, error) {
	p := &profile{locations: map[uint64][]uint64{}, functions: map[uint64]int64{}}
	var types [][]byte
	err := eachField(b, func(num int, wire int, v uint64, data []byte) error {
		switch num {
		case 1: // sample_type
			types = append(types, data)
		case 2:
			var s sample
			err := eachField(data, func(num, wire int, v uint64, d []byte) error {
				switch num {
				case 1:
					return varints(wire, v, d, func(x uint64) { s.locs = append(s.locs, x) })
				case 2:
					return varints(wire, v, d, func(x uint64) { s.values = append(s.values, int64(x)) })
				}
				return nil
			})
			if err != nil {
				return err
			}
			p.samples = append(p.samples, s)
		case 4:
			var id uint64
			var fns []uint64
			err := eachField(data, func(num, wire int, v uint64, d []byte) error {
				switch num {
				case 1:
					id = v
				case 4: // line
					return eachField(d, func(num, wire int, v uint64, _ []byte) error {
						if num == 1 {
							fns = append(fns, v)
						}
						return nil
					})
				}
				return nil
			})
			if err != nil {
				return err
			}
			p.locations[id] = fns
		case 5:
			var id uint64
			var name int64
			err := eachField(data, func(num, wire int, v uint64, _ []byte) error {
				switch num {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			p.functions[id] = name
		case 6:
			p.strings = append(p.strings, string(data))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The value whose unit is nanoseconds (type "cpu"); Go writes
	// samples/count first and cpu/nanoseconds second.
	p.valueIndex = len(types) - 1
	for i, t := range types {
		var unit int64 = -1
		_ = eachField(t, func(num, _ int, v uint64, _ []byte) error {
			if num == 2 {
				unit = int64(v)
			}
			return nil
		})
		if unit >= 0 && int(unit) < len(p.strings) && p.strings[unit] == "nanoseconds" {
			p.valueIndex = i
		}
	}
	for _, n := range p.functions {
		if n < 0 || int(n) >= len(p.strings) {
			return nil, errProto
		}
	}
	return p, nil
}

// eachField calls f for every field of a protobuf message: v for varint
// fields, data for length-delimited ones.
func eachField(b []byte, f func(num, wire int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		key, n := uvarint(b)
		if n <= 0 {
			return errProto
		}
		b = b[n:]
		num, wire := int(key>>3), int(key&7)
		var v uint64
		var data []byte
		switch wire {
		case 0:
			v, n = uvarint(b)
			if n <= 0 {
				return errProto
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errProto
			}
			b = b[8:]
		case 2:
			l, n := uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errProto
			}
			data = b[n : n+int(l)]
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errProto
			}
			b = b[4:]
		default:
			return errProto
		}
		if err := f(num, wire, v, data); err != nil {
			return err
		}
	}
	return nil
}

// varints reads a repeated varint field, packed (wire type 2) or not.
func varints(wire int, v uint64, data []byte, f func(uint64)) error {
	if wire == 0 {
		f(v)
		return nil
	}
	for len(data) > 0 {
		x, n := uvarint(data)
		if n <= 0 {
			return errProto
		}
		f(x)
		data = data[n:]
	}
	return nil
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}
