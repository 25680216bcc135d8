package saga

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

// orderSaga is the three-step order saga of the docs and the demo.
func orderSaga(t *testing.T) *Definition {
	t.Helper()
	d := &Definition{
		Name:    "orders",
		Trigger: Trigger{Topic: "orders"},
		Steps: []Step{
			{Name: "stock", ReplyTopic: "stock.replies", Timeout: 10 * time.Second,
				Command:      Command{Topic: "stock.commands", Type: "ReserveStock", Payload: map[string]string{"order": "{trigger.id}", "sku": "{trigger.sku}"}},
				Compensation: &Command{Topic: "stock.commands", Type: "ReleaseStock", Payload: map[string]string{"reservation": "{steps.stock.reservation}"}}},
			{Name: "payment", ReplyTopic: "payment.replies", Timeout: 10 * time.Second, Attempts: 2,
				Command:              Command{Topic: "payment.commands", Type: "Charge", Payload: map[string]string{"amount": "{trigger.amount}", "ref": "order-{trigger.id}"}},
				Compensation:         &Command{Topic: "payment.commands", Type: "Refund", Payload: map[string]string{"charge": "{steps.payment.charge}"}},
				CompensationAttempts: 3, CompensationBackoff: time.Second},
			{Name: "shipping", ReplyTopic: "shipping.replies", Timeout: 10 * time.Second,
				Command: Command{Topic: "shipping.commands", Type: "Ship", Payload: map[string]string{"order": "{saga.id}"}}},
		},
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	return d
}

func start(t *testing.T, d *Definition) *State {
	t.Helper()
	tr := d.Start("o-1", json.RawMessage(`{"id":"o-1","sku":"A","amount":12.5}`), "orders/0@7", 0, t0)
	if tr.State.Status != Running || len(tr.Out) != 1 {
		t.Fatalf("start: %+v", tr)
	}
	return tr.State
}

func ok(step string, attempt int, result string) Reply {
	return Reply{ID: "o-1", Step: step, Kind: KindCommand, Attempt: attempt, Outcome: Success, Result: json.RawMessage(result)}
}

func fail(step string, attempt int) Reply {
	return Reply{ID: "o-1", Step: step, Kind: KindCommand, Attempt: attempt, Outcome: Failure, Error: "declined"}
}

func compOK(step string, attempt int) Reply {
	return Reply{ID: "o-1", Step: step, Kind: KindCompensation, Attempt: attempt, Outcome: Success}
}

func compFail(step string, attempt int) Reply {
	return Reply{ID: "o-1", Step: step, Kind: KindCompensation, Attempt: attempt, Outcome: Failure, Error: "ledger locked"}
}

// sent is "kind:step#attempt" of each message.
func sent(tr Transition) []string {
	var out []string
	for _, m := range tr.Out {
		out = append(out, m.Header(HeaderKind)+":"+m.Header(HeaderStep)+"#"+m.Header(HeaderAttempt))
	}
	return out
}

func wantSent(t *testing.T, tr Transition, want ...string) {
	t.Helper()
	if got := sent(tr); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("sent %v, want %v", got, want)
	}
}

func TestStartSendsFirstCommandWithHeadersAndPayload(t *testing.T) {
	d := orderSaga(t)
	tr := d.Start("o-1", json.RawMessage(`{"id":"o-1","sku":"A","amount":12.5}`), "orders/0@7", 0, t0)
	m := tr.Out[0]
	if m.Topic != "stock.commands" || m.Key != "o-1" {
		t.Fatalf("message %+v", m)
	}
	for k, v := range map[string]string{HeaderID: "o-1", HeaderStep: "stock", HeaderAttempt: "1", HeaderKind: "command", HeaderType: "ReserveStock"} {
		if m.Header(k) != v {
			t.Errorf("header %s = %q, want %q", k, m.Header(k), v)
		}
	}
	if string(m.Value) != `{"order":"o-1","sku":"A"}` {
		t.Errorf("payload %s", m.Value)
	}
	s := tr.State
	if s.Step != 0 || s.Steps[0].Status != StepSent || !s.Deadline.Equal(t0.Add(10*time.Second)) {
		t.Errorf("state %+v", s)
	}
}

