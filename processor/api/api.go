package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/topology"
)

// Errors a Backend returns.
var (
	// ErrUnknownTopology is returned for a name the worker does not run;
	// the API answers 404.
	ErrUnknownTopology = errors.New("api: unknown topology")
	// ErrUnavailable is returned while the worker cannot carry an action
	// (the control topic is not read yet, or the broker is down); the
	// API answers 503.
	ErrUnavailable = errors.New("api: unavailable")
)

// Backend is what the API serves: the worker.
type Backend interface {
	// Topologies lists the topologies in the worker's order.
	Topologies() []Topology
	// Plan returns a topology's compiled plan, or false.
	Plan(name string) (*topology.Plan, bool)
	// Status merges the worker's live status with the other workers'
	// reports; ErrUnknownTopology for an unknown name.
	Status(ctx context.Context, name string) (Status, error)
	// Act carries an action to every worker of the topology and returns
	// once this worker has applied it.
	Act(ctx context.Context, name, action string) (Action, error)
}

// Options are the API's tokens; empty means unset.
type Options struct {
	// Token authorizes state-changing routes (api_token). Unset: they
	// are refused with 403.
	Token string
	// ReadToken, when set, is required (or Token) by the read-only
	// routes (api_token_read).
	ReadToken string
}

// Register adds the API's routes to mux.
func Register(mux *http.ServeMux, b Backend, opts Options, log *zap.Logger) {
	h := &handlers{b: b, log: log, Auth: NewAuth(opts)}
	mux.HandleFunc("/topologies", Only(http.MethodGet, h.Read(h.list)))
	mux.HandleFunc("/topologies/{name}", Only(http.MethodGet, h.Read(h.plan)))
	mux.HandleFunc("/topologies/{name}/status", Only(http.MethodGet, h.Read(h.status)))
	mux.HandleFunc("/topologies/{name}/pause", Only(http.MethodPut, h.Write(h.act(ActionPause))))
	mux.HandleFunc("/topologies/{name}/resume", Only(http.MethodPut, h.Write(h.act(ActionResume))))
	mux.HandleFunc("/topologies/{name}/restart", Only(http.MethodPost, h.Write(h.act(ActionRestart))))
	registerSagas(mux, h) // sagas.go
	// Anything else under /topologies/ is a JSON 404.
	mux.HandleFunc("/topologies/", func(rw http.ResponseWriter, r *http.Request) {
		WriteError(rw, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
}

type handlers struct {
	*Auth
	b   Backend
	log *zap.Logger
}

// Auth guards routes with the API's tokens. The console's and DLQ routes
// use it too, so every route follows the same rules.
type Auth struct {
	token, readToken []byte // SHA-256 of the tokens; nil when unset
}

// NewAuth returns the guard of opts' tokens.
func NewAuth(opts Options) *Auth {
	return &Auth{token: hash(opts.Token), readToken: hash(opts.ReadToken)}
}

func hash(tok string) []byte {
	if tok == "" {
		return nil
	}
	s := sha256.Sum256([]byte(tok))
	return s[:]
}

// Only answers 405 (JSON, with an Allow header) to any other method.
func Only(method string, next http.HandlerFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			rw.Header().Set("Allow", method)
			WriteError(rw, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, method))
			return
		}
		next(rw, r)
	}
}

// bearer reports whether the request carries one of the tokens. The
// comparison is on SHA-256 digests with subtle.ConstantTimeCompare, so it
// takes the same time whatever the token's length or content.
func bearer(r *http.Request, tokens ...[]byte) bool {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := 0
	for _, t := range tokens {
		if t != nil {
			match |= subtle.ConstantTimeCompare(got[:], t)
		}
	}
	return match == 1
}

// Read guards a read-only route: open unless api_token_read is set, then
// either token passes.
func (h *Auth) Read(next http.HandlerFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if h.readToken != nil && !bearer(r, h.readToken, h.token) {
			unauthorized(rw, "this worker requires a bearer token (api_token_read or api_token) to read")
			return
		}
		next(rw, r)
	}
}

// Write guards a state-changing route: 403 when api_token is unset, 401
// without it or with a wrong one.
func (h *Auth) Write(next http.HandlerFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if h.token == nil {
			WriteError(rw, http.StatusForbidden, "state-changing routes are disabled: this worker has no api_token; "+
				"set CDCSYNC_API_TOKEN or api_token_file (a file holding only the token) and restart the worker")
			return
		}
		if !bearer(r, h.token) {
			unauthorized(rw, "a state-changing route needs Authorization: Bearer <api_token>")
			return
		}
		next(rw, r)
	}
}

func unauthorized(rw http.ResponseWriter, msg string) {
	rw.Header().Set("WWW-Authenticate", `Bearer realm="cdcsync"`)
	WriteError(rw, http.StatusUnauthorized, msg)
}

func (h *handlers) list(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, http.StatusOK, h.b.Topologies())
}

func (h *handlers) plan(rw http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p, ok := h.b.Plan(name)
	if !ok {
		unknown(rw, name)
		return
	}
	writeJSON(rw, http.StatusOK, p.JSON())
}

func (h *handlers) status(rw http.ResponseWriter, r *http.Request) {
	s, err := h.b.Status(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(rw, r.PathValue("name"), err)
		return
	}
	writeJSON(rw, http.StatusOK, s)
}

func (h *handlers) act(action string) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		a, err := h.b.Act(r.Context(), name, action)
		if err != nil {
			h.fail(rw, name, err)
			return
		}
		h.log.Info("topology "+action+" requested over the API", zap.String("topology", name),
			zap.String("remote", r.RemoteAddr), zap.Int64("restart", a.Desired.Restart), zap.String("state", a.Desired.State))
		writeJSON(rw, http.StatusAccepted, a)
	}
}

func (h *handlers) fail(rw http.ResponseWriter, name string, err error) {
	switch {
	case errors.Is(err, ErrUnknownTopology):
		unknown(rw, name)
	case errors.Is(err, ErrUnavailable):
		WriteError(rw, http.StatusServiceUnavailable, err.Error())
	default:
		h.log.Warn("API request failed", zap.String("topology", name), zap.Error(err))
		WriteError(rw, http.StatusInternalServerError, err.Error())
	}
}

func unknown(rw http.ResponseWriter, name string) {
	WriteError(rw, http.StatusNotFound, fmt.Sprintf("topology %q is not run by this worker", name))
}

// WriteError writes the JSON error body with code as both the HTTP status
// and error_code.
func WriteError(rw http.ResponseWriter, code int, msg string) {
	writeJSON(rw, code, Error{Code: code, Message: msg})
}

// WriteJSON writes v as the JSON body with the given status; the console
// and DLQ routes use it too.
func WriteJSON(rw http.ResponseWriter, code int, v any) { writeJSON(rw, code, v) }

func writeJSON(rw http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(Error{Code: code, Message: "encoding the answer: " + err.Error()})
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	_, _ = rw.Write(append(b, '\n'))
}
