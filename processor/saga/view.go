package saga

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is one line of a saga list.
type Summary struct {
	ID       string    `json:"id"`
	Status   Status    `json:"status"`
	Step     string    `json:"step"` // the step awaited or being compensated; the last one when terminal
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Deadline time.Time `json:"deadline,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// Summarize returns the list line of a state.
func Summarize(s *State) Summary {
	step := ""
	if s.Step >= 0 && s.Step < len(s.Steps) {
		step = s.Steps[s.Step].Name
	}
	return Summary{ID: s.ID, Status: s.Status, Step: step, Started: s.Started, Updated: s.Updated, Deadline: s.Deadline, Error: s.Error}
}

// Filter keeps the states with one of the statuses ("" or "all": every
// state; "in_flight": running and compensating).
func Filter(states []*State, status string) ([]*State, error) {
	want := map[Status]bool{}
	for _, s := range strings.Split(status, ",") {
		switch st := Status(strings.TrimSpace(s)); st {
		case "", "all":
			return states, nil
		case "in_flight":
			want[Running], want[Compensating] = true, true
		case Running, Compensating, Completed, Compensated, Failed:
			want[st] = true
		default:
			return nil, fmt.Errorf("unknown state %q: want running, compensating, completed, compensated, failed, in_flight or all", s)
		}
	}
	var out []*State
	for _, s := range states {
		if want[s.Status] {
			out = append(out, s)
		}
	}
	return out, nil
}

// WriteList writes a table of sagas.
func WriteList(w io.Writer, states []*State) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSTEP\tSTARTED\tUPDATED\tERROR")
	for _, s := range states {
		m := Summarize(s)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Status, m.Step, m.Started.UTC().Format(time.RFC3339), m.Updated.UTC().Format(time.RFC3339), m.Error)
	}
	return tw.Flush()
}

// WriteShow writes one saga: its steps, outcomes, timestamps, the
// commands sent (by attempt) and the late replies.
func WriteShow(w io.Writer, d *Definition, s *State) error {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	fmt.Fprintf(w, "saga %s (%s)\n", s.ID, s.Saga)
	fmt.Fprintf(w, "  status     %s\n", s.Status)
	if s.Error != "" {
		fmt.Fprintf(w, "  error      %s\n", s.Error)
	}
	fmt.Fprintf(w, "  trigger    %s\n", s.Source)
	fmt.Fprintf(w, "  started    %s\n", ts(s.Started))
	fmt.Fprintf(w, "  updated    %s\n", ts(s.Updated))
	if !s.Deadline.IsZero() {
		what := "reply due"
		if s.Resend {
			what = "compensation resent"
		}
		fmt.Fprintf(w, "  deadline   %s (%s)\n", ts(s.Deadline), what)
	}
	if !s.Ended.IsZero() {
		fmt.Fprintf(w, "  ended      %s (state tombstoned at %s)\n", ts(s.Ended), ts(s.Retained))
	}
	fmt.Fprintf(w, "  steps:\n")
	for i, st := range s.Steps {
		fmt.Fprintf(w, "    %d. %-12s %s\n", i+1, st.Name, st.Status)
		if st.Attempts > 0 {
			c := ""
			if d != nil && i < len(d.Steps) {
				c = d.Steps[i].Command.Type + " to " + d.Steps[i].Command.Topic + ", "
			}
			fmt.Fprintf(w, "       command       %s%d attempt(s), first sent %s, replied %s\n", c, st.Attempts, ts(st.SentAt), ts(st.RepliedAt))
		}
		if len(st.Result) > 0 {
			fmt.Fprintf(w, "       result        %s\n", st.Result)
		}
		if st.Error != "" {
			fmt.Fprintf(w, "       error         %s\n", st.Error)
		}
		if st.CompAttempts > 0 {
			c := ""
			if d != nil && i < len(d.Steps) && d.Steps[i].Compensation != nil {
				c = d.Steps[i].Compensation.Type + " to " + d.Steps[i].Compensation.Topic + ", "
			}
			fmt.Fprintf(w, "       compensation  %s%d attempt(s), first sent %s, confirmed %s\n", c, st.CompAttempts, ts(st.CompSentAt), ts(st.CompDoneAt))
		}
		if st.CompError != "" {
			fmt.Fprintf(w, "       comp. error   %s\n", st.CompError)
		}
	}
	if len(s.Late) > 0 {
		fmt.Fprintf(w, "  late replies (recorded, ignored):\n")
		for _, l := range s.Late {
			fmt.Fprintf(w, "    %s %s %s attempt %d: %s at %s (%s)\n", l.Step, l.Kind, l.Outcome, l.Attempt, l.Reason, ts(l.At), "ignored")
		}
	}
	return nil
}
