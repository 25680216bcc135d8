package saga

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of a Definition's optional values.
const (
	DefaultIDField               = "id"
	DefaultTimeout               = 30 * time.Second
	DefaultCommandAttempts       = 1
	DefaultCompensationAttempts  = 10
	DefaultCompensationBackoff   = time.Second
	DefaultRetention             = 24 * time.Hour
	maxLate                      = 16 // late replies kept in a state
	maxIDLen                     = 200
	defaultCommandRetryBackoff   = 0
	defaultCompensationRetryCeil = time.Minute
)

// ErrDefinition is returned (wrapped) by Definition.Validate.
var ErrDefinition = errors.New("saga: invalid definition")

// Definition is one saga topology's steps: what starts a saga and which
// commands it sends. It is the compiled form of the topology's saga
// section; topology validation reports problems with file and line, and
// Validate is the last check before a runtime uses it.
type Definition struct {
	Name    string
	Trigger Trigger
	Steps   []Step
	// Retention is how long a terminal saga's state is kept before it is
	// tombstoned. A trigger redelivered within it starts nothing.
	Retention time.Duration
}

// Trigger says which records of the trigger topic start a saga.
type Trigger struct {
	Topic string
	// Type, when set, starts a saga only for triggers whose JSON field
	// "type" (or TypeField) equals it; others are skipped.
	Type      string
	TypeField string // default "type"
	// IDField is the trigger's JSON field holding its event ID, from which
	// the saga ID is derived (default "id"). A trigger without it uses
	// "<topic>-<partition>-<offset>".
	IDField string
}

// Step is one step of a saga.
type Step struct {
	Name       string
	Command    Command
	ReplyTopic string
	// Timeout bounds the wait for the reply to each attempt.
	Timeout time.Duration
	// Attempts is how many times the command is sent when its reply does
	// not come in time (>= 1; 1 means no retry). A failure reply is final.
	Attempts int
	// Compensation undoes the step; nil when there is nothing to undo.
	Compensation *Command
	// CompensationAttempts bounds the attempts of the compensation, which
	// is retried on a failure reply or a timeout; past it the saga is
	// failed, for a human to resolve.
	CompensationAttempts int
	// CompensationBackoff is the wait before resending a compensation
	// after a failure reply; it doubles per attempt, up to a minute.
	CompensationBackoff time.Duration
}

// Command is a command (or compensation) sent to a participant.
type Command struct {
	Topic   string
	Type    string
	Payload map[string]string // JSON field -> template (template.go)
}

// Validate checks what a runtime relies on and fills in the defaults.
func (d *Definition) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrDefinition}, args...)...))
	}
	if d.Name == "" {
		add("empty name")
	}
	if d.Trigger.Topic == "" {
		add("trigger: empty topic")
	}
	if d.Trigger.IDField == "" {
		d.Trigger.IDField = DefaultIDField
	}
	if d.Trigger.TypeField == "" {
		d.Trigger.TypeField = "type"
	}
	if d.Retention <= 0 {
		d.Retention = DefaultRetention
	}
	if len(d.Steps) == 0 {
		add("no steps")
	}
	seen := map[string]bool{}
	for i := range d.Steps {
		s := &d.Steps[i]
		if s.Name == "" {
			add("steps[%d]: empty name", i)
		} else if seen[s.Name] {
			add("steps[%d]: duplicate name %q", i, s.Name)
		}
		seen[s.Name] = true
		if s.Command.Topic == "" || s.Command.Type == "" {
			add("steps[%d].command: topic and type are required", i)
		}
		if s.ReplyTopic == "" {
			add("steps[%d]: empty reply topic", i)
		}
		if s.Timeout <= 0 {
			s.Timeout = DefaultTimeout
		}
		if s.Attempts <= 0 {
			s.Attempts = DefaultCommandAttempts
		}
		if s.CompensationAttempts <= 0 {
			s.CompensationAttempts = DefaultCompensationAttempts
		}
		if s.CompensationBackoff <= 0 {
			s.CompensationBackoff = DefaultCompensationBackoff
		}
		if c := s.Compensation; c != nil && (c.Topic == "" || c.Type == "") {
			add("steps[%d].compensation: topic and type are required", i)
		}
		for _, c := range []*Command{&s.Command, s.Compensation} {
			if c == nil {
				continue
			}
			for f, t := range c.Payload {
				if _, err := ParseTemplate(t); err != nil {
					add("steps[%d] payload field %q: %v", i, f, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Topics returns the topics the runtime consumes: the trigger topic first,
// then each distinct reply topic.
func (d *Definition) Topics() []string {
	out := []string{d.Trigger.Topic}
	for _, s := range d.Steps {
		dup := false
		for _, t := range out {
			dup = dup || t == s.ReplyTopic
		}
		if !dup {
			out = append(out, s.ReplyTopic)
		}
	}
	return out
}

// CommandTopics returns every distinct command and compensation topic.
func (d *Definition) CommandTopics() []string {
	var out []string
	add := func(t string) {
		for _, o := range out {
			if o == t {
				return
			}
		}
		out = append(out, t)
	}
	for _, s := range d.Steps {
		add(s.Command.Topic)
		if s.Compensation != nil {
			add(s.Compensation.Topic)
		}
	}
	return out
}

// StateTopic is the compacted state topic "<name>.saga".
func (d *Definition) StateTopic() string { return d.Name + ".saga" }
