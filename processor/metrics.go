package processor

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/ingress"
	"github.com/cdcsync/cdcsync/processor/saga"
)

// Stats are one topology's counters in this worker. They are the single
// source of the Prometheus metrics and of the demo's summary.
type Stats struct {
	In              atomic.Int64 // source records consumed
	Out             atomic.Int64 // sink records acknowledged
	Duplicates      atomic.Int64 // events dropped by the ledger
	AuthorityFields atomic.Int64 // changed fields dropped by authority
	AuthorityEvents atomic.Int64 // events dropped because nothing owned changed
	DLQ             atomic.Int64 // DLQ records acknowledged
	Tombstones      atomic.Int64 // tombstones passed or dropped
	LedgerWrites    atomic.Int64 // ledger records acknowledged
	Restarts        atomic.Int64 // session restarts after transient failures
	Rebalances      atomic.Int64 // consumer group sessions started (each a rebalance this worker took part in)
	Completed       atomic.Int64 // records fully done: outputs and ledger entry acknowledged
	TxnCommits      atomic.Int64 // exactly_once transactions committed
	TxnAborts       atomic.Int64 // exactly_once transactions aborted
	OutboxIgnored   atomic.Int64 // debezium-outbox records that are not events (outbox.go)
	// FirstJoin is when the pipeline first asked to join its consumer
	// group (Unix nanoseconds; 0 before): its start-up (clients, topics,
	// the control topic) is over then. cdcsync bench clocks from it, as
	// it clocks a passthrough from its join.
	FirstJoin atomic.Int64
}

// StatsSnapshot is a copy of Stats at one moment.
type StatsSnapshot struct {
	In, Out, Duplicates, AuthorityFields, AuthorityEvents, DLQ, Tombstones, LedgerWrites, Restarts, Completed int64
	TxnCommits, TxnAborts, Rebalances                                                                         int64
	OutboxIgnored                                                                                             int64
	FirstJoin                                                                                                 time.Time // zero before
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		In: s.In.Load(), Out: s.Out.Load(), Duplicates: s.Duplicates.Load(),
		AuthorityFields: s.AuthorityFields.Load(), AuthorityEvents: s.AuthorityEvents.Load(),
		DLQ: s.DLQ.Load(), Tombstones: s.Tombstones.Load(), LedgerWrites: s.LedgerWrites.Load(),
		Restarts: s.Restarts.Load(), Completed: s.Completed.Load(),
		TxnCommits: s.TxnCommits.Load(), TxnAborts: s.TxnAborts.Load(), Rebalances: s.Rebalances.Load(),
		OutboxIgnored: s.OutboxIgnored.Load(),
		FirstJoin:     unixNanoTime(s.FirstJoin.Load()),
	}
}

// unixNanoTime is the time of n Unix nanoseconds; the zero time for 0.
func unixNanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// metrics holds the Prometheus collectors of one worker. The list of
// metrics, with their labels and meaning, is in doc.go; TestMetricsDoc
// checks it against what the registry exports.
type metrics struct {
	reg        prometheus.Registerer
	process    *prometheus.HistogramVec
	ack        *prometheus.HistogramVec
	lag        *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	ledgerKeys *prometheus.GaugeVec
	restore    *prometheus.HistogramVec
	dlq        *prometheus.CounterVec
	breaker    *breakerMetrics  // cdcsync_breaker_* (breaker.go)
	apply      *applyMetrics    // cdcsync_apply_* (applypipe.go)
	ingress    *ingress.Metrics // cdcsync_ingress_* (processor/ingress)
	saga       *saga.Metrics    // cdcsync_saga_* (sagapipe.go)

	mu    sync.Mutex
	stats map[string]*Stats
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		process: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cdcsync_process_seconds", Help: "Time from consuming a record to emitting its outputs.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}, []string{"topology"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cdcsync_ack_seconds", Help: "Time from consuming a record to the acknowledgement of its last output.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
		}, []string{"topology"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cdcsync_lag_records", Help: "End of the partition (high-water mark, or the probed end of a silent partition) minus the next offset not yet done (acknowledged or committed); 0 when caught up, NaN while a silent partition's end cannot be read.",
		}, []string{"topology", "topic", "partition"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cdcsync_lag_seconds", Help: "Age of the oldest record not yet done, by its Kafka timestamp (records not yet fetched: at least the time since a probe found them, or since the last fetch while the end cannot be read); grows while the partition is stuck or silent, 0 when caught up.",
		}, []string{"topology", "topic", "partition"}),
		ledgerKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cdcsync_ledger_keys", Help: "Event IDs and row states held in memory by the dedup ledger.",
		}, []string{"topology", "partition"}),
		restore: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cdcsync_ledger_restore_seconds", Help: "Time to restore one ledger partition.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 4, 10),
		}, []string{"topology"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdcsync_dlq_records_total", Help: "Records written to the dead-letter queue (acknowledged or committed), by the stage that failed.",
		}, []string{"topology", "stage"}),
		stats: map[string]*Stats{},
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cdcsync_build_info", Help: "Always 1; the labels name the cdcsync version and the Go version it was built with.",
	}, []string{"version", "go_version"})
	buildInfo.WithLabelValues(buildVersion(), runtime.Version()).Set(1)
	reg.MustRegister(m.process, m.ack, m.lag, m.lagSeconds, m.ledgerKeys, m.restore, m.dlq, buildInfo)
	m.ingress = ingress.NewMetrics(reg)
	m.breaker = newBreakerMetrics(reg)
	m.apply = newApplyMetrics(reg)
	m.saga = saga.NewMetrics(reg)
	return m
}

