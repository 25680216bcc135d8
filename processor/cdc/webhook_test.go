package cdc

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func stripeMap() WebhookMap {
	return WebhookMap{ID: "id", Type: "type", Entity: "data.object.object", Key: []string{"data.object.id"},
		After: "data.object", Before: "data.previous_attributes", OccurredAt: "created",
		Op: func(t string) (Op, bool) {
			switch {
			case strings.HasSuffix(t, ".created"):
				return OpCreate, true
			case strings.HasSuffix(t, ".updated"):
				return OpUpdate, true
			case strings.HasSuffix(t, ".deleted"):
				return OpDelete, true
			}
			return 0, false
		}}
}

// A customer.updated event as Stripe sends it (shape from Stripe's API
// reference for the Event object), cut down.
const stripeUpdated = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","api_version":"2023-10-16","created":1686089970,
"data":{"object":{"id":"cus_NffrFeUfNV2Hib","object":"customer","email":"jenny@example.com","balance":0,"metadata":{"tier":"gold"},"delinquent":false,"phone":null},
"previous_attributes":{"email":"jen@example.com"}},"livemode":false,"pending_webhooks":1,"type":"customer.updated"}`

func TestWebhookDecodeStripeUpdate(t *testing.T) {
	d := NewWebhookDecoder(Options{SourceSystem: "stripe"}, stripeMap())
	ev, err := d.Decode("stripe.raw", nil, []byte(stripeUpdated))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Op != OpUpdate || ev.Type != "customer.updated" || ev.Entity != "customer" || ev.Source.Table != "customer" || ev.SourceSystem != "stripe" {
		t.Errorf("event: %+v", ev)
	}
	if v, _ := ev.Key.Get("id"); v != "cus_NffrFeUfNV2Hib" || len(ev.Key) != 1 {
		t.Errorf("key %v", ev.Key)
	}
	if v, _ := ev.After.Get("email"); v != "jenny@example.com" {
		t.Errorf("after.email %v", v)
	}
	if v, _ := ev.After.Get("balance"); v != Number("0") {
		t.Errorf("after.balance %#v", v)
	}
	if v, _ := ev.After.Get("metadata"); v != JSON(`{"tier":"gold"}`) {
		t.Errorf("after.metadata %#v", v)
	}
	if v, ok := ev.After.Get("phone"); !ok || v != nil {
		t.Errorf("after.phone %#v %v", v, ok)
	}
	// Changed fields of an update are the keys of previous_attributes.
	if len(ev.Changed) != 1 || ev.Changed[0] != "email" {
		t.Errorf("changed %v, want [email]", ev.Changed)
	}
	if !ev.OccurredAt.Equal(time.Unix(1686089970, 0)) {
		t.Errorf("occurred at %v", ev.OccurredAt)
	}
	if ev.ID != WebhookID("stripe", "evt_1NG8Du2eZvKYlo2CUI79vXWy") {
		t.Error("ID is not the delivery ID's")
	}
	// The same delivery with other bytes (a redelivery re-serialised) has
	// the same ID; another delivery ID another.
	ev2, err := d.Decode("stripe.raw", nil, []byte(strings.Replace(stripeUpdated, `"pending_webhooks":1`, `"pending_webhooks":2`, 1)))
	if err != nil || ev2.ID != ev.ID {
		t.Errorf("redelivery: %v, same ID %v", err, ev2 != nil && ev2.ID == ev.ID)
	}
	ev3, _ := d.Decode("stripe.raw", nil, []byte(strings.Replace(stripeUpdated, `evt_1NG8`, `evt_2NG8`, 1)))
	if ev3.ID == ev.ID {
		t.Error("another delivery has the same ID")
	}
}

func TestWebhookDecodeCreateDelete(t *testing.T) {
	d := NewWebhookDecoder(Options{SourceSystem: "stripe"}, stripeMap())
	c := `{"id":"evt_c","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer","email":"a@x"}}}`
	ev, err := d.Decode("t", nil, []byte(c))
	if err != nil || ev.Op != OpCreate || ev.Before != nil || len(ev.Changed) != 3 {
		t.Fatalf("create: %v %+v", err, ev)
	}
	del := `{"id":"evt_d","type":"customer.deleted","data":{"object":{"id":"cus_1","object":"customer","deleted":true}}}`
	ev, err = d.Decode("t", nil, []byte(del))
	if err != nil || ev.Op != OpDelete || ev.After != nil || ev.Before == nil || ev.Type != "customer.deleted" {
		t.Fatalf("delete: %v %+v", err, ev)
	}
}

func TestWebhookExtractRefuses(t *testing.T) {
	m := stripeMap()
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	for name, c := range map[string]struct {
		body string
		kind error
	}{
		"empty":            {"", ErrMalformed},
		"invalid UTF-8":    {"{\"id\":\"\xff\xfe\"}", ErrMalformed},
		"100k deep":        {deep, ErrMalformed},
		"deep in object":   {`{"id":` + deep + `}`, ErrMalformed},
		"not JSON":         {`{"id":`, ErrMalformed},
		"array":            {`[1,2]`, ErrMalformed},
		"no id":            {`{"type":"customer.created","data":{"object":{"id":"c","object":"customer"}}}`, ErrMissingField},
		"object id":        {`{"id":{},"type":"customer.created","data":{"object":{"id":"c","object":"customer"}}}`, ErrMissingField},
		"no type":          {`{"id":"e","data":{"object":{"id":"c","object":"customer"}}}`, ErrMissingField},
		"unmapped type":    {`{"id":"e","type":"charge.succeeded","data":{"object":{"id":"c","object":"charge"}}}`, ErrUnknownOp},
		"no entity":        {`{"id":"e","type":"customer.created","data":{"object":{"id":"c"}}}`, ErrMissingField},
		"state not object": {`{"id":"e","type":"customer.created","data":{"object":"x"}}`, ErrMissingField},
		"no key":           {`{"id":"e","type":"customer.created","data":{"object":{"object":"customer"}}}`, ErrMissingField},
	} {
		_, err := m.Extract([]byte(c.body), nil)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, c.kind) {
			t.Errorf("%s: %v, want a DecodeError wrapping %v", name, err, c.kind)
		}
	}
	// Brackets inside strings do not count as depth.
	ok := `{"id":"e` + strings.Repeat("[", 200) + `","type":"customer.created","data":{"object":{"id":"c","object":"customer"}}}`
	if _, err := m.Extract([]byte(ok), nil); err != nil {
		t.Errorf("brackets in a string: %v", err)
	}
}

func TestWebhookRecordKey(t *testing.T) {
	m := stripeMap()
	a, _ := m.Extract([]byte(`{"id":"e1","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}`), nil)
	b, _ := m.Extract([]byte(`{"id":"e2","type":"customer.updated","data":{"object":{"id":"cus_1","object":"customer","x":1}}}`), nil)
	if string(a.RecordKey) != string(b.RecordKey) || len(a.RecordKey) == 0 {
		t.Errorf("same entity key, different record keys %q %q", a.RecordKey, b.RecordKey)
	}
	m.Key = nil
	c, _ := m.Extract([]byte(`{"id":"e3","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}`), nil)
	if string(c.RecordKey) != "e3" {
		t.Errorf("no key paths: record key %q, want the delivery ID", c.RecordKey)
	}
}

func FuzzWebhookDecode(f *testing.F) {
	f.Add([]byte(stripeUpdated))
	f.Add([]byte(`{"id":1,"type":"x.deleted","data":{"object":{"object":"x","id":[]}}}`))
	d := NewWebhookDecoder(Options{SourceSystem: "s"}, stripeMap())
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = d.Decode("t", nil, b)
	})
}

// Standard Webhooks carries the message ID in the webhook-id header, not
// the body: the map reads it as header:webhook-id.
func TestWebhookHeaderFields(t *testing.T) {
	m := stripeMap()
	m.ID = "header:webhook-id"
	m.Type = "header:X-Event"
	body := []byte(`{"data":{"object":{"id":"cus_1","object":"customer"}}}`)
	hdr := map[string]string{"webhook-id": "msg_2Ld", "x-event": "customer.updated"}
	lookup := func(n string) string { return hdr[strings.ToLower(n)] }
	d, err := m.Extract(body, lookup)
	if err != nil || d.ID != "msg_2Ld" || d.Op != OpUpdate {
		t.Fatalf("extract: %+v %v", d, err)
	}
	if _, err := m.Extract(body, nil); !errors.Is(err, ErrMissingField) {
		t.Errorf("no headers: %v, want ErrMissingField", err)
	}
	ev, err := NewWebhookDecoder(Options{SourceSystem: "s"}, m).DecodeRecord("t", nil, body, lookup)
	if err != nil || ev.ID != WebhookID("s", "msg_2Ld") {
		t.Fatalf("decode: %v", err)
	}
}