func TestHappyPathCompletes(t *testing.T) {
	d := orderSaga(t)
	s := start(t, d)
	tr := d.OnReply(s, ok("stock", 1, `{"reservation":"r-9"}`), t0.Add(time.Second))
	wantSent(t, tr, "command:payment#1")
	if string(tr.Out[0].Value) != `{"amount":12.5,"ref":"order-o-1"}` {
		t.Errorf("payment payload %s", tr.Out[0].Value)
	}
	if tr.Latency["stock"] != time.Second {
		t.Errorf("latency %v", tr.Latency)
	}
	tr = d.OnReply(tr.State, ok("payment", 1, `{"charge":"c-1"}`), t0.Add(2*time.Second))
	wantSent(t, tr, "command:shipping#1")
	if string(tr.Out[0].Value) != `{"order":"o-1"}` {
		t.Errorf("shipping payload %s", tr.Out[0].Value)
	}
	tr = d.OnReply(tr.State, ok("shipping", 1, `{}`), t0.Add(3*time.Second))
	wantSent(t, tr)
	s = tr.State
	if s.Status != Completed || !tr.Ended || !s.Deadline.IsZero() || !s.Retained.Equal(t0.Add(3*time.Second+DefaultRetention)) {
		t.Fatalf("state %+v", s)
	}
	// The retention ends: the record is tombstoned.
	if tr := d.Tick(s, s.Retained.Add(-time.Nanosecond)); tr.Tombstone || tr.State != nil {
		t.Fatal("tombstoned before the retention ended")
	}
	if tr := d.Tick(s, s.Retained); !tr.Tombstone {
		t.Fatal("no tombstone after the retention")
	}
}

func TestFailureReplyCompensatesCompletedStepsInReverse(t *testing.T) {
	d := orderSaga(t)
	s := start(t, d)
	s = d.OnReply(s, ok("stock", 1, `{"reservation":"r-9"}`), t0).State
	s = d.OnReply(s, ok("payment", 1, `{"charge":"c-1"}`), t0).State
	tr := d.OnReply(s, fail("shipping", 1), t0)
	// shipping failed (nothing to undo); payment then stock are undone.
	wantSent(t, tr, "compensation:payment#1")
	if string(tr.Out[0].Value) != `{"charge":"c-1"}` {
		t.Errorf("refund payload %s", tr.Out[0].Value)
	}
	if tr.State.Status != Compensating || tr.State.Steps[2].Status != StepFailed {
		t.Fatalf("state %+v", tr.State)
	}
	tr = d.OnReply(tr.State, compOK("payment", 1), t0)
	wantSent(t, tr, "compensation:stock#1")
	if string(tr.Out[0].Value) != `{"reservation":"r-9"}` {
		t.Errorf("release payload %s", tr.Out[0].Value)
	}
	tr = d.OnReply(tr.State, compOK("stock", 1), t0)
	wantSent(t, tr)
	if tr.State.Status != Compensated || !tr.Ended || !strings.Contains(tr.State.Error, "shipping failed: declined") {
		t.Fatalf("state %+v", tr.State)
	}
}

func TestFailureOfFirstStepCompensatesNothing(t *testing.T) {
	d := orderSaga(t)
	tr := d.OnReply(start(t, d), fail("stock", 1), t0)
	wantSent(t, tr)
	if tr.State.Status != Compensated || !tr.Ended {
		t.Fatalf("state %+v", tr.State)
	}
}

