package processor

import (
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/topology"
)

// rowChange is what the dedup stage knows about the row an event changes:
// its row key, the state the event leaves it in, and whether the event's
// ID is a content ID, which is then deduplicated by the row's latest state
// rather than by the ID set.
type rowChange struct {
	key     cdc.ID
	state   ledger.RowState
	content cdc.ID // the after-state's content ID when state is RowPresent
	only    bool   // dedup by row state alone: a snapshot row, or dedup.key: content
	// lazy: state is RowPresent and content is not computed yet. A
	// streamed change is deduplicated by its ID, so the content ID of its
	// after-state (a canonical encoding and a hash, about a sixth of a
	// worker's CPU) is needed only when it is emitted: ledgerRecord
	// computes it then, and duplicates and dropped events never pay.
	lazy bool
}

// rowOf works out the rowChange of ev. An event leaves no row state
// (state RowNone) when it has no key (a table without a primary key, a
// truncate, a message) or the topology deduplicates by a field: those keep
// the plain ID set.
//
// The ID of a snapshot row (op=r), and of every event under dedup.key:
// content, is the hash of its key and after-state. Remembering those IDs
// as a set dropped a row that returned to an EARLIER state (A -> B -> A
// delivered as a snapshot row), so such an event is now a duplicate only
// when it equals the row's latest applied state, or is a redelivery.
func (c *claimCtx) rowOf(topic string, ev *cdc.Event) rowChange {
	mode := c.p.plan.Dedup().Key
	if mode == topology.DedupField || len(ev.Key) == 0 || ev.Tombstone {
		return rowChange{}
	}
	switch ev.Op {
	case cdc.OpCreate, cdc.OpUpdate, cdc.OpRead, cdc.OpDelete:
	default:
		return rowChange{}
	}
	r := rowChange{key: ledger.RowKeyOf(topic, ev.Key), only: mode == topology.DedupContent || ev.Op == cdc.OpRead}
	switch {
	case ev.Op == cdc.OpDelete:
		r.state = ledger.RowDeleted
	case ev.After == nil || unavailable(ev.After):
		// An unchanged TOASTed column is not in the change: the full
		// after-state, which a snapshot would read, is not known.
		r.state = ledger.RowUnknown
	case r.only:
		r.state, r.content = ledger.RowPresent, ev.ID
	default:
		r.state, r.lazy = ledger.RowPresent, true
	}
	return r
}

// resolve computes a lazy row state's content ID, with buf as the
// canonical encoding's scratch space (the claim's, reused per record).
func (r *rowChange) resolve(ev *cdc.Event, buf *[]byte) {
	if !r.lazy {
		return
	}
	r.lazy = false
	id, err := cdc.ComputeIDBuf(ev, cdc.IDContent, "", buf)
	if err != nil {
		r.state = ledger.RowUnknown
	} else {
		r.content = id
	}
}

func unavailable(row cdc.Row) bool {
	for i := range row {
		if _, ok := row[i].Value.(cdc.Unavailable); ok {
			return true
		}
	}
	return false
}

// duplicate reports whether ev, read at source offset offset, is already
// applied. The caller holds ps.mu.
func (c *claimCtx) duplicate(ev *cdc.Event, row *rowChange, offset int64) bool {
	idx := c.ps.idx
	if !row.only {
		return idx.Seen(ev.ID) // never lazy when only: its content is its ID
	}
	if applied, known := idx.RowApplied(row.key, row.state, row.content, offset); known {
		return applied
	}
	// No row state within the window: a ledger written before row states
	// (value versions 1 and 2) remembers content IDs in the ID set.
	return idx.Seen(ev.ID)
}

// staleTombstone reports whether a tombstone read at offset is older than
// the latest applied change of its row. Tombstones skip the ledger and
// pass again when redelivered, which is harmless unless the row changed
// after the tombstone: a redelivered tombstone then deleted a row that a
// later change (whose redelivery the ledger drops) had brought back.
func (c *claimCtx) staleTombstone(topic string, ev *cdc.Event, offset int64) bool {
	if c.p.plan.Dedup().Key == topology.DedupField {
		return false
	}
	c.ps.mu.Lock()
	stale, _ := c.ps.idx.RowApplied(ledger.RowKeyOf(topic, ev.Key), ledger.RowNone, cdc.ID{}, offset)
	c.ps.mu.Unlock()
	return stale
}

// ledgerEntry is the ledger entry of one applied record: its key and
// value as ledger.Batch takes them, and the ledger partition (the source
// partition's number). Ledger entries are never produced one by one (they
// go into group-commit batches), so it is no producer message, and it
// lives in the record (record.led) instead of allocations of its own.
type ledgerEntry struct {
	partition int32
	kv        []byte // the key, then the value; in buf
	buf       [ledger.KeySize + ledger.ValueSizeRow]byte
}

func (l *ledgerEntry) key() []byte   { return l.kv[:ledger.KeySize:ledger.KeySize] }
func (l *ledgerEntry) value() []byte { return l.kv[ledger.KeySize:] }

// ledgerRecord writes the ledger entry of an applied event into dst and
// records the event in the in-memory index (at emit time, see DESIGN.md).
// now is when handle took the record (one clock read serves both). It
// returns dst. The caller holds ps.mu.
func (c *claimCtx) ledgerRecord(ev *cdc.Event, row *rowChange, msg *sarama.ConsumerMessage, dst *ledgerEntry, now time.Time) *ledgerEntry {
	row.resolve(ev, &c.idBuf)
	entry := ledger.Entry{FirstSeen: now, SourceOffset: msg.Offset,
		Row: row.key, State: row.state, RowContent: row.content, RowOnly: row.only}
	lb := dst.buf[:ledger.KeySize]
	copy(lb, ev.ID[:])
	dst.partition, dst.kv = msg.Partition, ledger.AppendValue(lb, entry)
	if !row.only {
		c.ps.idx.Add(ev.ID, now)
	}
	c.ps.idx.SetRow(row.key, row.state, row.content, msg.Offset, now)
	return dst
}
