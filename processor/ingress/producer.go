package ingress

import (
	"context"
	"errors"
	"sync"

	"github.com/IBM/sarama"
)

// ErrClosed is returned by Produce after Close.
var ErrClosed = errors.New("ingress: producer closed")

// KafkaProducer is the Producer over a sarama AsyncProducer configured
// with acks=all (idempotent, one request in flight, so the records of a
// key keep the order in which they were acknowledged). Concurrent
// requests share its batches.
type KafkaProducer struct {
	ap   sarama.AsyncProducer
	done chan struct{}

	mu     sync.RWMutex
	closed bool
}

var _ Producer = (*KafkaProducer)(nil)

// NewKafkaProducer starts a producer on client, which it does not own,
// and the goroutine that routes acknowledgements; Close stops both.
// client's config must return successes and errors.
func NewKafkaProducer(client sarama.Client) (*KafkaProducer, error) {
	ap, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return nil, err
	}
	p := &KafkaProducer{ap: ap, done: make(chan struct{})}
	go p.acks()
	return p, nil
}

func (p *KafkaProducer) acks() {
	defer close(p.done)
	succ, errs := p.ap.Successes(), p.ap.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			m.Metadata.(chan error) <- nil
		case e, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			e.Msg.Metadata.(chan error) <- e.Err
		}
	}
}

// Produce sends msg and waits for its acknowledgement or ctx. A ctx that
// ends first returns its error; the record may still be written later,
// which is why the event ID comes from the delivery ID: the sender's
// retry is then dropped as a duplicate.
func (p *KafkaProducer) Produce(ctx context.Context, msg *sarama.ProducerMessage) error {
	res := make(chan error, 1)
	msg.Metadata = res
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	select {
	case p.ap.Input() <- msg:
	case <-ctx.Done():
		p.mu.RUnlock()
		return ctx.Err()
	}
	p.mu.RUnlock()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes what was sent and waits for the acknowledgements. Call it
// after the server has stopped.
func (p *KafkaProducer) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ap.AsyncClose()
	<-p.done
	return nil
}
