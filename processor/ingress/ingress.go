package ingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Config bounds the server. The zero value is not usable; start from
// DefaultConfig.
type Config struct {
	ReadHeaderTimeout time.Duration // default 5s
	ReadTimeout       time.Duration // whole request, body included; default 15s
	WriteTimeout      time.Duration // default 20s; above ProduceTimeout
	IdleTimeout       time.Duration // keep-alive; default 60s
	MaxHeaderBytes    int           // default 64 KiB
	MaxConnections    int           // open connections; more wait in the accept queue; default 1024
	MaxConcurrent     int           // requests being handled; beyond, 503 Retry-After; default 512
	ProduceTimeout    time.Duration // longest wait for the broker's acknowledgement; default 10s
	RetryAfter        time.Duration // the Retry-After of a 503; default 2s
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      20 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		MaxConnections:    1024,
		MaxConcurrent:     512,
		ProduceTimeout:    10 * time.Second,
		RetryAfter:        2 * time.Second,
	}
}

// Endpoint is one webhook topology's path.
type Endpoint struct {
	Topology string
	Path     string
	Topic    string // the raw topic
	Verifier *Verifier
	Map      cdc.WebhookMap
	MaxBody  int64
}

// Producer writes one record and returns once the broker acknowledged it
// (acks=all), or with the error. KafkaProducer is the production one.
type Producer interface {
	Produce(ctx context.Context, msg *sarama.ProducerMessage) error
}

// The rejection reasons of cdcsync_ingress_rejected_total.
const (
	ReasonNotFound     = "not_found"    // 404
	ReasonMethod       = "method"       // 405
	ReasonTooLarge     = "too_large"    // 413
	ReasonUnauthorized = "unauthorized" // 401: missing or wrong signature
	ReasonStale        = "stale"        // 400: signed timestamp outside the tolerance
	ReasonBadRequest   = "bad_request"  // 400: unreadable, malformed or unmappable body
	ReasonTimeout      = "timeout"      // 408: body not received in time
	ReasonUnavailable  = "unavailable"  // 503: the broker did not acknowledge
	ReasonOverloaded   = "overloaded"   // 503: too many requests in flight
)

// Metrics are the ingress's counters.
type Metrics struct {
	Rejected *prometheus.CounterVec
	Accepted *prometheus.CounterVec
}

// NewMetrics registers the ingress metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdcsync_ingress_rejected_total",
			Help: "Webhook requests answered with an error, by topology and reason."}, []string{"topology", "reason"}),
		Accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdcsync_ingress_accepted_total",
			Help: "Webhook deliveries acknowledged (2xx) after the broker acknowledged their raw record."}, []string{"topology"}),
	}
	reg.MustRegister(m.Rejected, m.Accepted)
	return m
}

// Server is the ingress endpoint. It is an http.Handler; Serve runs it on
// a listener with the Config's bounds.
type Server struct {
	cfg    Config
	eps    map[string]*Endpoint
	prod   Producer
	m      *Metrics
	log    *zap.Logger
	slots  chan struct{}
	now    func() time.Time
	warned atomic.Int64 // unix nanoseconds of the last 503 log line
}

// New checks the endpoints (distinct paths) and returns a Server.
func New(cfg Config, eps []Endpoint, prod Producer, m *Metrics, log *zap.Logger) (*Server, error) {
	s := &Server{cfg: cfg, eps: map[string]*Endpoint{}, prod: prod, m: m, log: log,
		slots: make(chan struct{}, cfg.MaxConcurrent), now: time.Now}
	for i := range eps {
		e := &eps[i]
		if o, dup := s.eps[e.Path]; dup {
			return nil, fmt.Errorf("source.webhook.path %s: served by both topology %s and %s", e.Path, o.Topology, e.Topology)
		}
		s.eps[e.Path] = e
	}
	return s, nil
}

