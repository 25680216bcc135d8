package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// RestoreStats describes one Restore.
type RestoreStats struct {
	Keys       int // IDs added to the index
	Rows       int // row states added to the index (version-3 records; a later state of a row replaces the earlier)
	Records    int // data records read (tombstones included, transaction markers and aborted records not)
	Batches    int // batch records read (version 4, group commit); each holds many entries
	Entries    int // event entries read: one per single-ID record, one per entry of a batch
	Tombstones int // records with a nil value: IDs forgotten
	Expired    int // records first seen before the dedup window: skipped
	Invalid    int // records with a bad key or value: skipped
	// FirstInvalid is the decode error of the first invalid record, if any.
	// Invalid records are skipped rather than fatal: a missing ledger entry
	// only weakens dedup for one ID, while refusing to start stops the
	// partition. The caller should log it.
	FirstInvalid error
	StartOffset  int64 // the log start offset read from
	EndOffset    int64 // the end taken at the start: the high-water mark, or the last stable offset under read_committed
	Duration     time.Duration
}

// KeysPerSecond is Keys plus Rows divided by Duration.
func (s RestoreStats) KeysPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Keys+s.Rows) / s.Duration.Seconds()
}

// RecordsPerSecond is Records divided by Duration.
func (s RestoreStats) RecordsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Records) / s.Duration.Seconds()
}

// TuneRestoreConfig sets the sarama options Restore reads to values that
// suit reading a ledger partition end to end. Call it on the config of the
// client passed to Restore; the values also suit the source consumer. It
// sets Consumer.Fetch.Min = 1 byte and Consumer.MaxWaitTime = 250 ms
// (Kafka fetch.min.bytes and fetch.max.wait.ms): Restore only fetches
// below the end offset, where data is there at once, and a shorter wait
// bounds how long a cancelled Restore can take.
//
// Restore asks for at least RestoreFetchSize (4 MiB) per fetch, or
// Consumer.Fetch.Default if larger, within Consumer.Fetch.Max and
// Consumer.Fetch.MaxBytes, and doubles it when a record batch does not
// fit. It no longer raises Consumer.Fetch.Default itself: the source
// consumer shares the config, and 4 MiB per partition held about 100 MB of
// fetch responses in a worker on 8 partitions (docs/bench-findings.md).
// On the in-process broker the fetch size makes no measurable difference
// to restore (about 4.5M keys/s with 1 MiB and with 8 MiB fetches, see
// BenchmarkRestore500k); over a real network, larger fetches save round
// trips.
func TuneRestoreConfig(cfg *sarama.Config) {
	cfg.Consumer.Fetch.Min = 1
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
}

// restoreAttempts bounds consecutive failed requests (leader moves, network
// errors, fetches that make no progress) before Restore gives up.
const (
	restoreAttempts = 10
	restoreBackoff  = 100 * time.Millisecond
)

// Restore reads ledger partition `partition` of topic from its log start
// offset to its end and folds every entry into idx, which should be new and
// must have no open mark. The end is taken once, at the start: the
// high-water mark, or under readCommitted the last stable offset (records of
// transactions still open then are not waited for; a worker under
// exactly-once initialises its transactional producer first, which aborts
// its predecessor's open transaction). Records written after the start are
// not read.
//
// Entries first seen longer ago than idx's window are skipped, a tombstone
// (nil value) deletes its ID, and records that do not decode are skipped and
// counted in RestoreStats.Invalid. With readCommitted, records of aborted
// transactions are not loaded.
//
// Restore fetches with its own requests on client's connection to the
// partition leader rather than through a sarama.Consumer: it needs the
// exact next fetch position, which moves past transaction markers that are
// never delivered, to know when it has reached the end. An empty partition
// returns at once. It reads fetch sizes from client.Config() (see
// TuneRestoreConfig), and isolation from readCommitted, not from
// Config.Consumer.IsolationLevel. Cancelling ctx stops it within one fetch
// (at most Config.Consumer.MaxWaitTime plus the network timeout) and
// returns ctx's error with the stats so far.
func Restore(ctx context.Context, client sarama.Client, topic string, partition int32, idx *Index, readCommitted bool) (RestoreStats, error) {
	began := time.Now()
	r := restorer{
		client:    client,
		cfg:       client.Config(),
		topic:     topic,
		partition: partition,
		idx:       idx,
		began:     began,
	}
	if readCommitted {
		r.isolation = sarama.ReadCommitted
	}
	err := r.run(ctx)
	r.stats.Duration = time.Since(began)
	if err != nil {
		return r.stats, fmt.Errorf("ledger: restore %s/%d: %w", topic, partition, err)
	}
	return r.stats, nil
}

