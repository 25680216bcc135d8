package topology

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Parse decodes, defaults, validates and compiles the topology in data.
// file names the source in error messages and is what Plan.File returns;
// nothing is read from it. The error, if any, is an Errors listing every
// problem in the file, ordered by line.
func Parse(file string, data []byte) (*Plan, error) {
	c, errs, ok := decodeFile(file, data)
	if !ok {
		return nil, errs.err()
	}
	p, verrs := c.compileErrs()
	errs = append(errs, verrs...)
	if len(errs) > 0 {
		errs.sortByLine()
		return nil, errs
	}
	return p, nil
}

// MaxFileSize is the largest topology file read, 1 MiB. Real topologies
// are a few kilobytes; the bound keeps a wrong path (a log, a device)
// from being read into memory.
const MaxFileSize = 1 << 20

// LoadFile reads and parses one topology file. Only a regular file, or a
// symbolic link to one, of at most MaxFileSize bytes is read; anything
// else (a FIFO, a device, a socket, a dangling link, a link loop) is an
// *Error wrapping ErrRead that says what the path is.
func LoadFile(path string) (*Plan, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, Errors{err}
	}
	return Parse(path, data)
}

// readFile reads a topology file, refusing what is not a bounded regular
// file before it opens it: opening a FIFO blocks until a writer comes,
// and /dev/zero never ends.
func readFile(path string) ([]byte, *Error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, statError(path, err)
	}
	if e := checkRegular(path, fi); e != nil {
		return nil, e
	}
	// O_NONBLOCK: should the path have become a FIFO since Stat, open
	// returns at once instead of waiting for a writer; the check on the
	// open file below then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, readError(path, err)
	}
	if e := checkRegular(path, fi); e != nil {
		return nil, e
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, readError(path, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(path, int64(len(data)))
	}
	return data, nil
}

// checkRegular refuses a file that is not regular or is too large.
func checkRegular(path string, fi os.FileInfo) *Error {
	m := fi.Mode()
	if m.IsRegular() {
		if fi.Size() > MaxFileSize {
			return tooLarge(path, fi.Size())
		}
		return nil
	}
	var what string
	switch {
	case m.IsDir():
		what = "a directory"
	case m&os.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		what = "a socket"
	case m&os.ModeCharDevice != 0:
		what = "a character device"
	case m&os.ModeDevice != 0:
		what = "a block device"
	default:
		what = "not a regular file (mode " + m.String() + ")"
	}
	reason := "is " + what
	if target, err := os.Readlink(path); err == nil {
		reason = fmt.Sprintf("is a symbolic link to %s, which is %s", target, what)
	}
	return &Error{File: path, Reason: reason + "; only regular files (or symbolic links to them) are read", Err: ErrRead}
}

func tooLarge(path string, size int64) *Error {
	return &Error{
		File:   path,
		Reason: fmt.Sprintf("is %d bytes, larger than the %d-byte (1 MiB) limit for a topology file", size, MaxFileSize),
		Err:    ErrRead,
	}
}

// statError explains why a path cannot be followed: a dangling symbolic
// link or a link loop is named as such.
func statError(path string, err error) *Error {
	switch target, lerr := os.Readlink(path); {
	case errors.Is(err, syscall.ELOOP):
		return &Error{File: path, Reason: "is a symbolic link loop (too many levels of symbolic links)", Err: fmt.Errorf("%w: %w", ErrRead, err)}
	case lerr == nil && errors.Is(err, fs.ErrNotExist):
		return &Error{File: path, Reason: fmt.Sprintf("is a dangling symbolic link: its target %s does not exist", target), Err: fmt.Errorf("%w: %w", ErrRead, err)}
	}
	return readError(path, err)
}

