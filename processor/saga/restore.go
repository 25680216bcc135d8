package saga

// This file is a copy of processor/ledger/restore.go's fetch loop, with the
// ledger index replaced by a fold callback: the saga state topic needs the
// same exact end detection under read_committed (the next fetch position
// moves past transaction markers that are never delivered). It is copied
// rather than shared so that the ledger package, which another change
// reworks for throughput, stays untouched.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

var errRestoreArgument = errors.New("saga: invalid restore argument")

// restorePartition reads partition `partition` of topic from its log
// start to the end taken at the start (the last stable offset: the caller
// initialised its transactional producer first, which completed or aborted
// its predecessor's open transaction), read_committed, and passes every
// record's key and value to fold in log order. It returns the records read.
func restorePartition(ctx context.Context, client sarama.Client, topic string, partition int32, fold func(key, value []byte)) (int, error) {
	r := restorer{client: client, cfg: client.Config(), topic: topic, partition: partition, fold: fold, isolation: sarama.ReadCommitted}
	if err := r.run(ctx); err != nil {
		return r.records, fmt.Errorf("saga: restore %s/%d: %w", topic, partition, err)
	}
	return r.records, nil
}

// restoreAttempts bounds consecutive failed requests (leader moves, network
// errors, fetches that make no progress) before Restore gives up.
const (
	restoreAttempts = 10
	restoreBackoff  = 100 * time.Millisecond
)

type restorer struct {
	client    sarama.Client
	cfg       *sarama.Config
	topic     string
	partition int32
	fold      func(key, value []byte)
	isolation sarama.IsolationLevel
	records   int

	next, end int64
	fetchSize int32
	aborted   map[int64]struct{} // producer IDs inside an aborted transaction
	pending   []*sarama.AbortedTransaction
}

func (r *restorer) run(ctx context.Context) error {
	switch {
	case r.topic == "":
		return fmt.Errorf("%w: empty ledger topic name", errRestoreArgument)
	case r.isolation == sarama.ReadCommitted && !r.cfg.Version.IsAtLeast(sarama.V0_11_0_0):
		return fmt.Errorf("%w: read_committed needs Config.Version 0.11 or newer, have %s", errRestoreArgument, r.cfg.Version)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if r.next, err = r.offset(ctx, sarama.OffsetOldest); err != nil {
		return fmt.Errorf("log start offset: %w", err)
	}
	if r.end, err = r.offset(ctx, sarama.OffsetNewest); err != nil {
		return fmt.Errorf("end offset: %w", err)
	}
	r.fetchSize = r.cfg.Consumer.Fetch.Default
	r.aborted = make(map[int64]struct{})

	failures := 0
	for r.next < r.end {
		if err := ctx.Err(); err != nil {
			return err
		}
		progressed, err := r.fetch(ctx)
		if err != nil && !retriable(err) {
			return err
		}
		if err == nil && progressed {
			failures = 0
			continue
		}
		if err == nil && r.next >= r.end {
			break // the partition was truncated below the end we took
		}
		failures++
		if failures >= restoreAttempts {
			if err == nil {
				err = fmt.Errorf("no progress at offset %d (end %d) after %d fetches", r.next, r.end, failures)
			}
			return err
		}
		if err != nil {
			_ = r.client.RefreshMetadata(r.topic)
			if err := sleep(ctx, restoreBackoff); err != nil {
				return err
			}
		}
	}
	return nil
}

// offset asks the partition leader for the oldest offset, or for the newest
// under r.isolation (the last stable offset under read_committed).
func (r *restorer) offset(ctx context.Context, which int64) (int64, error) {
	var last error
	for attempt := 0; attempt < restoreAttempts; attempt++ {
		if attempt > 0 {
			_ = r.client.RefreshMetadata(r.topic)
			if err := sleep(ctx, restoreBackoff); err != nil {
				return 0, err
			}
		}
		b, err := r.client.Leader(r.topic, r.partition)
		if err != nil {
			last = err
			continue
		}
		req := sarama.NewOffsetRequest(r.cfg.Version)
		if req.Version >= 2 {
			req.IsolationLevel = r.isolation
		}
		req.AddBlock(r.topic, r.partition, which, 1)
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			last = err
			continue
		}
		block := resp.GetBlock(r.topic, r.partition)
		switch {
		case block == nil:
			last = sarama.ErrIncompleteResponse
		case !errors.Is(block.Err, sarama.ErrNoError):
			last = block.Err
			if !retriable(block.Err) {
				return 0, block.Err
			}
		case len(block.Offsets) != 1:
			last = sarama.ErrIncompleteResponse
		default:
			return block.Offsets[0], nil
		}
	}
	return 0, last
}

