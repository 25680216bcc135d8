package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/dlq"
)

var (
	// ErrPartitionMismatch is returned by Run when the trigger, reply,
	// command and state topics do not all have the same partition count.
	// Fatal: the worker must not start (a configuration error).
	ErrPartitionMismatch = errors.New("saga: partition count mismatch")
	// ErrFenced is the cause of a session restart after another worker
	// initialised a partition's transactional producer.
	ErrFenced = errors.New("saga: producer fenced")
)

// Defaults of Config.
const (
	DefaultTick     = 50 * time.Millisecond
	DefaultMaxBatch = 500

	DefaultTransactionTimeout = 10 * time.Second
)

// Config configures a Runtime.
type Config struct {
	Def     *Definition // validated by New
	Brokers []string
	// Group is the consumer group and the prefix of the transactional
	// IDs (<group>-saga-<partition>); default "cdcsync-saga-<name>".
	Group string
	// Sarama returns a base client configuration for a purpose; nil uses
	// DefaultSaramaConfig. The runtime sets what transactions need on it.
	Sarama   func(purpose string) (*sarama.Config, error)
	DLQTopic string // default "dlq.<name>"
	Log      *zap.Logger
	Metrics  *Metrics // nil: not counted
	Now      func() time.Time
	Tick     time.Duration // how often deadlines are checked, default DefaultTick
	// TransactionTimeout is the transactions' timeout (Kafka
	// transaction.timeout.ms), default DefaultTransactionTimeout.
	TransactionTimeout time.Duration
	MaxBatch           int // records per transaction, default DefaultMaxBatch
	// OnSetup, when set, is called after each session's partitions are
	// restored (tests wait on it).
	OnSetup func(partitions []int32)
	// Hold, when set, is called by each claim before it reads anything: it
	// blocks while the topology is paused (the claim holds its partition,
	// reads nothing and fires no deadline) and returns false when ctx
	// ended first. Pausing calls EndSession, so that every claim meets it.
	Hold func(ctx context.Context) bool
}

// DefaultSaramaConfig is the client configuration used when Config.Sarama
// is nil.
func DefaultSaramaConfig(purpose string) (*sarama.Config, error) {
	c := sarama.NewConfig()
	c.ClientID = "cdcsync-" + purpose
	c.Version = sarama.V2_8_0_0
	return c, nil
}

// Runtime runs one saga topology: Run consumes its trigger and reply topics
// in its consumer group until the context ends.
//
// Goroutines, all owned by Run: the consume loop (Run itself), one
// goroutine per claim (sarama's ConsumeClaim), and the group-error logger.
// A partition's shard is created in Setup and closed in Cleanup; its
// mutex serialises the trigger claim, the reply claims and the deadline
// ticks of that partition, so every transition of a saga happens in order.
type Runtime struct {
	cfg      Config
	def      *Definition
	log      *zap.Logger
	topics   []string
	parts    int32
	inFlight atomic.Int64

	mu     sync.Mutex
	shards map[int32]*shard // the current session's, set in Setup
	cancel context.CancelCauseFunc
}

