package api

import "time"

// States of a topology, of a worker's pipeline and of a desired state.
const (
	StateRunning = "running" // consuming (or starting, or rebalancing)
	StatePaused  = "paused"  // paused by the API: nothing is read; the group membership is kept
	StateFailed  = "failed"  // stopped by a fatal error; restart brings it back
	StateIdle    = "idle"    // running with no partition assigned
)

// Actions of the state-changing routes.
const (
	ActionPause   = "pause"
	ActionResume  = "resume"
	ActionRestart = "restart"
)

// Topology is one entry of GET /topologies.
type Topology struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// Desired is the state every worker of a topology converges to, as the
// control topic holds it (key: the topology name). Restart counts the
// restarts asked for: a worker restarts its pipeline when it sees the
// count grow.
type Desired struct {
	State   string    `json:"state"` // running or paused
	Restart int64     `json:"restart"`
	At      time.Time `json:"at,omitzero"`
	By      string    `json:"by,omitempty"` // the worker that took the request
}

// Action is the 202 answer of pause, resume and restart: the desired
// state written to the control topic, which every worker applies; this
// worker has applied it when the answer is sent.
type Action struct {
	Name    string  `json:"name"`
	Action  string  `json:"action"`
	Desired Desired `json:"desired"`
}

// Status is GET /topologies/{name}/status.
//
// State is the topology's: failed when a live worker's pipeline failed
// (Error is its error), else paused when the desired state is paused,
// else running when a live worker holds partitions, else idle.
type Status struct {
	Name       string      `json:"name"`
	State      string      `json:"state"`
	Error      string      `json:"error,omitempty"`
	Desired    Desired     `json:"desired"`
	Workers    []Worker    `json:"workers"`
	Partitions []Partition `json:"partitions"`
}

// Worker is one worker's report for a topology. Self marks the worker
// that answered (its figures are live); the others' come from their last
// report on the control topic, which is Stale once older than three
// report intervals (the worker is probably gone).
type Worker struct {
	ID         string            `json:"id"`
	Self       bool              `json:"self,omitempty"`
	State      string            `json:"state"`
	Error      string            `json:"error,omitempty"`
	Phase      string            `json:"phase,omitempty"` // what it is doing while not ready
	Breakers   map[string]string `json:"breakers"`        // dependency -> closed, half_open, open
	ReportedAt time.Time         `json:"reported_at"`
	Stale      bool              `json:"stale,omitempty"`
	Partitions []Partition       `json:"partitions,omitempty"`
}

// Partition is one claimed source partition. LagRecords and LagSeconds
// are the true lag (processor/lag.go): offsets not yet done up to the
// high-water mark, and the age of the oldest record not done. While the
// topology is paused they are measured against the committed offset.
// LagUnknown says the partition's end could not be read (a silent leader:
// cdcsync_lag_records is NaN then and LagSeconds is at least the time
// since the last fetch; a held claim: its offsets could not be read):
// LagRecords counts only the records known to be not done. LedgerKeys is
// -1 when unknown.
type Partition struct {
	Topic      string            `json:"topic"`
	Partition  int32             `json:"partition"`
	Worker     string            `json:"worker"`
	Paused     bool              `json:"paused,omitempty"`
	LagRecords int64             `json:"lag_records"`
	LagSeconds float64           `json:"lag_seconds"`
	LagUnknown bool              `json:"lag_unknown,omitempty"`
	Breakers   map[string]string `json:"breakers"`
	LedgerKeys int               `json:"ledger_keys"`
	Stale      bool              `json:"stale,omitempty"`
}

// Error is the body of every error answer.
type Error struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}
