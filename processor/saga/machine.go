package saga

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Correlation headers. Commands and compensations carry them; a
// participant's reply carries them back unchanged.
const (
	HeaderID      = "cdcsync.saga.id"
	HeaderStep    = "cdcsync.saga.step"
	HeaderAttempt = "cdcsync.saga.attempt"
	HeaderKind    = "cdcsync.saga.kind" // command or compensation
	HeaderType    = "cdcsync.saga.type" // the command's type
)

// Kind tells a command from a compensation.
type Kind string

const (
	KindCommand      Kind = "command"
	KindCompensation Kind = "compensation"
)

// Outcome is a reply's outcome.
type Outcome string

const (
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Reply is a participant's answer to one command or compensation.
type Reply struct {
	ID      string
	Step    string
	Kind    Kind
	Attempt int
	Outcome Outcome
	Result  json.RawMessage // success: the step's result, available to later templates
	Error   string          // failure: why
}

// Message is a command or compensation to send, keyed by the saga ID.
type Message struct {
	Topic   string
	Key     string
	Value   []byte
	Headers [][2]string
}

// Header returns the value of header k, or "".
func (m Message) Header(k string) string {
	for _, h := range m.Headers {
		if h[0] == k {
			return h[1]
		}
	}
	return ""
}

// Transition is the result of one event: the new state to write (nil with
// Tombstone), and the messages to send in the same transaction.
type Transition struct {
	State     *State
	Out       []Message
	Tombstone bool // the terminal saga's retention ended: delete its record
	Late      bool // the reply was recorded and ignored
	Ended     bool // the saga became terminal in this transition
	// Latency is the step latencies measured in this transition (from the
	// first attempt's command to the confirming reply), by step name.
	Latency map[string]time.Duration
}

// Start begins a saga from a trigger: its first command is sent.
func (d *Definition) Start(id string, trigger json.RawMessage, source string, partition int32, now time.Time) Transition {
	s := &State{
		ID: id, Saga: d.Name, Status: Running, Trigger: trigger, Source: source, Partition: partition,
		Started: now, Updated: now, Steps: make([]StepState, len(d.Steps)),
	}
	for i, st := range d.Steps {
		s.Steps[i] = StepState{Name: st.Name, Status: StepPending}
	}
	t := Transition{State: s}
	d.sendCommand(&t, 0, now)
	return t
}

// OnReply applies a reply. A reply that is not the one awaited - for a
// step already settled, a saga already compensating or terminal, or a
// duplicate - is recorded in State.Late and changes nothing else.
func (d *Definition) OnReply(prev *State, r Reply, now time.Time) Transition {
	s := prev.clone()
	s.Updated = now
	t := Transition{State: s}
	k := d.stepIndex(r.Step)
	late := func(reason string) Transition {
		s.Late = append(s.Late, LateReply{Step: r.Step, Kind: r.Kind, Attempt: r.Attempt, Outcome: r.Outcome, At: now, Reason: reason})
		if len(s.Late) > maxLate {
			s.Late = s.Late[len(s.Late)-maxLate:]
		}
		t.Late = true
		return t
	}
	switch {
	case s.Status.Terminal():
		return late("the saga is already " + string(s.Status))
	case k < 0:
		return late("unknown step")
	case r.Outcome != Success && r.Outcome != Failure:
		return late("unknown outcome " + strconv.Quote(string(r.Outcome)))
	}
	st := &s.Steps[k]
	switch r.Kind {
	case KindCommand:
		if s.Status != Running || k != s.Step || st.Status != StepSent {
			return late("step " + st.Name + " is " + string(st.Status))
		}
		if r.Attempt < 1 || r.Attempt > st.Attempts {
			return late("attempt " + strconv.Itoa(r.Attempt) + " was never sent")
		}
		// Any attempt's reply settles the step: the participant is
		// idempotent per (saga, step), so every attempt has the same answer.
		st.RepliedAt = now
		t.Latency = map[string]time.Duration{st.Name: now.Sub(st.SentAt)}
		if r.Outcome == Success {
			st.Status = StepDone
			st.Result = r.Result
			if k+1 < len(d.Steps) {
				d.sendCommand(&t, k+1, now)
			} else {
				d.end(&t, Completed, "", now)
			}
			return t
		}
		st.Status = StepFailed
		st.Error = r.Error
		s.Error = fmt.Sprintf("step %s failed: %s", st.Name, r.Error)
		d.compensateFrom(&t, k-1, now)
		return t
	case KindCompensation:
		if s.Status != Compensating || k != s.Step || st.Status != StepCompensating {
			return late("step " + st.Name + " is " + string(st.Status))
		}
		if r.Attempt < 1 || r.Attempt > st.CompAttempts {
			return late("compensation attempt " + strconv.Itoa(r.Attempt) + " was never sent")
		}
		if r.Outcome == Success {
			st.Status = StepCompensated
			st.CompDoneAt = now
			st.CompError = ""
			d.compensateFrom(&t, k-1, now)
			return t
		}
		if r.Attempt != st.CompAttempts || s.Resend {
			return late("a failure of an earlier compensation attempt")
		}
		st.CompError = r.Error
		d.compensationFailed(&t, k, now)
		return t
	default:
		return late("unknown kind " + strconv.Quote(string(r.Kind)))
	}
}

// Due reports whether Tick has something to do at now.
func (s *State) Due(now time.Time) bool {
	if s.Status.Terminal() {
		return !s.Retained.IsZero() && !now.Before(s.Retained)
	}
	return !s.Deadline.IsZero() && !now.Before(s.Deadline)
}

// Next is when Tick next has something to do.
func (s *State) Next() time.Time {
	if s.Status.Terminal() {
		return s.Retained
	}
	return s.Deadline
}

// Tick handles a due deadline: a reply that did not come in time (the
// command is sent again while attempts remain, else the step counts as
// failed and, since it may have happened, is compensated with the steps
// before it), a compensation to send again, or the end of a terminal
// saga's retention. It returns a zero Transition when nothing is due.
func (d *Definition) Tick(prev *State, now time.Time) Transition {
	if !prev.Due(now) {
		return Transition{}
	}
	if prev.Status.Terminal() {
		return Transition{Tombstone: true}
	}
	s := prev.clone()
	s.Updated = now
	t := Transition{State: s}
	k := s.Step
	st := &s.Steps[k]
	switch s.Status {
	case Running:
		if st.Attempts < d.Steps[k].Attempts {
			d.sendCommand(&t, k, now)
			return t
		}
		st.Status = StepTimedOut
		st.Error = fmt.Sprintf("no reply within %v after %d attempt(s)", d.Steps[k].Timeout, st.Attempts)
		s.Error = "step " + st.Name + " timed out"
		d.compensateFrom(&t, k, now)
	case Compensating:
		if s.Resend {
			d.sendCompensation(&t, k, now)
			return t
		}
		st.CompError = fmt.Sprintf("no reply within %v", d.Steps[k].Timeout)
		d.compensationFailed(&t, k, now)
	}
	return t
}

func (d *Definition) stepIndex(name string) int {
	for i, s := range d.Steps {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func (d *Definition) sendCommand(t *Transition, k int, now time.Time) {
	s := t.State
	st := &s.Steps[k]
	if st.Attempts == 0 {
		st.SentAt = now
	}
	st.Status = StepSent
	st.Attempts++
	s.Status, s.Step, s.Resend = Running, k, false
	s.Deadline = now.Add(d.Steps[k].Timeout)
	t.Out = append(t.Out, d.message(s, k, KindCommand, st.Attempts))
}

func (d *Definition) sendCompensation(t *Transition, k int, now time.Time) {
	s := t.State
	st := &s.Steps[k]
	if st.CompAttempts == 0 {
		st.CompSentAt = now
	}
	st.Status = StepCompensating
	st.CompAttempts++
	s.Status, s.Step, s.Resend = Compensating, k, false
	s.Deadline = now.Add(d.Steps[k].Timeout)
	t.Out = append(t.Out, d.message(s, k, KindCompensation, st.CompAttempts))
}

// compensateFrom compensates, in reverse, the steps from k down that
// happened (done) or may have happened (timed out) and have a
// compensation; the saga is compensated when none is left.
func (d *Definition) compensateFrom(t *Transition, k int, now time.Time) {
	s := t.State
	s.Status = Compensating
	for j := k; j >= 0; j-- {
		if st := s.Steps[j].Status; (st == StepDone || st == StepTimedOut) && d.Steps[j].Compensation != nil {
			d.sendCompensation(t, j, now)
			return
		}
	}
	d.end(t, Compensated, s.Error, now)
}

// compensationFailed handles a compensation attempt that failed or timed
// out: it is sent again after a backoff while the policy allows, and the
// saga is failed past it.
func (d *Definition) compensationFailed(t *Transition, k int, now time.Time) {
	s := t.State
	st := &s.Steps[k]
	if st.CompAttempts >= d.Steps[k].CompensationAttempts {
		st.Status = StepCompFailed
		d.end(t, Failed, fmt.Sprintf("compensation of step %s failed %d times, last: %s", st.Name, st.CompAttempts, st.CompError), now)
		return
	}
	backoff := d.Steps[k].CompensationBackoff << min(st.CompAttempts-1, 16)
	s.Resend = true
	s.Deadline = now.Add(min(backoff, max(defaultCompensationRetryCeil, d.Steps[k].CompensationBackoff)))
}

func (d *Definition) end(t *Transition, st Status, why string, now time.Time) {
	s := t.State
	s.Status, s.Error, s.Ended = st, why, now
	s.Deadline, s.Resend = time.Time{}, false
	s.Retained = now.Add(d.Retention)
	t.Ended = true
}

// message builds the command or compensation of step k.
func (d *Definition) message(s *State, k int, kind Kind, attempt int) Message {
	c := &d.Steps[k].Command
	if kind == KindCompensation {
		c = d.Steps[k].Compensation
	}
	payload := buildPayload(c, s.context())
	return Message{
		Topic: c.Topic,
		Key:   s.ID,
		Value: payload,
		Headers: [][2]string{
			{HeaderID, s.ID},
			{HeaderStep, d.Steps[k].Name},
			{HeaderAttempt, strconv.Itoa(attempt)},
			{HeaderKind, string(kind)},
			{HeaderType, c.Type},
		},
	}
}
