// Package httpapply is apply.kind http: it delivers each sync event to an
// HTTP endpoint, one request per event, signed following the Standard
// Webhooks specification (https://www.standardwebhooks.com).
//
// The request: the URL template with {entity} and {key.<field>} filled in
// (path-escaped), the method of the op (POST create and snapshot read,
// PATCH update, DELETE delete; configurable), the event as the JSON sink
// writes it as the body, and the headers Content-Type: application/json,
// Idempotency-Key: <event id>, webhook-id: <event id>, webhook-timestamp:
// <unix seconds of this attempt> and webhook-signature: one "v1,<base64
// HMAC-SHA256 of id.timestamp.body>" per configured secret,
// space-separated, so a receiver can rotate its secret without downtime.
//
// The response: 2xx is done; 408, 425, 429, 5xx and network errors are
// transient (the framework retries the event and counts the failure for
// the breaker; a Retry-After in seconds or as an HTTP date sets the least
// wait); every other status sends the event to the DLQ, stage apply, with
// the status and the first 1 KiB of the response body.
package httpapply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/apply"
	"github.com/cdcsync/cdcsync/topology"
)

// Headers the DLQ record of a refused event carries.
const (
	HeaderStatus = "cdcsync.apply.http.status"
	HeaderBody   = "cdcsync.apply.http.body" // the first BodyLimit bytes of the response
	HeaderURL    = "cdcsync.apply.http.url"
)

// BodyLimit is how much of a refusing response's body is kept.
const BodyLimit = 1024

// ErrSecret is wrapped by a secret that cannot be used (start-up refusal).
var ErrSecret = errors.New("httpapply: unusable signing secret")

// Applier delivers events over HTTP. It is safe for concurrent use by
// different partitions.
type Applier struct {
	url     []urlPart
	methods map[byte]string
	timeout time.Duration
	signers []*standardwebhooks.Webhook
	client  *http.Client
	now     func() time.Time
	log     *zap.Logger
}

// urlPart is literal text, or a placeholder: entity, or key field name.
type urlPart struct {
	lit    string
	entity bool
	key    string
}

var placeholderRE = regexp.MustCompile(`\{(entity|key\.[^{}]+)\}`)

// Option changes an Applier for tests.
type Option func(*Applier)

// WithClient sets the HTTP client (default: a client of its own; its
// Timeout is not used, the per-request timeout is apply.http.timeout).
func WithClient(c *http.Client) Option { return func(a *Applier) { a.client = c } }

// WithNow sets the clock of webhook-timestamp.
func WithNow(now func() time.Time) Option { return func(a *Applier) { a.now = now } }

// New builds the applier of opts.Config.HTTP, reading the secrets. A
// missing or malformed secret refuses the start, naming the option with
// opts.Where; the secret itself is never in an error or a log line.
func New(opts apply.Options, o ...Option) (*Applier, error) {
	h := opts.Config.HTTP
	where := opts.Where
	if where == nil {
		where = func(p string) string { return p }
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// One connection per partition applied at once stays open between
	// requests (the default keeps 2 per host).
	tr.MaxIdleConnsPerHost = max(opts.Config.MaxConcurrency, 2)
	a := &Applier{
		url:     parseURL(h.URL),
		methods: map[byte]string{'c': h.Methods.Create, 'r': h.Methods.Create, 'u': h.Methods.Update, 'd': h.Methods.Delete},
		timeout: h.Timeout,
		client:  &http.Client{Transport: tr},
		now:     time.Now,
		log:     opts.Log,
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	for _, f := range o {
		f(a)
	}
	for i, env := range h.SecretsEnv {
		path := fmt.Sprintf("apply.http.secrets_env[%d]", i)
		v, ok := os.LookupEnv(env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%w: %s: environment variable %s is not set", ErrSecret, where(path), env)
		}
		s, err := signer(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: the secret in %s %v", ErrSecret, where(path), env, err)
		}
		a.signers = append(a.signers, s)
	}
	for i, file := range h.SecretsFile {
		path := fmt.Sprintf("apply.http.secrets_file[%d]", i)
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrSecret, where(path), err)
		}
		s, err := signer(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: the secret in %s %v", ErrSecret, where(path), file, err)
		}
		a.signers = append(a.signers, s)
	}
	if len(a.signers) == 0 {
		return nil, fmt.Errorf("%w: %s: no secret configured", ErrSecret, where("apply.http"))
	}
	return a, nil
}

// signer checks a whsec_ secret: the prefix, then base64 of at least 24
// bytes (Standard Webhooks asks for 24 to 64 random bytes).
func signer(secret string) (*standardwebhooks.Webhook, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New(`does not start with "whsec_" (Standard Webhooks secret format)`)
	}
	s, err := standardwebhooks.NewWebhook(b64)
	if err != nil {
		return nil, errors.New("is not whsec_ followed by standard base64")
	}
	if n := len(b64) * 3 / 4; n < 24 {
		return nil, fmt.Errorf("is about %d bytes long; Standard Webhooks secrets are 24 to 64 random bytes", n)
	}
	return s, nil
}

