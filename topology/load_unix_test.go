//go:build unix

package topology

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs Load with a deadline, so a regression that blocks (on a
// FIFO) fails the test instead of hanging it.
func loadWithin(t *testing.T, paths ...string) ([]*Plan, error) {
	t.Helper()
	type result struct {
		plans []*Plan
		err   error
	}
	done := make(chan result, 1)
	go func() {
		p, err := Load(paths...)
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		return r.plans, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Load(%v) did not return within 10s", paths)
		return nil, nil
	}
}

func named(name string) string { return strings.Replace(minimalDoc, "name: minimal", "name: "+name, 1) }

// Regression (issue 9): a directory entry that is a FIFO hung `topology
// validate`; a link to /dev/zero read until out of memory; dangling links
// and link loops were skipped without a word. Only bounded regular files
// (or links to them) are read; every other entry is reported by name and
// reason, and a link to a directory is a subdirectory, still ignored.
func TestLoadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a-good.yaml": named("good")})
	other := writeFiles(t, map[string]string{"target.txt": named("linked")})
	path := func(n string) string { return filepath.Join(dir, n) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(syscall.Mkfifo(path("fifo.yaml"), 0o644))
	must(os.Symlink("/dev/zero", path("zero.yaml")))
	must(os.Symlink(filepath.Join(dir, "gone.txt"), path("dangling.yaml")))
	must(os.Symlink("loop-b.yaml", path("loop-a.yaml")))
	must(os.Symlink("loop-a.yaml", path("loop-b.yaml")))
	must(os.Symlink(filepath.Join(other, "target.txt"), path("linked.yaml"))) // followed: a link to a regular file
	must(os.Mkdir(path("subdir.yaml"), 0o755))                                // ignored: a subdirectory
	must(os.Symlink(other, path("linkdir.yml")))                              // ignored: a link to a directory
	big := named("big") + "#" + strings.Repeat("x", MaxFileSize) + "\n"
	must(os.WriteFile(path("big.yaml"), []byte(big), 0o644))
	exact := named("exact") + "#"
	exact += strings.Repeat("x", MaxFileSize-len(exact)-1) + "\n"
	must(os.WriteFile(path("exact.yaml"), []byte(exact), 0o644)) // exactly MaxFileSize: read
	ln, err := net.Listen("unix", path("sock.yaml"))
	must(err)
	defer ln.Close()

	_, err = loadWithin(t, dir)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load = %v, want Errors", err)
	}
	want := map[string]string{
		"big.yaml":      "is " + strconv.Itoa(len(big)) + " bytes, larger than the 1048576-byte (1 MiB) limit for a topology file",
		"dangling.yaml": "is a dangling symbolic link: its target " + filepath.Join(dir, "gone.txt") + " does not exist",
		"fifo.yaml":     "is a named pipe (FIFO); only regular files (or symbolic links to them) are read",
		"loop-a.yaml":   "is a symbolic link loop",
		"loop-b.yaml":   "is a symbolic link loop",
		"sock.yaml":     "is a socket; only regular files",
		"zero.yaml":     "is a symbolic link to /dev/zero, which is a character device; only regular files (or symbolic links to them) are read",
	}
	got := map[string]string{}
	for _, e := range errs {
		got[filepath.Base(e.File)] = e.Reason
		if !errors.Is(e, ErrRead) || e.Line != 0 || e.Field != "" {
			t.Errorf("%v: want a file-level ErrRead", e)
		}
	}
	for f, reason := range want {
		if !strings.HasPrefix(got[f], reason) {
			t.Errorf("%s: reason %q, want it to start with %q", f, got[f], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("problems for %d files, want %d: %v", len(got), len(want), errs)
	}

	// Without the bad entries the directory loads, the link to a regular
	// file and the file of exactly MaxFileSize bytes included.
	for f := range want {
		must(os.Remove(path(f)))
	}
	plans, err := loadWithin(t, dir)
	if err != nil || len(plans) != 3 {
		t.Fatalf("Load = %d plans, %v; want good, exact and linked", len(plans), err)
	}

	// Paths named directly get the same treatment.
	must(syscall.Mkfifo(path("direct.fifo"), 0o644))
	for p, reason := range map[string]string{
		path("direct.fifo"): "is a named pipe (FIFO)",
		"/dev/zero":         "is a character device",
		"/dev/null":         "is a character device",
	} {
		_, err := loadWithin(t, p)
		if !errors.As(err, &errs) || len(errs) != 1 || !strings.HasPrefix(errs[0].Reason, reason) || errs[0].File != p {
			t.Errorf("Load(%s) = %v, want %q", p, err, reason)
		}
	}
	if _, err := LoadFile(path("direct.fifo")); !errors.Is(err, ErrRead) {
		t.Errorf("LoadFile(fifo) = %v", err)
	}
}