// New checks cfg and returns a Runtime.
func New(cfg Config) (*Runtime, error) {
	if cfg.Def == nil {
		return nil, fmt.Errorf("%w: no definition", ErrDefinition)
	}
	if err := cfg.Def.Validate(); err != nil {
		return nil, err
	}
	for _, t := range cfg.Def.Topics()[1:] {
		if t == cfg.Def.Trigger.Topic {
			return nil, fmt.Errorf("%w: reply topic %s is the trigger topic", ErrDefinition, t)
		}
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("saga: no brokers")
	}
	if cfg.Group == "" {
		cfg.Group = "cdcsync-saga-" + cfg.Def.Name
	}
	if cfg.Sarama == nil {
		cfg.Sarama = DefaultSaramaConfig
	}
	if cfg.DLQTopic == "" {
		cfg.DLQTopic = "dlq." + cfg.Def.Name
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = DefaultTransactionTimeout
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	return &Runtime{cfg: cfg, def: cfg.Def, log: cfg.Log.With(zap.String("topology", cfg.Def.Name)), topics: cfg.Def.Topics()}, nil
}

func (r *Runtime) saramaConfig(purpose string) (*sarama.Config, error) {
	c, err := r.cfg.Sarama(purpose)
	if err != nil {
		return nil, err
	}
	if !c.Version.IsAtLeast(sarama.V2_5_0_0) {
		c.Version = sarama.V2_8_0_0 // transactional offset commits with group metadata (KIP-447)
	}
	return c, nil
}

// Run prepares the topics and consumes until ctx ends. It returns nil
// after ctx ends, and an error wrapping ErrPartitionMismatch when the
// topics are not co-partitioned.
func (r *Runtime) Run(ctx context.Context) error {
	sc, err := r.saramaConfig(r.def.Name)
	if err != nil {
		return err
	}
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = false // offsets commit inside the transactions
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	sc.Consumer.Return.Errors = true
	// The rebalance timeout (15 s) comes from the worker's configuration;
	// the claims end within a transaction's commit, well inside it. This
	// client runs the group, so its read timeout, which also bounds a
	// JoinGroup request, must outlast a rebalance held by a member killed
	// without leaving (processor.groupConfig says why: twice).
	sc.Net.ReadTimeout = max(sc.Net.ReadTimeout, 2*sc.Consumer.Group.Rebalance.Timeout)
	client, err := sarama.NewClient(r.cfg.Brokers, sc)
	if err != nil {
		return err
	}
	defer client.Close()
	for attempt := 0; ; attempt++ {
		err := r.prepare(client)
		if err == nil {
			break
		}
		if errors.Is(err, ErrPartitionMismatch) {
			return err
		}
		r.log.Warn("preparing the saga topics failed, retrying", zap.Error(err))
		if sleep(ctx, backoff(attempt)) != nil {
			return nil
		}
	}
	group, err := sarama.NewConsumerGroupFromClient(r.cfg.Group, client)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for err := range group.Errors() {
			r.log.Warn("consumer group error", zap.Error(err))
		}
	}()
	h := &handler{r: r}
	for attempt := 0; ctx.Err() == nil; {
		sctx, cancel := context.WithCancelCause(ctx)
		r.mu.Lock()
		r.cancel = cancel
		r.mu.Unlock()
		err := group.Consume(sctx, r.topics, h)
		cause := context.Cause(sctx)
		cancel(nil)
		if ctx.Err() != nil {
			break
		}
		if err == nil && cause == nil {
			attempt = 0
			continue
		}
		if err == nil {
			err = cause
		}
		d := backoff(attempt)
		attempt++
		r.log.Warn("saga session ended; resuming from the committed state", zap.Error(err), zap.Duration("backoff", d))
		if sleep(ctx, d) != nil {
			break
		}
	}
	cerr := group.Close()
	wg.Wait()
	return cerr
}

func backoff(attempt int) time.Duration {
	ceil := min(100*time.Millisecond<<min(attempt, 8), 5*time.Second)
	return ceil/2 + rand.N(ceil/2+1)
}

// prepare checks that the consumed and command topics exist with one
// partition count, creating the state and DLQ topics (and missing reply
// or command topics) with it.
func (r *Runtime) prepare(client sarama.Client) error {
	if err := client.RefreshMetadata(); err != nil {
		return err
	}
	parts, err := client.Partitions(r.def.Trigger.Topic)
	if err != nil {
		return fmt.Errorf("trigger topic %s: %w", r.def.Trigger.Topic, err)
	}
	n := int32(len(parts))
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	// Not admin.Close: it would close the shared client.
	ensure := func(topic string, compact bool) error {
		ps, err := client.Partitions(topic)
		if err == nil {
			if int32(len(ps)) != n {
				return fmt.Errorf("%w: topic %s has %d partitions but the trigger topic %s has %d; "+
					"a saga's trigger, replies, commands and state share one partition number, so every topic of the saga must have the same count",
					ErrPartitionMismatch, topic, len(ps), r.def.Trigger.Topic, n)
			}
			return nil
		}
		td := &sarama.TopicDetail{NumPartitions: n, ReplicationFactor: -1}
		if compact {
			pol, ms := "compact", "0"
			td.ConfigEntries = map[string]*string{"cleanup.policy": &pol, "delete.retention.ms": &ms}
		}
		if err := admin.CreateTopic(topic, td, false); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("creating %s: %w", topic, err)
		}
		r.log.Info("created topic", zap.String("topic", topic), zap.Int32("partitions", n), zap.Bool("compacted", compact))
		return client.RefreshMetadata(topic)
	}
	for _, t := range r.def.Topics()[1:] {
		if err := ensure(t, false); err != nil {
			return err
		}
	}
	for _, t := range r.def.CommandTopics() {
		if err := ensure(t, false); err != nil {
			return err
		}
	}
	if err := ensure(r.def.StateTopic(), true); err != nil {
		return err
	}
	if err := ensure(r.cfg.DLQTopic, false); err != nil {
		return err
	}
	r.parts = n
	r.log.Info("saga prepared", zap.Strings("topics", r.topics), zap.String("state", r.def.StateTopic()),
		zap.Int32("partitions", n), zap.String("group", r.cfg.Group))
	return nil
}

