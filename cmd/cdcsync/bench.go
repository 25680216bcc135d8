package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"

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
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the clients to this file")
	configFile := fs.String("config", "", "with --brokers: "+configFlagHelp)
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
	// The security block applies to a broker given with --brokers; the
	// brokers bench starts itself are PLAINTEXT.
	var sec processor.Security
	if len(bs) > 0 {
		var err error
		if sec, err = commandSecurity(*configFile); err != nil {
			return err
		}
	}
	if len(bs) == 0 && *inProcess {
		st, err := embedded.Start(embedded.Options{NoRegistry: true})
		if err != nil {
			return err
		}
		defer st.Close()
		bs = st.Brokers()
	} else if len(bs) == 0 {
		// Like the reference figures: the broker in its own process, so
		// the Go runtimes of broker and clients do not share a heap.
		addr, stop, err := startBrokerProcess(ctx)
		if err != nil {
			return err
		}
		defer stop()
		bs = []string{addr}
	}
	fmt.Fprintf(stdout, "broker: %s\n", strings.Join(bs, ","))
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
	log, _ := newLogger("warn", stderr)
	_, err := bench.Run(ctx, bench.Options{Log: log, Brokers: bs, Events: *events, Partitions: int32(*partitions), DupRatio: *dup, Rounds: *rounds,
		ExactlyOnce: *guarantee == "exactly_once", Rate: *rate, Security: sec}, stdout)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}

// startBrokerProcess runs "cdcsync broker" and reads its address.
func startBrokerProcess(ctx context.Context) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "broker")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("broker process: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "brokers=")
	if !ok {
		stop()
		return "", nil, errors.New("broker process: unexpected first line " + line)
	}
	return addr, stop, nil
}

// cmdBroker serves the embedded broker and registry until interrupted. It
// prints "brokers=HOST:PORT" and "registry=URL" first, for scripts.
func cmdBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("broker", stdout)
	port := fs.Int("port", 0, "loopback port of the broker (0: any free port)")
	regPort := fs.Int("registry-port", 0, "loopback port of the registry (0: any free port)")
	partitions := fs.Int("partitions", 8, "default partitions of auto-created topics")
	if err := fs.parse(args); err != nil {
		return err
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
