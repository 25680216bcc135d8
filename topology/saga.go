package topology

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cdcsync/cdcsync/processor/saga"
)

// Defaults of the saga section (issue 17). docs/sagas.md explains them.
const (
	DefaultSagaIDField              = saga.DefaultIDField
	DefaultSagaTypeField            = "type"
	DefaultSagaRetention            = saga.DefaultRetention
	DefaultSagaTimeout              = saga.DefaultTimeout
	DefaultSagaAttempts             = saga.DefaultCommandAttempts
	DefaultSagaCompensationAttempts = saga.DefaultCompensationAttempts
	DefaultSagaCompensationBackoff  = saga.DefaultCompensationBackoff
)

// Saga is the "saga" section: the topology is a saga orchestrator
// (processor/saga). A topology has a saga section, or a sink, or an apply
// section.
type Saga struct {
	Trigger   SagaTrigger
	Steps     []SagaStep
	Retention time.Duration // terminal sagas are tombstoned after it
}

// SagaTrigger is "saga.trigger".
type SagaTrigger struct {
	Topic     string
	Type      string // optional: only triggers whose TypeField equals it start a saga
	TypeField string
	IDField   string
}

// SagaStep is one item of "saga.steps".
type SagaStep struct {
	Name                 string
	Command              SagaCommand
	ReplyTopic           string
	Timeout              time.Duration
	Attempts             int
	Compensation         *SagaCommand
	CompensationAttempts int
	CompensationBackoff  time.Duration
}

// SagaCommand is a step's command or compensation.
type SagaCommand struct {
	Topic   string
	Type    string
	Payload map[string]string
}

func defaultSaga() Saga {
	return Saga{Retention: DefaultSagaRetention, Trigger: SagaTrigger{TypeField: DefaultSagaTypeField, IDField: DefaultSagaIDField}}
}

func defaultSagaStep() SagaStep {
	return SagaStep{Timeout: DefaultSagaTimeout, Attempts: DefaultSagaAttempts,
		CompensationAttempts: DefaultSagaCompensationAttempts, CompensationBackoff: DefaultSagaCompensationBackoff}
}

func (s Saga) clone() Saga {
	s.Steps = slices.Clone(s.Steps)
	for i := range s.Steps {
		st := &s.Steps[i]
		st.Command.Payload = maps.Clone(st.Command.Payload)
		if st.Compensation != nil {
			c := *st.Compensation
			c.Payload = maps.Clone(c.Payload)
			st.Compensation = &c
		}
	}
	return s
}

// isSaga reports whether c is a saga topology.
func (c *Config) isSaga() bool { return c.written["saga"] || len(c.Saga.Steps) > 0 }

// IsSaga reports whether the plan is a saga topology.
func (p *Plan) IsSaga() bool { return p.cfg.isSaga() }

// Saga is the saga section (a copy).
func (p *Plan) Saga() Saga { return p.cfg.Saga.clone() }

// SagaStateTopic is the compacted saga state topic, "<name>.saga".
func (p *Plan) SagaStateTopic() Topic { return Topic(p.cfg.Name + ".saga") }

// SagaDefinition is the saga section as the runtime's definition.
func (p *Plan) SagaDefinition() *saga.Definition {
	s := p.cfg.Saga
	d := &saga.Definition{
		Name:      p.cfg.Name,
		Trigger:   saga.Trigger{Topic: s.Trigger.Topic, Type: s.Trigger.Type, TypeField: s.Trigger.TypeField, IDField: s.Trigger.IDField},
		Retention: s.Retention,
	}
	cmd := func(c *SagaCommand) *saga.Command {
		if c == nil {
			return nil
		}
		return &saga.Command{Topic: c.Topic, Type: c.Type, Payload: maps.Clone(c.Payload)}
	}
	for _, st := range s.Steps {
		d.Steps = append(d.Steps, saga.Step{
			Name: st.Name, Command: *cmd(&st.Command), ReplyTopic: st.ReplyTopic, Timeout: st.Timeout, Attempts: st.Attempts,
			Compensation: cmd(st.Compensation), CompensationAttempts: st.CompensationAttempts, CompensationBackoff: st.CompensationBackoff,
		})
	}
	return d
}

// saga decodes the "saga" section.
func (d *decoder) saga(n *yaml.Node, path string) {
	s := &d.c.Saga
	d.mapping(n, path, []field{
		{"trigger", func(n *yaml.Node, p string) {
			t := &s.Trigger
			d.mapping(n, p, []field{
				{"topic", func(n *yaml.Node, p string) { d.str(n, p, &t.Topic) }},
				{"type", func(n *yaml.Node, p string) { d.str(n, p, &t.Type) }},
				{"type_field", func(n *yaml.Node, p string) { d.str(n, p, &t.TypeField) }},
				{"id_field", func(n *yaml.Node, p string) { d.str(n, p, &t.IDField) }},
			})
		}},
		{"retention", func(n *yaml.Node, p string) { d.duration(n, p, &s.Retention) }},
		{"steps", func(n *yaml.Node, p string) { d.sagaSteps(n, p) }},
	})
}