// EndSession ends the current session cleanly; Run joins the group again
// at once (the worker's pause uses it, with Config.Hold).
func (r *Runtime) EndSession() { r.stop(nil) }

// stop ends the current session with cause.
func (r *Runtime) stop(cause error) {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel(cause)
	}
	r.mu.Unlock()
}

type handler struct{ r *Runtime }

// Setup fences the previous owner of each claimed partition (by
// initialising its transactional producer) and restores its sagas from
// the state topic, re-arming their deadlines.
func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	r := h.r
	parts := sess.Claims()[r.def.Trigger.Topic]
	shards := make(map[int32]*shard, len(parts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.openShard(sess.Context(), p)
			if err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			shards[p] = s
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.mu.Lock()
	r.shards = shards
	r.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		r.stop(err)
		return nil // Cleanup closes what opened; the session restarts
	}
	r.log.Info("saga session started", zap.Int32s("partitions", parts), zap.Int32("generation", sess.GenerationID()))
	if r.cfg.OnSetup != nil {
		r.cfg.OnSetup(parts)
	}
	return nil
}

// Cleanup closes the session's shards.
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error {
	r := h.r
	r.mu.Lock()
	shards := r.shards
	r.shards = nil
	r.mu.Unlock()
	for _, s := range shards {
		s.close()
	}
	return nil
}

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	r := h.r
	r.mu.Lock()
	s := r.shards[claim.Partition()]
	r.mu.Unlock()
	ctx := sess.Context()
	if r.cfg.Hold != nil && !r.cfg.Hold(ctx) {
		return nil
	}
	if s == nil {
		// Not restored (Setup failed and the session is ending), or the
		// balancer split the topics' partitions: never consume a reply
		// whose saga this worker does not own.
		<-ctx.Done()
		return nil
	}
	ticks := r.def.Trigger.Topic == claim.Topic()
	var tick <-chan time.Time
	if ticks {
		t := time.NewTicker(r.cfg.Tick)
		defer t.Stop()
		tick = t.C
	}
	msgs := claim.Messages()
	var rc *replyClaim
	if !ticks {
		rc = s.addReplyClaim(claim)
	}
	batch := make([]*sarama.ConsumerMessage, 0, r.cfg.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if err := s.tick(sess); err != nil {
				r.stop(err)
				return nil
			}
			continue
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			batch = append(batch, m)
		}
	fill:
		for len(batch) < r.cfg.MaxBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if rc != nil {
			rc.lastMsg.Store(time.Now().UnixNano())
		}
		if err := s.process(sess, claim.Topic(), batch); err != nil {
			r.stop(err)
			return nil
		}
		if rc != nil {
			rc.next.Store(batch[len(batch)-1].Offset + 1)
		}
		clear(batch)
		batch = batch[:0]
	}
}

// shard is one partition's sagas and its transactional producer.
type shard struct {
	r      *Runtime
	p      int32
	txid   string
	client sarama.Client
	prod   sarama.AsyncProducer
	log    *zap.Logger

	replyMu sync.Mutex
	replies map[string]*replyClaim // by reply topic: the session's reply claims of this partition

	mu       sync.Mutex
	states   map[string]*State
	inFlight int64
	nextDue  time.Time // no saga is due before it
	broken   error
}

