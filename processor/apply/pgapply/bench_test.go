package pgapply

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcsync/cdcsync/processor/apply"
)

// The PostgreSQL apply benchmarks: 8 partitions applied in parallel, small
// rows, batches of 500 events, into the throwaway local cluster (default
// settings: fsync and synchronous_commit on). BenchmarkPlainUpsert is the
// ceiling: a plain pgx loop of batched INSERT … ON CONFLICT DO UPDATE on the
// same data, one transaction per batch, no applied table, no conflict
// check.
//
//	go test -run '^$' -bench 'Apply|PlainUpsert' -benchtime 200000x ./processor/apply/pgapply/
//
// Each reports events/s. On a shared machine the load changes between
// benchmarks; BenchmarkApplyVsPlainUpsert alternates the two in rounds on
// the same data and reports both rates and their ratio:
//
//	go test -run '^$' -bench ApplyVsPlainUpsert -benchtime 400000x ./processor/apply/pgapply/

const (
	benchPartitions = 8
	benchBatch      = 500
	benchKeys       = 5000 // keys per partition: the first pass inserts, later ones update
)

const benchDDL = `CREATE TABLE bench (id bigint PRIMARY KEY, name text NOT NULL, phone text, score int)`

// benchEvents returns partition p's events i .. i+n-1.
func benchEvents(p, from, n int, withBefore bool) []apply.Event {
	out := make([]apply.Event, n)
	for j := range out {
		i := from + j
		key := int64(p)*1_000_000 + int64(i%benchKeys)
		e := apply.Event{
			ID:  fmt.Sprintf("%08x%024x", p, i),
			Op:  'c',
			Key: []apply.Field{{Name: "id", Raw: json.RawMessage(strconv.FormatInt(key, 10))}},
			Fields: []apply.Field{
				{Name: "name", Raw: json.RawMessage(`"name ` + strconv.Itoa(i) + `"`)},
				{Name: "phone", Raw: json.RawMessage(`"+49 30 ` + strconv.Itoa(5550000+i) + `"`)},
				{Name: "score", Raw: json.RawMessage(strconv.Itoa(i % 1000))},
			},
		}
		if i >= benchKeys {
			e.Op = 'u'
			if withBefore {
				prev := i - benchKeys
				e.Before = []apply.Field{
					{Name: "name", Raw: json.RawMessage(`"name ` + strconv.Itoa(prev) + `"`)},
					{Name: "phone", Raw: json.RawMessage(`"+49 30 ` + strconv.Itoa(5550000+prev) + `"`)},
					{Name: "score", Raw: json.RawMessage(strconv.Itoa(prev % 1000))},
				}
			}
		}
		out[j] = e
	}
	return out
}

// runPartitions runs b.N events split over the partitions, each partition
// in batches, and reports events/s.
func runPartitions(b *testing.B, applyBatch func(p int, events []apply.Event) error, withBefore bool) {
	per := (b.N + benchPartitions - 1) / benchPartitions
	batches := benchBatches(0, per, withBefore)
	b.ResetTimer()
	el, err := runRound(batches, applyBatch)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(per*benchPartitions)/el.Seconds(), "events/s")
}

// benchBatches builds each partition's events from..from+n-1 in batches
// (before the clock runs: the benchmarks measure the database work).
func benchBatches(from, n int, withBefore bool) [][][]apply.Event {
	batches := make([][][]apply.Event, benchPartitions)
	for p := range batches {
		for i := from; i < from+n; i += benchBatch {
			batches[p] = append(batches[p], benchEvents(p, i, min(benchBatch, from+n-i), withBefore))
		}
	}
	return batches
}

// runRound applies the partitions' batches in parallel and returns the
// time it took.
func runRound(batches [][][]apply.Event, applyBatch func(p int, events []apply.Event) error) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, benchPartitions)
	for p := range benchPartitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, batch := range batches[p] {
				if err := applyBatch(p, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	return el, <-errs
}

func BenchmarkApply(b *testing.B) {
	for _, withBefore := range []bool{false, true} {
		name := "fields"
		if withBefore {
			name = "fields+before"
		}
		b.Run(name, func(b *testing.B) {
			tg := newTarget(b, benchDDL)
			o := tg.opts("bench", "id")
			o.Config.MaxConcurrency = benchPartitions
			a := tg.applier(o)
			runPartitions(b, func(p int, events []apply.Event) error {
				out, err := a.Apply(context.Background(), events)
				if err != nil {
					return err
				}
				for _, e := range out {
					if e != nil {
						return e
					}
				}
				return nil
			}, withBefore)
		})
	}
}

// BenchmarkPlainUpsert is the ceiling: the same events as plain batched
// upserts, one connection per partition, one transaction per batch.
func BenchmarkPlainUpsert(b *testing.B) {
	tg := newTarget(b, benchDDL)
	runPartitions(b, plainUpserter(b, tg, "bench"), false)
}

// BenchmarkApplyVsPlainUpsert alternates rounds of the applier and of the
// plain loop on the same events (each into its own table), so both see the
// same machine load, and reports both rates and apply/plain.
func BenchmarkApplyVsPlainUpsert(b *testing.B) {
	tg := newTarget(b, benchDDL+"; CREATE TABLE bench_plain (LIKE bench INCLUDING ALL)")
	o := tg.opts("bench", "id")
	o.Config.MaxConcurrency = benchPartitions
	a := tg.applier(o)
	viaApply := func(p int, events []apply.Event) error {
		out, err := a.Apply(context.Background(), events)
		if err != nil {
			return err
		}
		for _, e := range out {
			if e != nil {
				return e
			}
		}
		return nil
	}
	plain := plainUpserter(b, tg, "bench_plain")
	per := (b.N + benchPartitions - 1) / benchPartitions
	const rounds = 8
	step := max((per+rounds-1)/rounds, 1)
	var tApply, tPlain time.Duration
	b.ResetTimer()
	for from := 0; from < per; from += step {
		batches := benchBatches(from, min(step, per-from), false)
		el, err := runRound(batches, viaApply)
		if err != nil {
			b.Fatal(err)
		}
		tApply += el
		if el, err = runRound(batches, plain); err != nil {
			b.Fatal(err)
		}
		tPlain += el
	}
	b.StopTimer()
	n := float64(per * benchPartitions)
	b.ReportMetric(n/tApply.Seconds(), "apply-events/s")
	b.ReportMetric(n/tPlain.Seconds(), "plain-events/s")
	b.ReportMetric(tPlain.Seconds()/tApply.Seconds(), "apply/plain")
}

// plainUpserter is the ceiling's loop into table tbl.
func plainUpserter(b *testing.B, tg *target, tbl string) func(p int, events []apply.Event) error {
	conns := make([]*pgx.Conn, benchPartitions)
	for p := range conns {
		c, err := pgx.Connect(context.Background(), cluster.DSN("")+"&search_path="+tg.schema)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(context.Background()) })
		conns[p] = c
	}
	upsert := `INSERT INTO ` + tbl + ` (id, name, phone, score) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, phone = EXCLUDED.phone, score = EXCLUDED.score`
	return func(p int, events []apply.Event) error {
		ctx := context.Background()
		tx, err := conns[p].Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		batch := &pgx.Batch{}
		for _, e := range events {
			id, _ := strconv.ParseInt(string(e.Key[0].Raw), 10, 64)
			var name, phone string
			json.Unmarshal(e.Fields[0].Raw, &name)
			json.Unmarshal(e.Fields[1].Raw, &phone)
			score, _ := strconv.Atoi(string(e.Fields[2].Raw))
			batch.Queue(upsert, id, name, phone, score)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
}
