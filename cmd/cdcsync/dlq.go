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

	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/topology"
)

const dlqUsage = `usage:
  cdcsync dlq inspect --brokers HOST:PORT TOPIC                 summary: counts by topology, stage, class; first/last seen
  cdcsync dlq inspect --brokers HOST:PORT --list TOPIC          one line per record (filters apply)
  cdcsync dlq inspect --brokers HOST:PORT --show P/O TOPIC      one record with every header and a readable value
  cdcsync dlq replay  --brokers HOST:PORT [--topologies DIR] TOPIC   produce the originals back to their source partitions
filters: --reason TEXT  --key KEY  --since TIME  --until TIME  (TIME: RFC 3339 or a duration ago, e.g. 1h)
exit status: 0 done; 1 could not read or write (replay: what was written is reported first);
             2 bad usage or configuration; 3 done, but some records are not readable DLQ records and were skipped`

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
	configFile := fs.String("config", "", configFlagHelp)
	topoPath := fs.String("topologies", "", "replay: topology directory or file; refuse to write into any of their DLQ or ledger topics (env CDCSYNC_TOPOLOGIES)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: errors.New(dlqUsage)}
	}
	topic := fs.Arg(0)
	sec, err := commandSecurity(*configFile)
	if err != nil {
		return err
	}
	bs, src := splitAddrs(*brokers), "--brokers"
	if len(bs) == 0 {
		bs, src = splitAddrs(envOr("CDCSYNC_BROKERS", "")), "CDCSYNC_BROKERS"
	}
	if len(bs) == 0 {
		return &exitError{code: 2, err: errors.New("--brokers is required")}
	}
	if err := checkBrokers(src, bs); err != nil {
		return err
	}
	f := dlq.Filter{Reason: *reason, Key: *key}
	if f.Since, err = parseTime(*since); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--since: %w", err)}
	}
	if f.Until, err = parseTime(*until); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--until: %w", err)}
	}
	// Replay refuses targets that are a loaded topology's DLQ or ledger.
	forbidden := map[string]string{}
	if sub == "replay" {
		path := *topoPath
		if path == "" {
			path = envOr("CDCSYNC_TOPOLOGIES", "")
		}
		if path != "" {
			plans, err := topology.Load(path)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("topologies refused:\n%w", err)}
			}
			for _, p := range plans {
				forbidden[string(p.DLQTopic())] = fmt.Sprintf("the DLQ topic of topology %s (%s)", p.Name(), p.File())
				forbidden[string(p.LedgerTopic())] = fmt.Sprintf("the ledger topic of topology %s (%s)", p.Name(), p.File())
			}
		}
	}
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	if cfg.Version, err = processor.ParseKafkaVersion(*version); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--kafka-version: %w", err)}
	}
	cfg.ClientID = "cdcsync-dlq"
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond // a partition's end is found by waiting out a fetch
	if sub == "replay" {
		dlq.ConfigureReplayProducer(cfg)
	}
	if err := sec.Apply(cfg); err != nil {
		return &exitError{code: 2, err: err}
	}
	client, err := sarama.NewClient(bs, cfg)
	if err != nil && processor.IsAccessFailure(err) {
		return &exitError{code: 2, err: fmt.Errorf("%w: connecting to %v: %w", processor.ErrAccessDenied, bs, err)}
	}
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
		entries, skipped, err := readDLQ(ctx, client, topic, f, 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.DLQPartition == int32(part) && e.DLQOffset == off {
				// Unreadable records elsewhere in the topic do not concern
				// this one.
				return dlq.WriteShow(stdout, e)
			}
		}
		if pe := skipped.Find(int32(part), off); pe != nil {
			return &exitError{code: 1, err: fmt.Errorf("%s partition %d offset %d is not a readable DLQ record: %s", topic, part, off, pe.Reason())}
		}
		return &exitError{code: 1, err: fmt.Errorf("no DLQ record at %s partition %d offset %d matching the filters", topic, part, off)}
	}
	entries, skipped, err := readDLQ(ctx, client, topic, f, *limit)
	if err != nil {
		return err
	}
	switch {
	case sub == "replay":
		if err := dlq.CheckTargets(entries, forbidden); err != nil {
			return &exitError{code: 1, err: err}
		}
		prod, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		defer prod.Close()
		r, err := dlq.ReplayAll(ctx, prod, entries)
		if err != nil {
			// Say what was written before the failure, so the operator
			// knows where the source topics stand.
			last := ""
			if len(r.Last) > 0 {
				last = "; last written:" + lastPositions(r)
			}
			fmt.Fprintf(stdout, "replayed %d of %d record(s) before the failure%s\n", r.Written, len(entries), last)
			return &exitError{code: 1, err: fmt.Errorf("%w\nthe %d record(s) before it were written; replaying again is safe, the dedup ledger drops any already applied", err, r.Written)}
		}
		fmt.Fprintf(stdout, "replayed %d record(s) to their source partitions; the dedup ledger drops any already applied\n", r.Written)
		if len(r.Last) > 0 {
			fmt.Fprintf(stdout, "last written:%s\n", lastPositions(r))
		}
	case *list:
		if err := dlq.WriteList(stdout, entries); err != nil {
			return err
		}
	default:
		s := dlq.Summarize(entries)
		if err := dlq.WriteSummary(stdout, s); err != nil {
			return err
		}
		if len(skipped) > 0 {
			fmt.Fprintf(stdout, "\nskipped:    %d record(s) that are not readable DLQ records (listed on stderr)\n", len(skipped))
		}
	}
	if len(skipped) > 0 {
		return &exitError{code: 3, err: skipped}
	}
	return nil
}

// readDLQ reads the DLQ topic; records that are not readable DLQ records
// are returned apart, and only other failures are an error (exit 1).
func readDLQ(ctx context.Context, client sarama.Client, topic string, f dlq.Filter, limit int) ([]dlq.Entry, dlq.Skipped, error) {
	entries, err := dlq.Read(ctx, client, topic, f, limit)
	var skipped dlq.Skipped
	if err != nil && !errors.As(err, &skipped) {
		return nil, nil, &exitError{code: 1, err: err}
	}
	return entries, skipped, nil
}

// lastPositions lists the last position written per topic partition,
// each after a space.
func lastPositions(r dlq.ReplayReport) string {
	var b strings.Builder
	for _, p := range r.Last {
		b.WriteString(" " + p.String())
	}
	return b.String()
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