func TestTimeoutRetriesThenCompensatesTheTimedOutStepToo(t *testing.T) {
	d := orderSaga(t)
	s := d.OnReply(start(t, d), ok("stock", 1, `{"reservation":"r-9"}`), t0).State
	// Not due yet.
	if tr := d.Tick(s, t0.Add(9*time.Second)); tr.State != nil || len(tr.Out) != 0 {
		t.Fatal("tick before the deadline did something")
	}
	// payment has 2 attempts: the first timeout sends it again.
	tr := d.Tick(s, t0.Add(10*time.Second))
	wantSent(t, tr, "command:payment#2")
	if !tr.State.Deadline.Equal(t0.Add(20 * time.Second)) {
		t.Errorf("deadline %v", tr.State.Deadline)
	}
	// The second timeout fails the step; it may have happened, so it is
	// compensated first, then stock.
	tr = d.Tick(tr.State, t0.Add(20*time.Second))
	wantSent(t, tr, "compensation:payment#1")
	if tr.State.Steps[1].Status != StepCompensating || tr.State.Status != Compensating {
		t.Fatalf("state %+v", tr.State)
	}
	s = tr.State
	// The late success of the payment, after the timeout: recorded, ignored.
	tr = d.OnReply(s, ok("payment", 1, `{"charge":"c-late"}`), t0.Add(21*time.Second))
	wantSent(t, tr)
	if !tr.Late || len(tr.State.Late) != 1 || tr.State.Late[0].Step != "payment" || tr.State.Status != Compensating || tr.State.Steps[1].Result != nil {
		t.Fatalf("late reply not recorded and ignored: %+v", tr.State)
	}
	tr = d.OnReply(tr.State, compOK("payment", 1), t0.Add(22*time.Second))
	wantSent(t, tr, "compensation:stock#1")
	tr = d.OnReply(tr.State, compOK("stock", 1), t0.Add(23*time.Second))
	if tr.State.Status != Compensated {
		t.Fatalf("state %+v", tr.State)
	}
	// A late reply to an already compensated step of a terminal saga.
	tr = d.OnReply(tr.State, ok("payment", 2, `{}`), t0.Add(30*time.Second))
	if !tr.Late || tr.State.Status != Compensated || len(tr.State.Late) != 2 || !strings.Contains(tr.State.Late[1].Reason, "already compensated") {
		t.Fatalf("late reply after the end: %+v", tr.State)
	}
}

func TestReplyToAnEarlierAttemptSettlesTheStep(t *testing.T) {
	d := orderSaga(t)
	s := d.OnReply(start(t, d), ok("stock", 1, `{}`), t0).State
	s = d.Tick(s, t0.Add(10*time.Second)).State // payment attempt 2
	tr := d.OnReply(s, ok("payment", 1, `{"charge":"c-1"}`), t0.Add(11*time.Second))
	wantSent(t, tr, "command:shipping#1")
	// attempt 2's reply then is a duplicate.
	tr = d.OnReply(tr.State, ok("payment", 2, `{"charge":"c-1"}`), t0.Add(12*time.Second))
	if !tr.Late || len(tr.Out) != 0 {
		t.Fatalf("duplicate: %+v", tr)
	}
}

func TestDuplicateAndBogusRepliesAreRecordedAndIgnored(t *testing.T) {
	d := orderSaga(t)
	s := start(t, d)
	s1 := d.OnReply(s, ok("stock", 1, `{"reservation":"r-9"}`), t0).State
	for name, r := range map[string]Reply{
		"duplicate":        ok("stock", 1, `{"reservation":"other"}`),
		"future step":      ok("shipping", 1, `{}`),
		"unsent attempt":   ok("payment", 2, `{}`),
		"unknown step":     ok("nope", 1, `{}`),
		"unknown outcome":  {ID: "o-1", Step: "payment", Kind: KindCommand, Attempt: 1, Outcome: "maybe"},
		"unknown kind":     {ID: "o-1", Step: "payment", Kind: "query", Attempt: 1, Outcome: Success},
		"compensation now": compOK("stock", 1),
	} {
		tr := d.OnReply(s1, r, t0.Add(time.Second))
		if !tr.Late || len(tr.Out) != 0 || tr.State.Status != Running || tr.State.Step != 1 || string(tr.State.Steps[0].Result) != `{"reservation":"r-9"}` {
			t.Errorf("%s: not ignored: %+v", name, tr)
		}
		if len(tr.State.Late) != 1 {
			t.Errorf("%s: not recorded", name)
		}
	}
	// The input state is never changed by a transition.
	if len(s1.Late) != 0 || len(s.Late) != 0 || s.Steps[0].Status != StepSent {
		t.Fatal("a transition changed its input state")
	}
}

