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
// CRM-owned fields. Nothing ERP owns changed, so ApplyInto gives Keep=false
// and the event is dropped: the loop ends after one hop. This relies on the
// before-image: for an update without one (PostgreSQL without REPLICA
// IDENTITY FULL) every field looks changed, so an echo that carries
// fields the echoing system owns is kept, and the loop only ends when the
// next write changes nothing.
//
// # Rules
//
// The entity's owner is authority.default_owner. "Owned" fields are those
// the source system owns; "foreign" fields the others. Key fields (the
// names in Event.Key) are never subject to authority and never among the
// fields to write: the sink key carries them. A cdc.Unavailable value (an
// unchanged TOASTed column) is never changed.
//
// One rule: a change passes with the owned fields it set; the foreign
// fields it set are dropped (Dropped); a change that set no owned field
// is dropped whole, as an echo, unless it is an insert from the entity's
// owner, which creates the entity and so always passes, with its key and
// every owned field, NULL ones included. What "set" means depends on the
// op:
//
//   - Insert (c) and snapshot row (r), no before-image: a non-NULL field is
//     set; a NULL is not (the row was created without it), so the echo of
//     a row the other system created, which sets only that system's
//     fields, sets nothing owned.
//   - Update (u): a field in Event.Changed is set, NULL included (a real
//     set-to-null). Without a before-image every field is in Changed.
//   - Delete (d), tombstone, truncate (t): entity-level, no fields: they
//     pass only from the entity's owner. op=m passes with no fields.
//
// The combinations, for a policy of drop_field (Keep, Fields / Dropped):
//
//	               owned only        foreign only        mixed               all NULL
//	c, r  owner    keep: all owned   keep: all owned     keep: all owned     keep: all owned
//	                                 (NULL) / foreign    / foreign           (NULL)
//	c, r  other    keep: owned set   drop (echo) /       keep: owned set /   drop (nothing
//	                                 foreign             foreign             owned set)
//	u     either   keep: owned       drop (echo) /       keep: owned /       NULLs are changes:
//	               changed           foreign             foreign             as the fields set
//	d, t  owner    keep, no fields (whatever the row holds)
//	d, t  other    drop
//
// (An update that set every field to NULL is "mixed": owned and foreign
// fields changed.) Under dlq the same, except that a change which set owned AND foreign
// fields (the "mixed" column; an insert's NULLs set nothing) is a
// Violation and goes to the DLQ whole. A change of foreign fields only is
// never a violation: it cannot be told apart from an echo.
//
// # Policies
//
// DropField (topology value drop_field, the default) writes the owned
// changed fields and drops the rest. DLQ (topology value dlq) reports
// Violation when a change touched owned and unowned fields together, and
// the caller sends the whole record to the DLQ instead of the sink. A
// change of unowned fields only is never a violation under either
// policy: it looks exactly like the echo of the other system's sync
// write, and sending echoes to the DLQ would fill it in every two-way
// sync. It is dropped quietly, unless it is the owner's insert, which
// passes with its owned fields.
package authority
