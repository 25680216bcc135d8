package topology

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const stripeTopology = `name: stripe
systems: [stripe, erp]
source:
  topics: [stripe.raw]
  system: stripe
  format: webhook
  webhook:
    path: /webhooks/stripe
    scheme: stripe
    secrets: [env:STRIPE_WHSEC, file:/run/secrets/stripe_next]
    map:
      id: id
      type: type
      entity: data.object.object
      key: [data.object.id]
      after: data.object
      before: data.previous_attributes
      occurred_at: created
      ops: {'*.created': c, '*.updated': u, '*.deleted': d}
sink: {topic: 'sync.{entity}', key: [id]}
`

func TestWebhookTopology(t *testing.T) {
	p, err := Parse("stripe.yaml", []byte(stripeTopology))
	if err != nil {
		t.Fatal(err)
	}
	w := p.Webhook()
	if p.Format() != WebhookJSON || p.RawTopic() != "stripe.raw" || w.Path != "/webhooks/stripe" || w.Scheme != "stripe" {
		t.Fatalf("plan: format %v raw %q webhook %+v", p.Format(), p.RawTopic(), w)
	}
	// Defaults.
	if w.Tolerance != 5*time.Minute || w.MaxBody != 1<<20 || w.Partitions != 8 {
		t.Errorf("defaults: tolerance %v max_body %d partitions %d", w.Tolerance, w.MaxBody, w.Partitions)
	}
	if len(w.Map.Ops) != 3 || w.Map.Ops[0] != (WebhookOp{"*.created", "c"}) {
		t.Errorf("ops in file order: %+v", w.Map.Ops)
	}
	for typ, want := range map[string]string{"customer.created": "c", "invoice.payment.updated": "u", "customer.deleted": "d", "ping": ""} {
		if got, _ := w.Map.MatchOp(typ); got != want {
			t.Errorf("MatchOp(%q) = %q, want %q", typ, got, want)
		}
	}
}

// TestWebhookBreakOneField breaks one source.webhook option at a time.
func TestWebhookBreakOneField(t *testing.T) {
	for _, c := range []struct {
		name, from, to, field string
		kind                  error
	}{
		{"pattern", "topics: [stripe.raw]", "topic_pattern: 'stripe\\..*'", "source.topics", ErrInvalid},
		{"two topics", "topics: [stripe.raw]", "topics: [stripe.raw, stripe.raw2]", "source.topics", ErrInvalid},
		{"no path", "path: /webhooks/stripe", "path: ''", "source.webhook.path", ErrMissing},
		{"relative path", "path: /webhooks/stripe", "path: webhooks", "source.webhook.path", ErrInvalid},
		{"unclean path", "path: /webhooks/stripe", "path: /a/../b", "source.webhook.path", ErrInvalid},
		{"scheme", "scheme: stripe", "scheme: md5", "source.webhook.scheme", ErrInvalid},
		{"literal secret", "env:STRIPE_WHSEC", "whsec_abc", "source.webhook.secrets[0]", ErrInvalid},
		{"no secrets", "secrets: [env:STRIPE_WHSEC, file:/run/secrets/stripe_next]", "secrets: []", "source.webhook.secrets", ErrMissing},
		{"header on stripe", "scheme: stripe", "scheme: stripe\n    header: X-Sig", "source.webhook.header", ErrInvalid},
		{"hmac needs header", "scheme: stripe", "scheme: hmac-sha256", "source.webhook.header", ErrMissing},
		{"hmac encoding", "scheme: stripe", "scheme: hmac-sha256\n    header: X-Sig\n    encoding: base32", "source.webhook.encoding", ErrInvalid},
		{"tolerance", "scheme: stripe", "scheme: stripe\n    tolerance: 0s", "source.webhook.tolerance", ErrInvalid},
		{"max_body", "scheme: stripe", "scheme: stripe\n    max_body: 0", "source.webhook.max_body", ErrInvalid},
		{"partitions", "scheme: stripe", "scheme: stripe\n    partitions: 0", "source.webhook.partitions", ErrInvalid},
		{"no id", "      id: id\n", "", "source.webhook.map.id", ErrMissing},
		{"no after", "      after: data.object\n", "", "source.webhook.map.after", ErrMissing},
		{"bad op", "'*.deleted': d", "'*.deleted': x", "source.webhook.map.ops.*.deleted", ErrInvalid},
		{"bad pattern", "'*.deleted': d", "'[': d", "source.webhook.map.ops.[", ErrInvalid},
		{"empty header name", "      id: id\n", "      id: 'header:'\n", "source.webhook.map.id", ErrInvalid},
		{"after from a header", "after: data.object", "after: header:x-state", "source.webhook.map.after", ErrInvalid},
		{"key from a header", "key: [data.object.id]", "key: [header:x-key]", "source.webhook.map.key[0]", ErrInvalid},
		{"webhook on debezium", "format: webhook", "format: debezium-json", "source.webhook", ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(stripeTopology, c.from, c.to, 1)
			if doc == stripeTopology {
				t.Fatalf("%q not in the topology", c.from)
			}
			_, err := Parse("stripe.yaml", []byte(doc))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
			for _, e := range errs {
				if e.Field == c.field && errors.Is(e, c.kind) {
					if e.Line == 0 {
						t.Errorf("%s: no line", e.Field)
					}
					return
				}
			}
			t.Errorf("no %v error on %s: %v", c.kind, c.field, err)
		})
	}
	// A webhook topology without the section.
	doc := strings.Replace(stripeTopology, "  webhook:\n", "  webhookx:\n", 1)
	if _, err := Parse("stripe.yaml", []byte(doc)); err == nil {
		t.Error("webhook format without source.webhook accepted")
	}
}

func TestWebhookDescribe(t *testing.T) {
	p, err := Parse("stripe.yaml", []byte(stripeTopology))
	if err != nil {
		t.Fatal(err)
	}
	d := p.Describe()
	for _, want := range []string{"source.webhook.path", "/webhooks/stripe", "env:STRIPE_WHSEC, file:/run/secrets/stripe_next",
		"5m  (default)", "{*.created: c, *.updated: u, *.deleted: d}"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q:\n%s", want, d)
		}
	}
}

func TestWebhookHeaderFields(t *testing.T) {
	doc := strings.Replace(strings.Replace(stripeTopology, "      id: id\n", "      id: header:webhook-id\n", 1), "      type: type\n", "      type: header:X-GitHub-Event\n", 1)
	p, err := Parse("h.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Webhook().Map; m.ID != "header:webhook-id" || m.Type != "header:X-GitHub-Event" {
		t.Errorf("map %+v", m)
	}
}