type restorer struct {
	client    sarama.Client
	cfg       *sarama.Config
	topic     string
	partition int32
	idx       *Index
	isolation sarama.IsolationLevel
	began     time.Time
	cutoff    uint32
	stats     RestoreStats

	next, end int64
	fetchSize int32
	aborted   map[int64]struct{} // producer IDs inside an aborted transaction
	pending   []*sarama.AbortedTransaction
	entries   []BatchEntry // a batch's entries, reused
}

func (r *restorer) run(ctx context.Context) error {
	switch {
	case r.topic == "":
		return fmt.Errorf("%w: empty ledger topic name", ErrInvalidArgument)
	case r.idx == nil:
		return fmt.Errorf("%w: nil index", ErrInvalidArgument)
	case r.idx.Marked():
		return fmt.Errorf("%w: the index has an open mark", ErrInvalidArgument)
	case r.isolation == sarama.ReadCommitted && !r.cfg.Version.IsAtLeast(sarama.V0_11_0_0):
		return fmt.Errorf("%w: read_committed needs Config.Version 0.11 or newer, have %s", ErrInvalidArgument, r.cfg.Version)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.cutoff = r.idx.cutoff(r.began)
	var err error
	if r.next, err = r.offset(ctx, sarama.OffsetOldest); err != nil {
		return fmt.Errorf("log start offset: %w", err)
	}
	if r.end, err = r.offset(ctx, sarama.OffsetNewest); err != nil {
		return fmt.Errorf("end offset: %w", err)
	}
	r.stats.StartOffset, r.stats.EndOffset = r.next, r.end
	r.fetchSize = r.initialFetchSize()
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
		r.fetchSize = r.initialFetchSize()
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
		r.fold(rec.Key, rec.Value)
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
			r.fold(mb.Msg.Key, mb.Msg.Value)
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

func (r *restorer) fold(key, value []byte) {
	r.stats.Records++
	if IsBatchKey(key) {
		r.foldBatch(key, value)
		return
	}
	id, err := DecodeKey(key)
	if err != nil {
		r.invalid(err)
		return
	}
	if len(value) == 0 {
		r.stats.Tombstones++
		r.idx.Delete(id)
		return
	}
	e, err := DecodeValue(value)
	if err != nil {
		r.invalid(fmt.Errorf("key %s: %w", id, err))
		return
	}
	r.apply(id, &e)
}

// foldBatch folds a batch record's entries in their order, as if each had
// been a single-ID record at the batch's place in the log. A batch that
// does not decode is skipped whole and counted once in Invalid.
func (r *restorer) foldBatch(key, value []byte) {
	var err error
	r.entries, err = DecodeBatch(r.entries[:0], value)
	if err != nil {
		r.invalid(fmt.Errorf("batch key %x: %w", key, err))
		return
	}
	r.stats.Batches++
	for i := range r.entries {
		r.apply(r.entries[i].ID, &r.entries[i].Entry)
	}
}

// apply folds the entry of one event.
func (r *restorer) apply(id cdc.ID, e *Entry) {
	r.stats.Entries++
	seen := toSeconds(e.FirstSeen)
	if r.idx.expired(seen, r.cutoff) {
		r.stats.Expired++
		return
	}
	if !e.RowOnly && r.idx.Add(id, e.FirstSeen) {
		r.stats.Keys++
	}
	if !e.Content.IsZero() && r.idx.Add(e.Content, e.FirstSeen) {
		r.stats.Keys++
	}
	if e.State != RowNone {
		// Records are folded in log order, so the last one of a row wins:
		// its latest applied state.
		n := r.idx.Rows()
		r.idx.SetRow(e.Row, e.State, e.RowContent, e.SourceOffset, e.FirstSeen)
		r.stats.Rows += r.idx.Rows() - n
	}
}

func (r *restorer) invalid(err error) {
	r.stats.Invalid++
	if r.stats.FirstInvalid == nil {
		r.stats.FirstInvalid = err
	}
}

// RestoreFetchSize is the least number of bytes Restore asks for per
// fetch (Kafka max.partition.fetch.bytes), about 60k version-3 entries in
// single-ID records: more than the source consumer's
// Consumer.Fetch.Default, which stays small to bound the worker's memory.
const RestoreFetchSize = 4 << 20

// initialFetchSize is Consumer.Fetch.Default, at least RestoreFetchSize,
// within Consumer.Fetch.Max (0: no limit) and Consumer.Fetch.MaxBytes.
func (r *restorer) initialFetchSize() int32 {
	n := max(r.cfg.Consumer.Fetch.Default, RestoreFetchSize)
	if m := r.cfg.Consumer.Fetch.Max; m > 0 && m < n {
		n = m
	}
	if m := r.cfg.Consumer.Fetch.MaxBytes; m > 0 && m < n {
		n = m
	}
	return n
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
