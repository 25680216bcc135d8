package ingress

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Scheme names a signature scheme, as written in source.webhook.scheme.
type Scheme string

// The signature schemes.
const (
	// Stripe: the Stripe-Signature header "t=<unix>,v1=<hex>[,v1=<hex>...]",
	// HMAC-SHA256 over "<t>.<body>" keyed with the whole secret string
	// (whsec_ included).
	Stripe Scheme = "stripe"
	// GitHub: the X-Hub-Signature-256 header "sha256=<hex>", HMAC-SHA256
	// over the body.
	GitHub Scheme = "github"
	// Shopify: the X-Shopify-Hmac-Sha256 header, base64 HMAC-SHA256 over
	// the body.
	Shopify Scheme = "shopify"
	// StandardWebhooks: the webhook-id, webhook-timestamp and
	// webhook-signature headers; "v1,<base64>" signatures separated by
	// spaces, HMAC-SHA256 over "<id>.<timestamp>.<body>" keyed with the
	// base64-decoded secret after its "whsec_" prefix.
	StandardWebhooks Scheme = "standard-webhooks"
	// HMACSHA256 is the generic scheme: a configured header holding
	// prefix + hex or base64 HMAC-SHA256 over the body.
	HMACSHA256 Scheme = "hmac-sha256"
)

// Schemes lists the scheme names in documentation order.
var Schemes = []Scheme{Stripe, GitHub, Shopify, StandardWebhooks, HMACSHA256}

// DefaultTolerance is how far a signed timestamp may be from the receiver's
// clock, either way (stripe, standard-webhooks).
const DefaultTolerance = 5 * time.Minute

