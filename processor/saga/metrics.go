package saga

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the saga collectors of one worker, labelled by topology.
// processor/doc.go lists them.
type Metrics struct {
	Started     *prometheus.CounterVec
	Completed   *prometheus.CounterVec
	Compensated *prometheus.CounterVec
	Failed      *prometheus.CounterVec
	InFlight    *prometheus.GaugeVec
	StepSeconds *prometheus.HistogramVec
	Triggers    *prometheus.CounterVec // topology, result
	Replies     *prometheus.CounterVec // topology, result
}

// Results of cdcsync_saga_triggers_total.
const (
	TriggerStarted   = "started"   // a saga was started
	TriggerDuplicate = "duplicate" // a saga with its ID exists: nothing started
	TriggerSkipped   = "skipped"   // not of the trigger type
	TriggerRejected  = "rejected"  // not a JSON object: to the DLQ
)

// Results of cdcsync_saga_replies_total.
const (
	ReplyAccepted = "accepted" // the reply moved its saga on
	ReplyLate     = "late"     // recorded in the saga and ignored (late or duplicate)
	ReplyUnknown  = "unknown"  // no saga with its ID on this partition (tombstoned, or sent to the wrong partition)
	ReplyRejected = "rejected" // no correlation headers or not a reply: to the DLQ
)

// NewMetrics creates and registers the collectors.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"topology"}, labels...))
	}
	m := &Metrics{
		Started:     c("cdcsync_saga_started_total", "Sagas started (one per trigger event ID)."),
		Completed:   c("cdcsync_saga_completed_total", "Sagas whose every step succeeded."),
		Compensated: c("cdcsync_saga_compensated_total", "Sagas with a failed or timed-out step whose completed steps were all compensated."),
		Failed:      c("cdcsync_saga_failed_total", "Sagas left failed: a compensation kept failing past its policy. A human must resolve each (docs/sagas.md)."),
		InFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cdcsync_saga_in_flight", Help: "Sagas running or compensating on the partitions this worker owns.",
		}, []string{"topology"}),
		StepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cdcsync_saga_step_seconds", Help: "Time from a step's first command to the reply that settled it, by step.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 4, 10),
		}, []string{"topology", "step"}),
		Triggers: c("cdcsync_saga_triggers_total", "Trigger records by result: started, duplicate (a saga with its ID exists), skipped (another type) or rejected (to the DLQ).", "result"),
		Replies:  c("cdcsync_saga_replies_total", "Reply records by result: accepted, late (recorded and ignored), unknown (no such saga) or rejected (to the DLQ).", "result"),
	}
	if reg != nil {
		reg.MustRegister(m.Started, m.Completed, m.Compensated, m.Failed, m.InFlight, m.StepSeconds, m.Triggers, m.Replies)
	}
	return m
}