func TestLateListIsBounded(t *testing.T) {
	d := orderSaga(t)
	s := start(t, d)
	for i := 0; i < 3*maxLate; i++ {
		s = d.OnReply(s, ok("shipping", 1, `{}`), t0).State
	}
	if len(s.Late) != maxLate {
		t.Fatalf("%d late replies kept", len(s.Late))
	}
}

func TestCompensationRetriedUntilConfirmed(t *testing.T) {
	d := orderSaga(t)
	s := d.OnReply(start(t, d), ok("stock", 1, `{}`), t0).State
	s = d.OnReply(s, ok("payment", 1, `{"charge":"c-1"}`), t0).State
	s = d.OnReply(s, fail("shipping", 1), t0).State // compensation:payment#1
	tr := d.OnReply(s, compFail("payment", 1), t0.Add(time.Second))
	wantSent(t, tr)
	if !tr.State.Resend || !tr.State.Deadline.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("no resend scheduled: %+v", tr.State)
	}
	// A stale failure while the resend waits is not a second failure.
	if tr2 := d.OnReply(tr.State, compFail("payment", 1), t0.Add(1500*time.Millisecond)); !tr2.Late {
		t.Fatal("stale compensation failure counted")
	}
	tr = d.Tick(tr.State, t0.Add(2*time.Second))
	wantSent(t, tr, "compensation:payment#2")
	tr = d.OnReply(tr.State, compOK("payment", 2), t0.Add(3*time.Second))
	wantSent(t, tr, "compensation:stock#1")
	if tr.State.Steps[1].Status != StepCompensated || tr.State.Steps[1].CompAttempts != 2 {
		t.Fatalf("state %+v", tr.State.Steps[1])
	}
}

func TestFailingCompensationFailsTheSaga(t *testing.T) {
	d := orderSaga(t) // payment's compensation: 3 attempts, 1s backoff doubling
	s := d.OnReply(start(t, d), ok("stock", 1, `{}`), t0).State
	s = d.OnReply(s, ok("payment", 1, `{"charge":"c-1"}`), t0).State
	s = d.OnReply(s, fail("shipping", 1), t0).State
	now := t0
	var all []string
	for attempt := 1; ; attempt++ {
		now = now.Add(time.Second)
		tr := d.OnReply(s, compFail("payment", attempt), now)
		s = tr.State
		if s.Status == Failed {
			if !tr.Ended || attempt != 3 {
				t.Fatalf("failed after %d attempts, ended=%v", attempt, tr.Ended)
			}
			break
		}
		if attempt == 2 && !s.Deadline.Equal(now.Add(2*time.Second)) {
			t.Fatalf("backoff did not double: %v", s.Deadline.Sub(now))
		}
		now = s.Deadline
		tr = d.Tick(s, now)
		all = append(all, sent(tr)...)
		s = tr.State
	}
	if !reflect.DeepEqual(all, []string{"compensation:payment#2", "compensation:payment#3"}) {
		t.Fatalf("resent %v", all)
	}
	if s.Steps[1].Status != StepCompFailed || !strings.Contains(s.Error, "compensation of step payment failed 3 times") || s.Steps[0].Status != StepDone {
		t.Fatalf("state %+v", s)
	}
	// A failed saga stays visible until its retention ends; a late
	// confirmation does not revive it.
	if tr := d.OnReply(s, compOK("payment", 3), now.Add(time.Minute)); !tr.Late || tr.State.Status != Failed {
		t.Fatal("a failed saga changed")
	}
}