// Verification failures. The endpoint answers ErrNoSignature and
// ErrBadSignature with 401 and nothing more; ErrStale and ErrFuture come
// only after the signature matched, and are answered 400 with the reason.
var (
	ErrNoSignature  = errors.New("ingress: signature header missing")
	ErrBadSignature = errors.New("ingress: signature does not match")
	ErrStale        = errors.New("ingress: signed timestamp older than the tolerance")
	ErrFuture       = errors.New("ingress: signed timestamp further in the future than the tolerance")
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Scheme Scheme
	// Secrets are every active secret, as the provider shows them (for
	// standard-webhooks the "whsec_<base64>" form). A request passes when
	// any of them signed it, so a secret rotates without a rejection: add
	// the new one, wait for the provider to switch, remove the old one.
	Secrets []string
	// Tolerance bounds the signed timestamp's distance from now (stripe,
	// standard-webhooks). 0 means DefaultTolerance.
	Tolerance time.Duration
	// Header, Encoding ("hex" or "base64") and Prefix configure hmac-sha256.
	Header   string
	Encoding string
	Prefix   string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks the signature of one endpoint's requests. It is safe
// for concurrent use and never logs or returns a secret.
type Verifier struct {
	scheme    Scheme
	keys      [][]byte
	tolerance time.Duration
	header    string // canonical header name of the signature
	base64    bool   // hmac-sha256: signature encoding
	prefix    string
	now       func() time.Time
}

// NewVerifier checks cfg and returns a Verifier. Errors name the problem
// but never the secret.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	v := &Verifier{scheme: cfg.Scheme, tolerance: cfg.Tolerance, now: cfg.Now, prefix: cfg.Prefix}
	if v.tolerance == 0 {
		v.tolerance = DefaultTolerance
	}
	if v.tolerance < 0 {
		return nil, fmt.Errorf("tolerance must be positive, got %v", cfg.Tolerance)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("at least one secret is required")
	}
	switch cfg.Scheme {
	case Stripe:
		v.header = "Stripe-Signature"
	case GitHub:
		v.header = "X-Hub-Signature-256"
	case Shopify:
		v.header = "X-Shopify-Hmac-Sha256"
	case StandardWebhooks:
		v.header = "Webhook-Signature"
	case HMACSHA256:
		if cfg.Header == "" {
			return nil, errors.New("hmac-sha256 needs a header")
		}
		v.header = http.CanonicalHeaderKey(cfg.Header)
		switch cfg.Encoding {
		case "", "hex":
		case "base64":
			v.base64 = true
		default:
			return nil, fmt.Errorf("encoding %q is not one of \"hex\" or \"base64\"", cfg.Encoding)
		}
	default:
		return nil, fmt.Errorf("unknown scheme %q", cfg.Scheme)
	}
	for i, s := range cfg.Secrets {
		if s == "" {
			return nil, fmt.Errorf("secret %d is empty", i)
		}
		key := []byte(s)
		if cfg.Scheme == StandardWebhooks {
			var err error
			key, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
			if err != nil || len(key) == 0 {
				return nil, fmt.Errorf("secret %d is not whsec_<base64>", i)
			}
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// SignatureHeaders are the headers that carry the signature; they are not
// copied onto the raw record.
func (v *Verifier) SignatureHeaders() []string {
	if v.scheme == GitHub {
		// GitHub also sends the legacy SHA-1 signature.
		return []string{v.header, "X-Hub-Signature"}
	}
	return []string{v.header}
}

// Verify checks body against the request headers h: nil, or one of the
// package's errors.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	sig := h.Values(v.header)
	if len(sig) == 0 || sig[0] == "" {
		return ErrNoSignature
	}
	switch v.scheme {
	case Stripe:
		return v.stripe(strings.Join(sig, ","), body)
	case StandardWebhooks:
		return v.standard(h.Get("Webhook-Id"), h.Get("Webhook-Timestamp"), strings.Join(sig, " "), body)
	case GitHub:
		return v.plain(sig[0], "sha256=", false, body)
	case Shopify:
		return v.plain(sig[0], "", true, body)
	default:
		return v.plain(sig[0], v.prefix, v.base64, body)
	}
}

// plain checks prefix + encoding(HMAC(key, body)).
func (v *Verifier) plain(sig, prefix string, b64 bool, body []byte) error {
	s, ok := strings.CutPrefix(strings.TrimSpace(sig), prefix)
	if !ok {
		return ErrBadSignature
	}
	got, err := decodeSig(s, b64)
	if err != nil {
		return ErrBadSignature
	}
	for _, k := range v.keys {
		if hmac.Equal(got, mac(k, body)) {
			return nil
		}
	}
	return ErrBadSignature
}

// stripe checks "t=<unix>,v1=<hex>,...": any v1 by any secret over
// "<t>.<body>", then the timestamp (Stripe's own libraries check the
// signature first, so a forged request learns nothing about the clock).
func (v *Verifier) stripe(header string, body []byte) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = val
		case "v1":
			if b, err := hex.DecodeString(val); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrBadSignature
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if !v.anyMatch(sigs, func(k []byte) []byte { return mac(k, []byte(ts), []byte{'.'}, body) }) {
		return ErrBadSignature
	}
	return v.fresh(t)
}

// standard checks the Standard Webhooks headers: space-separated
// "v1,<base64>" signatures over "<id>.<timestamp>.<body>".
func (v *Verifier) standard(id, ts, header string, body []byte) error {
	if id == "" || ts == "" {
		return ErrNoSignature
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	var sigs [][]byte
	for _, s := range strings.Fields(header) {
		ver, val, ok := strings.Cut(s, ",")
		if !ok || ver != "v1" {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(val); err == nil {
			sigs = append(sigs, b)
		}
	}
	if len(sigs) == 0 {
		return ErrBadSignature
	}
	if !v.anyMatch(sigs, func(k []byte) []byte { return mac(k, []byte(id), []byte{'.'}, []byte(ts), []byte{'.'}, body) }) {
		return ErrBadSignature
	}
	return v.fresh(t)
}

// anyMatch reports whether any signature equals the MAC of any key, each
// compared in constant time.
func (v *Verifier) anyMatch(sigs [][]byte, macOf func(key []byte) []byte) bool {
	ok := false
	for _, k := range v.keys {
		want := macOf(k)
		for _, s := range sigs {
			if hmac.Equal(s, want) {
				ok = true
			}
		}
	}
	return ok
}

func (v *Verifier) fresh(unix int64) error {
	now := v.now()
	t := time.Unix(unix, 0)
	switch {
	case now.Sub(t) > v.tolerance:
		return ErrStale
	case t.Sub(now) > v.tolerance:
		return ErrFuture
	}
	return nil
}

func mac(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func decodeSig(s string, b64 bool) ([]byte, error) {
	if b64 {
		return base64.StdEncoding.DecodeString(s)
	}
	return hex.DecodeString(s)
}

// LoadSecret reads one secret reference: "env:NAME" (an environment
// variable) or "file:PATH" (a file, trailing newlines trimmed). Errors name
// the reference, never the value.
func LoadSecret(ref string) (string, error) {
	kind, name, ok := strings.Cut(ref, ":")
	if !ok || name == "" {
		return "", fmt.Errorf("secret %q is not env:NAME or file:PATH", ref)
	}
	switch kind {
	case "env":
		s, ok := os.LookupEnv(name)
		if !ok || s == "" {
			return "", fmt.Errorf("secret %s: environment variable %s is not set", ref, name)
		}
		return s, nil
	case "file":
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("secret %s: %v", ref, err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return "", fmt.Errorf("secret %s: file is empty", ref)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("secret %q is not env:NAME or file:PATH", ref)
}
