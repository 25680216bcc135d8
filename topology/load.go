package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// LoadFile reads and parses one topology file.
func LoadFile(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{readError(path, err)}
	}
	return Parse(path, data)
}

// Load loads the topologies in paths. A path may be a file, loaded
// whatever its name, or a directory, whose *.yaml and *.yml files are
// loaded in name order; subdirectories, other files and names starting
// with "." are ignored. Topology names must be unique across everything
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
	if len(errs) > 0 {
		return nil, errs
	}
	return plans, nil
}

// expand lists the topology files a path names.
func expand(path string) ([]string, *Error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, readError(path, err)
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
		if !e.Type().IsRegular() { // follow symlinks, as Kubernetes ConfigMap mounts use them
			if fi, err := os.Stat(full); err != nil || fi.IsDir() {
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