func (r *Runtime) openShard(ctx context.Context, p int32) (*shard, error) {
	sc, err := r.saramaConfig(r.def.Name + "-saga-txn")
	if err != nil {
		return nil, err
	}
	txid := fmt.Sprintf("%s-saga-%d", r.cfg.Group, p)
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Transaction.ID = txid
	// A worker killed inside a transaction leaves it open until the next
	// owner initialises the ID, or until this timeout: the group's offset
	// fetch refuses (UNSTABLE_OFFSET_COMMIT) the partitions it had in the
	// transaction until then, so it bounds the failover time.
	sc.Producer.Transaction.Timeout = r.cfg.TransactionTimeout
	sc.Producer.Transaction.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(5*time.Millisecond<<min(retries, 5), 100*time.Millisecond)
	}
	sc.Producer.Return.Successes = false
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	// Restore reads whole partitions: fetch generously.
	sc.Consumer.Fetch.Default = 4 << 20
	sc.Consumer.MaxWaitTime = 250 * time.Millisecond
	client, err := sarama.NewClient(r.cfg.Brokers, sc)
	if err != nil {
		return nil, err
	}
	// Creating the producer initialises the transactional ID: it fences
	// the previous owner and completes or aborts its open transaction, so
	// the state read next is final.
	prod, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("initialising transactional producer %s: %w", txid, err)
	}
	s := &shard{r: r, p: p, txid: txid, client: client, prod: prod, states: map[string]*State{}, replies: map[string]*replyClaim{},
		log: r.log.With(zap.Int32("partition", p))}
	began := time.Now()
	invalid := 0
	n, err := restorePartition(ctx, client, r.def.StateTopic(), p, func(key, value []byte) {
		id := string(key)
		if len(value) == 0 {
			delete(s.states, id)
			return
		}
		st, err := DecodeState(value)
		if err != nil || st.ID != id {
			invalid++
			return
		}
		s.states[id] = st
	})
	if err != nil {
		s.close()
		return nil, err
	}
	for _, st := range s.states {
		if !st.Status.Terminal() {
			s.inFlight++
		}
	}
	r.inFlight.Add(s.inFlight)
	r.setInFlight()
	s.log.Info("sagas restored", zap.Int("records", n), zap.Int("sagas", len(s.states)), zap.Int64("in_flight", s.inFlight),
		zap.Int("invalid", invalid), zap.Duration("took", time.Since(began)))
	return s, nil
}

func (r *Runtime) setInFlight() {
	if m := r.cfg.Metrics; m != nil {
		m.InFlight.WithLabelValues(r.def.Name).Set(float64(r.inFlight.Load()))
	}
}

// close aborts an open transaction (there is none between calls) and
// closes the producer; its sagas leave this worker's in-flight count.
func (s *shard) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.prod.TxnStatus(); st&sarama.ProducerTxnFlagInTransaction != 0 && st&sarama.ProducerTxnFlagFatalError == 0 {
		_ = draining(s.prod, s.prod.AbortTxn, func(*sarama.ProducerError) {})
	}
	if err := s.prod.Close(); err != nil && !isFenced(err) {
		s.log.Warn("closing the transactional producer", zap.Error(err))
	}
	s.client.Close()
	s.r.inFlight.Add(-s.inFlight)
	s.r.setInFlight()
	s.inFlight = 0
}

// work is one transaction's changes, applied to the shard only after the
// commit succeeded.
type work struct {
	now      time.Time
	states   map[string]*State // new states; nil value: tombstoned
	order    []string
	out      []Message
	dlq      []*sarama.ProducerMessage
	started  int
	ended    []*State
	latency  map[string][]time.Duration
	triggers map[string]int
	replies  map[string]int
}

func newWork(now time.Time) *work {
	return &work{now: now, states: map[string]*State{}, triggers: map[string]int{}, replies: map[string]int{}}
}

func (w *work) get(s *shard, id string) (*State, bool) {
	if st, ok := w.states[id]; ok {
		return st, st != nil
	}
	st, ok := s.states[id]
	return st, ok
}

func (w *work) apply(id string, t Transition) {
	if _, ok := w.states[id]; !ok {
		w.order = append(w.order, id)
	}
	if t.Tombstone {
		w.states[id] = nil
		return
	}
	w.states[id] = t.State
	w.out = append(w.out, t.Out...)
	if t.Ended {
		w.ended = append(w.ended, t.State)
	}
	for step, d := range t.Latency {
		if w.latency == nil {
			w.latency = map[string][]time.Duration{}
		}
		w.latency[step] = append(w.latency[step], d)
	}
}

func (w *work) empty() bool { return len(w.order) == 0 && len(w.dlq) == 0 }

// process handles a batch of one claim's records in one transaction,
// which also commits the claim's offset past the batch.
func (s *shard) process(sess sarama.ConsumerGroupSession, topic string, batch []*sarama.ConsumerMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	w := newWork(s.r.cfg.Now())
	for _, m := range batch {
		if topic == s.r.def.Trigger.Topic {
			s.trigger(w, m)
		} else {
			s.reply(w, m)
		}
	}
	last := batch[len(batch)-1]
	return s.commit(sess, w, map[string][]*sarama.PartitionOffsetMetadata{
		topic: {{Partition: s.p, Offset: last.Offset + 1, LeaderEpoch: -1}},
	})
}

