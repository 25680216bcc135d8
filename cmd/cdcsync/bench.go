package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cdcsync/cdcsync/internal/bench"
	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stdout)
	events := fs.Int("events", 200000, "records in the workload")
	partitions := fs.Int("partitions", 8, "source partitions")
	dup := fs.Float64("dup", 0.10, "share of redelivered (duplicate) records")
	rounds := fs.Int("rounds", 3, "measurements of each side; the median is reported")
	brokers := fs.String("brokers", "", "use this broker instead of starting one")
	inProcess := fs.Bool("in-process", false, "run the embedded broker in this process instead of a separate one")
	guarantee := fs.String("guarantee", "at_least_once", "at_least_once, or exactly_once to also measure exactly-once throughput and latency in the same run")
	rate := fs.Int("rate", 10000, "events/s of the exactly_once latency run")
	profile := fs.String("profile", "", "write a CPU profile of every side and of the broker into this directory, and print where the time goes")
	inProcessSides := fs.Bool("in-process-sides", false, "run every side in this process instead of a process of its own (no per-side peak RSS)")
	configFile := fs.String("config", "", "with --brokers: "+configFlagHelp)
	brokerPID := fs.Int("broker-pid", 0, "with --brokers: the broker's process ID on this machine, to report its CPU time per side and its peak RSS")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *guarantee != "at_least_once" && *guarantee != "exactly_once" {
		return &exitError{code: 2, err: fmt.Errorf("--guarantee %q: want at_least_once or exactly_once", *guarantee)}
	}
	bs := splitAddrs(*brokers)
	if err := checkBrokers("--brokers", bs); err != nil {
		return err
	}
	if *brokerPID != 0 && len(bs) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("--broker-pid needs --brokers")}
	}
	// The security block applies to a broker given with --brokers; the
	// brokers bench starts itself are PLAINTEXT.
	var sec processor.Security
	if len(bs) > 0 {
		var err error
		if sec, err = commandSecurity(*configFile); err != nil {
			return err
		}
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			return err
		}
	}
	log, _ := newLogger("warn", stderr)
	o := bench.Options{Log: log, Brokers: bs, Events: *events, Partitions: int32(*partitions), DupRatio: *dup, Rounds: *rounds,
		ExactlyOnce: *guarantee == "exactly_once", Rate: *rate, Security: sec}
	round := 0
	switch {
	case len(bs) > 0:
		fmt.Fprintf(stdout, "broker: %s (a new source topic per round)\n", strings.Join(bs, ","))
		if pid := *brokerPID; pid != 0 {
			if bench.ProcessCPU(pid) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("--broker-pid %d: cannot read /proc/%d/stat", pid, pid)}
			}
			o.NewBroker = func(context.Context) (*bench.Broker, error) {
				return &bench.Broker{Brokers: bs, Stop: func() int64 { return bench.PeakRSS(pid) },
					CPU: func() time.Duration { return bench.ProcessCPU(pid) }}, nil
			}
		}
	case *inProcess:
		o.NewBroker = func(context.Context) (*bench.Broker, error) {
			st, err := embedded.Start(embedded.Options{NoRegistry: true})
			if err != nil {
				return nil, err
			}
			return &bench.Broker{Brokers: st.Brokers(), Stop: func() int64 { st.Close(); return 0 },
				CPU: func() time.Duration { return 0 }}, nil
		}
		fmt.Fprintln(stdout, "broker: in this process, a fresh one per round")
	default:
		// Like the reference figures: the broker in its own process, so
		// the Go runtimes of broker and clients do not share a heap; a
		// fresh one per round, as kfake keeps every record in memory.
		o.NewBroker = func(ctx context.Context) (*bench.Broker, error) {
			prof := ""
			if *profile != "" {
				round++
				prof = filepath.Join(*profile, fmt.Sprintf("broker-%d.pprof", round))
			}
			return startBrokerProcess(ctx, prof)
		}
		fmt.Fprintln(stdout, "broker: a `cdcsync broker` process, a fresh one per round")
	}
	if !*inProcessSides {
		o.Exec = func(ctx context.Context, side bench.Side, so bench.SideOptions) (bench.SideResult, error) {
			return runSideProcess(ctx, side, so, *profile, *configFile)
		}
	}
	res, err := bench.Run(ctx, o, stdout)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if *profile != "" {
		if err := bench.ProfileReport(stdout, *profile, res); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("profile report: %w", err)}
		}
	}
	return nil
}

