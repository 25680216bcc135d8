package saga

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status is a saga's status. Running and Compensating are in flight;
// Completed, Compensated and Failed are terminal.
type Status string

const (
	Running      Status = "running"      // sending the steps' commands in order
	Compensating Status = "compensating" // a step failed or timed out: undoing, in reverse
	Completed    Status = "completed"    // every step succeeded
	Compensated  Status = "compensated"  // a step failed; every step that needed it was undone
	Failed       Status = "failed"       // a compensation failed past its policy: a human must resolve it
)

// Terminal reports whether the status is final.
func (s Status) Terminal() bool { return s == Completed || s == Compensated || s == Failed }

// StepStatus is the outcome of one step.
type StepStatus string

const (
	StepPending      StepStatus = "pending"      // not sent yet
	StepSent         StepStatus = "sent"         // command sent, reply awaited
	StepDone         StepStatus = "done"         // the participant confirmed it
	StepFailed       StepStatus = "failed"       // the participant refused it: nothing to undo
	StepTimedOut     StepStatus = "timed_out"    // no reply in time: it may have happened, so it is compensated
	StepCompensating StepStatus = "compensating" // compensation sent, confirmation awaited
	StepCompensated  StepStatus = "compensated"  // the participant confirmed the compensation
	StepCompFailed   StepStatus = "compensation_failed"
)

// State is one saga's durable state: the value of its record in the state
// topic, JSON-encoded. Everything the orchestrator needs to continue the
// saga after a crash is in it, deadlines included.
type State struct {
	ID        string          `json:"id"`
	Saga      string          `json:"saga"` // the topology name
	Status    Status          `json:"status"`
	Step      int             `json:"step"` // the step awaited (running) or being compensated
	Steps     []StepState     `json:"steps"`
	Trigger   json.RawMessage `json:"trigger"`
	Source    string          `json:"source"` // trigger topic/partition@offset
	Partition int32           `json:"partition"`
	// Deadline is when the awaited reply is overdue (or, when Resend is
	// set, when the compensation is sent again). Zero when nothing is
	// awaited. Retained is when a terminal saga's record is tombstoned.
	Deadline time.Time   `json:"deadline,omitzero"`
	Resend   bool        `json:"resend,omitempty"`
	Retained time.Time   `json:"retained,omitzero"`
	Started  time.Time   `json:"started"`
	Updated  time.Time   `json:"updated"`
	Ended    time.Time   `json:"ended,omitzero"`
	Late     []LateReply `json:"late,omitempty"` // the last replies that came too late or twice, ignored
	Error    string      `json:"error,omitempty"`
}

// StepState is the record of one step.
type StepState struct {
	Name         string          `json:"name"`
	Status       StepStatus      `json:"status"`
	Attempts     int             `json:"attempts,omitempty"` // command attempts sent
	SentAt       time.Time       `json:"sent_at,omitzero"`
	RepliedAt    time.Time       `json:"replied_at,omitzero"`
	Result       json.RawMessage `json:"result,omitempty"` // the success reply's result
	Error        string          `json:"error,omitempty"`
	CompAttempts int             `json:"comp_attempts,omitempty"`
	CompSentAt   time.Time       `json:"comp_sent_at,omitzero"`
	CompDoneAt   time.Time       `json:"comp_done_at,omitzero"`
	CompError    string          `json:"comp_error,omitempty"`
}

// LateReply is a reply recorded and ignored.
type LateReply struct {
	Step    string    `json:"step"`
	Kind    Kind      `json:"kind"`
	Attempt int       `json:"attempt"`
	Outcome Outcome   `json:"outcome"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
}

// ErrBadState is returned by DecodeState for a value that is not a state.
var ErrBadState = errors.New("saga: bad state record")

// Encode returns the state record's value.
func (s *State) Encode() []byte {
	b, _ := json.Marshal(s) // a State always marshals
	return b
}

// DecodeState decodes a state record's value.
func DecodeState(v []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if s.ID == "" || s.Status == "" {
		return nil, fmt.Errorf("%w: no id or status", ErrBadState)
	}
	return &s, nil
}

// clone deep-copies the parts a transition changes.
func (s *State) clone() *State {
	c := *s
	c.Steps = append([]StepState(nil), s.Steps...)
	c.Late = append([]LateReply(nil), s.Late...)
	return &c
}

// context is the template context: the trigger and the replies so far.
func (s *State) context() map[string]any {
	ctx := map[string]any{"saga": map[string]any{"id": s.ID}}
	var trig any
	if json.Unmarshal(s.Trigger, &trig) == nil {
		ctx["trigger"] = trig
	}
	steps := map[string]any{}
	for _, st := range s.Steps {
		var r any
		if len(st.Result) > 0 && json.Unmarshal(st.Result, &r) == nil {
			steps[st.Name] = r
		}
	}
	ctx["steps"] = steps
	return ctx
}
