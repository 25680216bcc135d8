// Package apply is the other end of a two-way sync: it reads the events
// cdcsync's sink wrote to a sync topic (source.format cdcsync-json or
// cdcsync-avro) and applies them to a target system through an Applier
// (apply.kind postgres: package pgapply; http: package httpapply).
//
// The framework (processor/applypipe.go) consumes the sync topics in a
// consumer group, cuts each partition's records into ordered batches
// (apply.batch), calls Applier.Apply, and marks a Kafka offset only after
// Apply returned the event at that offset. A transient error backs off
// (errors.retry) and counts towards the breaker of dependency "apply"
// (the partitions pause, nothing goes to the DLQ); a *Rejected event goes
// alone to the DLQ with stage "apply".
package apply
