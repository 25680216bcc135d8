package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// command is one leaf of the command tree: "run", "topology validate".
// The usage text, the dispatch and the -h of every command come from the
// commands table, so they cannot disagree.
type command struct {
	name    string // the words after "cdcsync"
	args    string // the synopsis after the name
	summary string // one line, for the usage text
	// minArgs and maxArgs bound the positional arguments (maxArgs -1: no
	// bound); flagSet.parse refuses others with exit 2.
	minArgs, maxArgs int
	// hidden commands are internal (one process of another command): not
	// in the usage, and free to parse their own arguments.
	hidden bool
	run    func(ctx context.Context, args []string, io stdio) error
}

// stdio is a command's standard streams.
type stdio struct {
	in          io.Reader
	out, errout io.Writer
}

// commands lists every command, in the order the usage text shows them.
// It is set by init: the commands' functions refer to it (newFlagSet).
var commands []*command

func init() { commands = commandTable() }

func commandTable() []*command {
	return []*command{
		{name: "run", minArgs: 0, maxArgs: 0, args: "--brokers HOST:PORT[,..] --topologies DIR [--config worker.yaml]",
			summary: "run a worker: every topology of --topologies, until SIGINT or SIGTERM",
			run:     func(ctx context.Context, a []string, s stdio) error { return cmdRun(ctx, a, s.out, s.errout) }},
		{name: "demo", minArgs: 0, maxArgs: 0, args: "[--serve]", summary: "run the main job on an in-process broker and registry",
			run: func(ctx context.Context, a []string, s stdio) error { return cmdDemo(ctx, a, s.out, s.errout) }},
		{name: "bench", minArgs: 0, maxArgs: 0, args: "[flags]", summary: "measure pipeline throughput against a raw passthrough",
			run: func(ctx context.Context, a []string, s stdio) error { return cmdBench(ctx, a, s.out, s.errout) }},
		{name: "broker", minArgs: 0, maxArgs: 0, args: "[--port N]", summary: "serve the embedded broker and registry (for tests and tools)",
			run: func(ctx context.Context, a []string, s stdio) error { return cmdBroker(ctx, a, s.out, s.errout) }},
		{name: "bench-side", hidden: true, maxArgs: -1, summary: "one side of cdcsync bench, in its own process",
			run: func(ctx context.Context, a []string, s stdio) error { return cmdBenchSide(ctx, a, s.out, s.errout) }},
		{name: "topology validate", minArgs: 1, maxArgs: -1, args: "[--output json] PATH...", summary: "check topology files or directories",
			run: func(_ context.Context, a []string, s stdio) error { return cmdTopologyValidate(a, s.out, s.errout) }},
		{name: "topology describe", minArgs: 1, maxArgs: 1, args: "[--output json] PATH", summary: "print the compiled plan of a topology",
			run: func(_ context.Context, a []string, s stdio) error { return cmdTopologyDescribe(a, s.out, s.errout) }},
		{name: "topology test", minArgs: 1, maxArgs: -1, args: "[--output json] FILE...", summary: "run topology fixtures offline, no broker (docs/cli.md)",
			run: func(_ context.Context, a []string, s stdio) error { return cmdTopologyTest(a, s.out, s.errout) }},
		{name: "decode", minArgs: 0, maxArgs: 0, args: "--format debezium-json [--key FILE] [--value FILE] [--topic T --connector KIND]",
			summary: "decode one Debezium record and print the event",
			run:     func(_ context.Context, a []string, s stdio) error { return cmdDecode(a, s.in, s.out, s.errout) }},
		{name: "schemas check", minArgs: 1, maxArgs: -1, args: "--registry URL TOPOLOGY...",
			summary: "check Avro topologies against a live schema registry",
			run:     func(ctx context.Context, a []string, s stdio) error { return cmdSchemas(ctx, a, s.out, s.errout) }},
		{name: "outbox relay", minArgs: 0, maxArgs: 0, args: "--dsn(-env|-file) DSN --brokers HOST:PORT[,..] [--table outbox] [--topic T]",
			summary: "publish a PostgreSQL outbox table's rows to Kafka, at least once (docs/outbox.md)",
			run:     func(ctx context.Context, a []string, s stdio) error { return cmdOutboxRelay(ctx, a, s.out, s.errout) }},
		{name: "dlq inspect", minArgs: 1, maxArgs: 1, args: "--brokers HOST:PORT TOPIC [--list | --show PARTITION/OFFSET] [--output json] [filters]",
			summary: "summarize, list or show the records of a DLQ topic",
			run:     func(ctx context.Context, a []string, s stdio) error { return cmdDLQInspect(ctx, a, s.out, s.errout) }},
		{name: "dlq replay", minArgs: 1, maxArgs: 1, args: "--brokers HOST:PORT [--topologies DIR] [--dry-run] TOPIC [filters]",
			summary: "produce DLQ records back to their source partitions",
			run:     func(ctx context.Context, a []string, s stdio) error { return cmdDLQReplay(ctx, a, s.out, s.errout) }},
		{name: "saga list", minArgs: 1, maxArgs: 1, args: "--brokers HOST:PORT TOPOLOGY [--state STATE,..] [--output json]",
			summary: "list the sagas of a saga topology, from its state topic",
			run:     func(ctx context.Context, a []string, s stdio) error { return cmdSagaList(ctx, a, s.out, s.errout) }},
		{name: "saga show", minArgs: 2, maxArgs: 2, args: "--brokers HOST:PORT [--topologies DIR] TOPOLOGY ID [--output json]",
			summary: "show one saga: its steps, outcomes, timestamps and the commands sent",
			run:     func(ctx context.Context, a []string, s stdio) error { return cmdSagaShow(ctx, a, s.out, s.errout) }},
	}
}