func (d *decoder) sagaSteps(n *yaml.Node, path string) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, path, ErrInvalid, "must be a list of steps (- name: ..., command: ..., reply_topic: ...), not %s", kindName(n))
		return
	}
	s := &d.c.Saga
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.c.lines[p] = resolve(item).Line
		st := defaultSagaStep()
		command := func(c *SagaCommand) func(n *yaml.Node, p string) {
			return func(n *yaml.Node, p string) {
				d.mapping(n, p, []field{
					{"topic", func(n *yaml.Node, p string) { d.str(n, p, &c.Topic) }},
					{"type", func(n *yaml.Node, p string) { d.str(n, p, &c.Type) }},
					{"payload", func(n *yaml.Node, p string) { c.Payload = d.strMap(n, p) }},
				})
			}
		}
		d.mapping(item, p, []field{
			{"name", func(n *yaml.Node, p string) { d.str(n, p, &st.Name) }},
			{"command", command(&st.Command)},
			{"reply_topic", func(n *yaml.Node, p string) { d.str(n, p, &st.ReplyTopic) }},
			{"timeout", func(n *yaml.Node, p string) { d.duration(n, p, &st.Timeout) }},
			{"attempts", func(n *yaml.Node, p string) { d.integer(n, p, &st.Attempts) }},
			{"compensation", func(n *yaml.Node, p string) {
				st.Compensation = &SagaCommand{}
				command(st.Compensation)(n, p)
			}},
			{"compensation_attempts", func(n *yaml.Node, p string) { d.integer(n, p, &st.CompensationAttempts) }},
			{"compensation_backoff", func(n *yaml.Node, p string) { d.duration(n, p, &st.CompensationBackoff) }},
		})
		s.Steps = append(s.Steps, st)
	}
}

// saga checks a saga topology: the saga section, and that the file has
// nothing that belongs to the other kinds.
func (v *validator) saga() {
	c := v.c
	s := &c.Saga
	for _, sec := range []string{"systems", "source", "dedup", "authority", "sink", "apply", "commit_interval"} {
		if c.written[sec] {
			v.add(sec, ErrInvalid, "does not apply to a saga topology: its input is saga.trigger and its outputs are the steps' commands")
		}
	}
	if c.written["guarantee"] && c.Guarantee != ExactlyOnce {
		v.add("guarantee", ErrInvalid, "%v: a saga's transitions are always exactly_once (leave it out)", c.Guarantee)
	}
	topics := map[string]string{} // topic -> the first option naming it
	topic := func(path, t, what string) {
		switch {
		case t == "":
			v.add(path, ErrMissing, "required: the %s topic", what)
		default:
			if reason := checkTopic(t); reason != "" {
				v.add(path, ErrInvalid, "%s", reason)
			}
		}
	}
	topic("saga.trigger.topic", s.Trigger.Topic, "trigger")
	topics[s.Trigger.Topic] = "saga.trigger.topic"
	if s.Trigger.TypeField == "" {
		v.add("saga.trigger.type_field", ErrMissing, "empty; leave it out to default to %s", DefaultSagaTypeField)
	}
	if s.Trigger.IDField == "" {
		v.add("saga.trigger.id_field", ErrMissing, "empty; leave it out to default to %s", DefaultSagaIDField)
	}
	if s.Retention <= 0 {
		v.add("saga.retention", ErrInvalid, "must be greater than 0, got %v", s.Retention)
	}
	state := c.Name + ".saga"
	if s.Trigger.Topic == state {
		v.add("saga.trigger.topic", ErrInvalid, "%q is the saga's own state topic", s.Trigger.Topic)
	}
	if len(s.Steps) == 0 {
		v.add("saga.steps", ErrMissing, "required: at least one step (- name: ..., command: {topic: ..., type: ...}, reply_topic: ...)")
	}
	names := map[string]int{}
	badName := false // then step references in templates are not checked: they would only repeat it
	seenName := map[string]bool{}
	for _, st := range s.Steps {
		badName = badName || !namePattern.MatchString(st.Name) || seenName[st.Name]
		seenName[st.Name] = true
	}
	for i, st := range s.Steps {
		p := fmt.Sprintf("saga.steps[%d]", i)
		switch {
		case st.Name == "":
			v.add(p+".name", ErrMissing, "required: the step name, used in the %s header and in {steps.<name>...}", saga.HeaderStep)
		case !namePattern.MatchString(st.Name):
			v.add(p+".name", ErrInvalid, "%q must match [a-z0-9][a-z0-9._-]*", st.Name)
		default:
			if j, dup := names[st.Name]; dup {
				v.add(p+".name", ErrInvalid, "duplicate step name %q (also saga.steps[%d])", st.Name, j)
			}
			names[st.Name] = i
		}
		refs := names
		if badName {
			refs = nil
		}
		v.sagaCommand(p+".command", &st.Command, refs, i)
		topic(p+".reply_topic", st.ReplyTopic, "reply")
		switch st.ReplyTopic {
		case s.Trigger.Topic:
			v.add(p+".reply_topic", ErrInvalid, "%q is the trigger topic: replies need their own topic", st.ReplyTopic)
		case state:
			v.add(p+".reply_topic", ErrInvalid, "%q is the saga's own state topic", st.ReplyTopic)
		}
		if st.Timeout <= 0 {
			v.add(p+".timeout", ErrInvalid, "must be greater than 0, got %v", st.Timeout)
		}
		if st.Attempts < 1 {
			v.add(p+".attempts", ErrInvalid, "must be at least 1, got %d", st.Attempts)
		}
		if st.Compensation != nil {
			v.sagaCommand(p+".compensation", st.Compensation, refs, i+1)
		} else {
			for _, o := range []string{"compensation_attempts", "compensation_backoff"} {
				if c.written[p+"."+o] {
					v.add(p+"."+o, ErrInvalid, "only applies to a step with a compensation")
				}
			}
		}
		if st.CompensationAttempts < 1 {
			v.add(p+".compensation_attempts", ErrInvalid, "must be at least 1, got %d", st.CompensationAttempts)
		}
		if st.CompensationBackoff <= 0 {
			v.add(p+".compensation_backoff", ErrInvalid, "must be greater than 0, got %v", st.CompensationBackoff)
		}
	}
}