// runSideProcess runs one side as "cdcsync bench-side" and reads its
// result, a JSON line, from the child's standard output.
func runSideProcess(ctx context.Context, side bench.Side, so bench.SideOptions, profileDir, configFile string) (bench.SideResult, error) {
	var res bench.SideResult
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	args := []string{"bench-side", "--side", string(side), "--brokers", strings.Join(so.Brokers, ","), "--topic", so.Topic,
		"--events", strconv.Itoa(so.Events), "--partitions", strconv.Itoa(int(so.Partitions)), "--round", strconv.Itoa(so.Round)}
	if profileDir != "" {
		args = append(args, "--cpuprofile", filepath.Join(profileDir, fmt.Sprintf("%s-%d.pprof", side, so.Round+1)))
	}
	if configFile != "" {
		args = append(args, "--config", configFile)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("bench-side %s: %w", side, err)
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
		return res, fmt.Errorf("bench-side %s: %w: %q", side, err, out)
	}
	if ps := cmd.ProcessState; ps != nil {
		res.CPU = ps.UserTime() + ps.SystemTime()
	}
	return res, nil
}

// cmdBenchSide runs one side of cdcsync bench in this process and prints
// its result as JSON. cdcsync bench starts it; it is not for people.
func cmdBenchSide(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-side", flag.ContinueOnError)
	fs.SetOutput(stderr)
	side := fs.String("side", "", "the side")
	brokers := fs.String("brokers", "", "broker addresses")
	topic := fs.String("topic", "", "the source topic")
	events := fs.Int("events", 0, "records in the topic")
	partitions := fs.Int("partitions", 8, "partitions of the topic")
	round := fs.Int("round", 0, "round number")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the side to this file")
	configFile := fs.String("config", "", configFlagHelp)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sec, err := commandSecurity(*configFile)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *cpuProfile != "" {
		// The allocations too, next to the CPU profile: GC is a tenth of
		// a worker's CPU, and what allocates shows only here.
		defer writeAllocsProfile(strings.TrimSuffix(*cpuProfile, ".pprof") + ".allocs.pprof")
	}
	log, _ := newLogger("warn", stderr)
	res, err := bench.RunSide(ctx, bench.Side(*side), bench.SideOptions{Brokers: splitAddrs(*brokers), Topic: *topic, Events: *events,
		Partitions: int32(*partitions), Round: *round, Security: sec, Log: log})
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	return json.NewEncoder(stdout).Encode(res)
}

// startBrokerProcess runs "cdcsync broker" and reads its address. Stop
// reads the process's peak RSS, then interrupts it (so a CPU profile is
// written) and waits for it.
func startBrokerProcess(ctx context.Context, cpuProfile string) (*bench.Broker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"broker"}
	if cpuProfile != "" {
		args = append(args, "--cpuprofile", cpuProfile)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	stop := func() int64 {
		hwm := bench.PeakRSS(pid)
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return hwm
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("broker process: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "brokers=")
	if !ok {
		stop()
		return nil, errors.New("broker process: unexpected first line " + line)
	}
	return &bench.Broker{Brokers: []string{addr}, Stop: stop, CPU: func() time.Duration { return bench.ProcessCPU(pid) }}, nil
}

// cmdBroker serves the embedded broker and registry until interrupted. It
// prints "brokers=HOST:PORT" and "registry=URL" first, for scripts.
func cmdBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("broker", stdout)
	port := fs.Int("port", 0, "loopback port of the broker (0: any free port)")
	regPort := fs.Int("registry-port", 0, "loopback port of the registry (0: any free port)")
	partitions := fs.Int("partitions", 8, "default partitions of auto-created topics")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the broker to this file (cdcsync bench --profile)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	st, err := embedded.Start(embedded.Options{BrokerPort: *port, RegistryPort: *regPort, Partitions: int32(*partitions)})
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "brokers=%s\nregistry=%s\n", strings.Join(st.Brokers(), ","), st.RegistryURL())
	<-ctx.Done()
	return nil
}

// writeAllocsProfile writes the process's allocation profile (every
// allocation since start, sampled by the runtime) to path.
func writeAllocsProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("allocs").WriteTo(f, 0)
}