// usageLine is a command's synopsis, "cdcsync NAME ARGS".
func (c *command) usageLine() string {
	l := "cdcsync " + c.name
	if c.args != "" {
		l += " " + c.args
	}
	return l
}

// commandList is the command list of the usage text: each synopsis, with
// its summary on the next line. The README's command list is this text.
func commandList() string {
	var b strings.Builder
	for _, c := range commands {
		if !c.hidden {
			b.WriteString(c.usageLine() + "\n      " + c.summary + "\n")
		}
	}
	b.WriteString("cdcsync --version\n      print the version of cdcsync and of Go\n")
	return b.String()
}

// usageText is the text of "cdcsync -h".
func usageText() string {
	var b strings.Builder
	b.WriteString("cdcsync: Debezium CDC sync between systems of record, on Kafka.\n\nUsage:\n")
	for _, l := range strings.SplitAfter(strings.TrimSuffix(commandList(), "\n"), "\n") {
		b.WriteString("  " + l)
	}
	b.WriteString("\n")
	b.WriteString("\nRun \"cdcsync COMMAND -h\" for the flags of a command. docs/cli.md describes them all.\n")
	return b.String()
}

// groupUsage is the usage of a command group ("topology", "dlq"): its
// commands' lines.
func groupUsage(group string) string {
	var b strings.Builder
	b.WriteString("usage:\n")
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") && !c.hidden {
			b.WriteString("  " + c.usageLine() + "\n        " + c.summary + "\n")
		}
	}
	return b.String()
}

// lookup finds the command args start with, and returns the arguments
// after its name. group is set when args name a group but none of its
// commands (then c is nil).
func lookup(args []string) (c *command, rest []string, group string) {
	for _, cmd := range commands {
		words := strings.Fields(cmd.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmd.name {
			return cmd, args[len(words):], ""
		}
	}
	for _, cmd := range commands {
		if g, _, ok := strings.Cut(cmd.name, " "); ok && len(args) > 0 && args[0] == g {
			return nil, args[1:], g
		}
	}
	return nil, args, ""
}

// errHelpShown is returned by flagSet.parse after it printed the usage
// for -h or --help; runMain turns it into exit 0.
var errHelpShown = errors.New("help shown")

// flagSet is a command's flag set: flag.FlagSet, parsed so that flags may
// come before and after the positional arguments, with -h on stdout and
// every parse error reported once, as exit 2.
type flagSet struct {
	*flag.FlagSet
	cmd    *command
	stdout io.Writer
	pos    []string
}

// newFlagSet returns the flag set of the command named name, which must
// be in the commands table.
func newFlagSet(name string, stdout io.Writer) *flagSet {
	var cmd *command
	for _, c := range commands {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		panic("cdcsync: command " + name + " is not in the commands table")
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would print the error and the whole usage; parse
	// reports the error once, through the returned error.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, cmd: cmd, stdout: stdout}
}

// parse parses args, flags and positional arguments in any order: the
// flag package stops at the first positional argument, so parse collects
// it and goes on with the rest. "--" ends the flags; everything after it
// is positional. -h, -help and --help print the usage to stdout and
// return errHelpShown; an unknown flag or a bad value is an exitError
// with code 2.
func (f *flagSet) parse(args []string) error {
	f.pos = f.pos[:0]
	for {
		err := f.FlagSet.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.printUsage(f.stdout)
			return errHelpShown
		}
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("%s: %w (see cdcsync %s -h)", f.cmd.name, err, f.cmd.name)}
		}
		rest := f.FlagSet.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			f.pos = append(f.pos, rest...)
			return f.checkArgs()
		}
		if len(rest) == 0 {
			return f.checkArgs()
		}
		f.pos = append(f.pos, rest[0])
		args = rest[1:]
	}
}

