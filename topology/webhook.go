package topology

import (
	"cmp"
	"fmt"
	"path"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of the source.webhook options.
const (
	DefaultWebhookTolerance  = 5 * time.Minute
	DefaultWebhookMaxBody    = 1 << 20 // bytes
	DefaultWebhookPartitions = 8
)

// webhookSchemeNames are the signature schemes of source.webhook.scheme
// (processor/ingress implements them).
var webhookSchemeNames = []string{"stripe", "github", "shopify", "standard-webhooks", "hmac-sha256"}

// Webhook is the "source.webhook" section of a topology whose
// source.format is webhook: the worker's ingress endpoint verifies each
// request at Path and produces its raw body to the topology's one source
// topic (the raw topic), which the topology then consumes.
type Webhook struct {
	Path      string   // URL path on the worker's ingress_addr, e.g. /webhooks/stripe
	Scheme    string   // one of webhookSchemeNames
	Secrets   []string // "env:NAME" or "file:PATH", every active secret
	Tolerance time.Duration
	Header    string // hmac-sha256: the signature header
	Encoding  string // hmac-sha256: hex (default) or base64
	Prefix    string // hmac-sha256: text before the signature, e.g. "sha256="
	MaxBody   int    // bytes; larger requests get 413
	// Partitions of the raw topic when the ingress creates it.
	Partitions int
	Map        WebhookMap
}

// WebhookMap says where a delivery's parts are in its JSON body, as gjson
// paths (github.com/tidwall/gjson syntax: dots, escaped dots, #, ...).
type WebhookMap struct {
	ID         string   // the delivery (event) ID: the event ID, so redeliveries are dropped; or header:<Name>
	Type       string   // the event type, matched against Ops; or header:<Name>
	Entity     string   // the entity name, e.g. "customer"; or header:<Name>
	Key        []string // the entity key fields; empty keys by the delivery ID
	After      string   // the entity's state after the change
	Before     string   // the previous values of the changed fields, when sent
	OccurredAt string   // unix seconds or RFC 3339; empty: the delivery's receipt
	Ops        []WebhookOp
}

// WebhookOp maps event types matching Pattern ('*' matches any run of
// characters, as in path.Match without '/') to an operation.
type WebhookOp struct {
	Pattern string
	Op      string // "c", "u" or "d"
}

// Webhook is the source.webhook section; meaningful only when Format is
// Webhook.
func (p *Plan) Webhook() Webhook {
	w := p.cfg.Source.Webhook
	w.Secrets = append([]string(nil), w.Secrets...)
	w.Map.Key = append([]string(nil), w.Map.Key...)
	w.Map.Ops = append([]WebhookOp(nil), w.Map.Ops...)
	return w
}

// RawTopic is the topic the ingress writes and the topology reads: its
// one source topic. Empty unless the format is webhook.
func (p *Plan) RawTopic() Topic {
	if p.cfg.Source.Format != WebhookJSON || len(p.cfg.Source.Topics) != 1 {
		return ""
	}
	return p.cfg.Source.Topics[0]
}

// MatchOp returns the op of the first pattern matching typ.
func (m WebhookMap) MatchOp(typ string) (string, bool) {
	for _, o := range m.Ops {
		if globMatch(o.Pattern, typ) {
			return o.Op, true
		}
	}
	return "", false
}

func globMatch(pattern, s string) bool {
	// '/' is not special in event types; path.Match treats it as a
	// separator, so swap it for a byte neither contains.
	ok, err := path.Match(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(s, "/", "\x00"))
	return err == nil && ok
}

func (d *decoder) webhook(n *yaml.Node, p string) {
	w := &d.c.Source.Webhook
	d.mapping(n, p, []field{
		{"path", func(n *yaml.Node, p string) { d.str(n, p, &w.Path) }},
		{"scheme", func(n *yaml.Node, p string) { d.str(n, p, &w.Scheme) }},
		{"secrets", func(n *yaml.Node, p string) { w.Secrets = strList[string](d, n, p) }},
		{"tolerance", func(n *yaml.Node, p string) { d.duration(n, p, &w.Tolerance) }},
		{"header", func(n *yaml.Node, p string) { d.str(n, p, &w.Header) }},
		{"encoding", func(n *yaml.Node, p string) { d.str(n, p, &w.Encoding) }},
		{"prefix", func(n *yaml.Node, p string) { d.str(n, p, &w.Prefix) }},
		{"max_body", func(n *yaml.Node, p string) { d.integer(n, p, &w.MaxBody) }},
		{"partitions", func(n *yaml.Node, p string) { d.integer(n, p, &w.Partitions) }},
		{"map", func(n *yaml.Node, p string) {
			m := &w.Map
			d.mapping(n, p, []field{
				{"id", func(n *yaml.Node, p string) { d.str(n, p, &m.ID) }},
				{"type", func(n *yaml.Node, p string) { d.str(n, p, &m.Type) }},
				{"entity", func(n *yaml.Node, p string) { d.str(n, p, &m.Entity) }},
				{"key", func(n *yaml.Node, p string) { m.Key = strList[string](d, n, p) }},
				{"after", func(n *yaml.Node, p string) { d.str(n, p, &m.After) }},
				{"before", func(n *yaml.Node, p string) { d.str(n, p, &m.Before) }},
				{"occurred_at", func(n *yaml.Node, p string) { d.str(n, p, &m.OccurredAt) }},
				{"ops", func(n *yaml.Node, p string) { d.webhookOps(n, p) }},
			})
		}},
	})
}

// webhookOps decodes the ordered mapping of event-type pattern to op.
func (d *decoder) webhookOps(n *yaml.Node, p string) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, p, ErrInvalid, "must be a mapping of event-type pattern to op, e.g. {'*.created': c}, not %s", kindName(n))
		return
	}
	var ops []WebhookOp
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.report(k.Line, p, ErrInvalid, "event-type patterns must be strings, not %s", kindName(k))
			continue
		}
		kp := joinPath(p, k.Value)
		d.c.lines[kp] = k.Line
		var op string
		if d.str(v, kp, &op) {
			ops = append(ops, WebhookOp{Pattern: k.Value, Op: op})
		}
	}
	d.c.Source.Webhook.Map.Ops = ops
}