// tick handles the sagas whose deadline passed.
func (s *shard) tick(sess sarama.ConsumerGroupSession) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	now := s.r.cfg.Now()
	if now.Before(s.nextDue) || !s.caughtUp() {
		return nil
	}
	w := newWork(now)
	var next time.Time
	for id, st := range s.states {
		if st.Due(now) {
			w.apply(id, s.r.def.Tick(st, now))
			if len(w.order) >= s.r.cfg.MaxBatch {
				next = now // more are due: look again at the next tick
				break
			}
			continue
		}
		if n := st.Next(); !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	if w.empty() {
		s.nextDue = next
		return nil
	}
	if err := s.commit(sess, w, nil); err != nil {
		return err
	}
	s.nextDue = next
	for _, st := range w.states {
		if st != nil {
			if n := st.Next(); !n.IsZero() && n.Before(s.nextDue) {
				s.nextDue = n
			}
		}
	}
	return nil
}

// replyClaim tracks how far a reply claim has read, so that no deadline
// fires while replies wait unread on the saga's partition: after a
// failover, or while the orchestrator lags, the reply that arrived in time
// must win over the timeout.
type replyClaim struct {
	claim   sarama.ConsumerGroupClaim
	started time.Time
	next    atomic.Int64 // the offset after the last record processed
	lastMsg atomic.Int64 // unix nanos when records last arrived
}

// replyQuiet is how long a reply claim must have received nothing to count
// as caught up when its position cannot be compared with the high-water
// mark (under read_committed, aborted records and markers sit below it).
const (
	replyQuiet      = time.Second
	replyFirstFetch = 5 * time.Second
)

func (s *shard) addReplyClaim(c sarama.ConsumerGroupClaim) *replyClaim {
	rc := &replyClaim{claim: c, started: time.Now()}
	rc.next.Store(c.InitialOffset())
	s.replyMu.Lock()
	s.replies[c.Topic()] = rc
	s.replyMu.Unlock()
	return rc
}

// caughtUp reports whether every reply topic's claim of this partition has
// read everything there is: its buffer is empty and its position is at the
// high-water mark, or nothing has come for replyQuiet. Before the claim's first fetch answer (high-water mark
// still 0) it waits replyFirstFetch: an empty partition never answers with
// more.
func (s *shard) caughtUp() bool {
	s.replyMu.Lock()
	defer s.replyMu.Unlock()
	now := time.Now()
	for _, t := range s.r.topics[1:] {
		rc := s.replies[t]
		if rc == nil || len(rc.claim.Messages()) > 0 {
			return false
		}
		hwm, next := rc.claim.HighWaterMarkOffset(), rc.next.Load()
		switch {
		case hwm == 0:
			if now.Sub(rc.started) < replyFirstFetch {
				return false
			}
		case next >= hwm:
		// Below the high-water mark: records to come, or transaction
		// markers and aborted records that are never delivered. Only a
		// quiet second tells them apart. (Regression: allowing one
		// marker here took a last unread reply for a marker, and its
		// step timed out after a failover.)
		case now.Sub(time.Unix(0, max(rc.lastMsg.Load(), rc.started.UnixNano()))) < replyQuiet:
			return false
		}
	}
	return true
}

// trigger starts a saga, unless one with the trigger's ID exists.
func (s *shard) trigger(w *work, m *sarama.ConsumerMessage) {
	def := s.r.def
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(m.Value, &obj); err != nil || obj == nil {
		w.triggers[TriggerRejected]++
		w.dlq = append(w.dlq, s.dlqRecord(m, "saga-trigger", "the trigger is not a JSON object"))
		return
	}
	if def.Trigger.Type != "" {
		var typ string
		if json.Unmarshal(obj[def.Trigger.TypeField], &typ) != nil || typ != def.Trigger.Type {
			w.triggers[TriggerSkipped]++
			return
		}
	}
	id := eventID(obj[def.Trigger.IDField])
	if id == "" {
		id = fmt.Sprintf("%s-%d-%d", m.Topic, m.Partition, m.Offset)
	}
	if _, ok := w.get(s, id); ok {
		w.triggers[TriggerDuplicate]++
		s.log.Debug("trigger redelivered: the saga exists, nothing started", zap.String("saga", id), zap.Int64("offset", m.Offset))
		return
	}
	w.triggers[TriggerStarted]++
	w.started++
	w.apply(id, def.Start(id, m.Value, fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset), s.p, w.now))
}

