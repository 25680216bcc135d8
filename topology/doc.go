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
// docs/topology.md in the repository is the reference: every option, its
// default and its meaning. TestReferenceDoc checks it against the decoder
// and the defaults (NewConfig, Plan.Describe), so an option added or a
// default changed here fails the test until the reference says so.
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