// fetch sends one fetch request at r.next and folds what comes back. It
// reports whether r.next moved.
func (r *restorer) fetch(ctx context.Context) (bool, error) {
	b, err := r.client.Leader(r.topic, r.partition)
	if err != nil {
		return false, err
	}
	req := r.newFetchRequest()
	req.AddBlock(r.topic, r.partition, r.next, r.fetchSize, -1)
	resp, err := b.Fetch(req)
	if err != nil {
		return false, err
	}
	block := resp.GetBlock(r.topic, r.partition)
	if block == nil {
		return false, sarama.ErrIncompleteResponse
	}
	switch {
	case errors.Is(block.Err, sarama.ErrNoError):
	case errors.Is(block.Err, sarama.ErrOffsetOutOfRange):
		// Retention deleted the head of the log while we read it: carry on
		// from the new log start.
		start, err := r.offset(ctx, sarama.OffsetOldest)
		if err != nil {
			return false, err
		}
		if start > r.next {
			r.next = start
			return true, nil
		}
		return false, block.Err
	default:
		return false, block.Err
	}

	before := r.next
	partial := block.Partial
	r.pending = r.pending[:0]
	if r.isolation == sarama.ReadCommitted {
		r.pending = append(r.pending, block.AbortedTransactions...)
		slices.SortFunc(r.pending, func(a, b *sarama.AbortedTransaction) int {
			return cmp.Compare(a.FirstOffset, b.FirstOffset)
		})
	}
	for _, rs := range block.RecordsSet {
		switch {
		case rs.RecordBatch != nil:
			if !r.batch(rs.RecordBatch) {
				partial = true
			}
		case rs.MsgSet != nil:
			r.messageSet(rs.MsgSet)
		}
	}
	if r.next > before {
		r.fetchSize = r.cfg.Consumer.Fetch.Default
		return true, nil
	}
	if partial {
		r.growFetchSize()
		return false, nil
	}
	// Nothing at all below the end we took: the log was truncated (unclean
	// leader election) or, under read_committed, the last stable offset
	// moved back. Stop rather than wait for data that will not come.
	avail := block.HighWaterMarkOffset
	if r.isolation == sarama.ReadCommitted && block.LastStableOffset >= 0 {
		avail = block.LastStableOffset
	}
	if avail <= r.next {
		r.end = r.next
	}
	return false, nil
}

// batch folds one record batch. It returns false if the batch was cut short
// by the fetch size.
func (r *restorer) batch(rb *sarama.RecordBatch) bool {
	last := rb.LastOffset()
	// An aborted transaction starts counting at its first offset and ends
	// at its abort marker; each one is taken from the list once, so a later
	// transaction of the same producer is not mistaken for it.
	for len(r.pending) > 0 && r.pending[0].FirstOffset <= last {
		r.aborted[r.pending[0].ProducerID] = struct{}{}
		r.pending = r.pending[1:]
	}
	if rb.Control {
		// A commit or abort marker: never delivered, but it takes an offset.
		// The control record's key is version int16, type int16 (0 = abort).
		if len(rb.Records) > 0 {
			if k := rb.Records[0].Key; len(k) >= 4 && k[2] == 0 && k[3] == 0 {
				delete(r.aborted, rb.ProducerID)
			}
		}
		if !rb.PartialTrailingRecord {
			r.advance(last + 1)
		}
		return !rb.PartialTrailingRecord
	}
	if r.isolation == sarama.ReadCommitted && rb.IsTransactional {
		if _, ok := r.aborted[rb.ProducerID]; ok {
			if !rb.PartialTrailingRecord {
				r.advance(last + 1)
			}
			return !rb.PartialTrailingRecord
		}
	}
	for _, rec := range rb.Records {
		off := rb.FirstOffset + rec.OffsetDelta
		if off < r.next {
			continue // the batch started before the offset we asked for
		}
		if off >= r.end {
			r.next = r.end
			return true
		}
		r.foldRecord(rec.Key, rec.Value)
		r.next = off + 1
	}
	if rb.PartialTrailingRecord {
		return false
	}
	r.advance(last + 1)
	return true
}

