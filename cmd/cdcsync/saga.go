package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/cdcsync/cdcsync/processor/saga"
	"github.com/cdcsync/cdcsync/topology"
)

// sagaFlags are the flags of saga list and saga show.
type sagaFlags struct{ d *dlqFlags }

func addSagaFlags(fs *flagSet) *sagaFlags {
	return &sagaFlags{
		d: &dlqFlags{
			brokers:    fs.String("brokers", "", "bootstrap brokers, HOST:PORT[,..] (env CDCSYNC_BROKERS)"),
			version:    fs.String("kafka-version", "2.8.0", "Kafka protocol version"),
			configFile: fs.String("config", "", configFlagHelp),
		},
	}
}

// readSagas reads the state topic <TOPOLOGY>.saga.
func (f *sagaFlags) readSagas(ctx context.Context, name string) ([]*saga.State, error) {
	client, err := f.d.client(false)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	topic := name + ".saga"
	states, invalid, err := saga.ReadStates(ctx, client, topic)
	if err != nil {
		return nil, &exitError{code: 1, err: fmt.Errorf("reading %s: %w", topic, err)}
	}
	if invalid > 0 {
		return states, &exitError{code: 3, err: fmt.Errorf("%s: %d records are not saga states and were skipped", topic, invalid)}
	}
	return states, nil
}

func cmdSagaList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("saga list", stdout)
	f := addSagaFlags(fs)
	state := fs.String("state", "all", "only sagas in these states, comma-separated: running, compensating, completed, compensated, failed, in_flight, all")
	asJSON := outputFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	js, err := asJSON()
	if err != nil {
		return err
	}
	if _, err := saga.Filter(nil, *state); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--state: %w", err)}
	}
	states, rerr := f.readSagas(ctx, fs.Arg(0))
	if states == nil && rerr != nil {
		return rerr
	}
	states, _ = saga.Filter(states, *state)
	if js {
		out := make([]saga.Summary, 0, len(states))
		for _, s := range states {
			out = append(out, saga.Summarize(s))
		}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else if err := saga.WriteList(stdout, states); err != nil {
		return err
	}
	return rerr
}

func cmdSagaShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("saga show", stdout)
	f := addSagaFlags(fs)
	topologies := fs.String("topologies", "", "topology directory: the show then names each step's command types and topics")
	asJSON := outputFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	js, err := asJSON()
	if err != nil {
		return err
	}
	name, id := fs.Arg(0), fs.Arg(1)
	var def *saga.Definition
	if *topologies != "" {
		plans, err := topology.Load(*topologies)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		for _, p := range plans {
			if p.Name() == name && p.IsSaga() {
				def = p.SagaDefinition()
			}
		}
		if def == nil {
			return &exitError{code: 2, err: fmt.Errorf("%s has no saga topology named %s", filepath.Clean(*topologies), name)}
		}
	}
	states, rerr := f.readSagas(ctx, name)
	if states == nil && rerr != nil {
		return rerr
	}
	for _, s := range states {
		if s.ID == id {
			if js {
				return writeJSON(stdout, s)
			}
			return saga.WriteShow(stdout, def, s)
		}
	}
	return &exitError{code: 1, err: errors.New("no saga " + id + " in " + name + ".saga (never started, or tombstoned after saga.retention)")}
}