// Load loads the topologies in paths. A path may be a file, loaded
// whatever its name, or a directory, whose *.yaml and *.yml files are
// loaded in name order; subdirectories (and links to them), other files and
// names starting with "." are ignored. A *.yaml or *.yml entry that is not
// a regular file is reported, as LoadFile does. Topology names must be unique across everything
// loaded. Plans are returned in load order.
//
// Load reports every problem in every file. If there is any, it returns no
// plans and an Errors, so a worker never starts a subset of its pipelines.
// Finding no topology file at all is an error.
func Load(paths ...string) ([]*Plan, error) {
	var (
		files []string
		errs  Errors
		seen  = map[string]bool{}
	)
	for _, path := range paths {
		found, err := expand(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range found {
			if clean := filepath.Clean(f); !seen[clean] {
				seen[clean] = true
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 && len(errs) == 0 {
		where := strings.Join(paths, ", ")
		if where == "" {
			where = "(no paths given)"
		}
		errs = append(errs, &Error{File: where, Reason: "no topology files (*.yaml, *.yml)", Err: ErrMissing})
	}

	plans := make([]*Plan, 0, len(files))
	byName := map[string]*Plan{}
	for _, f := range files {
		p, err := LoadFile(f)
		if err != nil {
			errs = append(errs, err.(Errors)...)
			continue
		}
		if first, dup := byName[p.Name()]; dup {
			errs = append(errs, &Error{
				File:   p.File(),
				Line:   p.cfg.line("name"),
				Field:  "name",
				Reason: fmt.Sprintf("topology %q is already defined in %s", p.Name(), where(first)),
				Err:    ErrDuplicateName,
			})
			continue
		}
		byName[p.Name()] = p
		plans = append(plans, p)
	}
	errs = append(errs, crossCheck(plans)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return plans, nil
}

// expand lists the topology files a path names.
func expand(path string) ([]string, *Error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, statError(path, err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, readError(path, err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		full := filepath.Join(path, name)
		if e.IsDir() {
			continue
		}
		// Follow symlinks, as Kubernetes ConfigMap mounts use them; a link
		// to a directory is a subdirectory. Anything else that is not a
		// regular file is kept, so that LoadFile reports it rather than
		// it being skipped without a word.
		if e.Type()&os.ModeSymlink != 0 {
			if fi, err := os.Stat(full); err == nil && fi.IsDir() {
				continue
			}
		}
		files = append(files, full)
	}
	return files, nil
}

func readError(path string, err error) *Error {
	reason := err.Error()
	if pe, ok := err.(*os.PathError); ok {
		reason = pe.Op + ": " + pe.Err.Error()
	}
	return &Error{File: path, Reason: reason, Err: fmt.Errorf("%w: %w", ErrRead, err)}
}

// where is "file:line" of a plan's name, for duplicate-name errors.
func where(p *Plan) string {
	if l := p.cfg.line("name"); l > 0 {
		return fmt.Sprintf("%s:%d", p.File(), l)
	}
	return p.File()
}

// namedTopic is a topic a plan names at load time, and the field that
// names it.
type namedTopic struct {
	plan  *Plan
	field string
	topic string
}

// namedTopics are the topics p names: ledger, DLQ, a sink topic without
// placeholders and the listed source topics.
func (p *Plan) namedTopics() []namedTopic {
	out := []namedTopic{{p, "name", string(p.LedgerTopic())}, {p, "dlq.topic", string(p.DLQTopic())}}
	if lit, ok := p.sink.literal(); ok {
		out = append(out, namedTopic{p, "sink.topic", lit})
	}
	for i, t := range p.cfg.Source.Topics {
		out = append(out, namedTopic{p, fmt.Sprintf("source.topics[%d]", i), string(t)})
	}
	return out
}

// crossCheck refuses topics that clash between the topologies loaded
// together:
//
//   - a sink or DLQ topic that is another topology's ledger, and a source
//     that reads another topology's ledger: a ledger holds only its own
//     topology's dedup entries;
//   - a sink topic that is another topology's DLQ: its dead-letter tools
//     would read sync records as failures;
//   - any two named topics that Kafka treats as the same name ('.' and
//     '_'), since the broker refuses to create the second.
//
// Allowed, and documented: two topologies sharing a DLQ topic (every DLQ
// record names its topology, and replay writes each back to its own
// source), sharing a sink topic (fan-in), and one topology's sink or DLQ
// being another's source (chaining).
func crossCheck(plans []*Plan) Errors {
	var errs Errors
	add := func(p *Plan, field, format string, args ...any) {
		errs = append(errs, &Error{File: p.File(), Line: p.cfg.line(field), Field: field, Reason: fmt.Sprintf(format, args...), Err: ErrInvalid})
	}
	other := func(p *Plan) string { return fmt.Sprintf("topology %q (%s)", p.Name(), p.File()) }
	for _, a := range plans {
		for _, b := range plans {
			if a == b {
				continue
			}
			ledger := string(b.LedgerTopic())
			if lit, ok := a.sink.literal(); ok && lit == ledger {
				add(a, "sink.topic", "%q is the ledger topic of %s: sync records would corrupt its dedup ledger", lit, other(b))
			} else if ok && lit == string(b.DLQTopic()) {
				add(a, "sink.topic", "%q is the DLQ topic of %s: sync records would be counted as its dead letters", lit, other(b))
			}
			if d := string(a.DLQTopic()); d == ledger {
				add(a, "dlq.topic", "%q is the ledger topic of %s: dead letters would corrupt its dedup ledger", d, other(b))
			}
			if a.MatchesTopic(ledger) {
				field := "source.topic_pattern"
				if i := slices.Index(a.cfg.Source.Topics, Topic(ledger)); i >= 0 {
					field = fmt.Sprintf("source.topics[%d]", i)
				}
				add(a, field, "reads %q, the ledger topic of %s: a ledger is not a change topic", ledger, other(b))
			}
		}
	}
	var named []namedTopic
	for _, p := range plans {
		named = append(named, p.namedTopics()...)
	}
	for j, y := range named {
		for _, x := range named[:j] {
			if x.plan != y.plan && TopicsCollide(x.topic, y.topic) {
				add(y.plan, y.field, "%q collides with %q (%s of %s): Kafka treats '.' and '_' in topic names as the same and refuses the second",
					y.topic, x.topic, x.field, other(x.plan))
				break
			}
		}
	}
	return errs
}