// checkArgs refuses a count of positional arguments the command does not
// take.
func (f *flagSet) checkArgs() error {
	n, c := len(f.pos), f.cmd
	switch {
	case n < c.minArgs:
		return f.usageError("")
	case c.maxArgs >= 0 && n > c.maxArgs:
		return f.usageError(fmt.Sprintf("unexpected argument %q", f.pos[c.maxArgs]))
	}
	return nil
}

// Args returns the positional arguments, in order.
func (f *flagSet) Args() []string { return f.pos }

// NArg is len(Args()).
func (f *flagSet) NArg() int { return len(f.pos) }

// Arg returns the i'th positional argument, or "".
func (f *flagSet) Arg(i int) string {
	if i < 0 || i >= len(f.pos) {
		return ""
	}
	return f.pos[i]
}

// printUsage writes the command's synopsis, summary and flags.
func (f *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: cdcsync %s %s\n\n%s\n", f.cmd.name, f.cmd.args, f.cmd.summary)
	n := 0
	f.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
	if extra := commandNotes[f.cmd.name]; extra != "" {
		fmt.Fprintf(w, "\n%s\n", extra)
	}
}

// usageError is exit 2 with the command's synopsis.
func (f *flagSet) usageError(why string) error {
	if why != "" {
		why += "\n"
	}
	return &exitError{code: 2, err: fmt.Errorf("%susage: cdcsync %s %s (see cdcsync %s -h)", why, f.cmd.name, f.cmd.args, f.cmd.name)}
}

// commandNotes are printed after a command's flags by -h.
var commandNotes = map[string]string{
	"dlq inspect": "filters: --reason TEXT  --key KEY  --since TIME  --until TIME  (TIME: RFC 3339 or a duration ago, e.g. 1h)\n" +
		"exit status: 0 done; 1 could not read; 2 bad usage or configuration;\n" +
		"             3 done, but some records are not readable DLQ records and were skipped",
	"dlq replay": "filters: --reason TEXT  --key KEY  --since TIME  --until TIME  (TIME: RFC 3339 or a duration ago, e.g. 1h)\n" +
		"Each replayed record carries the header cdcsync.replay.of = DLQTOPIC/PARTITION@OFFSET of the DLQ record.\n" +
		"exit status: 0 done; 1 could not read or write (what was written is reported first);\n" +
		"             2 bad usage or configuration; 3 done, but some records are not readable DLQ records and were skipped",
	"topology test": "The fixtures of topology DIR/NAME.yaml are the files DIR/NAME_test/*.yaml. Each FILE is a fixture file,\n" +
		"a NAME_test directory, a topology file, or a topology directory (all its NAME_test directories). See docs/cli.md.\n" +
		"exit status: 0 every case passed; 1 some case failed (a diff is printed); 2 bad fixture or topology",
	"saga list": "STATE: running, compensating, completed, compensated, failed, in_flight (running and compensating) or all.\n" +
		"exit status: 0 done; 1 could not read; 2 bad usage or configuration; 3 done, but some records were not saga states",
	"saga show": "A failed saga needs a human: docs/sagas.md says what to do.\n" +
		"exit status: 0 shown; 1 no such saga, or could not read; 2 bad usage or configuration",
	"topology validate": "exit status: 0 all valid; 1 problems found (file:line: field: reason); 2 bad usage",
}

// outputFlag adds --output to fs and returns a function that reads it:
// true for json, false for text; anything else is exit 2.
func outputFlag(fs *flagSet) func() (bool, error) {
	o := fs.String("output", "text", "output format: text or json")
	return func() (bool, error) {
		switch *o {
		case "text":
			return false, nil
		case "json":
			return true, nil
		}
		return false, &exitError{code: 2, err: fmt.Errorf("--output %q: want text or json", *o)}
	}
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// version is stamped at build time:
//
//	go build -ldflags "-X main.version=v1.4.0" ./cmd/cdcsync
//
// When it is not, versionString falls back on the module version and the
// VCS revision the Go toolchain records.
var version string

// versionString is the version cdcsync --version prints.
func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" && v == "devel" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += "+" + rev
		if modified == "true" {
			v += "-dirty"
		}
	}
	return v
}

// printVersion writes "cdcsync VERSION" and the Go version and platform.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "cdcsync %s\n%s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
