package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/api"
)

// The control topic (control_topic, default cdcsync.control) carries the
// REST API's actions to every worker, as Kafka Connect's config topic
// carries its connectors' target states. It has one partition and
// cleanup.policy=compact; cdcsync creates it at start when it is missing.
// Two kinds of records share it:
//
//   - key "<topology>": the desired state, api.Desired as JSON
//     ({"state":"paused"|"running","restart":N,"at":...,"by":...}). Every
//     worker reads these from the beginning before it starts its
//     pipelines, so a worker started during a pause comes up paused, then
//     follows the topic and applies each change: pause, resume, and a
//     restart when the restart count grows.
//   - key "status/<topology>/<worker id>": that worker's report, api.Worker
//     as JSON, written every reportEvery. GET status merges the other
//     workers' last reports with the answering worker's live figures; a
//     report older than staleAfter is shown as stale, one older than
//     expireAfter is left out, and a worker that shuts down cleanly
//     writes a tombstone for its reports.
const (
	reportEvery = 2 * time.Second
	staleAfter  = 3 * reportEvery
	expireAfter = 10 * time.Minute
	statusKey   = "status/"
)

// controller reads and writes the control topic for one worker. Run
// opens it (open: connect, create the topic, replay it) before the
// pipelines start, then runs follow and report in goroutines it waits
// for, and closes it last.
type controller struct {
	w     *Worker
	topic string
	log   *zap.Logger

	client   sarama.Client
	consumer sarama.Consumer
	pc       sarama.PartitionConsumer
	prod     sarama.SyncProducer

	mu      sync.Mutex
	desired map[string]api.Desired
	reports map[string]map[string]api.Worker // topology -> worker id -> its last report
	next    int64                            // the offset after the last record applied
	moved   chan struct{}                    // closed and replaced when next moves
	sent    map[string]bool                  // status keys this worker wrote, for the tombstones
}