// webhookDefaults fills the static defaults of source.webhook.
func (w *Webhook) defaults() {
	w.Tolerance = DefaultWebhookTolerance
	w.MaxBody = DefaultWebhookMaxBody
	w.Partitions = DefaultWebhookPartitions
}

// webhook validates source.webhook against source.format.
func (v *validator) webhook() {
	s := &v.c.Source
	w := &s.Webhook
	if s.Format != WebhookJSON {
		if v.c.written["source.webhook"] {
			v.add("source.webhook", ErrInvalid, "only applies to source.format: webhook (source.format is %v)", s.Format)
		}
		return
	}
	if s.TopicPattern != "" || len(s.Topics) != 1 {
		v.add("source.topics", ErrInvalid, "source.format: webhook needs exactly one topic in source.topics: the raw topic the ingress writes and the topology reads")
	}
	if !v.c.written["source.webhook"] {
		v.add("source.webhook", ErrMissing, "required by source.format: webhook: path, scheme, secrets and map")
		return
	}
	switch {
	case w.Path == "":
		v.add("source.webhook.path", ErrMissing, "required: the URL path served on the worker's ingress_addr, e.g. /webhooks/stripe")
	case !strings.HasPrefix(w.Path, "/") || strings.ContainsAny(w.Path, "?#* \t") || path.Clean(w.Path) != w.Path:
		v.add("source.webhook.path", ErrInvalid, "%q must be a clean absolute URL path, e.g. /webhooks/stripe", w.Path)
	}
	switch {
	case w.Scheme == "":
		v.add("source.webhook.scheme", ErrMissing, "required: one of %s", quoteList(webhookSchemeNames))
	case !containsString(webhookSchemeNames, w.Scheme):
		v.add("source.webhook.scheme", ErrInvalid, "%q is not one of %s", w.Scheme, quoteList(webhookSchemeNames))
	}
	if len(w.Secrets) == 0 {
		v.add("source.webhook.secrets", ErrMissing, "required: at least one env:NAME or file:PATH (secrets are never written in a topology file)")
	}
	for i, s := range w.Secrets {
		kind, name, ok := strings.Cut(s, ":")
		if !ok || name == "" || (kind != "env" && kind != "file") {
			v.add(fmt.Sprintf("source.webhook.secrets[%d]", i), ErrInvalid, "must be env:NAME or file:PATH, not a secret itself")
		}
	}
	if w.Scheme == "hmac-sha256" {
		if w.Header == "" {
			v.add("source.webhook.header", ErrMissing, "required by scheme hmac-sha256: the header holding the signature")
		}
		if w.Encoding != "" && w.Encoding != "hex" && w.Encoding != "base64" {
			v.add("source.webhook.encoding", ErrInvalid, "%q is not one of \"hex\" or \"base64\"", w.Encoding)
		}
	} else {
		for _, f := range []string{"header", "encoding", "prefix"} {
			if v.c.written["source.webhook."+f] {
				v.add("source.webhook."+f, ErrInvalid, "only applies to scheme hmac-sha256 (scheme is %q)", w.Scheme)
			}
		}
	}
	if w.Tolerance <= 0 {
		v.add("source.webhook.tolerance", ErrInvalid, "must be greater than 0, got %v", w.Tolerance)
	}
	if w.MaxBody < 1 || w.MaxBody > 64<<20 {
		v.add("source.webhook.max_body", ErrInvalid, "must be from 1 to 67108864 bytes, got %d", w.MaxBody)
	}
	if w.Partitions < 1 || w.Partitions > 10000 {
		v.add("source.webhook.partitions", ErrInvalid, "must be from 1 to 10000, got %d", w.Partitions)
	}
	m := &w.Map
	for _, r := range []struct{ name, val string }{{"id", m.ID}, {"type", m.Type}, {"entity", m.Entity}, {"after", m.After}} {
		if r.val == "" {
			v.add("source.webhook.map."+r.name, ErrMissing, "required: a JSON path into the delivery body")
		}
	}
	for _, r := range []struct{ name, val string }{{"id", m.ID}, {"type", m.Type}, {"entity", m.Entity}} {
		if name, ok := strings.CutPrefix(r.val, "header:"); ok && (name == "" || strings.ContainsAny(name, " \t:")) {
			v.add("source.webhook.map."+r.name, ErrInvalid, "%q: want header:<Name>, e.g. header:webhook-id", r.val)
		}
	}
	for _, r := range []struct{ name, val string }{{"after", m.After}, {"before", m.Before}, {"occurred_at", m.OccurredAt}} {
		if strings.HasPrefix(r.val, "header:") {
			v.add("source.webhook.map."+r.name, ErrInvalid, "only id, type and entity can be read from a header")
		}
	}
	for i, k := range m.Key {
		if strings.HasPrefix(k, "header:") {
			v.add(fmt.Sprintf("source.webhook.map.key[%d]", i), ErrInvalid, "only id, type and entity can be read from a header")
		}
		if k == "" {
			v.add(fmt.Sprintf("source.webhook.map.key[%d]", i), ErrInvalid, "empty JSON path")
		}
	}
	if len(m.Ops) == 0 {
		v.add("source.webhook.map.ops", ErrMissing, "required: event-type patterns to ops, e.g. {'*.created': c, '*.updated': u, '*.deleted': d}")
	}
	for _, o := range m.Ops {
		if _, err := path.Match(o.Pattern, ""); err != nil || o.Pattern == "" {
			v.add("source.webhook.map.ops."+o.Pattern, ErrInvalid, "invalid pattern %q", o.Pattern)
		}
		if o.Op != "c" && o.Op != "u" && o.Op != "d" {
			v.add("source.webhook.map.ops."+o.Pattern, ErrInvalid, "op %q is not one of \"c\", \"u\" or \"d\"", o.Op)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describeWebhook adds the source.webhook lines to Describe: secret
// references only, never values.
func describeWebhook(c *Config, line func(key, value string, isDefault bool, defNote string), def func(path string, equalsDefault bool) bool) {
	w := &c.Source.Webhook
	line("source.webhook.path", w.Path, false, "")
	line("source.webhook.scheme", w.Scheme, false, "")
	line("source.webhook.secrets", strings.Join(w.Secrets, ", "), false, "")
	if w.Scheme == "hmac-sha256" {
		line("source.webhook.header", w.Header, false, "")
		line("source.webhook.encoding", cmp.Or(w.Encoding, "hex"), def("source.webhook.encoding", w.Encoding == ""), "")
		line("source.webhook.prefix", w.Prefix, def("source.webhook.prefix", w.Prefix == ""), "")
	} else {
		line("source.webhook.tolerance", fmtDuration(w.Tolerance), def("source.webhook.tolerance", w.Tolerance == DefaultWebhookTolerance), "")
	}
	line("source.webhook.max_body", fmt.Sprint(w.MaxBody), def("source.webhook.max_body", w.MaxBody == DefaultWebhookMaxBody), "")
	line("source.webhook.partitions", fmt.Sprint(w.Partitions), def("source.webhook.partitions", w.Partitions == DefaultWebhookPartitions), "")
	m := &w.Map
	line("source.webhook.map.id", m.ID, false, "")
	line("source.webhook.map.type", m.Type, false, "")
	line("source.webhook.map.entity", m.Entity, false, "")
	line("source.webhook.map.key", "["+strings.Join(m.Key, ", ")+"]", def("source.webhook.map.key", len(m.Key) == 0), "")
	line("source.webhook.map.after", m.After, false, "")
	line("source.webhook.map.before", cmp.Or(m.Before, "none"), def("source.webhook.map.before", m.Before == ""), "")
	line("source.webhook.map.occurred_at", cmp.Or(m.OccurredAt, "none"), def("source.webhook.map.occurred_at", m.OccurredAt == ""), "")
	ops := make([]string, len(m.Ops))
	for i, o := range m.Ops {
		ops[i] = o.Pattern + ": " + o.Op
	}
	line("source.webhook.map.ops", "{"+strings.Join(ops, ", ")+"}", false, "")
}
