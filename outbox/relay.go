package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// RelayConfig configures a polling relay.
type RelayConfig struct {
	// Table is the outbox table (default "outbox").
	Table string
	// Topic is the topic template of the published records; {aggregatetype}
	// is replaced by the row's aggregate type (default
	// "outbox.relay.{aggregatetype}"). A cdcsync topology with
	// source.format: debezium-outbox reads it (the records have the
	// EventRouter's shape) and routes them, dropping republished IDs.
	Topic string
	// Batch is the most rows claimed per transaction (default 100).
	Batch int
	// Poll is the wait after an empty claim (default 200ms).
	Poll time.Duration
	// AfterPublish, when set, runs after the broker acknowledged a batch
	// and before its rows are deleted; an error ends the round there, as
	// a crash at the worst moment would. For fault-injection tests.
	AfterPublish func() error
}

func (c *RelayConfig) defaults() error {
	if c.Table == "" {
		c.Table = "outbox"
	}
	if !tableName.MatchString(c.Table) {
		return fmt.Errorf("%w: table %q is not a plain (schema.)table name", ErrConfig, c.Table)
	}
	if c.Topic == "" {
		c.Topic = "outbox.relay.{aggregatetype}"
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Poll <= 0 {
		c.Poll = 200 * time.Millisecond
	}
	return nil
}

// Relay publishes the rows of a kept outbox table to Kafka and deletes
// them once the broker has acknowledged them.
//
// Each round is one database transaction. It first takes a
// transaction-scoped advisory lock on the table (a relay that does not get
// it skips the round: another relay is in one), then claims up to Batch
// rows, oldest first, with SELECT … FOR UPDATE SKIP LOCKED, so several
// relays run side by side as hot standbys and the rows a crashed round
// held come back first, in ("timestamp", id) order. (A lock per aggregate
// instead, taken in the claim's WHERE clause, let two relays publish one
// aggregate's events out of order in TestKfakeOutboxRelaySIGKILL; one
// round at a time is what keeps the order.) It publishes them with an idempotent producer
// (acks=all, one request in flight, so a broker retry neither duplicates
// nor reorders) and deletes them only after every record is acknowledged,
// then commits.
//
// Guarantee: at least once, in per-aggregate order. A crash (or a lost
// database connection) after the acknowledgement and before the commit
// leaves the rows in the table; the next round publishes them again with
// the same id header. A cdcsync debezium-outbox topology reading the
// relay's topic drops the second copy (its ledger is keyed by the
// outbox id), so downstream of it each event appears exactly once; a
// consumer of the relay topic itself must deduplicate by the id header.
type Relay struct {
	cfg      RelayConfig
	pool     *pgxpool.Pool
	producer sarama.SyncProducer
	log      *zap.Logger
	lock     string
	query    string
	del      string
}

// NewRelay returns a relay over an open pool and producer. The producer
// must be idempotent (see RelayProducerConfig); the relay does not close
// either.
func NewRelay(cfg RelayConfig, pool *pgxpool.Pool, producer sarama.SyncProducer, log *zap.Logger) (*Relay, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, pool: pool, producer: producer, log: log}
	r.lock = `SELECT pg_try_advisory_xact_lock(hashtextextended('cdcsync.outbox.relay/' || $1, 0))`
	r.query = `SELECT id::text, aggregatetype, aggregateid, type, payload::text, headers::text FROM ` + cfg.Table +
		` ORDER BY "timestamp", id LIMIT $1 FOR UPDATE SKIP LOCKED`
	r.del = `DELETE FROM ` + cfg.Table + ` WHERE id = ANY($1::uuid[])`
	return r, nil
}

// RelayProducerConfig is the sarama configuration the relay needs: an
// idempotent producer with acks=all and one request in flight.
func RelayProducerConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = clientID
	c.Version = sarama.V2_8_0_0
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Retry.Max = 10
	c.Net.MaxOpenRequests = 1
	c.Producer.Partitioner = sarama.NewHashPartitioner
	return c
}

// Run relays until ctx is cancelled. A failed round is rolled back and
// retried after Poll; nothing is deleted that was not acknowledged.
func (r *Relay) Run(ctx context.Context) error {
	for {
		n, err := r.Once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.log.Warn("outbox relay round failed; retrying", zap.Error(err))
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(r.cfg.Poll):
			}
		}
	}
}

// Once runs one round and returns how many rows it published and deleted.
func (r *Relay) Once(ctx context.Context) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	var mine bool
	if err := tx.QueryRow(ctx, r.lock, r.cfg.Table).Scan(&mine); err != nil {
		return 0, err
	}
	if !mine {
		return 0, tx.Commit(ctx) // another relay is in a round: wait for the next poll
	}
	rows, err := tx.Query(ctx, r.query, r.cfg.Batch)
	if err != nil {
		return 0, err
	}
	var msgs []*sarama.ProducerMessage
	var ids []string
	for rows.Next() {
		var id, aggType, aggID, typ string
		var payload, headers *string
		if err := rows.Scan(&id, &aggType, &aggID, &typ, &payload, &headers); err != nil {
			rows.Close()
			return 0, err
		}
		m := &sarama.ProducerMessage{
			Topic: strings.ReplaceAll(r.cfg.Topic, "{aggregatetype}", aggType),
			Key:   sarama.StringEncoder(aggID),
			Headers: []sarama.RecordHeader{
				{Key: []byte("id"), Value: []byte(id)},
				{Key: []byte("type"), Value: []byte(typ)},
				{Key: []byte("aggregatetype"), Value: []byte(aggType)},
			},
		}
		if payload != nil {
			m.Value = sarama.StringEncoder(*payload)
		}
		if headers != nil {
			hs, err := parseHeaders(*headers)
			if err != nil {
				r.log.Warn("outbox row with unreadable headers; published without them", zap.String("id", id), zap.Error(err))
			}
			m.Headers = append(m.Headers, hs...)
		}
		msgs = append(msgs, m)
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, tx.Commit(ctx)
	}
	if err := r.producer.SendMessages(msgs); err != nil {
		var pe sarama.ProducerErrors
		if errors.As(err, &pe) && len(pe) > 0 {
			err = fmt.Errorf("%d of %d records not acknowledged, first: %w", len(pe), len(msgs), pe[0].Err)
		}
		return 0, fmt.Errorf("outbox relay: publish: %w", err)
	}
	if r.cfg.AfterPublish != nil {
		if err := r.cfg.AfterPublish(); err != nil {
			return 0, err
		}
	}
	if _, err := tx.Exec(ctx, r.del, ids); err != nil {
		return 0, fmt.Errorf("outbox relay: delete published rows: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("outbox relay: commit: %w", err)
	}
	return len(msgs), nil
}

func parseHeaders(s string) ([]sarama.RecordHeader, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	out := make([]sarama.RecordHeader, 0, len(m))
	for k, v := range m {
		var val string
		if sv, ok := v.(string); ok {
			val = sv
		} else {
			b, _ := json.Marshal(v)
			val = string(b)
		}
		out = append(out, sarama.RecordHeader{Key: []byte(k), Value: []byte(val)})
	}
	return out, nil
}
