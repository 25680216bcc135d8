package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/dlq"
)

const dlqUsage = `usage:
  cdcsync dlq inspect --brokers HOST:PORT TOPIC                 summary: counts by topology, stage, class; first/last seen
  cdcsync dlq inspect --brokers HOST:PORT --list TOPIC          one line per record (filters apply)
  cdcsync dlq inspect --brokers HOST:PORT --show P/O TOPIC      one record with every header and a readable value
  cdcsync dlq replay  --brokers HOST:PORT TOPIC                 produce the originals back to their source partitions
filters: --reason TEXT  --key KEY  --since TIME  --until TIME  (TIME: RFC 3339 or a duration ago, e.g. 1h)`

func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "inspect" && args[0] != "replay") {
		return &exitError{code: 2, err: errors.New(dlqUsage)}
	}
	sub := args[0]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "bootstrap brokers, HOST:PORT[,..] (env CDCSYNC_BROKERS)")
	list := fs.Bool("list", false, "list records instead of the summary")
	show := fs.String("show", "", "show one record, PARTITION/OFFSET")
	reason := fs.String("reason", "", "only records whose stage, class or message contains TEXT")
	key := fs.String("key", "", "only records with this original key")
	since := fs.String("since", "", "only records at or after TIME")
	until := fs.String("until", "", "only records before TIME")
	limit := fs.Int("limit", 0, "stop after this many matching records (0: all)")
	version := fs.String("kafka-version", "2.8.0", "Kafka protocol version")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: errors.New(dlqUsage)}
	}
	topic := fs.Arg(0)
	bs := splitList(*brokers)
	if len(bs) == 0 {
		bs = splitList(envOr("CDCSYNC_BROKERS", ""))
	}
	if len(bs) == 0 {
		return &exitError{code: 2, err: errors.New("--brokers is required")}
	}
	f := dlq.Filter{Reason: *reason, Key: *key}
	var err error
	if f.Since, err = parseTime(*since); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--since: %w", err)}
	}
	if f.Until, err = parseTime(*until); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--until: %w", err)}
	}
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	if cfg.Version, err = sarama.ParseKafkaVersion(*version); err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg.ClientID = "cdcsync-dlq"
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond // a partition's end is found by waiting out a fetch
	if sub == "replay" {
		dlq.ConfigureReplayProducer(cfg)
	}
	client, err := sarama.NewClient(bs, cfg)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("connecting to %v: %w", bs, err)}
	}
	defer client.Close()

	if *show != "" {
		p, o, ok := strings.Cut(*show, "/")
		part, err1 := strconv.ParseInt(p, 10, 32)
		off, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return &exitError{code: 2, err: fmt.Errorf("--show %q: want PARTITION/OFFSET, e.g. 3/17", *show)}
		}
		entries, err := dlq.Read(ctx, client, topic, f, 0)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		for _, e := range entries {
			if e.DLQPartition == int32(part) && e.DLQOffset == off {
				return dlq.WriteShow(stdout, e)
			}
		}
		return &exitError{code: 1, err: fmt.Errorf("no DLQ record at %s partition %d offset %d matching the filters", topic, part, off)}
	}
	entries, err := dlq.Read(ctx, client, topic, f, *limit)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	switch {
	case sub == "replay":
		prod, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		defer prod.Close()
		for _, e := range entries {
			if err := dlq.Replay(ctx, prod, e); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("replaying %d/%d: %w", e.DLQPartition, e.DLQOffset, err)}
			}
		}
		fmt.Fprintf(stdout, "replayed %d record(s) to their source partitions; the dedup ledger drops any already applied\n", len(entries))
		return nil
	case *list:
		return dlq.WriteList(stdout, entries)
	}
	return dlq.WriteSummary(stdout, dlq.Summarize(entries))
}

// parseTime reads RFC 3339 or a duration meaning "that long ago".
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}
