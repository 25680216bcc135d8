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
	// that nothing of that previous event is referenced any more: its
	// *Event and Transaction, its Rows (Key, Before, After, Position)
	// and the values boxed in their fields, and its Changed slice are
	// overwritten by this decode, as are the strings the decoder copied
	// (a string with JSON escapes, or any string of a record the fast
	// path does not take, up to 256 bytes). What stays valid is what
	// never lives in that memory: a string or other value taken OUT of
	// a field (v.(string) is the string header itself, which then
	// aliases the record or a copied string; the latter is overwritten)
	// is only safe when it aliases the record — so copy anything kept.
	// Safe to keep in any case: field names, Changed's elements, Type,
	// Entity, SourceSystem, Source and Schema strings (interned or
	// allocated on their own, never reused), IDs (arrays), and the
	// []any, maps, Decimals, []byte and Message a decode allocates.
	// Events, errors and IDs are exactly DecodeOwned's.
	DecodeOwnedReuse(s *Scratch, topic string, key, value []byte) (*Event, error)
}

var _ ReusingDecoder = (*JSONDecoder)(nil)

// DecodeOwnedReuse is DecodeOwned in s's memory; see ReusingDecoder.
func (d *JSONDecoder) DecodeOwnedReuse(s *Scratch, topic string, key, value []byte) (*Event, error) {
	return d.decode(s, topic, key, value, true)
}
