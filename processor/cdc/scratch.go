package cdc

// Scratch is per-event memory a caller lends the decoder, to be reused
// from one decode to the next (ReusingDecoder). Without it, each event
// gets memory of its own: its Event, the blocks its Rows, boxed values,
// Changed and copied strings are carved from (arena.go), about 1.5 KB and
// four allocations per record, which all die when the caller is done with
// the event. A caller that decodes records one at a time, and is done with
// each event before it decodes the next, keeps one Scratch and hands it
// to every decode: the memory of the previous event is then used again.
//
// A Scratch belongs to one goroutine (a claim's), never to the decoder:
// the decoder is shared and keeps its own working memory in a pool. The
// zero value is ready; it is not safe for concurrent use.
type Scratch struct {
	a   arena
	blk *eventBlock
}

// block returns the scratch's event block, reset, for an event of
// sourceSystem.
func (s *Scratch) block(sourceSystem string) *eventBlock {
	if s.blk == nil {
		s.blk = new(eventBlock)
	}
	s.blk.reset(sourceSystem)
	return s.blk
}

// ReusingDecoder is implemented by decoders that can decode into a
// caller's Scratch.
type ReusingDecoder interface {
	OwnedDecoder
	// DecodeOwnedReuse is DecodeOwned in the memory of the previous
	// event decoded with s (nil s: DecodeOwned). The caller promises
	// that nothing of that previous event is referenced any more, for
	// this decode overwrites:
	//   - its *Event and *Transaction;
	//   - its Rows (Key, Before, After, Position) and their Fields;
	//   - the values boxed in those Fields: an any taken from a Field
	//     reads the next event's value;
	//   - its Changed slice (not the names in it);
	//   - the strings the decoder copied: on the fast path those with
	//     JSON escapes, on the ordinary (envelope) path every string
	//     value and Number of up to 256 bytes, and Transaction.ID when it
	//     was copied.
	// What stays valid, since it never lives in that memory: field names
	// and the names in Changed, Type, Entity, SourceSystem, Source and
	// Schema strings (interned, or allocated apart), strings that alias
	// key or value (DecodeOwned's, see OwnedDecoder), the ID (an array),
	// and the []any, maps, Decimals, []byte and Message a decode
	// allocates. A caller that keeps anything else copies it first.
	// Events, errors and IDs are exactly DecodeOwned's.
	DecodeOwnedReuse(s *Scratch, topic string, key, value []byte) (*Event, error)
}

var _ ReusingDecoder = (*JSONDecoder)(nil)

// DecodeOwnedReuse is DecodeOwned in s's memory; see ReusingDecoder.
func (d *JSONDecoder) DecodeOwnedReuse(s *Scratch, topic string, key, value []byte) (*Event, error) {
	return d.decode(s, topic, key, value, true)
}
