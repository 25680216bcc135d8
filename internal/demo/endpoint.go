package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// DemoSecretEnv holds the signing secret of the demo's HTTP apply
// topology (crm-apply.yaml).
const DemoSecretEnv = "CDCSYNC_DEMO_WEBHOOK_SECRET"

// demoSecret is used when DemoSecretEnv is unset: a demo-only value.
const demoSecret = "whsec_ZGVtby1vbmx5LXNlY3JldC1kby1ub3QtdXNl"

// demoURLHost is the endpoint address written in crm-apply.yaml, replaced
// by the in-process endpoint's.
const demoURLHost = "127.0.0.1:18080"

// Endpoint is the demo's CRM: an HTTP API that verifies each request's
// Standard Webhooks signature with the reference library, applies the
// change to its contacts, and refuses a request it cannot verify (401).
type Endpoint struct {
	Addr string
	srv  *http.Server

	mu       sync.Mutex
	seen     map[string]bool // event IDs applied (an Idempotency-Key seen again is not applied twice)
	byMethod map[string]int
	refused  int
	contacts map[string]map[string]json.RawMessage
}

// StartEndpoint starts the CRM endpoint on a free local port.
func StartEndpoint() (*Endpoint, error) {
	secret := os.Getenv(DemoSecretEnv)
	if secret == "" {
		secret = demoSecret
		if err := os.Setenv(DemoSecretEnv, secret); err != nil {
			return nil, err
		}
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %v", DemoSecretEnv, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Endpoint{Addr: ln.Addr().String(), seen: map[string]bool{}, byMethod: map[string]int{},
		contacts: map[string]map[string]json.RawMessage{}}
	e.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := wh.Verify(body, r.Header); err != nil {
			e.refused++
			http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		id := r.Header.Get("Idempotency-Key")
		if e.seen[id] {
			w.WriteHeader(http.StatusOK) // a redelivery: already applied
			return
		}
		var ev struct {
			Fields map[string]json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		key := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch r.Method {
		case http.MethodDelete:
			delete(e.contacts, key)
		default:
			c := e.contacts[key]
			if c == nil {
				c = map[string]json.RawMessage{}
				e.contacts[key] = c
			}
			for f, v := range ev.Fields {
				c[f] = v
			}
		}
		e.seen[id] = true
		e.byMethod[r.Method]++
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = e.srv.Serve(ln) }()
	return e, nil
}

// Close stops the endpoint.
func (e *Endpoint) Close() { _ = e.srv.Close() }

// EndpointStats is what the CRM endpoint applied.
type EndpointStats struct {
	Applied, Post, Patch, Delete, Refused, Contacts int
}

// Stats returns what the endpoint applied so far.
func (e *Endpoint) Stats() EndpointStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return EndpointStats{Applied: len(e.seen), Post: e.byMethod[http.MethodPost], Patch: e.byMethod[http.MethodPatch],
		Delete: e.byMethod[http.MethodDelete], Refused: e.refused, Contacts: len(e.contacts)}
}
