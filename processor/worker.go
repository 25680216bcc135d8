package processor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cdcsync/cdcsync/internal/membudget"
	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/processor/console"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// Worker runs every topology it is given, each as its own consumer group.
// Several workers (processes) on the same topologies share the partitions.
type Worker struct {
	cfg       Config
	log       *zap.Logger
	reg       *prometheus.Registry
	metrics   *metrics
	pipelines []*pipeline
	httpAddr  atomic.Pointer[string] // set by Run once the HTTP server listens
	console   *console.Console       // the web console and its DLQ endpoints, on the HTTP server

	// The REST API (rest.go) and the control topic (control.go).
	id          string // client_id: the worker in status reports
	apiOpts     api.Options
	restartable bool                       // api_token set: a failed topology waits for a restart
	ctl         atomic.Pointer[controller] // set by Run once the control topic is read
	actMu       sync.Mutex                 // one action at a time (rest.go)
	localMu     sync.Mutex
	local       map[string]api.Desired // desired states without a control topic
	ingress     *webhookIngress        // nil without webhook topologies or ingress_addr (webhook_ingress.go)
}

// New validates the configuration and the plans and builds a worker. It
// opens no connection; Run does.
func New(cfg Config, plans []*topology.Plan, log *zap.Logger) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(plans) == 0 {
		return nil, fmt.Errorf("%w: no topologies to run", ErrConfig)
	}
	if _, err := cfg.saramaConfig("check"); err != nil {
		return nil, err
	}
	cfg.Security.logWarnings(log)
	regOpts, err := cfg.Security.RegistryOptions()
	if err != nil {
		return nil, err
	}
	regOpts.Timeout = cfg.RegistryTimeout
	var registry *schemas.Client
	for _, plan := range plans {
		if plan.IsOutbox() && cfg.RegistryURL != "" && registry == nil {
			registry = schemas.NewClient(cfg.RegistryURL, regOpts) // for Avro outbox records
		}
		if plan.Format() == topology.DebeziumAvro || plan.Format() == topology.CdcsyncAvro || plan.SinkFormat() == topology.SinkAvro {
			if cfg.RegistryURL == "" {
				return nil, fmt.Errorf("%w: registry_url: topology %s (%s) uses Avro and needs a schema registry",
					ErrConfig, plan.Name(), plan.File())
			}
			if registry == nil {
				registry = schemas.NewClient(cfg.RegistryURL, regOpts)
			}
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	token, readToken, err := cfg.apiTokens()
	if err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, log: log, reg: reg, metrics: newMetrics(reg), id: cfg.ClientID,
		apiOpts:     api.Options{Token: token.Reveal(), ReadToken: readToken.Reveal()},
		restartable: token != "", local: map[string]api.Desired{}}
	seen := map[string]bool{}
	for _, plan := range plans {
		if seen[plan.Name()] {
			return nil, fmt.Errorf("%w: topology %q given twice", ErrConfig, plan.Name())
		}
		seen[plan.Name()] = true
		p, err := newPipeline(plan, cfg, nil, registry, w.metrics, log)
		if err != nil {
			return nil, err
		}
		w.pipelines = append(w.pipelines, p)
		w.metrics.watch(p)
	}
	if w.console, err = w.newConsole(plans); err != nil {
		return nil, err
	}
	if w.ingress, err = newWebhookIngress(cfg, plans, w.metrics, log); err != nil {
		return nil, err
	}
	return w, nil
}

// Registry is the worker's Prometheus registry, served on /metrics.
func (w *Worker) Registry() *prometheus.Registry { return w.reg }

// Stats returns the counters of a topology in this worker.
func (w *Worker) Stats(topology string) StatsSnapshot {
	for _, p := range w.pipelines {
		if p.plan.Name() == topology {
			return p.stats.Snapshot()
		}
	}
	return StatsSnapshot{}
}

// Ready reports whether every pipeline has restored its ledger partitions
// and is consuming (or is idle because it has no partitions).
func (w *Worker) Ready() bool {
	for _, p := range w.pipelines {
		if !p.ready.Load() {
			return false
		}
	}
	return true
}

// HTTPAddr is the address the health and metrics server listens on, once
// Run has started it; empty otherwise.
func (w *Worker) HTTPAddr() string {
	if a := w.httpAddr.Load(); a != nil {
		return *a
	}
	return ""
}

// IngressAddr is the address the webhook ingress listens on, once Run
// has started it; empty otherwise.
func (w *Worker) IngressAddr() string {
	if w.ingress != nil {
		if a := w.ingress.addr.Load(); a != nil {
			return *a
		}
	}
	return ""
}

