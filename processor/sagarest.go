package processor

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/processor/saga"
	"github.com/cdcsync/cdcsync/topology"
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

// sagaACLs adds the ACLs of a saga topology through add (RequiredACLs'):
// its group and transactional IDs, the trigger and reply topics it reads,
// the command, state and DLQ topics it writes (and creates).
func sagaACLs(p *topology.Plan, add func(res, pattern, name, why string, ops ...string)) {
	d := p.SagaDefinition()
	group := "cdcsync-saga-" + p.Name()
	add("Group", "LITERAL", group, "join the saga's consumer group; its offsets commit inside the transactions", "Read")
	add("TransactionalId", "PREFIXED", group+"-saga-", "one transactional producer per claimed partition", "Write")
	topics := d.Topics()
	add("Topic", "LITERAL", topics[0], "consume the saga trigger topic", "Read")
	for _, t := range topics[1:] {
		add("Topic", "LITERAL", t, "consume a reply topic", "Read", "Create")
	}
	for _, t := range d.CommandTopics() {
		add("Topic", "LITERAL", t, "send commands and compensations", "Write", "Create")
	}
	add("Topic", "LITERAL", string(p.SagaStateTopic()), "restore and write the saga state", "Read", "Write", "Create")
	add("Topic", "LITERAL", string(p.DLQTopic()), "write the dead-letter queue", "Write", "Create")
}
