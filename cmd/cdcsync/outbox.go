package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/outbox"
)

// cmdOutboxRelay runs the polling outbox relay (outbox.Relay) until ctx ends.
func cmdOutboxRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("outbox relay", stdout)
	dsn := fs.String("dsn", "", "PostgreSQL connection string (prefer --dsn-env or --dsn-file: a flag shows in ps)")
	dsnEnv := fs.String("dsn-env", "", "name of the environment variable holding the connection string")
	dsnFile := fs.String("dsn-file", "", "file holding the connection string")
	brokers := fs.String("brokers", "", "Kafka bootstrap brokers, HOST:PORT[,..]")
	table := fs.String("table", "outbox", "the outbox table, optionally schema-qualified")
	topic := fs.String("topic", "outbox.relay.{aggregatetype}", "topic template of the published records")
	batch := fs.Int("batch", 100, "most rows claimed per transaction")
	poll := fs.Duration("poll", 200*time.Millisecond, "wait after an empty claim")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.parse(args); err != nil {
		return err
	}
	conn := *dsn
	set := 0
	for _, s := range []string{*dsn, *dsnEnv, *dsnFile} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return &exitError{code: 2, err: fmt.Errorf("outbox relay: give exactly one of --dsn, --dsn-env and --dsn-file")}
	}
	switch {
	case *dsnEnv != "":
		conn = os.Getenv(*dsnEnv)
		if conn == "" {
			return &exitError{code: 2, err: fmt.Errorf("--dsn-env %s: the variable is empty or unset", *dsnEnv)}
		}
	case *dsnFile != "":
		b, err := os.ReadFile(*dsnFile)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--dsn-file: %w", err)}
		}
		conn = strings.TrimSpace(string(b))
	}
	if *brokers == "" {
		return &exitError{code: 2, err: fmt.Errorf("outbox relay: --brokers is required")}
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	pool, err := pgxpool.New(ctx, conn)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--dsn: %w", err)}
	}
	defer pool.Close()
	prod, err := sarama.NewSyncProducer(splitAddrs(*brokers), outbox.RelayProducerConfig("cdcsync-outbox-relay"))
	if err != nil {
		return err
	}
	defer prod.Close()
	r, err := outbox.NewRelay(outbox.RelayConfig{Table: *table, Topic: *topic, Batch: *batch, Poll: *poll}, pool, prod, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	log.Info("outbox relay starting", zap.String("table", *table), zap.String("topic", *topic))
	return r.Run(ctx)
}
