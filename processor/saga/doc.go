// Package saga is cdcsync's saga orchestrator (issue 17): a multi-step
// change across systems whose steps are commands sent to participants over
// Kafka, each answered on a reply topic, with compensations that undo the
// completed steps, in reverse, when a later step fails or times out.
//
// The package has two halves:
//
//   - the state machine (machine.go, state.go, template.go): pure
//     functions from (definition, state, event, time) to (new state,
//     commands to send). It knows no broker and is tested without one.
//   - the runtime (runtime.go, restore.go): a consumer group over the
//     trigger and reply topics that keeps each partition's sagas in memory,
//     restored from the compacted state topic <name>.saga, and commits
//     every transition - the consumed trigger or reply offset, the new
//     state record and the commands it emits - in one Kafka transaction,
//     on a transactional producer per partition
//     (transactional.id = <group>-saga-<partition>), as exactly_once does.
//
// Partitioning: the state topic, the trigger topic, every reply topic and
// every command topic have the same partition count (the runtime refuses
// to start otherwise, as the ledger does). A saga started by a trigger on
// partition p lives on partition p: its state record, its commands and
// (by the participant contract) its replies all go to partition p. The
// group owning trigger partition p therefore owns everything the saga
// needs, and the next owner of p fences the previous one.
//
// docs/sagas.md is the user guide: the format, the participant contract,
// the guarantees and what a human does with a failed saga.
package saga
