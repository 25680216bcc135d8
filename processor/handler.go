package processor

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/topology"
)

// handler is the sarama.ConsumerGroupHandler of one pipeline. A new
// session calls Setup (open the transactional producers under
// exactly_once, then restore the ledger of every claim), then
// ConsumeClaim once per claim, then Cleanup (wait for in-flight records
// so their offsets are marked before the session commits; close the
// transactional producers).
type handler struct {
	p        *pipeline
	inflight sync.WaitGroup
	txns     map[topicPartition]*txnProducer // exactly_once only; set in Setup
}

type topicPartition struct {
	topic     string
	partition int32
}

var _ sarama.ConsumerGroupHandler = (*handler)(nil)

// Setup restores, in parallel, the ledger partition of every claim before
// any record of it is processed. Under exactly_once it first opens each
// claim's transactional producer: initialising it fences the previous
// owner and completes or aborts its open transaction, so the restore
// (read_committed) sees every committed ledger entry.
func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	p := h.p
	var claims []topicPartition
	for topic, parts := range sess.Claims() {
		for _, n := range parts {
			claims = append(claims, topicPartition{topic, n})
		}
	}
	sort.Slice(claims, func(i, j int) bool {
		if claims[i].topic != claims[j].topic {
			return claims[i].topic < claims[j].topic
		}
		return claims[i].partition < claims[j].partition
	})
	if len(claims) == 0 {
		p.log.Info("no partitions assigned: this worker is idle for this topology (more workers than partitions)",
			zap.Int32("partitions", p.partitions), zap.String("member", sess.MemberID()),
			zap.Int32("generation", sess.GenerationID()))
		p.ready.Store(true)
		return nil
	}
	eos := p.plan.Guarantee() == topology.ExactlyOnce

	var mu sync.Mutex
	g, ctx := errgroup.WithContext(sess.Context())
	g.SetLimit(4)
	if eos {
		h.txns = map[topicPartition]*txnProducer{}
		for _, c := range claims {
			g.Go(func() error {
				tp, err := p.newTxnProducer(c)
				if err != nil {
					return err
				}
				mu.Lock()
				h.txns[c] = tp
				mu.Unlock()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			h.closeTxns()
			return err
		}
		g, ctx = errgroup.WithContext(sess.Context())
		g.SetLimit(4)
	}

	fresh := make(map[topicPartition]*partState, len(claims))
	for _, c := range claims {
		g.Go(func() error {
			idx := ledger.NewIndex(p.plan.Dedup().Window)
			st, err := ledger.Restore(ctx, p.client, string(p.plan.LedgerTopic()), c.partition, idx, eos)
			if err != nil {
				return fmt.Errorf("restoring ledger %s/%d: %w", p.plan.LedgerTopic(), c.partition, err)
			}
			p.metrics.restore.WithLabelValues(p.plan.Name()).Observe(st.Duration.Seconds())
			p.metrics.ledgerKeys.WithLabelValues(p.plan.Name(), partitionLabel(c.partition)).Set(float64(idx.Len()))
			p.log.Info("ledger restored", zap.String("topic", c.topic), zap.Int32("partition", c.partition),
				zap.Int("keys", idx.Len()), zap.Int("records", st.Records), zap.Duration("took", st.Duration))
			if st.Invalid > 0 {
				p.log.Warn("ledger records that do not decode were skipped", zap.Int32("partition", c.partition),
					zap.Int("invalid", st.Invalid), zap.Error(st.FirstInvalid))
			}
			mu.Lock()
			fresh[c] = &partState{idx: idx}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		h.closeTxns()
		return err
	}
	p.mu.Lock()
	p.ledgers = fresh
	p.mu.Unlock()
	p.claimed.Store(int32(len(claims)))
	p.ready.Store(true)
	nums := make([]string, len(claims))
	for i, c := range claims {
		nums[i] = fmt.Sprintf("%s/%d", c.topic, c.partition)
	}
	p.log.Info("partitions assigned", zap.Strings("claims", nums), zap.String("guarantee", p.plan.Guarantee().String()),
		zap.String("member", sess.MemberID()), zap.Int32("generation", sess.GenerationID()))
	return nil
}

// Cleanup waits until every record of the session is acknowledged (or has
// failed), so that their offsets are marked before sarama commits and
// leaves the partitions, bounded by ShutdownTimeout. Under exactly_once
// the claims have already committed or aborted; their producers close.
func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	done := make(chan struct{})
	go func() { h.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(h.p.cfg.ShutdownTimeout):
		h.p.log.Error("records still unacknowledged after shutdown_timeout; their offsets stay uncommitted and will be redelivered",
			zap.Duration("shutdown_timeout", h.p.cfg.ShutdownTimeout))
	}
	h.closeTxns()
	h.p.ready.Store(false)
	return nil
}

func (h *handler) closeTxns() {
	for _, tp := range h.txns {
		tp.close()
	}
	h.txns = nil
}

// ConsumeClaim processes one partition. It starts no goroutines.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := h.p
	tp := topicPartition{claim.Topic(), claim.Partition()}
	p.mu.Lock()
	ps := p.ledgers[tp]
	p.mu.Unlock()
	if ps == nil {
		return fmt.Errorf("processor: no ledger state for %s/%d", claim.Topic(), claim.Partition())
	}
	if p.plan.Guarantee() == topology.ExactlyOnce {
		return h.consumeTxn(sess, claim, ps, h.txns[tp])
	}
	return h.consumeALO(sess, claim, ps)
}
