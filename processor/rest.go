package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/topology"
)

// The worker is the REST API's backend (package api).
var _ api.Backend = (*Worker)(nil)

func (w *Worker) pipeline(name string) *pipeline {
	for _, p := range w.pipelines {
		if p.plan.Name() == name {
			return p
		}
	}
	return nil
}

// ID is the worker's id in status reports and partition owners: its
// client_id.
func (w *Worker) ID() string { return w.id }

// Topologies lists the worker's topologies with their merged state.
func (w *Worker) Topologies() []api.Topology {
	out := make([]api.Topology, 0, len(w.pipelines))
	for _, p := range w.pipelines {
		s := w.status(context.Background(), p, false)
		out = append(out, api.Topology{Name: p.plan.Name(), State: s.State})
	}
	return out
}

// Plan returns the compiled plan of a topology the worker runs.
func (w *Worker) Plan(name string) (*topology.Plan, bool) {
	if p := w.pipeline(name); p != nil {
		return p.plan, true
	}
	return nil, false
}

// Status merges this worker's live status of a topology with the other
// workers' reports on the control topic.
func (w *Worker) Status(ctx context.Context, name string) (api.Status, error) {
	p := w.pipeline(name)
	if p == nil {
		return api.Status{}, fmt.Errorf("%w: %s", api.ErrUnknownTopology, name)
	}
	return w.status(ctx, p, true), nil
}

func (w *Worker) desired(name string) api.Desired {
	if c := w.ctl.Load(); c != nil {
		return c.desiredOf(name)
	}
	w.localMu.Lock()
	defer w.localMu.Unlock()
	if d, ok := w.local[name]; ok {
		return d
	}
	return api.Desired{State: api.StateRunning}
}

// status merges the reports; partitions reports the partitions too
// (which measures the held claims' lag).
func (w *Worker) status(ctx context.Context, p *pipeline, partitions bool) api.Status {
	name := p.plan.Name()
	self := p.localStatus(ctx, w.id, partitions)
	if !partitions {
		self.Partitions = nil
	}
	self.Self = true
	s := api.Status{Name: name, Desired: w.desired(name), Workers: []api.Worker{self}, Partitions: []api.Partition{}}
	now := p.now()
	if c := w.ctl.Load(); c != nil {
		others := c.othersOf(name, now)
		sort.Slice(others, func(i, j int) bool { return others[i].ID < others[j].ID })
		s.Workers = append(s.Workers, others...)
	}

	// Each partition from its freshest live report; a stale worker's
	// partitions only when no live worker reports them.
	type key struct {
		topic string
		part  int32
	}
	best := map[key]api.Partition{}
	at := map[key]time.Time{}
	for _, wr := range s.Workers {
		for _, pt := range wr.Partitions {
			k := key{pt.Topic, pt.Partition}
			old, seen := best[k]
			pt.Stale = wr.Stale
			switch {
			case !seen,
				old.Stale && !wr.Stale,
				old.Stale == wr.Stale && wr.ReportedAt.After(at[k]):
				best[k], at[k] = pt, wr.ReportedAt
			}
		}
	}
	for _, pt := range best {
		s.Partitions = append(s.Partitions, pt)
	}
	sort.Slice(s.Partitions, func(i, j int) bool {
		a, b := s.Partitions[i], s.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	if !partitions {
		s.Partitions = nil
	}

	live, running := 0, false
	for _, wr := range s.Workers {
		if wr.Stale {
			continue
		}
		live++
		if wr.State == api.StateFailed && s.Error == "" {
			s.State, s.Error = api.StateFailed, wr.ID+": "+wr.Error
		}
		if wr.State == api.StateRunning {
			running = true
		}
	}
	switch {
	case s.State == api.StateFailed:
	case s.Desired.State == api.StatePaused:
		s.State = api.StatePaused
	case running:
		s.State = api.StateRunning
	default:
		s.State = api.StateIdle
	}
	return s
}

// Act carries pause, resume or restart to every worker of the topology:
// it writes the new desired state to the control topic and returns once
// this worker has read it back and applied it. Without a control topic
// it applies it to this worker only.
func (w *Worker) Act(ctx context.Context, name, action string) (api.Action, error) {
	if w.pipeline(name) == nil {
		return api.Action{}, fmt.Errorf("%w: %s", api.ErrUnknownTopology, name)
	}
	if w.cfg.ControlTopic != "" && w.ctl.Load() == nil {
		return api.Action{}, fmt.Errorf("%w: the control topic %s is not read yet; try again", api.ErrUnavailable, w.cfg.ControlTopic)
	}
	w.actMu.Lock() // one action at a time from this worker, so restart counts do not collide
	defer w.actMu.Unlock()
	d := w.desired(name)
	switch action {
	case api.ActionPause:
		d.State = api.StatePaused
	case api.ActionResume:
		d.State = api.StateRunning
	case api.ActionRestart:
		d.Restart++
	default:
		return api.Action{}, fmt.Errorf("unknown action %q", action)
	}
	d.At, d.By = time.Now().UTC().Truncate(time.Millisecond), w.id
	a := api.Action{Name: name, Action: action, Desired: d}
	c := w.ctl.Load()
	if c == nil {
		w.localMu.Lock()
		w.local[name] = d
		w.localMu.Unlock()
		w.apply(name, d, false)
		return a, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return api.Action{}, err
	}
	off, err := c.publish(name, b)
	if err != nil {
		return api.Action{}, fmt.Errorf("%w: writing to the control topic %s: %v", api.ErrUnavailable, c.topic, err)
	}
	if err := c.waitApplied(ctx, off); err != nil {
		return api.Action{}, err
	}
	return a, nil
}

// apply makes a topology's pipeline follow a desired state. initial is
// true before the pipelines start (the control topic's replay): a restart
// count is then only noted, as the pipeline starts fresh anyway.
func (w *Worker) apply(name string, d api.Desired, initial bool) {
	p := w.pipeline(name)
	if p == nil {
		return // a topology other workers run
	}
	p.setPaused(d.State == api.StatePaused)
	p.life.mu.Lock()
	restart := d.Restart > p.life.seen
	if restart {
		p.life.seen = d.Restart
	}
	p.life.mu.Unlock()
	if restart && !initial {
		p.log.Info("restart requested", zap.Int64("restart", d.Restart), zap.String("by", d.By))
		p.requestRestart()
	}
}