// messageSet folds records in the pre-0.11 format, which a broker returns
// only for a log written by very old producers. They carry no
// transactions.
func (r *restorer) messageSet(ms *sarama.MessageSet) {
	for _, outer := range ms.Messages {
		if outer == nil || outer.Msg == nil {
			continue
		}
		for _, mb := range outer.Messages() {
			if mb == nil || mb.Msg == nil || mb.Offset < r.next {
				continue
			}
			if mb.Offset >= r.end {
				r.next = r.end
				return
			}
			r.foldRecord(mb.Msg.Key, mb.Msg.Value)
			r.next = mb.Offset + 1
		}
	}
}

func (r *restorer) advance(next int64) {
	if next > r.end {
		next = r.end
	}
	if next > r.next {
		r.next = next
	}
}

func (r *restorer) foldRecord(key, value []byte) {
	r.records++
	r.fold(key, value)
}

func (r *restorer) growFetchSize() {
	limit := r.cfg.Consumer.Fetch.MaxBytes
	if m := r.cfg.Consumer.Fetch.Max; m > 0 && m < limit {
		limit = m
	}
	if r.fetchSize >= limit {
		return
	}
	r.fetchSize *= 2
	if r.fetchSize <= 0 || r.fetchSize > limit {
		r.fetchSize = limit
	}
}

// newFetchRequest picks the fetch version the way sarama's consumer does for
// the configured Kafka version (read_committed needs v4, Kafka 0.11).
func (r *restorer) newFetchRequest() *sarama.FetchRequest {
	req := &sarama.FetchRequest{
		MinBytes:    r.cfg.Consumer.Fetch.Min,
		MaxWaitTime: int32(r.cfg.Consumer.MaxWaitTime / time.Millisecond),
	}
	v := r.cfg.Version
	switch {
	case v.IsAtLeast(sarama.V2_7_0_0):
		req.Version = 12
	case v.IsAtLeast(sarama.V2_3_0_0):
		req.Version = 11
	case v.IsAtLeast(sarama.V2_1_0_0):
		req.Version = 10
	case v.IsAtLeast(sarama.V2_0_0_0):
		req.Version = 8
	case v.IsAtLeast(sarama.V1_1_0_0):
		req.Version = 7
	case v.IsAtLeast(sarama.V1_0_0_0):
		req.Version = 6
	case v.IsAtLeast(sarama.V0_11_0_0):
		req.Version = 5
	case v.IsAtLeast(sarama.V0_10_1_0):
		req.Version = 3
	case v.IsAtLeast(sarama.V0_10_0_0):
		req.Version = 2
	case v.IsAtLeast(sarama.V0_9_0_0):
		req.Version = 1
	}
	if req.Version >= 3 {
		req.MaxBytes = r.cfg.Consumer.Fetch.MaxBytes
	}
	if req.Version >= 4 {
		req.Isolation = r.isolation
	}
	if req.Version >= 7 {
		// No fetch session (KIP-227): a full fetch every time.
		req.SessionID = 0
		req.SessionEpoch = -1
	}
	return req
}

// retriable reports whether a partition-level error means "the leader moved
// or is not known yet; refresh metadata and try again".
func retriable(err error) bool {
	var kerr sarama.KError
	if !errors.As(err, &kerr) {
		return true // network or client errors
	}
	switch kerr {
	case sarama.ErrNotLeaderForPartition, sarama.ErrLeaderNotAvailable,
		sarama.ErrUnknownTopicOrPartition, sarama.ErrReplicaNotAvailable,
		sarama.ErrRequestTimedOut, sarama.ErrNetworkException,
		sarama.ErrFencedLeaderEpoch, sarama.ErrUnknownLeaderEpoch,
		sarama.ErrOffsetNotAvailable, sarama.ErrKafkaStorageError,
		sarama.ErrNotEnoughReplicas:
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
