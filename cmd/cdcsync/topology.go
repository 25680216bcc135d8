package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/cdcsync/cdcsync/topology"
)

// validateJSON is what `topology validate --output json` prints.
type validateJSON struct {
	OK         bool          `json:"ok"`
	Topologies []validTopo   `json:"topologies"` // the valid ones; empty when any is invalid
	Problems   []problemJSON `json:"problems"`
}

type validTopo struct {
	File string `json:"file"`
	Name string `json:"name"`
}

// problemJSON is one topology.Error.
type problemJSON struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
	Text   string `json:"text"` // as the text output prints it: file:line: field: reason
}

func cmdTopologyValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topology validate", stdout)
	asJSON := outputFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	js, err := asJSON()
	if err != nil {
		return err
	}
	plans, err := topology.Load(fs.Args()...)
	if js {
		out := validateJSON{OK: err == nil, Topologies: []validTopo{}, Problems: []problemJSON{}}
		var es topology.Errors
		switch {
		case errors.As(err, &es):
			for _, e := range es {
				out.Problems = append(out.Problems, problemJSON{File: e.File, Line: e.Line, Field: e.Field, Reason: e.Reason, Text: e.Error()})
			}
		case err != nil:
			out.Problems = append(out.Problems, problemJSON{Reason: err.Error(), Text: err.Error()})
		}
		for _, p := range plans {
			out.Topologies = append(out.Topologies, validTopo{File: p.File(), Name: p.Name()})
		}
		if werr := writeJSON(stdout, out); werr != nil {
			return werr
		}
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("%d problem(s) found", len(out.Problems))}
		}
		return nil
	}
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
}

func cmdTopologyDescribe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topology describe", stdout)
	asJSON := outputFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	js, err := asJSON()
	if err != nil {
		return err
	}
	plans, err := topology.Load(fs.Arg(0))
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if js {
		// The same shape as the REST API's GET /topologies/{name}: one
		// option list (Plan.Options) behind the text, this and the API.
		out := make([]topology.PlanJSON, len(plans))
		for i, p := range plans {
			out[i] = p.JSON()
		}
		return writeJSON(stdout, out)
	}
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprint(stdout, p.Describe())
	}
	return nil
}
