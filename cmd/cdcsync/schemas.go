package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// cmdSchemas runs "cdcsync schemas check": the pre-deploy gate that checks
// topologies against a live schema registry. It exits 1 on any problem,
// so it can run in CI.
func cmdSchemas(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schemas check", stdout)
	registry := fs.String("registry", os.Getenv("CDCSYNC_REGISTRY_URL"), "schema registry URL (default $CDCSYNC_REGISTRY_URL)")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request registry timeout")
	configFile := fs.String("config", "", configFlagHelp)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *registry == "" {
		return fs.usageError("--registry is required (or CDCSYNC_REGISTRY_URL)")
	}
	src := "CDCSYNC_REGISTRY_URL"
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "registry" {
			src = "--registry"
		}
	})
	if err := processor.CheckRegistryURL(*registry); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("%s: %w", src, err)}
	}
	sec, err := commandSecurity(*configFile)
	if err != nil {
		return err
	}
	opts, err := sec.RegistryOptions()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	opts.Timeout = *timeout
	plans, err := topology.Load(fs.Args()...)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	c := schemas.NewClient(*registry, opts)
	problems := 0
	for _, p := range plans {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(stdout, "topology %s (%s)\n", p.Name(), p.File())
		findings, err := schemas.CheckPlan(c, p)
		for _, f := range findings {
			fmt.Fprintf(stdout, "  %s\n", f)
			if !f.OK {
				problems++
			}
		}
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("topology %s: %w", p.Name(), err)}
		}
	}
	if problems > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) found", problems)}
	}
	fmt.Fprintln(stdout, "all checks passed")
	return nil
}
