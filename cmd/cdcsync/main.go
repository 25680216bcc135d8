// Command cdcsync syncs systems of record through Kafka: it reads Debezium
// change topics, drops changes it already applied, keeps each field
// written only by the system that owns it, and produces sync topics.
//
// Usage:
//
//	cdcsync run --brokers HOST:PORT[,..] --topologies DIR [--config worker.yaml]
//	cdcsync demo [--serve]
//	cdcsync bench [flags]
//	cdcsync broker [--port N]
//	cdcsync topology validate PATH...
//	cdcsync topology describe PATH
//	cdcsync decode --format debezium-json [--key FILE] [--value FILE]
//	cdcsync dlq inspect --brokers HOST:PORT TOPIC [--list|--show P/O] [filters]
//	cdcsync dlq replay --brokers HOST:PORT [--topologies DIR] TOPIC [filters]
//	cdcsync schemas check --registry URL TOPOLOGY...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

const usage = `cdcsync: Debezium CDC sync between systems of record, on Kafka.

Usage:
  cdcsync run --brokers HOST:PORT[,..] --topologies DIR [--config worker.yaml]
  cdcsync demo [--serve]            run the main job on an in-process broker and registry
  cdcsync bench [flags]             measure pipeline throughput against a raw passthrough
  cdcsync broker [--port N]         serve the embedded broker and registry (for tests and tools)
  cdcsync topology validate PATH... check topology files or directories
  cdcsync topology describe PATH    print the compiled plan of a topology
  cdcsync decode --format debezium-json [--key FILE] [--value FILE] [--topic T --connector KIND]
  cdcsync schemas check --registry URL TOPOLOGY...
  cdcsync dlq inspect --brokers HOST:PORT TOPIC [--list | --show PARTITION/OFFSET] [filters]
  cdcsync dlq replay  --brokers HOST:PORT [--topologies DIR] TOPIC [filters]

Run "cdcsync COMMAND -h" for the flags of a command.
`

// exitError carries a process exit code. Commands return it for "ran fine
// but the answer is no" (exit 1 from validate) as well as for failures.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func main() {
	ctx, stop := signalContext()
	defer stop()
	err := runMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "cdcsync:", err)
	}
	if errors.Is(err, flag.ErrHelp) {
		code = 2
	}
	os.Exit(code)
}

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts
// the soft shutdown; a second signal exits at once, with code 130.
func signalContext() (context.Context, func()) {
	return notifyContext(os.Exit, syscall.SIGINT, syscall.SIGTERM)
}

// notifyContext is signalContext with the exit function and the signals
// given, for tests.
func notifyContext(exit func(int), sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, sigs...)
	stopped := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(os.Stderr, "cdcsync: %v: shutting down (send it again to exit at once)\n", s)
			cancel()
		case <-stopped:
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "cdcsync: second signal: exiting now")
			exit(130)
		case <-stopped:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(stopped)
			cancel()
		})
	}
}

func runMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, stdout, stderr)
	case "broker":
		return cmdBroker(ctx, rest, stdout, stderr)
	case "bench-side": // hidden: one side of cdcsync bench, in its own process
		return cmdBenchSide(ctx, rest, stdout, stderr)
	case "topology":
		return cmdTopology(rest, stdout, stderr)
	case "decode":
		return cmdDecode(rest, stdin, stdout, stderr)
	case "dlq":
		return cmdDLQ(ctx, rest, stdout, stderr)
	case "schemas":
		return cmdSchemas(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, err: fmt.Errorf("unknown command %q", cmd)}
}