// eventID is a trigger's event ID field as text: a string as is, a number
// as written; anything else (or nothing) gives "".
func eventID(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	var str string
	if json.Unmarshal(v, &str) == nil {
		if len(str) > maxIDLen {
			return ""
		}
		return str
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}

// replyValue is the JSON value of a reply record.
type replyValue struct {
	Outcome Outcome         `json:"outcome"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
}

// reply applies a participant's reply to its saga.
func (s *shard) reply(w *work, m *sarama.ConsumerMessage) {
	r := Reply{}
	for _, h := range m.Headers {
		switch string(h.Key) {
		case HeaderID:
			r.ID = string(h.Value)
		case HeaderStep:
			r.Step = string(h.Value)
		case HeaderKind:
			r.Kind = Kind(h.Value)
		case HeaderAttempt:
			r.Attempt, _ = strconv.Atoi(string(h.Value))
		}
	}
	if r.ID == "" {
		r.ID = string(m.Key)
	}
	if r.Kind == "" {
		r.Kind = KindCommand
	}
	var v replyValue
	if r.ID == "" || r.Step == "" || json.Unmarshal(m.Value, &v) != nil {
		w.replies[ReplyRejected]++
		w.dlq = append(w.dlq, s.dlqRecord(m, "saga-reply", "not a saga reply: the "+HeaderID+" and "+HeaderStep+" headers and a JSON value {\"outcome\": ...} are required"))
		return
	}
	r.Outcome, r.Result, r.Error = v.Outcome, v.Result, v.Error
	st, ok := w.get(s, r.ID)
	if !ok {
		w.replies[ReplyUnknown]++
		s.log.Info("reply for an unknown saga ignored (tombstoned after its retention, or sent to the wrong partition)",
			zap.String("saga", r.ID), zap.String("step", r.Step), zap.String("topic", m.Topic), zap.Int64("offset", m.Offset))
		return
	}
	t := s.r.def.OnReply(st, r, w.now)
	if t.Late {
		w.replies[ReplyLate]++
	} else {
		w.replies[ReplyAccepted]++
	}
	w.apply(r.ID, t)
}

func (s *shard) dlqRecord(m *sarama.ConsumerMessage, stage, reason string) *sarama.ProducerMessage {
	// The DLQ headers of processor/dlq (Kafka Connect's), so that
	// cdcsync dlq inspect and dlq replay read these records too.
	hs := []sarama.RecordHeader{
		{Key: []byte(dlq.HeaderTopic), Value: []byte(m.Topic)},
		{Key: []byte(dlq.HeaderPartition), Value: []byte(strconv.Itoa(int(m.Partition)))},
		{Key: []byte(dlq.HeaderOffset), Value: []byte(strconv.FormatInt(m.Offset, 10))},
		{Key: []byte(dlq.HeaderStage), Value: []byte(stage)},
		{Key: []byte(dlq.HeaderExceptionMessage), Value: []byte(reason)},
		{Key: []byte(dlq.HeaderTopology), Value: []byte(s.r.def.Name)},
	}
	s.log.Warn("record sent to the DLQ", zap.String("stage", stage), zap.String("topic", m.Topic), zap.Int64("offset", m.Offset), zap.String("reason", reason))
	return &sarama.ProducerMessage{Topic: s.r.cfg.DLQTopic, Partition: s.p, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value), Headers: hs}
}

// commit writes w's commands, compensations, state records and DLQ
// records, and the consumer offsets, in one transaction; only then does
// the shard take w's states. On any failure the transaction is aborted,
// the shard is broken and the session must restart: the next session
// restores the committed state and re-reads from the committed offsets.
func (s *shard) commit(sess sarama.ConsumerGroupSession, w *work, offsets map[string][]*sarama.PartitionOffsetMetadata) error {
	if w.empty() && offsets == nil {
		return nil
	}
	var perr error
	onErr := func(pe *sarama.ProducerError) {
		if perr == nil {
			perr = pe.Err
		}
	}
	fail := func(err error) error {
		if st := s.prod.TxnStatus(); st&sarama.ProducerTxnFlagInTransaction != 0 && st&sarama.ProducerTxnFlagFatalError == 0 && !isFenced(err) {
			_ = draining(s.prod, s.prod.AbortTxn, func(*sarama.ProducerError) {})
		}
		if isFenced(err) {
			err = fmt.Errorf("%w: %s: %v", ErrFenced, s.txid, err)
		}
		s.broken = fmt.Errorf("saga partition %d: %w", s.p, err)
		return s.broken
	}
	if err := s.prod.BeginTxn(); err != nil {
		return fail(err)
	}
	in := s.prod.Input()
	send := func(pm *sarama.ProducerMessage) {
		for {
			select {
			case in <- pm:
				return
			case pe := <-s.prod.Errors():
				onErr(pe)
			}
		}
	}
	for _, m := range w.out {
		hs := make([]sarama.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			hs[i] = sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])}
		}
		send(&sarama.ProducerMessage{Topic: m.Topic, Partition: s.p, Key: sarama.StringEncoder(m.Key), Value: sarama.ByteEncoder(m.Value), Headers: hs})
	}
	for _, id := range w.order {
		pm := &sarama.ProducerMessage{Topic: s.r.def.StateTopic(), Partition: s.p, Key: sarama.StringEncoder(id)}
		if st := w.states[id]; st != nil {
			pm.Value = sarama.ByteEncoder(st.Encode())
		}
		send(pm)
	}
	for _, pm := range w.dlq {
		send(pm)
	}
	if offsets != nil {
		if err := s.prod.AddOffsetsToTxnWithGroupMetadata(offsets, sarama.NewConsumerGroupMetadataFromSession(sess, s.r.cfg.Group, nil)); err != nil {
			return fail(err)
		}
	}
	if err := draining(s.prod, s.prod.CommitTxn, onErr); err != nil {
		return fail(err)
	}
	if perr != nil { // sarama fails the commit after a produce error; never trust it did not
		return fail(perr)
	}
	s.take(w)
	return nil
}

// take applies a committed transaction to the shard and counts it.
func (s *shard) take(w *work) {
	r := s.r
	for _, id := range w.order {
		prev, had := s.states[id]
		st := w.states[id]
		if had && !prev.Status.Terminal() {
			s.inFlight--
			r.inFlight.Add(-1)
		}
		if st == nil {
			delete(s.states, id)
			continue
		}
		s.states[id] = st
		if !st.Status.Terminal() {
			s.inFlight++
			r.inFlight.Add(1)
		}
		if n := st.Next(); !n.IsZero() && (s.nextDue.IsZero() || n.Before(s.nextDue)) {
			s.nextDue = n
		}
	}
	for _, st := range w.ended {
		switch st.Status {
		case Failed:
			s.log.Error("saga failed: a compensation kept failing past its policy; a human must resolve it (docs/sagas.md)",
				zap.String("saga", st.ID), zap.String("error", st.Error))
		default:
			s.log.Debug("saga ended", zap.String("saga", st.ID), zap.String("status", string(st.Status)))
		}
	}
	m := r.cfg.Metrics
	if m == nil {
		return
	}
	name := r.def.Name
	r.setInFlight()
	if w.started > 0 {
		m.Started.WithLabelValues(name).Add(float64(w.started))
	}
	for _, st := range w.ended {
		switch st.Status {
		case Completed:
			m.Completed.WithLabelValues(name).Inc()
		case Compensated:
			m.Compensated.WithLabelValues(name).Inc()
		case Failed:
			m.Failed.WithLabelValues(name).Inc()
		}
	}
	for step, ds := range w.latency {
		o := m.StepSeconds.WithLabelValues(name, step)
		for _, d := range ds {
			o.Observe(d.Seconds())
		}
	}
	for res, n := range w.triggers {
		m.Triggers.WithLabelValues(name, res).Add(float64(n))
	}
	for res, n := range w.replies {
		m.Replies.WithLabelValues(name, res).Add(float64(n))
	}
}

// draining runs end (CommitTxn or AbortTxn) while it hands the producer's
// errors to onErr, so a full error channel cannot block the flush (as in
// processor/txn.go).
func draining(prod sarama.AsyncProducer, end func() error, onErr func(*sarama.ProducerError)) error {
	done := make(chan error, 1)
	go func() { done <- end() }()
	for {
		select {
		case err := <-done:
			return err
		case pe := <-prod.Errors():
			onErr(pe)
		}
	}
}

func isFenced(err error) bool {
	return errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch)
}
