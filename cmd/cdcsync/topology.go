package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

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
		out := make([]planJSON, len(plans))
		for i, p := range plans {
			out[i] = describePlan(p)
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

// planJSON is the compiled plan of a topology, as `topology describe
// --output json` prints it: every option under its YAML name, defaults
// filled in, durations as Go durations ("168h0m0s" is written "168h").
type planJSON struct {
	Name          string   `json:"name"`
	File          string   `json:"file"`
	ConsumerGroup string   `json:"consumer_group"`
	LedgerTopic   string   `json:"ledger_topic"`
	Systems       []string `json:"systems"`
	Source        struct {
		Topics       []string `json:"topics,omitempty"`
		TopicPattern string   `json:"topic_pattern,omitempty"`
		System       string   `json:"system"`
		Format       string   `json:"format"`
		Tombstones   string   `json:"tombstones"`
		Truncate     string   `json:"truncate"`
	} `json:"source"`
	Dedup struct {
		Key    string `json:"key"`
		Field  string `json:"field,omitempty"`
		Window string `json:"window"`
	} `json:"dedup"`
	Authority struct {
		Owners       map[string]string `json:"owners"`
		DefaultOwner string            `json:"default_owner"`
		OnViolation  string            `json:"on_violation"`
	} `json:"authority"`
	Sink struct {
		Topic           string   `json:"topic"`
		Key             []string `json:"key"`
		Format          string   `json:"format"`
		SubjectStrategy string   `json:"subject_strategy,omitempty"`
	} `json:"sink"`
	DLQ struct {
		Topic string `json:"topic"`
	} `json:"dlq"`
	Errors struct {
		Retry struct {
			Initial    string  `json:"initial"`
			Max        string  `json:"max"`
			Multiplier float64 `json:"multiplier"`
			MaxElapsed string  `json:"max_elapsed"`
		} `json:"retry"`
		Breaker struct {
			Failures int    `json:"failures"`
			Open     string `json:"open"`
		} `json:"breaker"`
		Tolerance string `json:"tolerance"`
	} `json:"errors"`
	Guarantee      string `json:"guarantee"`
	CommitInterval string `json:"commit_interval,omitempty"` // exactly_once only
}

func describePlan(p *topology.Plan) planJSON {
	var j planJSON
	j.Name, j.File, j.ConsumerGroup, j.LedgerTopic = p.Name(), p.File(), string(p.Group()), string(p.LedgerTopic())
	for _, s := range p.Systems() {
		j.Systems = append(j.Systems, string(s))
	}
	for _, t := range p.SourceTopics() {
		j.Source.Topics = append(j.Source.Topics, string(t))
	}
	j.Source.TopicPattern = p.SourcePattern()
	j.Source.System, j.Source.Format = string(p.SourceSystem()), p.Format().String()
	j.Source.Tombstones, j.Source.Truncate = p.Tombstones().String(), p.Truncate().String()
	d := p.Dedup()
	j.Dedup.Key, j.Dedup.Window = d.Key.String(), dur(d.Window)
	if d.Key == topology.DedupField {
		j.Dedup.Field = d.Field
	}
	j.Authority.Owners = map[string]string{}
	owners := p.Owners()
	fields := make([]string, 0, len(owners))
	for f := range owners {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		j.Authority.Owners[f] = string(owners[f])
	}
	j.Authority.DefaultOwner, j.Authority.OnViolation = string(p.DefaultOwner()), p.OnViolation().String()
	j.Sink.Topic, j.Sink.Key, j.Sink.Format = p.SinkTopicTemplate(), p.SinkKey(), p.SinkFormat().String()
	if p.SinkFormat() == topology.SinkAvro {
		j.Sink.SubjectStrategy = p.SubjectStrategy().String()
	}
	j.DLQ.Topic = string(p.DLQTopic())
	r := p.Retry()
	j.Errors.Retry.Initial, j.Errors.Retry.Max = dur(r.Initial), dur(r.Max)
	j.Errors.Retry.Multiplier, j.Errors.Retry.MaxElapsed = r.Multiplier, dur(r.MaxElapsed)
	b := p.Breaker()
	j.Errors.Breaker.Failures, j.Errors.Breaker.Open = b.Failures, dur(b.Open)
	j.Errors.Tolerance = p.Tolerance().String()
	j.Guarantee = p.Guarantee().String()
	if p.Guarantee() == topology.ExactlyOnce {
		j.CommitInterval = dur(p.CommitInterval())
	}
	return j
}

// dur writes a duration as the topology file would: "168h", "1m30s", "0s".
func dur(d time.Duration) string {
	s := d.String()
	for _, z := range []string{"m0s", "h0m"} {
		if len(s) > len(z) && s[len(s)-len(z):] == z {
			s = s[:len(s)-2]
		}
	}
	return s
}
