package processor

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/processor/saga"
)

// The worker serves the saga views of the REST API.
var _ api.SagaBackend = (*Worker)(nil)

// Sagas reads a saga topology's state topic with a client of its own.
func (w *Worker) Sagas(ctx context.Context, name string) ([]*saga.State, error) {
	p := w.pipeline(name)
	if p == nil {
		return nil, fmt.Errorf("%w: %s", api.ErrUnknownTopology, name)
	}
	if !p.plan.IsSaga() {
		return nil, fmt.Errorf("%w: %s", api.ErrNotSaga, name)
	}
	sc, err := w.cfg.saramaConfig(name + "-saga-view")
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(w.cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	defer client.Close()
	states, _, err := saga.ReadStates(ctx, client, string(p.plan.SagaStateTopic()))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", api.ErrUnavailable, p.plan.SagaStateTopic(), err)
	}
	return states, nil
}