func parseURL(t string) []urlPart {
	var parts []urlPart
	last := 0
	for _, m := range placeholderRE.FindAllStringSubmatchIndex(t, -1) {
		if m[0] > last {
			parts = append(parts, urlPart{lit: t[last:m[0]]})
		}
		name := t[m[2]:m[3]]
		if name == "entity" {
			parts = append(parts, urlPart{entity: true})
		} else {
			parts = append(parts, urlPart{key: strings.TrimPrefix(name, "key.")})
		}
		last = m[1]
	}
	if last < len(t) {
		parts = append(parts, urlPart{lit: t[last:]})
	}
	return parts
}

// URL fills the template for ev; an error is permanent (a key field the
// template names is not in the event key).
func (a *Applier) URL(ev *apply.Event) (string, error) {
	var b strings.Builder
	for _, p := range a.url {
		switch {
		case p.entity:
			b.WriteString(url.PathEscape(ev.Entity))
		case p.key != "":
			raw, ok := keyField(ev.Key, p.key)
			if !ok {
				return "", fmt.Errorf("apply.http.url: the event key has no field %q (key: %s)", p.key, keyNames(ev.Key))
			}
			b.WriteString(url.PathEscape(keyText(raw)))
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String(), nil
}

func keyField(key []apply.Field, name string) (json.RawMessage, bool) {
	for _, f := range key {
		if f.Name == name {
			return f.Raw, true
		}
	}
	return nil, false
}

func keyNames(key []apply.Field) string {
	names := make([]string, len(key))
	for i, f := range key {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// keyText is a key value as it goes into a URL: a string without its
// quotes, anything else as its JSON text.
func keyText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// Sign returns the webhook-signature header value for one request: one
// v1 signature per secret.
func (a *Applier) Sign(id string, ts time.Time, body []byte) string {
	sigs := make([]string, 0, len(a.signers))
	for _, s := range a.signers {
		sig, _ := s.Sign(id, ts, body) // never fails
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " ")
}

// Apply delivers events in order, one request at a time; see the package
// documentation for the outcomes.
func (a *Applier) Apply(ctx context.Context, events []apply.Event) ([]error, error) {
	out := make([]error, 0, len(events))
	for i := range events {
		rej, err := a.deliver(ctx, &events[i])
		if err != nil {
			return out, err
		}
		if rej != nil {
			out = append(out, rej)
		} else {
			out = append(out, nil)
		}
	}
	return out, nil
}

// transient is a failure worth retrying.
type transient struct {
	url    string
	status int
	err    error
}

func (t *transient) Error() string {
	if t.err != nil {
		return fmt.Sprintf("httpapply: %s: %v", t.url, t.err)
	}
	return fmt.Sprintf("httpapply: %s: HTTP %d", t.url, t.status)
}

func (t *transient) Unwrap() error { return t.err }

// deliver sends one event: a *apply.Rejected for a permanent refusal, an
// error for a transient failure, or neither.
func (a *Applier) deliver(ctx context.Context, ev *apply.Event) (*apply.Rejected, error) {
	method, ok := a.methods[ev.Op]
	if !ok {
		// Truncates are filtered by the framework; anything else was
		// refused by the reader.
		return &apply.Rejected{Reason: fmt.Sprintf("op %c has no HTTP method", ev.Op), Err: fmt.Errorf("httpapply: op %c", ev.Op)}, nil
	}
	u, err := a.URL(ev)
	if err != nil {
		return &apply.Rejected{Reason: err.Error(), Err: err}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, u, bytes.NewReader(ev.Value))
	if err != nil {
		return &apply.Rejected{Reason: "building the request: " + err.Error(), Err: err, Headers: map[string]string{HeaderURL: u}}, nil
	}
	ts := a.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cdcsync-apply")
	req.Header.Set("Idempotency-Key", ev.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookID, ev.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, a.Sign(ev.ID, ts, ev.Value))
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &transient{url: u, err: err}
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, BodyLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		if rerr != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, nil // done, whatever the body
	case s == http.StatusRequestTimeout, s == http.StatusTooEarly, s == http.StatusTooManyRequests, s >= 500:
		var err error = &transient{url: u, status: s}
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), a.now()); ok {
			err = &apply.RetryAfter{D: d, Err: err}
		}
		return nil, err
	default:
		text := string(body)
		if !utf8.ValidString(text) {
			text = strings.ToValidUTF8(text, "\uFFFD")
		}
		return &apply.Rejected{
			Reason:  fmt.Sprintf("%s %s: HTTP %d: %s", method, u, s, firstLine(text)),
			Headers: map[string]string{HeaderStatus: strconv.Itoa(s), HeaderBody: text, HeaderURL: u},
			Err:     fmt.Errorf("httpapply: HTTP %d", s),
		}, nil
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3).
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 24*3600)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		return max(d, 0), true
	}
	return 0, false
}

// Close closes idle connections.
func (a *Applier) Close() error {
	a.client.CloseIdleConnections()
	return nil
}

var _ apply.Applier = (*Applier)(nil)

// Config is the type of the topology section this applier reads, for
// documentation.
type Config = topology.HTTPApply
