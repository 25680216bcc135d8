//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Regression (issue 9): `topology validate` on a directory holding a FIFO
// named *.yaml hung, and a link to /dev/zero read until out of memory. It
// now prints one problem per bad entry and exits 1, without blocking.
func TestTopologyValidateIrregularEntries(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "good.yaml", jsonTopology)
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere.yaml", filepath.Join(dir, "dangling.yaml")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	var (
		stdout string
		err    error
	)
	go func() {
		defer close(done)
		stdout, _, err = run(t, "", "topology", "validate", dir)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("topology validate blocked")
	}
	wantExit(t, err, 1)
	if err.Error() != "3 problem(s) found" {
		t.Errorf("err = %v", err)
	}
	for _, want := range []string{
		filepath.Join(dir, "pipe.yaml") + ": is a named pipe (FIFO); only regular files (or symbolic links to them) are read\n",
		filepath.Join(dir, "zero.yml") + ": is a symbolic link to /dev/zero, which is a character device;",
		filepath.Join(dir, "dangling.yaml") + ": is a dangling symbolic link: its target nowhere.yaml does not exist\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}
