package processor

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
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
	inflight inflight
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
	p.stats.Rebalances.Add(1)
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
	p.setPhase(fmt.Sprintf("restoring %d ledger partition(s) (generation %d)", len(claims), sess.GenerationID()))

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
			return errors.Join(err, h.closeTxns())
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
		return errors.Join(err, h.closeTxns())
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
// It returns an error when records were still unacknowledged at the
// timeout or a producer did not close cleanly; it starts no goroutine
// (the wait is a select on the in-flight count's channel).
func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	var errs []error
	if n := h.inflight.wait(h.p.cfg.ShutdownTimeout); n > 0 {
		err := fmt.Errorf("%w: %d record(s) still unacknowledged after shutdown_timeout (%v); their offsets stay uncommitted and will be redelivered",
			ErrCleanupTimeout, n, h.p.cfg.ShutdownTimeout)
		h.p.log.Error("session cleanup timed out", zap.Error(err))
		errs = append(errs, err)
	}
	if err := h.closeTxns(); err != nil {
		// Reported, but as a transient failure of this session (the
		// next one opens new producers), never as the topology's fatal
		// stop: the error's chain is not kept.
		h.p.log.Error("closing the transactional producers", zap.Error(err))
		errs = append(errs, fmt.Errorf("closing the transactional producers: %s", err))
	}
	h.p.ready.Store(false)
	h.p.setPhase("between sessions: rebalancing or restarting the session")
	return errors.Join(errs...)
}

func (h *handler) closeTxns() error {
	var errs []error
	for _, tp := range h.txns {
		if err := tp.close(); err != nil {
			errs = append(errs, err)
		}
	}
	h.txns = nil
	return errors.Join(errs...)
}

// inflight counts the session's records that are consumed but not yet
// acknowledged or failed. Unlike a sync.WaitGroup, its wait has a timeout
// and leaves no goroutine behind.
type inflight struct {
	n    atomic.Int64  // changed without mu while it stays above zero
	mu   sync.Mutex    // held for every change to or from zero, and by wait
	zero chan struct{} // closed while n == 0; replaced when n leaves 0
}

// Add changes the count by delta (the trackers call Add(1) and Add(-1),
// for every record). While the count stays above zero it is one atomic
// compare-and-swap: eight claims and two acknowledgement goroutines took
// one mutex twice per record. A change to or from zero takes mu, which
// wait holds while it reads the count and the channel.
func (c *inflight) Add(delta int) {
	d := int64(delta)
	for {
		old := c.n.Load()
		if old > 0 && old+d > 0 {
			if c.n.CompareAndSwap(old, old+d) {
				return
			}
			continue
		}
		c.mu.Lock()
		old = c.n.Load()
		if old > 0 && old+d > 0 {
			c.mu.Unlock()
			continue // another Add left zero meanwhile: the fast path again
		}
		nw := max(old+d, 0)
		if !c.n.CompareAndSwap(old, nw) {
			c.mu.Unlock()
			continue
		}
		if c.zero == nil {
			c.zero = make(chan struct{})
			close(c.zero)
		}
		switch {
		case old == 0 && nw > 0:
			c.zero = make(chan struct{})
		case old > 0 && nw == 0:
			close(c.zero)
		}
		c.mu.Unlock()
		return
	}
}

// wait waits until the count is zero or timeout passes, and returns the
// count left (0 when it reached zero).
func (c *inflight) wait(timeout time.Duration) int {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		c.mu.Lock()
		if c.n.Load() == 0 {
			c.mu.Unlock()
			return 0
		}
		zero := c.zero
		c.mu.Unlock()
		select {
		case <-zero:
		case <-t.C:
			return int(c.n.Load())
		}
	}
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
	if !p.holdWhilePaused(sess, claim) {
		return nil // the session ended while the topology was paused
	}
	if p.plan.Guarantee() == topology.ExactlyOnce {
		return h.consumeTxn(sess, claim, ps, h.txns[tp])
	}
	return h.consumeALO(sess, claim, ps)
}
