package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/saga"
	"github.com/cdcsync/cdcsync/topology"
)

// sagaPipe runs a saga topology (issue 17) with processor/saga's runtime:
// its own consumer group (cdcsync-saga-<name>) over the trigger and reply
// topics, and a transactional producer per partition. The pipeline's
// client is not used: the runtime opens its clients from the worker's
// sarama configuration.
type sagaPipe struct {
	p  *pipeline
	rt *saga.Runtime
}

func newSagaPipeline(plan *topology.Plan, cfg Config, m *metrics, log *zap.Logger) (*pipeline, error) {
	p := &pipeline{
		plan:        plan,
		cfg:         cfg,
		log:         log.With(zap.String("topology", plan.Name())),
		stats:       m.forTopology(plan.Name()),
		metrics:     m,
		now:         time.Now,
		ledgers:     map[topicPartition]*partState{},
		nameBytes:   []byte(plan.Name()),
		ledgerTopic: string(plan.LedgerTopic()),
	}
	p.life.init()
	def := plan.SagaDefinition()
	rt, err := saga.New(saga.Config{
		Def:     def,
		Brokers: cfg.Brokers,
		Sarama: func(purpose string) (*sarama.Config, error) {
			sc, err := cfg.saramaConfig(purpose)
			if err != nil {
				return nil, err
			}
			sc.Producer.Return.Successes = false
			return sc, nil
		},
		DLQTopic:           string(plan.DLQTopic()),
		Log:                log,
		Metrics:            m.saga,
		TransactionTimeout: cfg.TransactionTimeout,
		OnSetup:            func([]int32) { p.ready.Store(true) },
		Hold: func(ctx context.Context) bool { // the REST API's pause (lifecycle.go)
			for {
				paused, changed := p.isPaused()
				if !paused {
					return true
				}
				select {
				case <-ctx.Done():
					return false
				case <-changed:
				}
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: topology %s: %v", ErrConfig, plan.Name(), err)
	}
	p.saga = &sagaPipe{p: p, rt: rt}
	return p, nil
}

// run runs the saga runtime until ctx ends. Topics that are not
// co-partitioned refuse the start: a configuration error (exit 2).
func (s *sagaPipe) run(ctx context.Context) error {
	s.p.setPhase("preparing the saga topics, joining the consumer group and restoring the sagas")
	// Pausing ends the session (lifecycle.go calls p.cancel); the claims
	// of the next one wait in Config.Hold until resumed. Set on every run:
	// a restart's reset clears it.
	s.p.mu.Lock()
	s.p.cancel = func(error) { s.rt.EndSession() }
	s.p.mu.Unlock()
	err := s.rt.Run(ctx)
	s.p.ready.Store(false)
	if errors.Is(err, saga.ErrPartitionMismatch) {
		return fatal(fmt.Errorf("%w: topology %s (%s): %v", ErrConfig, s.p.plan.Name(), s.p.plan.File(), err))
	}
	return err
}