func TestCompensationTimeoutCountsAsAFailedAttempt(t *testing.T) {
	d := orderSaga(t)
	s := d.OnReply(start(t, d), ok("stock", 1, `{}`), t0).State
	s = d.OnReply(s, fail("payment", 1), t0).State // compensation:stock#1, 10 attempts
	tr := d.Tick(s, t0.Add(10*time.Second))        // no confirmation: resend after backoff
	if !tr.State.Resend || tr.State.Steps[0].CompError == "" || len(tr.Out) != 0 {
		t.Fatalf("state %+v", tr.State)
	}
	tr = d.Tick(tr.State, tr.State.Deadline)
	wantSent(t, tr, "compensation:stock#2")
}

func TestStateRoundTripKeepsDeadlines(t *testing.T) {
	d := orderSaga(t)
	s := d.OnReply(start(t, d), ok("stock", 1, `{"reservation":"r-9"}`), t0.Add(time.Second)).State
	got, err := DecodeState(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Deadline.Equal(s.Deadline) || got.Step != 1 || string(got.Steps[0].Result) != `{"reservation":"r-9"}` {
		t.Fatalf("decoded %+v", got)
	}
	// The restored state times out like the original: the deadline is re-armed.
	if tr := d.Tick(got, s.Deadline); len(tr.Out) != 1 {
		t.Fatal("restored deadline not honoured")
	}
	for _, bad := range []string{"", "{", `{"id":""}`, `[]`, `{"id":"x"}`} {
		if _, err := DecodeState([]byte(bad)); err == nil {
			t.Errorf("DecodeState(%q) accepted", bad)
		}
	}
}

func TestTemplates(t *testing.T) {
	ctx := map[string]any{
		"saga":    map[string]any{"id": "s1"},
		"trigger": map[string]any{"n": 3.0, "o": map[string]any{"a": "x"}},
		"steps":   map[string]any{"a": map[string]any{"r": "v"}},
	}
	for in, want := range map[string]any{
		"{trigger.n}":           3.0,
		"{trigger.o}":           map[string]any{"a": "x"},
		"n={trigger.n}":         "n=3",
		"{trigger.missing}":     nil,
		"x{trigger.missing}y":   "xy",
		"{{literal}}":           "{literal}",
		"{steps.a.r}-{saga.id}": "v-s1",
		"plain":                 "plain",
		"":                      "",
	} {
		tpl, err := ParseTemplate(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := tpl.expand(ctx); !reflect.DeepEqual(got, want) {
			t.Errorf("%q = %#v, want %#v", in, got, want)
		}
	}
	for _, bad := range []string{"{", "}", "{x.y}", "{saga.name}", "{steps}", "{trigger..a}", "{}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	d := &Definition{Name: "x", Trigger: Trigger{Topic: "t"}, Steps: []Step{{Name: "a", ReplyTopic: "r", Command: Command{Topic: "c", Type: "T"}}}}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	s := d.Steps[0]
	if s.Timeout != DefaultTimeout || s.Attempts != 1 || s.CompensationAttempts != DefaultCompensationAttempts || d.Retention != DefaultRetention || d.Trigger.IDField != "id" {
		t.Fatalf("defaults %+v %+v", d, s)
	}
	bad := []func(d *Definition){
		func(d *Definition) { d.Name = "" },
		func(d *Definition) { d.Trigger.Topic = "" },
		func(d *Definition) { d.Steps = nil },
		func(d *Definition) { d.Steps[0].Name = "" },
		func(d *Definition) { d.Steps = append(d.Steps, d.Steps[0]) },
		func(d *Definition) { d.Steps[0].ReplyTopic = "" },
		func(d *Definition) { d.Steps[0].Command.Type = "" },
		func(d *Definition) { d.Steps[0].Compensation = &Command{Topic: "c"} },
		func(d *Definition) { d.Steps[0].Command.Payload = map[string]string{"f": "{bad}"} },
	}
	for i, f := range bad {
		d := &Definition{Name: "x", Trigger: Trigger{Topic: "t"}, Steps: []Step{{Name: "a", ReplyTopic: "r", Command: Command{Topic: "c", Type: "T"}}}}
		f(d)
		if err := d.Validate(); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
}