// Run connects, runs every pipeline until ctx is cancelled, then shuts
// down softly: stop fetching, wait for in-flight records, commit, leave
// the groups. A pipeline stopped by a fatal error does not stop the
// others. Run owns every goroutine it starts (an errgroup per pipeline
// and one for the HTTP server) and returns only after all of them have
// stopped, with the pipelines' errors joined. A cancellation while
// connecting is a clean stop (nil). A soft shutdown that does not finish
// within ShutdownTimeout is logged when the deadline passes and reported
// as an error once everything has stopped, never as success; the process
// waits for it (a second signal exits at once, see cmd/cdcsync).
func (w *Worker) Run(ctx context.Context) error {
	if membudget.Start(w.cfg.MemoryBudgetBytes) {
		w.log.Info("garbage collector sized to the memory budget", zap.Int64("memory_budget_bytes", w.cfg.MemoryBudgetBytes),
			zap.Int("gogc", membudget.GCPercent), zap.Int64("memory_limit", membudget.Limit()))
	}
	var srv *http.Server
	var httpDone chan error
	if w.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", w.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("%w: http_addr: %v", ErrConfig, err)
		}
		addr := ln.Addr().String()
		w.httpAddr.Store(&addr)
		srv = &http.Server{Handler: w.mux(), ReadHeaderTimeout: 5 * time.Second}
		httpDone = make(chan error, 1)
		go func() { httpDone <- srv.Serve(ln) }()
		w.log.Info("serving /metrics, /healthz, /readyz and the REST API", zap.String("addr", ln.Addr().String()))
	}
	stopHTTP := func() error {
		if srv == nil {
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		cancel()
		if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	}

	// The control topic is read to its end before any pipeline starts,
	// so a topology paused cluster-wide starts paused here too.
	var ctlGroup errgroup.Group // follow and report (control.go)
	stopCtl := func() {}
	if w.cfg.ControlTopic != "" {
		for _, p := range w.pipelines {
			p.setPhase("connecting to the brokers and reading the control topic " + w.cfg.ControlTopic)
		}
		ctl, err := w.openControl(ctx)
		if err != nil || ctl == nil {
			return errors.Join(err, stopHTTP()) // nil, nil: cancelled while connecting, a clean stop
		}
		w.ctl.Store(ctl)
		ctlCtx, cancel := context.WithCancel(context.Background())
		ctlGroup.Go(func() error { ctl.follow(ctlCtx); return nil })
		ctlGroup.Go(func() error { ctl.report(ctlCtx); return nil })
		stopCtl = func() {
			cancel()
			_ = ctlGroup.Wait()
			ctl.close()
		}
	}

	// The webhook ingress stops accepting first when ctx ends, and waits
	// for the produces of the requests in flight.
	var ingressDone chan error
	ictx, icancel := context.WithCancel(ctx)
	defer icancel()
	if w.ingress != nil {
		if err := w.ingress.start(); err != nil {
			stopCtl()
			return errors.Join(err, stopHTTP())
		}
		ingressDone = make(chan error, 1)
		go func() { ingressDone <- w.ingress.run(ictx) }()
	}

	// Topologies fail independently, as Kafka Connect's connectors do: a
	// fatal error stops its own pipeline (logged; /healthz and /readyz
	// name it) while the others keep running; with an api_token it waits
	// for a restart (supervise, lifecycle.go).
	var (
		g    errgroup.Group
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, p := range w.pipelines {
		g.Go(func() error {
			if err := w.supervise(ctx, p); err != nil {
				fail(err)
			}
			return nil
		})
	}
	done := make(chan struct{})
	go func() { _ = g.Wait(); close(done) }()

	var timedOut bool
	select {
	case <-done:
	case <-ctx.Done():
		w.log.Info("shutting down: stop fetching, flush, commit, leave the groups",
			zap.Duration("timeout", w.cfg.ShutdownTimeout))
		deadline := time.NewTimer(w.cfg.ShutdownTimeout + 5*time.Second)
		select {
		case <-done:
		case <-deadline.C:
			timedOut = true
			w.log.Error("soft shutdown did not finish within shutdown_timeout; still waiting for the pipelines (send the signal again to exit at once)",
				zap.Duration("shutdown_timeout", w.cfg.ShutdownTimeout))
			<-done
		}
		deadline.Stop()
	}
	if ingressDone != nil {
		icancel()
		if err := <-ingressDone; err != nil {
			fail(fmt.Errorf("ingress: %w", err))
		}
	}
	// The control topic's reports end with tombstones once the
	// pipelines have stopped; /metrics, /healthz and /readyz stay served
	// while the pipelines drain; the server goes last.
	stopCtl()
	if err := stopHTTP(); err != nil {
		fail(err)
	}
	if timedOut {
		fail(errors.New("processor: soft shutdown timed out; uncommitted records will be redelivered to the next worker"))
	}
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}

// runPipeline connects one pipeline and runs it until ctx is done or it
// stops fatally. It returns nil when ctx was cancelled, connecting
// included.
func (w *Worker) runPipeline(ctx context.Context, p *pipeline) error {
	sc, err := w.cfg.saramaConfig(p.plan.Name())
	if err != nil {
		return err
	}
	sc = groupConfig(sc) // the pipeline client runs the consumer group
	sc.Producer.Partitioner = partitionerFor(string(p.plan.LedgerTopic()))
	if p.plan.Guarantee() == topology.ExactlyOnce {
		// Offsets are committed inside the transactions, and only
		// committed data is read.
		sc.Consumer.Offsets.AutoCommit.Enable = false
		sc.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	p.setPhase("connecting to the brokers")
	client, err := connect(ctx, w.cfg.Brokers, sc, w.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // shut down while connecting: a clean stop
		}
		return err
	}
	defer client.Close()
	p.client = client
	// A missing ACL is refused here, by name, before any record is
	// read; other failures are left to the pipeline's retries.
	if err := p.checkAccess(); err != nil && classify(err) == Fatal {
		return err
	}
	p.setPhase("preparing topics, joining the consumer group and restoring the ledger")
	err = p.run(ctx)
	if err != nil {
		return explainAccess(p.plan, err)
	}
	p.setPhase("shut down")
	return nil
}

// connect opens a client, retrying while no broker answers.
func connect(ctx context.Context, brokers []string, sc *sarama.Config, log *zap.Logger) (sarama.Client, error) {
	for attempt := 0; ; attempt++ {
		c, err := sarama.NewClient(brokers, sc)
		if err == nil {
			return c, nil
		}
		if IsAccessFailure(err) {
			// A wrong password or a refused certificate: retrying
			// cannot help.
			return nil, &AccessError{What: fmt.Sprintf("connecting to %v as %s", brokers, principalOf(sc)), Err: err}
		}
		d := backoff(attempt, 200*time.Millisecond, 10*time.Second)
		log.Warn("cannot reach the brokers, retrying", zap.Strings("brokers", brokers), zap.Error(err), zap.Duration("backoff", d))
		if !sleep(ctx, d) {
			return nil, ctx.Err()
		}
	}
}

func (w *Worker) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{}))
	w.console.Register(mux)
	// /healthz: 503 once a topology has stopped fatally, naming it, so an
	// orchestrator restarts the worker.
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) {
		var b strings.Builder
		for _, p := range w.pipelines {
			if err := p.stoppedErr(); err != nil {
				fmt.Fprintf(&b, "topology %s stopped: %v\n", p.plan.Name(), err)
			}
		}
		if b.Len() > 0 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = rw.Write([]byte(b.String()))
			return
		}
		rw.WriteHeader(http.StatusOK)
		_, _ = rw.Write([]byte("ok\n"))
	})
	// /readyz: 503 while any topology is not consuming, one line per
	// topology that is not ready, with the reason.
	// A paused topology is ready (it holds its partitions and resumes at
	// once): 200, with a line naming it.
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, _ *http.Request) {
		var b, paused strings.Builder
		for _, p := range w.pipelines {
			if ok, why := p.readiness(); !ok {
				fmt.Fprintf(&b, "topology %s not ready: %s\n", p.plan.Name(), why)
			} else if on, _ := p.isPaused(); on {
				fmt.Fprintf(&paused, "topology %s paused\n", p.plan.Name())
			}
		}
		if b.Len() > 0 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = rw.Write([]byte(b.String()))
			return
		}
		rw.WriteHeader(http.StatusOK)
		_, _ = rw.Write([]byte("ready\n" + paused.String()))
	})
	api.Register(mux, w, w.apiOpts, w.log)
	return mux
}

