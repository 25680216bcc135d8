// Package processor is the cdcsync runtime: a Worker runs every topology
// it is given, each as its own consumer group, through decode, dedup
// ledger, field authority and route into sink topics, the DLQ and the
// ledger topic. DESIGN.md (at the repository root) draws the data path and
// names the owner of every goroutine.
//
// A saga topology (one with a saga section, sagapipe.go) runs
// processor/saga's orchestrator: see that package and docs/sagas.md.
//
// An apply topology (one with an apply section, applypipe.go) runs the
// other way: it consumes sync topics and hands each partition's events,
// in order and in batches, to an apply.Applier (PostgreSQL or HTTP),
// marking an offset only after the target took the event at it.
//
// # Lifecycle
//
// Worker.Run owns every goroutine it starts and returns only after all of
// them have stopped. A cancelled context starts the soft shutdown (stop
// fetching, wait for in-flight records, commit, leave the groups); a
// cancellation while connecting is a clean stop. A topology that stops
// fatally does not stop the others: /healthz answers 503 and names it,
// /readyz names every topology that is not ready and why. The gauges
// cdcsync_topology_failed and cdcsync_topology_ready say the same per
// topology, read from the same state at each scrape, for alerting.
//
// # REST API and control topic
//
// The same server serves the REST API (package api; the Worker is its
// Backend, rest.go): list, plan, status, pause, resume and restart of a
// topology. Actions reach every worker through the compacted control
// topic (Config.ControlTopic, control.go), which each worker replays
// before its pipelines start and then follows; each worker also writes
// its status there, which the status route merges. Pause holds the claims
// without leaving the group; restart runs a pipeline again, a failed one
// included (lifecycle.go), so with Config.APIToken set a failed topology
// waits for a restart instead of ending Run.
//
// # Metrics
//
// Served on /metrics (Config.HTTPAddr) from Worker.Registry. Besides the
// Go and process collectors, the worker exports exactly these; the list is
// checked against the registry by TestMetricsDoc, so keep it in step.
//
//	name                                    type       labels                       meaning
//	cdcsync_records_in_total                counter    topology                     source records consumed
//	cdcsync_records_out_total               counter    topology                     sink records acknowledged (committed under exactly_once)
//	cdcsync_duplicates_total                counter    topology                     events dropped by the dedup ledger as already applied
//	cdcsync_authority_dropped_fields_total  counter    topology                     changed fields dropped because the source system does not own them
//	cdcsync_authority_dropped_events_total  counter    topology                     events dropped because no owned field changed
//	cdcsync_tombstones_total                counter    topology                     tombstones consumed (passed or dropped)
//	cdcsync_outbox_ignored_total            counter    topology                     debezium-outbox records that are not events (updates, deletes, tombstones of outbox rows)
//	cdcsync_dlq_records_total               counter    topology,stage               DLQ records acknowledged or committed, by the stage that failed: decode, authority, route, encode, produce, apply
//	cdcsync_ledger_writes_total             counter    topology                     ledger entries acknowledged
//	cdcsync_rebalances_total                counter    topology                     consumer group sessions started by this worker: one per rebalance it took part in
//	cdcsync_session_restarts_total          counter    topology                     sessions restarted (the consumer lost its group, or an exactly_once transaction aborted)
//	cdcsync_txn_commits_total               counter    topology                     exactly_once transactions committed
//	cdcsync_txn_aborts_total                counter    topology                     exactly_once transactions aborted
//	cdcsync_process_seconds                 histogram  topology                     time from consuming a record to emitting its outputs
//	cdcsync_ack_seconds                     histogram  topology                     time from consuming a record to the acknowledgement of its last output (exactly_once: transaction open to commit)
//	cdcsync_ledger_restore_seconds          histogram  topology                     time to restore one ledger partition
//	cdcsync_ledger_keys                     gauge      topology,partition           event IDs and row states the dedup ledger holds in memory, per claimed partition
//	cdcsync_lag_records                     gauge      topology,topic,partition     end of the partition (high-water mark; for a silent partition, its probed end) minus the next offset not yet done (acknowledged, or committed under exactly_once); 0 when caught up; NaN while a silent partition's end cannot be read
//	cdcsync_lag_seconds                     gauge      topology,topic,partition     age of the oldest record not yet done, by its Kafka timestamp (not yet fetched: at least the time since a probe found it, or since the last fetch while the end cannot be read); grows while the partition is stuck or silent; 0 when caught up
//	cdcsync_breaker_state                   gauge      topology,dependency          circuit breaker state of a dependency (producer, registry, apply): 0 closed, 1 half-open, 2 open
//	cdcsync_breaker_transitions_total       counter    topology,dependency,to       circuit breaker transitions, by the state entered
//	cdcsync_breaker_probes_total            counter    topology,dependency          probes a half-open breaker let through (one per half-open period)
//	cdcsync_topology_ready                  gauge      topology                     1 while the topology is consuming (or idle with no partitions), as /readyz says; 0 while it connects, restores its ledger, rebalances or has stopped
//	cdcsync_topology_failed                 gauge      topology                     1 once the topology has stopped on a fatal error, as /healthz says; 0 otherwise
//	cdcsync_apply_events_total              counter    topology,outcome             apply topologies: events applied (or already applied: a replay), rejected (to the DLQ, stage apply) or skipped (tombstones, messages, ignored truncates)
//	cdcsync_apply_batch_seconds             histogram  topology                     apply topologies: time of one Apply call, a partition's batch written into the target
//	cdcsync_apply_conflicts_total           counter    topology,field               apply.kind postgres: fields the target changed itself since the event's before value, counted whatever on_conflict does
//	cdcsync_ingress_rejected_total          counter    topology,reason              webhook requests answered with an error (topology empty for an unknown path), by reason: not_found, method, too_large, unauthorized, stale, bad_request, timeout, unavailable, overloaded
//	cdcsync_ingress_accepted_total          counter    topology                     webhook deliveries acknowledged (2xx) after the broker acknowledged their raw record
//	cdcsync_saga_started_total              counter    topology                     saga topologies: sagas started, one per trigger event ID
//	cdcsync_saga_completed_total            counter    topology                     saga topologies: sagas whose every step succeeded
//	cdcsync_saga_compensated_total          counter    topology                     saga topologies: sagas with a failed or timed-out step whose steps were all compensated
//	cdcsync_saga_failed_total               counter    topology                     saga topologies: sagas left failed (a compensation failed past its policy): a human must resolve each
//	cdcsync_saga_in_flight                  gauge      topology                     saga topologies: sagas running or compensating on the partitions this worker owns
//	cdcsync_saga_step_seconds               histogram  topology,step                saga topologies: time from a step's first command to the reply that settled it
//	cdcsync_saga_triggers_total             counter    topology,result              saga topologies: trigger records: started, duplicate (the saga exists), skipped (another type), rejected (to the DLQ)
//	cdcsync_saga_replies_total              counter    topology,result              saga topologies: reply records: accepted, late (recorded and ignored), unknown (no such saga), rejected (to the DLQ)
//	cdcsync_build_info                      gauge      version,go_version           always 1
//
// The per-partition series (lag, ledger keys) exist only while this worker
// holds the partition: they are deleted when the partition is revoked, so
// a sum over workers counts each partition once. The lag gauges are
// recomputed every 250 ms from the high-water mark each fetched batch
// brings. A partition is caught up when every fetched record is done and
// either the next offset reaches the high-water mark, or nothing was
// fetched for a second while the partition was not paused and a probe of
// its end (ListOffsets at the consumer's isolation level, sent after the
// last fetch) found nothing beyond what the consumer saw: transaction
// markers (and aborted records under read_committed) take offsets that are
// never delivered, so the last delivered offset need not be the
// high-water mark minus one, and a partition whose fetches stopped
// answering is not caught up just because nothing arrives. A silent
// partition is probed at most once a second; records the probe finds make
// the lag, and when no probe has answered for 3 s lag_records is NaN
// (unknown) and lag_seconds grows from the last fetch.
package processor
