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
//	cdcsync topology validate|describe|test [--output json] PATH...
//	cdcsync decode --format debezium-json [--key FILE] [--value FILE]
//	cdcsync schemas check --registry URL TOPOLOGY...
//	cdcsync dlq inspect --brokers HOST:PORT TOPIC [--list|--show P/O] [--output json] [filters]
//	cdcsync dlq replay --brokers HOST:PORT [--topologies DIR] [--dry-run] TOPIC [filters]
//	cdcsync --version
//
// The commands table (cli.go) is the source of truth for the usage text;
// docs/cli.md is checked against it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

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
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdcsync:", err)
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

// runMain runs the command args name. It returns nil or an error whose
// exit code exitCode gives (an *exitError; any other error is exit 1).
// Help asked for (-h, --help, help) is printed to stdout with exit 0;
// bad usage goes to stderr with exit 2.
func runMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return &exitError{code: 2}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText())
		return nil
	case "version", "-version", "--version":
		printVersion(stdout)
		return nil
	}
	cmd, rest, group := lookup(args)
	if cmd == nil && group != "" {
		switch {
		case len(rest) > 0 && (rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help"):
			fmt.Fprint(stdout, groupUsage(group))
			return nil
		case len(rest) == 0:
			return &exitError{code: 2, err: fmt.Errorf("%s: which command?\n%s", group, strings.TrimSuffix(groupUsage(group), "\n"))}
		}
		return &exitError{code: 2, err: fmt.Errorf("unknown command \"%s %s\"\n%s", group, rest[0], strings.TrimSuffix(groupUsage(group), "\n"))}
	}
	if cmd == nil {
		fmt.Fprint(stderr, usageText())
		return &exitError{code: 2, err: fmt.Errorf("unknown command %q", args[0])}
	}
	err := cmd.run(ctx, rest, stdio{in: stdin, out: stdout, errout: stderr})
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}
