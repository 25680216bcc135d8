package processor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

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
	listener  net.Listener
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
		if plan.Format() == topology.DebeziumAvro || plan.SinkFormat() == topology.SinkAvro {
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
	w := &Worker{cfg: cfg, log: log, reg: reg, metrics: newMetrics(reg)}
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
	if w.listener == nil {
		return ""
	}
	return w.listener.Addr().String()
}

// Run connects, runs every pipeline until ctx is cancelled, then shuts
// down softly: stop fetching, wait for in-flight records, commit, leave
// the groups. A pipeline stopped by a fatal error does not stop the
// others; Run returns when every pipeline has stopped, with their errors. A soft shutdown that does not finish within
// ShutdownTimeout is reported as an error, never as success.
func (w *Worker) Run(ctx context.Context) error {
	if w.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", w.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("%w: http_addr: %v", ErrConfig, err)
		}
		w.listener = ln
		srv := &http.Server{Handler: w.mux(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		w.log.Info("serving /metrics, /healthz and /readyz", zap.String("addr", ln.Addr().String()))
	}

	// Topologies fail independently, as Kafka Connect's connectors do: a
	// fatal error stops its own pipeline (logged, and /readyz turns not
	// ready) while the others keep running. Run returns once every
	// pipeline has stopped, with their errors.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, p := range w.pipelines {
		sc, err := w.cfg.saramaConfig(p.plan.Name())
		if err != nil {
			fail(err)
			break
		}
		sc.Producer.Partitioner = partitionerFor(string(p.plan.LedgerTopic()))
		if p.plan.Guarantee() == topology.ExactlyOnce {
			// Offsets are committed inside the transactions, and only
			// committed data is read.
			sc.Consumer.Offsets.AutoCommit.Enable = false
			sc.Consumer.IsolationLevel = sarama.ReadCommitted
		}
		client, err := connect(ctx, w.cfg.Brokers, sc, w.log)
		if err != nil {
			fail(err)
			break
		}
		p.client = client
		// A missing ACL is refused here, by name, before any record is
		// read; other failures are left to the pipeline's retries.
		if err := p.checkAccess(); err != nil && classify(err) == Fatal {
			client.Close()
			fail(fmt.Errorf("topology %s: %w", p.plan.Name(), err))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer client.Close()
			if err := p.run(ctx); err != nil {
				err = fmt.Errorf("topology %s: %w", p.plan.Name(), explainAccess(p.plan, err))
				if len(w.pipelines) > 1 && ctx.Err() == nil {
					w.log.Error("topology stopped; the worker's other topologies keep running", zap.Error(err))
				}
				fail(err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	result := func() error {
		mu.Lock()
		defer mu.Unlock()
		return errors.Join(errs...)
	}
	select {
	case <-done:
		return result()
	case <-ctx.Done():
	}
	w.log.Info("shutting down: stop fetching, flush, commit, leave the groups",
		zap.Duration("timeout", w.cfg.ShutdownTimeout))
	select {
	case <-done:
		return result()
	case <-time.After(w.cfg.ShutdownTimeout + 5*time.Second):
		return errors.New("processor: soft shutdown timed out; uncommitted records will be redelivered to the next worker")
	}
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
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusOK)
		_, _ = rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if !w.Ready() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = rw.Write([]byte("not ready: ledger restore or group join in progress\n"))
			return
		}
		rw.WriteHeader(http.StatusOK)
		_, _ = rw.Write([]byte("ready\n"))
	})
	return mux
}
