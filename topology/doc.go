// Package topology reads topology files: one YAML file per pipeline,
// describing where changes come from, which system owns which field, and
// where the results go. A directory of them is loaded when a worker
// starts.
//
// A file is decoded strictly (an unknown or misspelt key is an error),
// defaults are filled in, the whole is validated, and a valid file is
// compiled into an immutable *Plan before any connection opens. Loading
// never stops at the first problem: the error is an Errors value listing
// every problem in every file, each an *Error naming the file, the line,
// the dotted option and the reason:
//
//	contacts.yaml:14: authority.owners.email: owner "crmx" is not a declared system (systems: erp, crm)
//	contacts.yaml:17: sink.key[1]: duplicate key field "contact_id" (also sink.key[0])
//
// Each *Error wraps one of ErrSyntax, ErrUnknownField, ErrMissing,
// ErrInvalid, ErrDuplicateName or ErrRead; use errors.Is and errors.As.
//
// # Example
//
//	name: contacts-erp-to-crm
//	systems: [erp, crm]
//	source:
//	  topics: [erp.public.contacts]
//	  system: erp
//	  format: debezium-json
//	dedup:
//	  key: position
//	  window: 168h
//	authority:
//	  owners: {email: crm, phone: erp, address: erp}
//	  default_owner: crm
//	  on_violation: drop_field
//	sink:
//	  topic: sync.{entity}
//	  key: [contact_id]
//	  format: json
//	guarantee: at_least_once
//
// # Reference
//
// Durations are Go durations: a number with a unit, ns, us, ms, s, m or h,
// e.g. 100ms, 30s, 1h30m; there is no unit for days (7 days is 168h). A
// bare number without a unit is an error. Names of topology, systems and
// topics are case-sensitive. An option written with no value (`dlq:`)
// takes its default. An option that has no effect with the other options
// as given (dedup.field without dedup.key: field, sink.subject_strategy
// with JSON output, commit_interval under at_least_once) is an error, so
// a misunderstanding does not pass silently.
//
// name (required; no default)
//
//	The topology name: [a-z0-9][a-z0-9._-]*, at most 242 bytes, unique
//	among all topologies loaded together. It names the consumer group
//	"cdcsync.<name>" (Kafka group.id; transactional IDs derive from it),
//	the dedup ledger topic "<name>.ledger", and the default DLQ topic
//	"dlq.<name>".
//
// systems (required; no default)
//
//	The systems of record that exist, e.g. [erp, crm]. Each matches
//	[a-z0-9][a-z0-9._-]* and appears once. source.system, every owner and
//	authority.default_owner must be one of them.
//
// source (required)
//
//	source.topics         list of topic names. Exactly one of source.topics
//	                      and source.topic_pattern is required.
//	source.topic_pattern  Go regexp (RE2 syntax) matched against the whole
//	                      topic name, as if written ^(?:pattern)$. Remember
//	                      to escape dots: 'erp\.public\..*'.
//	source.system         required; the declared system the changes come
//	                      from. Events carry it as their SourceSystem.
//	source.format         required; debezium-json (Kafka Connect's JSON
//	                      converter, with or without schemas) or
//	                      debezium-avro (Avro converter, Confluent wire
//	                      format, writer schemas from the schema registry).
//	                      There is no default: a wrong guess would send
//	                      every record to the DLQ.
//	source.tombstones     pass (default) or drop. A tombstone is the record
//	                      with a null value that Debezium writes after a
//	                      delete; pass forwards it as a delete marker.
//	source.truncate       dlq (default), pass or drop: what a TRUNCATE does.
//	                      pass forwards it to every sink partition, where it
//	                      can overtake or trail changes of other source
//	                      partitions (see the README); dlq keeps it for an
//	                      operator; drop discards it.
//
// dedup
//
//	dedup.key     how the event ID (the ledger key) is derived:
//	              position (default): connector, database, table, primary
//	                key and the connector's source position (e.g. lsn,
//	                txId, sequence for PostgreSQL). Snapshot reads (op=r)
//	                always use the content key, since a re-snapshot has new
//	                positions.
//	              content: table, primary key and a hash of the after-state.
//	              field: the value of dedup.field, e.g. an outbox id.
//	dedup.field   the field holding the ID; required when dedup.key is
//	              field, and an error otherwise. No default.
//	dedup.window  how long the ledger remembers an ID: the retention.ms of
//	              the "<name>.ledger" topic. Default 168h (7 days); must be
//	              greater than 0. A redelivery older than this is not
//	              recognised as a duplicate.
//
// authority
//
//	authority.owners         mapping of field name to owning system, e.g.
//	                         {email: crm, phone: erp}. Default: empty. A
//	                         change from source.system keeps only changed
//	                         fields it owns; the rest are dropped and
//	                         counted. This is also what ends echo loops.
//	authority.default_owner  owner of every field not in authority.owners.
//	                         Default: source.system, so a topology without
//	                         owners passes every changed field. In a
//	                         two-way sync, set it (or list the fields the
//	                         other side writes) so that echoes of the other
//	                         side's writes are dropped.
//	authority.on_violation   drop_field (default): drop fields the source
//	                         does not own and keep the rest; dlq: also send
//	                         the record to the DLQ as a violation.
//
// sink (required)
//
//	sink.topic             required; output topic template. Literal text
//	                       must be legal in a topic name (a-z A-Z 0-9 . _ -);
//	                       placeholders are {db}, {schema}, {table} and
//	                       {entity} (the event's entity, currently the
//	                       table or collection name). {schema} is empty
//	                       for databases without schemas (e.g. MySQL).
//	                       Example: sync.{entity}. No default. Refused
//	                       when its shortest expansion (literal text plus
//	                       one byte per {db}, {table} or {entity}) is over
//	                       249 bytes. Without placeholders it must not be,
//	                       or collide with ('.' and '_' are the same to
//	                       Kafka), a source topic, the DLQ topic or the
//	                       ledger topic; with placeholders the runtime
//	                       checks each expanded topic (Plan.CheckSinkTopic).
//	sink.key               required; non-empty list of distinct fields
//	                       forming the output record key, which picks the
//	                       partition with the Java-compatible murmur2
//	                       partitioner. No default.
//	sink.format            json (default) or avro (Confluent wire format,
//	                       schema registered in the schema registry).
//	sink.subject_strategy  avro only: topic (default; "<topic>-value",
//	                       Confluent's TopicNameStrategy), record
//	                       (RecordNameStrategy) or topic-record
//	                       (TopicRecordNameStrategy).
//
// dlq
//
//	dlq.topic  dead-letter topic. Default "dlq.<name>". Must not be, or
//	           collide with, a source topic or the ledger topic. Several
//	           topologies may share one DLQ topic: every record names its
//	           topology, and replay writes each back to its own source.
//
// errors
//
//	Transient failures (broker, registry or network unavailable,
//	timeouts) are retried with exponential backoff and full jitter: attempt
//	n waits a random time in [0, min(max, initial × multiplier^n)).
//
//	errors.retry.initial      first backoff ceiling. Default 100ms; > 0.
//	errors.retry.max          largest backoff ceiling. Default 30s;
//	                          >= errors.retry.initial.
//	errors.retry.multiplier   growth per attempt, a number >= 1. Default 2.
//	errors.retry.max_elapsed  after this long retrying one record, the
//	                          failure counts as permanent. Default 0: retry
//	                          forever.
//	errors.breaker.failures   consecutive transient failures of one
//	                          dependency (the producer path, the schema
//	                          registry) that open its circuit breaker: the
//	                          topology's partitions pause (no rebalance).
//	                          Default 5; >= 1.
//	errors.breaker.open       how long an open breaker waits before it lets
//	                          one probe through; each reopen grows it like
//	                          errors.retry (multiplier, jitter, capped at
//	                          errors.retry.max). Default 1s; > 0.
//	errors.tolerance          what a permanent failure (undecodable bytes,
//	                          missing key fields, a rule violation) does:
//	                          all (default): send the record to the DLQ and
//	                          keep going; none: stop the worker. Same
//	                          meaning as Kafka Connect's errors.tolerance.
//
// guarantee and commit_interval
//
//	guarantee        at_least_once (default): offsets are committed after
//	                 outputs and ledger writes are acknowledged; a crash
//	                 can re-emit and the ledger drops the redelivery.
//	                 exactly_once: outputs, DLQ records, ledger records and
//	                 consumer offsets commit in one Kafka transaction
//	                 (transactional.id "<group>-<topic>-<partition>");
//	                 readers should use isolation.level=read_committed.
//	commit_interval  exactly_once only: how often the transaction commits.
//	                 Default 100ms; > 0. Longer intervals mean bigger
//	                 transactions and more latency for read_committed
//	                 consumers.
//
// # Loading
//
// Load takes files and directories. A directory contributes its *.yaml and
// *.yml files in name order, not recursively, ignoring names that start
// with "." and all other files. A file named directly is loaded whatever
// its extension. If any file has a problem, Load returns no plans.
//
// Only regular files, or symbolic links to them, of at most MaxFileSize
// (1 MiB) are read. A topology path that is a FIFO, a device, a socket, a
// dangling symbolic link or a link loop, or a file over the limit, is a
// problem (ErrRead) that names the file and says what it is; none of them
// is opened for reading, so a FIFO cannot block and /dev/zero cannot fill
// memory. Subdirectories and links to directories are ignored.
//
// Load also refuses topics that clash between the topologies loaded
// together: a sink or DLQ topic that is another topology's ledger; a sink
// topic that is another's DLQ; a source that reads another's ledger; and
// any two topics they name (ledger, DLQ, literal sink, listed sources)
// that collide. A shared DLQ, a shared sink (fan-in) and one topology's
// sink or DLQ read by another (chaining) are allowed.
package topology