// dlqStages are the stages a record can fail in; their DLQ counters are
// exported from the start, at 0, so an alert on their rate needs no
// absent() guard.
var dlqStages = []string{dlq.StageDecode, dlq.StageAuthority, dlq.StageRoute, stageEncode, dlq.StageProduce}

// countDLQ counts n acknowledged (or committed) DLQ records of stage.
func (p *pipeline) countDLQ(stage string, n int) {
	p.stats.DLQ.Add(int64(n))
	p.metrics.dlq.WithLabelValues(p.plan.Name(), stage).Add(float64(n))
}

// dlqStageOf is the stage a DLQ record names in its header.
func dlqStageOf(m *sarama.ProducerMessage) string {
	for _, h := range m.Headers {
		if string(h.Key) == dlq.HeaderStage {
			return string(h.Value)
		}
	}
	return "unknown"
}

// buildVersion is the module version cdcsync was built as, or the VCS
// revision for a build from a checkout, or "devel".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			return s.Value[:min(12, len(s.Value))]
		}
	}
	return "devel"
}

// forTopology returns the Stats of a topology, registering its counters
// the first time.
func (m *metrics) forTopology(name string) *Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.stats[name]; ok {
		return s
	}
	s := &Stats{}
	m.stats[name] = s
	counter := func(metric, help string, v *atomic.Int64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metric, Help: help, ConstLabels: prometheus.Labels{"topology": name},
		}, func() float64 { return float64(v.Load()) }))
	}
	counter("cdcsync_records_in_total", "Source records consumed.", &s.In)
	counter("cdcsync_records_out_total", "Sink records acknowledged.", &s.Out)
	counter("cdcsync_duplicates_total", "Events dropped as already applied by the dedup ledger.", &s.Duplicates)
	counter("cdcsync_authority_dropped_fields_total", "Changed fields dropped because the source system does not own them.", &s.AuthorityFields)
	counter("cdcsync_authority_dropped_events_total", "Events dropped because no owned field changed.", &s.AuthorityEvents)
	counter("cdcsync_tombstones_total", "Tombstones consumed (passed or dropped by source.tombstones).", &s.Tombstones)
	counter("cdcsync_outbox_ignored_total", "debezium-outbox records that are not events: updates, deletes and tombstones of outbox rows (the cleanup).", &s.OutboxIgnored)
	counter("cdcsync_rebalances_total", "Consumer group sessions this worker started: one per rebalance (join or leave of a member, or a session restart).", &s.Rebalances)
	for _, stage := range dlqStages {
		m.dlq.WithLabelValues(name, stage)
	}
	counter("cdcsync_ledger_writes_total", "Ledger entries acknowledged.", &s.LedgerWrites)
	counter("cdcsync_session_restarts_total", "Consumer sessions restarted after a transient failure.", &s.Restarts)
	counter("cdcsync_txn_commits_total", "Exactly-once transactions committed.", &s.TxnCommits)
	counter("cdcsync_txn_aborts_total", "Exactly-once transactions aborted.", &s.TxnAborts)
	return s
}

// watch exports the lifecycle gauges of one topology's pipeline. They are
// read from the pipeline's state at each scrape, the same state /readyz
// and /healthz answer from, so they are never stale.
func (m *metrics) watch(p *pipeline) {
	name := prometheus.Labels{"topology": p.plan.Name()}
	boolGauge := func(metric, help string, f func() bool) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metric, Help: help, ConstLabels: name},
			func() float64 {
				if f() {
					return 1
				}
				return 0
			}))
	}
	boolGauge("cdcsync_topology_ready", "1 while the topology is consuming (or idle with no partitions), as /readyz says; 0 while it connects, restores its ledger, rebalances or has stopped.",
		func() bool { ok, _ := p.readiness(); return ok })
	boolGauge("cdcsync_topology_failed", "1 once the topology has stopped on a fatal error, as /healthz says; 0 otherwise.",
		func() bool { return p.stoppedErr() != nil })
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }
