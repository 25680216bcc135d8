package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/cdcsync/cdcsync/topology"
)

func cmdTopology(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &exitError{code: 2, err: errors.New("usage: cdcsync topology validate PATH... | describe PATH")}
	}
	switch args[0] {
	case "validate":
		fs := flag.NewFlagSet("topology validate", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return &exitError{code: 2, err: errors.New("usage: cdcsync topology validate PATH...")}
		}
		plans, err := topology.Load(fs.Args()...)
		if err != nil {
			var es topology.Errors
			if errors.As(err, &es) {
				for _, e := range es {
					fmt.Fprintln(stdout, e.Error())
				}
				return &exitError{code: 1, err: fmt.Errorf("%d problem(s) found", len(es))}
			}
			return &exitError{code: 1, err: err}
		}
		for _, p := range plans {
			fmt.Fprintf(stdout, "ok  %s  (%s)\n", p.File(), p.Name())
		}
		return nil
	case "describe":
		fs := flag.NewFlagSet("topology describe", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return &exitError{code: 2, err: errors.New("usage: cdcsync topology describe PATH")}
		}
		plans, err := topology.Load(fs.Arg(0))
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		for i, p := range plans {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			fmt.Fprint(stdout, p.Describe())
		}
		return nil
	}
	return &exitError{code: 2, err: fmt.Errorf("unknown topology command %q (validate, describe)", args[0])}
}
