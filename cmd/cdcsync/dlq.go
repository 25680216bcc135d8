package main

import (
	"context"
	"errors"
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

// dlqFlags are the flags dlq inspect and dlq replay share: the broker,
// the security block and the filters.
type dlqFlags struct {
	brokers, reason, key, since, until, version, configFile *string
	limit                                                   *int
}

func addDLQFlags(fs *flagSet) *dlqFlags {
	return &dlqFlags{
		brokers:    fs.String("brokers", "", "bootstrap brokers, HOST:PORT[,..] (env CDCSYNC_BROKERS)"),
		reason:     fs.String("reason", "", "only records whose stage, class or message contains TEXT"),
		key:        fs.String("key", "", "only records with this original key"),
		since:      fs.String("since", "", "only records at or after TIME"),
		until:      fs.String("until", "", "only records before TIME"),
		limit:      fs.Int("limit", 0, "stop after this many matching records (0: all)"),
		version:    fs.String("kafka-version", "2.8.0", "Kafka protocol version"),
		configFile: fs.String("config", "", configFlagHelp),
	}
}

// filter reads the filter flags; a bad time is exit 2.
func (d *dlqFlags) filter() (dlq.Filter, error) {
	f := dlq.Filter{Reason: *d.reason, Key: *d.key}
	var err error
	if f.Since, err = parseTime(*d.since); err != nil {
		return f, &exitError{code: 2, err: fmt.Errorf("--since: %w", err)}
	}
	if f.Until, err = parseTime(*d.until); err != nil {
		return f, &exitError{code: 2, err: fmt.Errorf("--until: %w", err)}
	}
	return f, nil
}

// client checks the broker, security and version flags and connects.
// replay configures the client's producer for dlq.Replay.
func (d *dlqFlags) client(replay bool) (sarama.Client, error) {
	sec, err := commandSecurity(*d.configFile)
	if err != nil {
		return nil, err
	}
	bs, src := splitAddrs(*d.brokers), "--brokers"
	if len(bs) == 0 {
		bs, src = splitAddrs(envOr("CDCSYNC_BROKERS", "")), "CDCSYNC_BROKERS"
	}
	if len(bs) == 0 {
		return nil, &exitError{code: 2, err: errors.New("--brokers is required (or CDCSYNC_BROKERS)")}
	}
	if err := checkBrokers(src, bs); err != nil {
		return nil, err
	}
	cfg := sarama.NewConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // cdcsync creates its topics itself, with the right partition count
	if cfg.Version, err = processor.ParseKafkaVersion(*d.version); err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("--kafka-version: %w", err)}
	}
	cfg.ClientID = "cdcsync-dlq"
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond // a partition's end is found by waiting out a fetch
	if replay {
		dlq.ConfigureReplayProducer(cfg)
	}
	if err := sec.Apply(cfg); err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	client, err := sarama.NewClient(bs, cfg)
	if err != nil && processor.IsAccessFailure(err) {
		return nil, &exitError{code: 2, err: fmt.Errorf("%w: connecting to %v: %w", processor.ErrAccessDenied, bs, err)}
	}
	if err != nil {
		return nil, &exitError{code: 1, err: fmt.Errorf("connecting to %v: %w", bs, err)}
	}
	return client, nil
}

func cmdDLQInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq inspect", stdout)
	df := addDLQFlags(fs)
	list := fs.Bool("list", false, "list records instead of the summary")
	show := fs.String("show", "", "show one record, PARTITION/OFFSET")
	asJSON := outputFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	js, err := asJSON()
	if err != nil {
		return err
	}
	if *list && *show != "" {
		return fs.usageError("--list and --show exclude each other")
	}
	var part, off int64
	if *show != "" {
		p, o, ok := strings.Cut(*show, "/")
		var err1, err2 error
		part, err1 = strconv.ParseInt(p, 10, 32)
		off, err2 = strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return &exitError{code: 2, err: fmt.Errorf("--show %q: want PARTITION/OFFSET, e.g. 3/17", *show)}
		}
	}
	topic := fs.Arg(0)
	f, err := df.filter()
	if err != nil {
		return err
	}
	client, err := df.client(false)
	if err != nil {
		return err
	}
	defer client.Close()

	if *show != "" {
		entries, skipped, err := readDLQ(ctx, client, topic, f, 0)
		if err != nil {
			return err
		}
		for i := range entries {
			e := &entries[i]
			if e.DLQPartition == int32(part) && e.DLQOffset == off {
				// Unreadable records elsewhere in the topic do not concern
				// this one.
				if js {
					return writeJSON(stdout, dlq.NewView(e))
				}
				return dlq.WriteShow(stdout, *e)
			}
		}
		if pe := skipped.Find(int32(part), off); pe != nil {
			return &exitError{code: 1, err: fmt.Errorf("%s partition %d offset %d is not a readable DLQ record: %s", topic, part, off, pe.Reason())}
		}
		return &exitError{code: 1, err: fmt.Errorf("no DLQ record at %s partition %d offset %d matching the filters", topic, part, off)}
	}
	entries, skipped, err := readDLQ(ctx, client, topic, f, *df.limit)
	if err != nil {
		return err
	}
	switch {
	case *list && js:
		err = writeJSON(stdout, dlq.NewListView(topic, entries, skipped))
	case *list:
		err = dlq.WriteList(stdout, entries)
	case js:
		err = writeJSON(stdout, dlq.NewSummaryView(topic, dlq.Summarize(entries), skipped))
	default:
		err = dlq.WriteSummary(stdout, dlq.Summarize(entries))
		if err == nil && len(skipped) > 0 {
			_, err = fmt.Fprintf(stdout, "\nskipped:    %d record(s) that are not readable DLQ records (listed on stderr)\n", len(skipped))
		}
	}
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		return &exitError{code: 3, err: skipped}
	}
	return nil
}

func cmdDLQReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dlq replay", stdout)
	df := addDLQFlags(fs)
	topoPath := fs.String("topologies", "", "topology directory or file; refuse to write into any of their DLQ or ledger topics (env CDCSYNC_TOPOLOGIES)")
	dryRun := fs.Bool("dry-run", false, "print what would be replayed (count and one line per record) and write nothing")
	asJSON := outputFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	js, err := asJSON()
	if err != nil {
		return err
	}
	topic := fs.Arg(0)
	f, err := df.filter()
	if err != nil {
		return err
	}
	// Replay refuses targets that are a loaded topology's DLQ or ledger.
	forbidden := map[string]string{}
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
	client, err := df.client(!*dryRun)
	if err != nil {
		return err
	}
	defer client.Close()
	entries, skipped, err := readDLQ(ctx, client, topic, f, *df.limit)
	if err != nil {
		return err
	}
	// A dry run refuses what the replay would refuse.
	if err := dlq.CheckTargets(entries, forbidden); err != nil {
		return &exitError{code: 1, err: err}
	}
	if *dryRun {
		if js {
			err = writeJSON(stdout, dlq.NewReplayPlan(topic, entries, skipped, true))
		} else {
			fmt.Fprintf(stdout, "dry run: %d record(s) would be replayed to their source partitions; nothing was written\n", len(entries))
			err = dlq.WriteReplayPlan(stdout, entries)
		}
		if err != nil {
			return err
		}
		if len(skipped) > 0 {
			return &exitError{code: 3, err: skipped}
		}
		return nil
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
	if js {
		plan := dlq.NewReplayPlan(topic, entries, skipped, false)
		plan.LastWritten = r.Last
		err = writeJSON(stdout, plan)
	} else {
		fmt.Fprintf(stdout, "replayed %d record(s) to their source partitions; the dedup ledger drops any already applied\n", r.Written)
		if len(r.Last) > 0 {
			fmt.Fprintf(stdout, "last written:%s\n", lastPositions(r))
		}
	}
	if err != nil {
		return err
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