// openControl connects to the brokers, creates the control topic when it
// is missing, and applies every desired state it holds. It returns nil,
// nil when ctx ends first.
func (w *Worker) openControl(ctx context.Context) (*controller, error) {
	sc, err := w.cfg.saramaConfig("control")
	if err != nil {
		return nil, err
	}
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	// Control records are small and a failed write is reported (503 to
	// the API, a warning for a report): a few quick retries, so a broker
	// that is down does not hold the shutdown's tombstones for long.
	sc.Producer.Retry.Max = 3
	sc.Producer.Retry.BackoffFunc = nil
	sc.Producer.Retry.Backoff = 250 * time.Millisecond
	c := &controller{w: w, topic: w.cfg.ControlTopic, log: w.log.With(zap.String("control_topic", w.cfg.ControlTopic)),
		desired: map[string]api.Desired{}, reports: map[string]map[string]api.Worker{}, moved: make(chan struct{}),
		sent: map[string]bool{}}
	c.client, err = connect(ctx, w.cfg.Brokers, sc, w.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		err = c.ensureTopic()
		if err == nil {
			break
		}
		if IsAccessFailure(err) || classify(err) == Fatal {
			c.client.Close()
			return nil, c.refused("preparing", err)
		}
		d := backoff(attempt, 200*time.Millisecond, 10*time.Second)
		c.log.Warn("preparing the control topic failed, retrying", zap.Error(err), zap.Duration("backoff", d))
		if !sleep(ctx, d) {
			c.client.Close()
			return nil, nil
		}
	}
	if err := c.replay(ctx); err != nil {
		c.close()
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, c.refused("reading", err)
	}
	if c.prod, err = sarama.NewSyncProducerFromClient(c.client); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// refused is the error that stops the worker at start when the control
// topic cannot be used: an *AccessError (exit 2) for a refusal.
func (c *controller) refused(doing string, err error) error {
	what := fmt.Sprintf("%s the control topic %s (it needs Read, Write and Create on it, see docs/operations.md; "+
		"or set control_topic: \"\" to run without it)", doing, c.topic)
	if IsAccessFailure(err) {
		return &AccessError{What: what, Err: err}
	}
	return fatal(fmt.Errorf("%s: %w", what, err))
}

// ensureTopic creates the control topic when it is missing: one
// partition, compacted. DescribeTopics never auto-creates it.
func (c *controller) ensureTopic() error {
	admin, err := sarama.NewClusterAdminFromClient(c.client)
	if err != nil {
		return err
	}
	// admin is not closed: closing it would close the shared client.
	md, err := admin.DescribeTopics([]string{c.topic})
	if err != nil {
		return err
	}
	exists := false
	for _, t := range md {
		if t.Name == c.topic && errors.Is(t.Err, sarama.ErrNoError) && len(t.Partitions) > 0 {
			exists = true
			if len(t.Partitions) > 1 {
				c.log.Warn("the control topic has more than one partition; cdcsync uses partition 0 only", zap.Int("partitions", len(t.Partitions)))
			}
		} else if t.Name == c.topic && !errors.Is(t.Err, sarama.ErrNoError) && !errors.Is(t.Err, sarama.ErrUnknownTopicOrPartition) {
			return t.Err
		}
	}
	if !exists {
		compact := "compact"
		err := admin.CreateTopic(c.topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: c.w.cfg.ReplicationFactor,
			ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false)
		switch {
		case err == nil:
			c.log.Info("created the control topic", zap.Int16("replication_factor", c.w.cfg.ReplicationFactor))
		case errors.Is(err, sarama.ErrTopicAlreadyExists):
		default:
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		err := c.client.RefreshMetadata(c.topic)
		if err == nil {
			if parts, err := c.client.Partitions(c.topic); err == nil && len(parts) > 0 {
				return nil
			}
		}
		if attempt == 50 {
			return fmt.Errorf("the control topic %s is still missing from the metadata: %v", c.topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replay reads the control topic from its beginning up to its end at
// start and applies what it holds; the partition consumer then stays
// open for follow.
func (c *controller) replay(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := c.replayOnce(ctx)
		if err == nil || ctx.Err() != nil || IsAccessFailure(err) {
			return err
		}
		// A broker that does not answer, or a log start that moved
		// while it was read: retried, never a reason to stop the worker.
		d := backoff(attempt, 200*time.Millisecond, 10*time.Second)
		c.log.Warn("reading the control topic failed, retrying", zap.Error(err), zap.Duration("backoff", d))
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

func (c *controller) replayOnce(ctx context.Context) error {
	hwm, err := c.client.GetOffset(c.topic, 0, sarama.OffsetNewest)
	if err != nil {
		return err
	}
	if err := c.openPartition(); err != nil {
		return err
	}
	idle := time.NewTimer(10 * time.Second)
	defer idle.Stop()
	for c.position() < hwm {
		select {
		case m, ok := <-c.pc.Messages():
			if !ok {
				return fmt.Errorf("reading the control topic %s: the partition consumer closed", c.topic)
			}
			c.handle(m, true)
			idle.Reset(10 * time.Second)
		case err, ok := <-c.pc.Errors():
			if ok {
				return fmt.Errorf("reading the control topic %s: %w", c.topic, err)
			}
		case <-idle.C:
			// Offsets up to the end that are never delivered
			// (compacted away or transaction markers).
			c.log.Warn("the control topic's end was not reached within 10s; going on with what was read",
				zap.Int64("next", c.position()), zap.Int64("end", hwm))
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.log.Info("control topic read", zap.Int64("records", hwm))
	return nil
}

// openPartition (re)opens the partition consumer at the next offset not
// read yet, or at the oldest one when that offset is gone (compaction or
// retention moved the log start). Re-reading a record is harmless: the
// desired states and restart counters it holds are applied idempotently.
func (c *controller) openPartition() error {
	if c.pc != nil {
		_ = c.pc.Close()
		c.pc = nil
	}
	if c.consumer == nil {
		var err error
		if c.consumer, err = sarama.NewConsumerFromClient(c.client); err != nil {
			return err
		}
	}
	from := c.position()
	if from <= 0 {
		from = sarama.OffsetOldest
	}
	pc, err := c.consumer.ConsumePartition(c.topic, 0, from)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		pc, err = c.consumer.ConsumePartition(c.topic, 0, sarama.OffsetOldest)
	}
	if err != nil {
		return err
	}
	c.pc = pc
	return nil
}

func (c *controller) position() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// follow applies the control topic's records until ctx is done.
func (c *controller) follow(ctx context.Context) {
	for c.pc != nil {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-c.pc.Messages():
			if !ok {
				// The partition consumer stopped (an offset that
				// went out of range, say): reopen it, or this worker
				// would silently stop following pause and resume.
				c.reopen(ctx)
				continue
			}
			c.handle(m, false)
		case err, ok := <-c.pc.Errors():
			if ok {
				c.log.Warn("reading the control topic", zap.Error(err))
				if errors.Is(err, sarama.ErrOffsetOutOfRange) {
					c.reopen(ctx)
				}
			}
		}
	}
}

// reopen reopens the partition consumer for follow, retrying until it
// works or ctx ends.
func (c *controller) reopen(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := c.openPartition()
		if err == nil {
			c.log.Info("following the control topic again", zap.Int64("from", c.position()))
			return
		}
		d := backoff(attempt, 200*time.Millisecond, 10*time.Second)
		c.log.Warn("reopening the control topic failed, retrying", zap.Error(err), zap.Duration("backoff", d))
		if !sleep(ctx, d) {
			return
		}
	}
}

// handle applies one control record. initial is true during replay: the
// pipelines are not running yet, so a restart count is only noted.
func (c *controller) handle(m *sarama.ConsumerMessage, initial bool) {
	key := string(m.Key)
	if rest, ok := strings.CutPrefix(key, statusKey); ok {
		name, id, ok := strings.Cut(rest, "/")
		c.mu.Lock()
		switch {
		case !ok || id == c.w.id:
			// Malformed, or this worker's own (its live figures win).
		case m.Value == nil:
			delete(c.reports[name], id)
		default:
			var r api.Worker
			if err := json.Unmarshal(m.Value, &r); err != nil {
				c.log.Warn("control record that does not decode skipped", zap.String("key", key), zap.Int64("offset", m.Offset), zap.Error(err))
				break
			}
			if c.reports[name] == nil {
				c.reports[name] = map[string]api.Worker{}
			}
			c.reports[name][id] = r
		}
		c.advance(m.Offset)
		c.mu.Unlock()
		return
	}
	d := api.Desired{State: api.StateRunning}
	if m.Value != nil {
		if err := json.Unmarshal(m.Value, &d); err != nil || (d.State != api.StateRunning && d.State != api.StatePaused) {
			c.log.Warn("control record that does not decode skipped", zap.String("key", key), zap.Int64("offset", m.Offset), zap.Error(err))
			c.mu.Lock()
			c.advance(m.Offset)
			c.mu.Unlock()
			return
		}
	}
	c.mu.Lock()
	if m.Value == nil {
		d.Restart = c.desired[key].Restart
		delete(c.desired, key)
	} else {
		c.desired[key] = d
	}
	c.mu.Unlock()
	// Applied before next moves, so an Act that waits for its record
	// answers after this worker applied it.
	c.w.apply(key, d, initial)
	c.mu.Lock()
	c.advance(m.Offset)
	c.mu.Unlock()
}

// advance moves next past offset; c.mu is held.
func (c *controller) advance(offset int64) {
	if offset+1 > c.next {
		c.next = offset + 1
		close(c.moved)
		c.moved = make(chan struct{})
	}
}

// desiredOf is the desired state of a topology as last read.
func (c *controller) desiredOf(name string) api.Desired {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.desired[name]; ok {
		return d
	}
	return api.Desired{State: api.StateRunning}
}

// othersOf returns the other workers' reports of a topology that are not
// expired.
func (c *controller) othersOf(name string, now time.Time) []api.Worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []api.Worker
	for _, r := range c.reports[name] {
		age := now.Sub(r.ReportedAt)
		if age > expireAfter {
			continue
		}
		r.Stale = age > staleAfter
		r.Self = false
		out = append(out, r)
	}
	return out
}

// publish writes a record to the control topic and returns its offset.
func (c *controller) publish(key string, value []byte) (int64, error) {
	_, off, err := c.prod.SendMessage(&sarama.ProducerMessage{Topic: c.topic, Partition: 0,
		Key: sarama.StringEncoder(key), Value: byteEncoder(value)})
	return off, err
}

// byteEncoder is a value that may be nil (a tombstone).
func byteEncoder(b []byte) sarama.Encoder {
	if b == nil {
		return nil
	}
	return sarama.ByteEncoder(b)
}

// waitApplied waits until the record at offset has been applied.
func (c *controller) waitApplied(ctx context.Context, offset int64) error {
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	for {
		c.mu.Lock()
		next, moved := c.next, c.moved
		c.mu.Unlock()
		if next > offset {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("%w: the control record at offset %d was written but not read back within 15s", api.ErrUnavailable, offset)
		}
	}
}

// report writes this worker's status of every topology every reportEvery
// until ctx is done.
func (c *controller) report(ctx context.Context) {
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	for {
		for _, p := range c.w.pipelines {
			r := p.localStatus(ctx, c.w.id, true)
			b, err := json.Marshal(r)
			if err != nil {
				continue
			}
			key := statusKey + p.plan.Name() + "/" + c.w.id
			if _, err := c.publish(key, b); err != nil {
				c.log.Warn("writing the status report", zap.Error(err))
				continue
			}
			c.mu.Lock()
			c.sent[key] = true
			c.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// close writes the tombstones of this worker's reports (a clean
// shutdown: the worker is gone, not stale) and closes the clients.
func (c *controller) close() {
	if c.prod != nil {
		c.mu.Lock()
		keys := make([]string, 0, len(c.sent))
		for k := range c.sent {
			keys = append(keys, k)
		}
		c.mu.Unlock()
		for _, k := range keys {
			if _, err := c.publish(k, nil); err != nil {
				c.log.Warn("writing the tombstone of a status report", zap.String("key", k), zap.Error(err))
			}
		}
		_ = c.prod.Close()
	}
	if c.pc != nil {
		_ = c.pc.Close()
	}
	if c.consumer != nil {
		_ = c.consumer.Close()
	}
	_ = c.client.Close()
}