// Serve answers on ln until ctx is done, then stops accepting and waits
// (at most the WriteTimeout) for the requests in flight, each of which
// waits for its produce. It returns nil after a clean stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(netutil.LimitListener(ln, s.cfg.MaxConnections)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) reject(w http.ResponseWriter, topology, reason string, code int, msg string) {
	s.m.Rejected.WithLabelValues(topology, reason).Inc()
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.RetryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// ServeHTTP verifies, checks, produces and only then acknowledges.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep := s.eps[r.URL.Path]
	if ep == nil {
		s.reject(w, "", ReasonNotFound, http.StatusNotFound, "not found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.reject(w, ep.Topology, ReasonMethod, http.StatusMethodNotAllowed, "method not allowed: POST only")
		return
	}
	if r.ContentLength > ep.MaxBody {
		s.reject(w, ep.Topology, ReasonTooLarge, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.reject(w, ep.Topology, ReasonOverloaded, http.StatusServiceUnavailable, "overloaded, retry later")
		return
	}
	received := s.now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, ep.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &tooBig):
			s.reject(w, ep.Topology, ReasonTooLarge, http.StatusRequestEntityTooLarge, "body too large")
		case errors.As(err, &ne) && ne.Timeout():
			s.reject(w, ep.Topology, ReasonTimeout, http.StatusRequestTimeout, "body not received in time")
		default:
			s.reject(w, ep.Topology, ReasonBadRequest, http.StatusBadRequest, "unreadable body")
		}
		return
	}
	switch err := ep.Verifier.Verify(r.Header, body); {
	case errors.Is(err, ErrStale), errors.Is(err, ErrFuture):
		s.reject(w, ep.Topology, ReasonStale, http.StatusBadRequest, "signed timestamp outside the tolerance")
		return
	case err != nil:
		s.reject(w, ep.Topology, ReasonUnauthorized, http.StatusUnauthorized, "unauthorized")
		return
	}
	del, err := ep.Map.Extract(body, r.Header.Get)
	if err != nil {
		reason := "body refused"
		var de *cdc.DecodeError
		if errors.As(err, &de) {
			reason = de.Reason
			if de.Path != "" {
				reason += " (" + de.Path + ")"
			}
		}
		s.reject(w, ep.Topology, ReasonBadRequest, http.StatusBadRequest, reason)
		return
	}

	msg := &sarama.ProducerMessage{
		Topic:   ep.Topic,
		Key:     sarama.ByteEncoder(del.RecordKey),
		Value:   sarama.ByteEncoder(body),
		Headers: recordHeaders(r.Header, ep.Verifier, received, del.ID),
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ProduceTimeout)
	err = s.prod.Produce(ctx, msg)
	cancel()
	switch {
	case tooLarge(err):
		s.reject(w, ep.Topology, ReasonTooLarge, http.StatusRequestEntityTooLarge, "body too large for a record")
		return
	case err != nil:
		// At most one line a second: an outage answers every request 503.
		if now := time.Now().UnixNano(); now-s.warned.Load() > int64(time.Second) {
			s.warned.Store(now)
			s.log.Warn("webhook not acknowledged: broker unavailable (503; counted in cdcsync_ingress_rejected_total)", zap.String("topology", ep.Topology), zap.Error(err))
		}
		s.reject(w, ep.Topology, ReasonUnavailable, http.StatusServiceUnavailable, "not stored, retry later")
		return
	}
	s.m.Accepted.WithLabelValues(ep.Topology).Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok\n")
}

// Header names on the raw record besides the received headers.
const (
	HeaderReceivedAt = "cdcsync.ingress.received_at" // RFC 3339, nanoseconds
	HeaderDeliveryID = "cdcsync.ingress.delivery_id"
)

// recordHeaders copies the received headers except the signature (and
// the hop-by-hop ones), names in lower case, each value on its own.
func recordHeaders(h http.Header, v *Verifier, received time.Time, id string) []sarama.RecordHeader {
	skip := map[string]bool{"Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true,
		"Transfer-Encoding": true, "Upgrade": true, "Proxy-Authorization": true, "Authorization": true}
	for _, s := range v.SignatureHeaders() {
		skip[http.CanonicalHeaderKey(s)] = true
	}
	out := make([]sarama.RecordHeader, 0, len(h)+2)
	out = append(out,
		sarama.RecordHeader{Key: []byte(HeaderReceivedAt), Value: []byte(received.UTC().Format(time.RFC3339Nano))},
		sarama.RecordHeader{Key: []byte(HeaderDeliveryID), Value: []byte(id)})
	names := make([]string, 0, len(h))
	for k := range h {
		if !skip[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		name := []byte(strings.ToLower(k))
		for _, val := range h[k] {
			out = append(out, sarama.RecordHeader{Key: name, Value: []byte(val)})
		}
	}
	return out
}

// tooLarge reports whether err refuses the record for its size: the
// broker's MESSAGE_TOO_LARGE, or sarama's own check against
// Producer.MaxMessageBytes, which it reports as a ConfigurationError.
func tooLarge(err error) bool {
	var ce sarama.ConfigurationError
	return errors.Is(err, sarama.ErrMessageSizeTooLarge) ||
		errors.As(err, &ce) && strings.Contains(string(ce), "MaxMessageBytes")
}
