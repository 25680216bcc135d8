package saga

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFilterAndViews(t *testing.T) {
	d := orderSaga(t)
	run := start(t, d)
	done := d.OnReply(d.OnReply(run, ok("stock", 1, `{"reservation":"r-9"}`), t0).State, fail("payment", 1), t0).State
	done = d.OnReply(done, compOK("stock", 1), t0.Add(time.Second)).State
	done.ID = "o-2"
	states := []*State{run, done}
	for state, want := range map[string]int{"": 2, "all": 2, "in_flight": 1, "running": 1, "compensated": 1, "failed": 0, "running,compensated": 2} {
		got, err := Filter(states, state)
		if err != nil || len(got) != want {
			t.Errorf("Filter(%q) = %d sagas, %v; want %d", state, len(got), err, want)
		}
	}
	if _, err := Filter(states, "done"); err == nil {
		t.Error("Filter accepted an unknown state")
	}
	var b bytes.Buffer
	if err := WriteList(&b, states); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "o-2  compensated") || !strings.Contains(b.String(), "step payment failed: declined") {
		t.Errorf("list:\n%s", b.String())
	}
	b.Reset()
	if err := WriteShow(&b, d, done); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"status     compensated", "1. stock        compensated", "ReserveStock to stock.commands, 1 attempt(s)",
		"compensation  ReleaseStock to stock.commands, 1 attempt(s)", "2. payment      failed", "error         declined"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, b.String())
		}
	}
}
