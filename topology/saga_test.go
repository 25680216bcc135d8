package topology

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const orderSaga = `name: order-saga
saga:
  trigger:
    topic: shop.orders
    type: OrderPlaced
  retention: 48h
  steps:
    - name: stock
      command:
        topic: stock.commands
        type: ReserveStock
        payload: {order: "{trigger.id}", sku: "{trigger.sku}"}
      reply_topic: stock.replies
      timeout: 10s
      compensation:
        topic: stock.commands
        type: ReleaseStock
        payload: {reservation: "{steps.stock.reservation}"}
    - name: payment
      command:
        topic: payment.commands
        type: Charge
        payload: {order: "{trigger.id}", amount: "{trigger.amount}", reservation: "{steps.stock.reservation}"}
      reply_topic: payment.replies
      attempts: 3
      compensation: {topic: payment.commands, type: Refund, payload: {charge: "{steps.payment.charge}"}}
      compensation_attempts: 5
      compensation_backoff: 2s
    - name: shipping
      command: {topic: shipping.commands, type: Ship, payload: {order: "{saga.id}"}}
      reply_topic: shipping.replies
`

func TestSagaParses(t *testing.T) {
	p, err := Parse("order-saga.yaml", []byte(orderSaga))
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsSaga() || p.IsApply() || p.SagaStateTopic() != "order-saga.saga" || p.DLQTopic() != "dlq.order-saga" {
		t.Fatalf("plan %+v", p.JSON())
	}
	s := p.Saga()
	if s.Retention != 48*time.Hour || s.Trigger.IDField != "id" || s.Trigger.TypeField != "type" || len(s.Steps) != 3 {
		t.Fatalf("saga %+v", s)
	}
	st := s.Steps[0]
	if st.Timeout != 10*time.Second || st.Attempts != 1 || st.CompensationAttempts != DefaultSagaCompensationAttempts || st.Compensation.Type != "ReleaseStock" {
		t.Fatalf("step 0 %+v", st)
	}
	if st := s.Steps[1]; st.Timeout != DefaultSagaTimeout || st.Attempts != 3 || st.CompensationAttempts != 5 || st.CompensationBackoff != 2*time.Second {
		t.Fatalf("step 1 %+v", st)
	}
	if s.Steps[2].Compensation != nil {
		t.Fatal("shipping has no compensation")
	}
	d := p.SagaDefinition()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.Name != "order-saga" || d.Trigger.Type != "OrderPlaced" || d.Steps[1].Compensation.Topic != "payment.commands" {
		t.Fatalf("definition %+v", d)
	}
	desc := p.Describe()
	for _, want := range []string{"saga.trigger.topic", "shop.orders", "saga.steps[1]", "payment: Charge payment.commands -> payment.replies, timeout 30s, 3 attempt(s); compensation Refund payment.commands, 5 attempt(s), backoff 2s", "saga.retention"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}
}

