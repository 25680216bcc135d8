package processor

import (
	"time"

	"github.com/IBM/sarama"
)

// aloEmitter writes outputs through the pipeline's shared async producer
// and marks a source offset only after every output of the record, and
// then its ledger entry, are acknowledged (at_least_once). A crash between
// the two repeats the output; a redelivery after the ledger entry landed
// is dropped as a duplicate.
type aloEmitter struct {
	p *pipeline
	t *tracker
}

func (e *aloEmitter) begin(msg *sarama.ConsumerMessage, start time.Time) *record {
	return e.t.add(msg, start)
}

func (e *aloEmitter) skip(r *record) { e.p.finish(r) }

func (e *aloEmitter) emit(r *record, ledger *sarama.ProducerMessage, outs ...*sarama.ProducerMessage) {
	if ledger != nil {
		ledger.Metadata = r
	}
	r.ledger = ledger
	r.pending.Store(int32(len(outs)))
	for _, out := range outs {
		out.Metadata = r
		select {
		case e.p.out.Input() <- out:
		case <-e.t.sess.Context().Done():
			if r.resolved.CompareAndSwap(false, true) {
				e.t.fail(r)
			}
			return
		}
	}
}

func (e *aloEmitter) abandon(r *record, err error) {
	e.p.tries.fail(r.src)
	if r.resolved.CompareAndSwap(false, true) {
		e.t.fail(r)
	}
	e.p.failSession(err)
}