// Health is what /healthz reports: nil while no topology has stopped
// fatally, else an error naming each stopped topology and its error.
func (w *Worker) Health() error {
	var errs []error
	for _, p := range w.pipelines {
		if err := p.stoppedErr(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// NotReady is what /readyz reports: topology name to the reason it is not
// ready; empty when every topology is ready.
func (w *Worker) NotReady() map[string]string {
	out := map[string]string{}
	for _, p := range w.pipelines {
		if ok, why := p.readiness(); !ok {
			out[p.plan.Name()] = why
		}
	}
	return out
}

// status is a pipeline's lifecycle as /healthz and /readyz report it.
type status struct {
	mu      sync.Mutex
	phase   string // what the pipeline is doing while it is not ready
	stopped error  // set once the pipeline stopped fatally
}

func (p *pipeline) setPhase(phase string) {
	p.status.mu.Lock()
	p.status.phase = phase
	p.status.mu.Unlock()
}

func (p *pipeline) setStopped(err error) {
	p.status.mu.Lock()
	p.status.stopped = err
	p.status.mu.Unlock()
}

func (p *pipeline) stoppedErr() error {
	p.status.mu.Lock()
	defer p.status.mu.Unlock()
	return p.status.stopped
}

// readiness reports whether the pipeline is consuming (or idle with no
// partitions), and why not.
func (p *pipeline) readiness() (bool, string) {
	p.status.mu.Lock()
	defer p.status.mu.Unlock()
	if p.status.stopped != nil {
		return false, "stopped: " + p.status.stopped.Error()
	}
	if p.ready.Load() {
		return true, ""
	}
	if p.status.phase == "" {
		return false, "not started"
	}
	return false, p.status.phase
}