// TestSagaValidation breaks one field at a time; each error names the
// file, the line, the field and the reason.
func TestSagaValidation(t *testing.T) {
	// Steps that are not a list.
	_, err := Parse("s.yaml", []byte("name: s\nsaga:\n  trigger: {topic: t}\n  steps: {name: a}\n"))
	if err == nil || !strings.Contains(err.Error(), "s.yaml:4: saga.steps: must be a list of steps") {
		t.Fatalf("steps as a mapping: %v", err)
	}
	for _, tc := range []struct {
		name, old, new string
		line           int
		field, reason  string
		kind           error
	}{
		{"no trigger topic", "    topic: shop.orders\n", "    topic: ''\n", 4, "saga.trigger.topic", "required: the trigger topic", ErrMissing},
		{"bad trigger topic", "    topic: shop.orders\n", "    topic: 'shop orders'\n", 4, "saga.trigger.topic", "", ErrInvalid},
		{"trigger is the state topic", "    topic: shop.orders\n", "    topic: order-saga.saga\n", 4, "saga.trigger.topic", "the saga's own state topic", ErrInvalid},
		{"empty id field", "    type: OrderPlaced\n", "    type: OrderPlaced\n    id_field: ''\n", 6, "saga.trigger.id_field", "empty", ErrMissing},
		{"bad retention", "  retention: 48h\n", "  retention: -1h\n", 6, "saga.retention", "greater than 0", ErrInvalid},
		{"retention not a duration", "  retention: 48h\n", "  retention: 2d\n", 6, "saga.retention", "invalid duration", ErrInvalid},
		{"no step name", "    - name: stock\n", "    - name: ''\n", 8, "saga.steps[0].name", "required: the step name", ErrMissing},
		{"bad step name", "    - name: stock\n", "    - name: Stock!\n", 8, "saga.steps[0].name", "must match", ErrInvalid},
		{"duplicate step name", "    - name: payment\n", "    - name: stock\n", 19, "saga.steps[1].name", "duplicate step name \"stock\" (also saga.steps[0])", ErrInvalid},
		{"no command topic", "        topic: stock.commands\n        type: ReserveStock\n", "        type: ReserveStock\n", 9, "saga.steps[0].command.topic", "required", ErrMissing},
		{"no command type", "        type: ReserveStock\n", "", 9, "saga.steps[0].command.type", "required: the command type", ErrMissing},
		{"bad template", `{order: "{trigger.id}", sku: "{trigger.sku}"}`, `{order: "{trigger.id}", sku: "{trigger.sku"}`, 12, "saga.steps[0].command.payload.sku", "unmatched {", ErrInvalid},
		{"unknown template root", `{order: "{trigger.id}", sku: "{trigger.sku}"}`, `{order: "{env.HOME}", sku: "{trigger.sku}"}`, 12, "saga.steps[0].command.payload.order", "unknown root \"env\"", ErrInvalid},
		{"template uses a later step", `{order: "{trigger.id}", sku: "{trigger.sku}"}`, `{order: "{steps.payment.charge}", sku: "{trigger.sku}"}`, 12, "saga.steps[0].command.payload.order", "refers to step \"payment\", which has not replied by then", ErrInvalid},
		{"command uses its own step", `amount: "{trigger.amount}", reservation: "{steps.stock.reservation}"}`, `amount: "{trigger.amount}", reservation: "{steps.payment.x}"}`, 23, "saga.steps[1].command.payload.reservation", "refers to step \"payment\"", ErrInvalid},
		{"no reply topic", "      reply_topic: stock.replies\n", "", 8, "saga.steps[0].reply_topic", "required: the reply topic", ErrMissing},
		{"reply on the trigger topic", "      reply_topic: stock.replies\n", "      reply_topic: shop.orders\n", 13, "saga.steps[0].reply_topic", "is the trigger topic", ErrInvalid},
		{"bad timeout", "      timeout: 10s\n", "      timeout: 0s\n", 14, "saga.steps[0].timeout", "greater than 0", ErrInvalid},
		{"bad attempts", "      attempts: 3\n", "      attempts: 0\n", 25, "saga.steps[1].attempts", "at least 1", ErrInvalid},
		{"attempts not a number", "      attempts: 3\n", "      attempts: many\n", 25, "saga.steps[1].attempts", "invalid whole number", ErrInvalid},
		{"no compensation type", "        type: ReleaseStock\n", "", 15, "saga.steps[0].compensation.type", "required", ErrMissing},
		{"bad compensation attempts", "      compensation_attempts: 5\n", "      compensation_attempts: 0\n", 27, "saga.steps[1].compensation_attempts", "at least 1", ErrInvalid},
		{"bad compensation backoff", "      compensation_backoff: 2s\n", "      compensation_backoff: 0s\n", 28, "saga.steps[1].compensation_backoff", "greater than 0", ErrInvalid},
		{"compensation options without a compensation", "      reply_topic: shipping.replies\n", "      reply_topic: shipping.replies\n      compensation_attempts: 3\n", 32, "saga.steps[2].compensation_attempts", "only applies to a step with a compensation", ErrInvalid},
		{"unknown step field", "      reply_topic: shipping.replies\n", "      reply_topic: shipping.replies\n      retries: 3\n", 32, "saga.steps[2].retries", "unknown field", ErrUnknownField},
		{"sink in a saga", "saga:\n", "sink: {topic: x, key: [id]}\nsaga:\n", 2, "sink", "does not apply to a saga topology", ErrInvalid},
		{"at_least_once saga", "saga:\n", "guarantee: at_least_once\nsaga:\n", 2, "guarantee", "always exactly_once", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(orderSaga, tc.old) {
				t.Fatalf("fixture lacks %q", tc.old)
			}
			doc := strings.Replace(orderSaga, tc.old, tc.new, 1)
			_, err := Parse("order-saga.yaml", []byte(doc))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("accepted, or not Errors: %v", err)
			}
			var found *Error
			for _, e := range errs {
				if e.Field == tc.field {
					found = e
				}
			}
			if found == nil {
				t.Fatalf("no error for %s: %v", tc.field, err)
			}
			if found.File != "order-saga.yaml" || found.Line != tc.line || !strings.Contains(found.Reason, tc.reason) || !errors.Is(found, tc.kind) {
				t.Fatalf("got %s:%d %s: %s (%v), want line %d, reason containing %q, kind %v", found.File, found.Line, found.Field, found.Reason, found.Err, tc.line, tc.reason, tc.kind)
			}
			if len(errs) != 1 {
				t.Errorf("%d errors for one broken field: %v", len(errs), err)
			}
		})
	}
}