// sagaCommand checks a command or compensation. Its templates may refer to
// the replies of the steps before index upto (a compensation also to its
// own step's reply): upto is how many steps, from the first, it may use.
func (v *validator) sagaCommand(path string, c *SagaCommand, names map[string]int, upto int) {
	switch {
	case c.Topic == "":
		v.add(path+".topic", ErrMissing, "required: the topic the participant reads")
	default:
		if reason := checkTopic(c.Topic); reason != "" {
			v.add(path+".topic", ErrInvalid, "%s", reason)
		}
	}
	if c.Type == "" {
		v.add(path+".type", ErrMissing, "required: the command type, sent in the %s header", saga.HeaderType)
	}
	for _, f := range slices.Sorted(maps.Keys(c.Payload)) {
		t, err := saga.ParseTemplate(c.Payload[f])
		if err != nil {
			v.add(path+".payload."+f, ErrInvalid, "%s", strings.TrimPrefix(err.Error(), "saga: bad template: "))
			continue
		}
		for _, step := range t.Steps() {
			if names == nil {
				break
			}
			if j, ok := names[step]; !ok || j >= upto {
				v.add(path+".payload."+f, ErrInvalid, "refers to step %q, which has not replied by then: a template may use the replies of earlier steps%s", step, compNote(path))
			}
		}
	}
}

func compNote(path string) string {
	if strings.HasSuffix(path, ".compensation") {
		return " and of its own step"
	}
	return ""
}

// sagaOptions is Options for a saga topology.
func (p *Plan) sagaOptions() []Option {
	c := p.cfg
	s := c.Saga
	var out []Option
	line := func(key, value string, isDefault bool) {
		out = append(out, Option{Key: key, Value: value, Default: isDefault})
	}
	note := func(key, value string, isDefault bool, defNote string) {
		if !isDefault {
			defNote = ""
		}
		out = append(out, Option{Key: key, Value: value, Default: isDefault, DefaultNote: defNote})
	}
	def := func(path string, equalsDefault bool) bool { return c.isDefault(path, equalsDefault) }
	line("consumer group", "cdcsync-saga-"+c.Name, false)
	line("state topic", string(p.SagaStateTopic()), false)
	line("saga.trigger.topic", s.Trigger.Topic, false)
	if s.Trigger.Type != "" {
		line("saga.trigger.type", s.Trigger.Type, false)
	}
	line("saga.trigger.type_field", s.Trigger.TypeField, def("saga.trigger.type_field", s.Trigger.TypeField == DefaultSagaTypeField))
	line("saga.trigger.id_field", s.Trigger.IDField, def("saga.trigger.id_field", s.Trigger.IDField == DefaultSagaIDField))
	line("saga.retention", fmtDuration(s.Retention), def("saga.retention", s.Retention == DefaultSagaRetention))
	for i, st := range s.Steps {
		pre := fmt.Sprintf("saga.steps[%d]", i)
		value := fmt.Sprintf("%s: %s %s -> %s, timeout %s, %d attempt(s)", st.Name, st.Command.Type, st.Command.Topic, st.ReplyTopic, fmtDuration(st.Timeout), st.Attempts)
		if cp := st.Compensation; cp != nil {
			value += fmt.Sprintf("; compensation %s %s, %d attempt(s), backoff %s", cp.Type, cp.Topic, st.CompensationAttempts, fmtDuration(st.CompensationBackoff))
		}
		line(pre, value, false)
	}
	note("dlq.topic", string(c.DLQ.Topic), def("dlq.topic", c.DLQ.Topic == Topic("dlq."+c.Name)), "dlq.<name>")
	line("guarantee", "exactly_once (every saga transition is one Kafka transaction)", false)
	return out
}
