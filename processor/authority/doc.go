// Package authority applies field ownership to change events (design
// section 6).
//
// Every field of an entity has one owning system: the one named for it in
// the topology's authority.owners, else authority.default_owner. A change
// from system S keeps only the fields that S owns and that actually
// changed. Changed fields S does not own are dropped and reported in
// Decision.Dropped, so the caller can count them (the authority-dropped
// metric) and, under the DLQ policy, send the record to the DLQ.
//
// # Echo loops
//
// A sync write from CRM into ERP comes back as ERP CDC that changes only
// CRM-owned fields. Nothing ERP owns changed, so Apply returns Keep=false
// and the event is dropped: the loop ends after one hop. This relies on the
// before-image: for an update without one (PostgreSQL without REPLICA
// IDENTITY FULL) every field looks changed, so an echo that carries
// fields the echoing system owns is kept, and the loop only ends when the
// next write changes nothing.
//
// # Rules
//
//   - Key fields (the names in Event.Key) are never subject to authority
//     and are never among the fields to write; the sink key carries them.
//   - A field is changed when it is in Event.Changed. Without a
//     before-image, on an insert or snapshot read, a field whose After value
//     is nil is not changed: the row was created without it. So the echo of
//     a sync-created row, which sets only the other system's fields, is
//     dropped. (An update without a before-image keeps nil as a change: it
//     may be a real set-to-null.)
//   - A cdc.Unavailable value (an unchanged TOASTed column) is never
//     changed.
//   - Deletes, tombstones and truncates are entity-level: they are kept only
//     when the source system owns the entity, which we define as being the
//     default owner. They are never violations and report no fields: a
//     delete echoed back from the non-owning system is simply dropped.
//   - op=m (logical decoding messages) pass through with no fields.
//
// # Policies
//
// DropField (topology value drop_field, the default) writes the owned
// changed fields and drops the rest. DLQ (topology value dlq) reports
// Violation when a change touched owned and unowned fields together, and
// the caller sends the whole record to the DLQ instead of the sink. A
// change of unowned fields only is dropped quietly under both policies:
// it looks exactly like the echo of the other system's sync write, and
// sending echoes to the DLQ would fill it in every two-way sync.
package authority
