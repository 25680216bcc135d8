package pgapply

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdcsync/cdcsync/processor/apply"
	"github.com/cdcsync/cdcsync/processor/apply/pgapply/pgtest"
	"github.com/cdcsync/cdcsync/topology"
)

// cluster is the package's throwaway PostgreSQL (pgtest), started by
// TestMain; nil when none could start outside CI.
var (
	cluster    *pgtest.Cluster
	clusterErr error
)

func TestMain(m *testing.M) {
	cluster, clusterErr = pgtest.Start()
	code := m.Run()
	if cluster != nil {
		cluster.Remove()
	}
	os.Exit(code)
}

// needPG returns the cluster, skipping the test without PostgreSQL (failing
// under CI=true, where run-tests.sh provides it).
func needPG(tb testing.TB) *pgtest.Cluster {
	tb.Helper()
	if cluster == nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is required under CI=true: %v", clusterErr)
		}
		tb.Skipf("no PostgreSQL: %v", clusterErr)
	}
	return cluster
}

var seq atomic.Int64

// target is one test's schema in the cluster's postgres database.
type target struct {
	t      testing.TB
	schema string
	conn   *pgx.Conn
	dsnEnv string
	reg    *prometheus.Registry
}

// newTarget creates a schema for the test and runs ddl in it (search_path
// is the schema).
func newTarget(tb testing.TB, ddl string) *target {
	tb.Helper()
	c := needPG(tb)
	ctx := context.Background()
	n := seq.Add(1)
	schema := fmt.Sprintf("t%d_%d", os.Getpid(), n)
	conn, err := pgx.Connect(ctx, c.DSN(""))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema+"; SET search_path = "+schema); err != nil {
		tb.Fatal(err)
	}
	if ddl != "" {
		if _, err := conn.Exec(ctx, ddl); err != nil {
			tb.Fatalf("ddl: %v", err)
		}
	}
	env := fmt.Sprintf("CDCSYNC_TEST_PG_DSN_%d", n)
	os.Setenv(env, c.DSN("")+"&search_path="+schema)
	tb.Cleanup(func() { os.Unsetenv(env) })
	return &target{t: tb, schema: schema, conn: conn, dsnEnv: env, reg: prometheus.NewRegistry()}
}

func where(p string) string { return "crm-apply.yaml:12: " + p }

// opts are the apply options of table tbl with key columns key.
func (tg *target) opts(tbl string, key ...string) apply.Options {
	return apply.Options{
		Topology: "crm-apply",
		Config: topology.Apply{
			Kind:           topology.ApplyPostgres,
			MaxConcurrency: 8,
			Postgres: topology.PostgresApply{
				DSNEnv: tg.dsnEnv, Table: tbl, Key: key, AppliedTable: "cdcsync_applied",
			},
		},
		Where:      where,
		Registerer: tg.reg,
	}
}

func (tg *target) applier(o apply.Options) *Applier {
	tg.t.Helper()
	a, err := New(context.Background(), o)
	if err != nil {
		tg.t.Fatal(err)
	}
	tg.t.Cleanup(func() { a.Close() })
	return a
}

// q returns the first column of each row of sql, as text ("NULL" for a null).
func (tg *target) q(sql string, args ...any) []string {
	tg.t.Helper()
	rows, err := tg.conn.Query(context.Background(), sql, args...)
	if err != nil {
		tg.t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s *string
		if err := rows.Scan(&s); err != nil {
			tg.t.Fatal(err)
		}
		if s == nil {
			out = append(out, "NULL")
		} else {
			out = append(out, *s)
		}
	}
	if err := rows.Err(); err != nil {
		tg.t.Fatal(err)
	}
	return out
}

func (tg *target) q1(sql string, args ...any) string {
	tg.t.Helper()
	out := tg.q(sql, args...)
	if len(out) != 1 {
		tg.t.Fatalf("%s: %d rows, want 1: %v", sql, len(out), out)
	}
	return out[0]
}

func (tg *target) exec(sql string, args ...any) {
	tg.t.Helper()
	if _, err := tg.conn.Exec(context.Background(), sql, args...); err != nil {
		tg.t.Fatalf("%s: %v", sql, err)
	}
}

var idSeq atomic.Int64

// ev builds an event; kv are "name=json" pairs, fields after a "|" are
// before values.
func ev(op byte, key string, kv ...string) apply.Event {
	e := apply.Event{
		ID: fmt.Sprintf("%032x", idSeq.Add(1)),
		Op: op, Entity: "contacts", SourceSystem: "erp",
		OccurredAt: time.Now(),
	}
	k, v, _ := strings.Cut(key, "=")
	e.Key = []apply.Field{{Name: k, Raw: json.RawMessage(v)}}
	inBefore := false
	for _, s := range kv {
		if s == "|" {
			inBefore = true
			continue
		}
		n, v, _ := strings.Cut(s, "=")
		f := apply.Field{Name: n, Raw: json.RawMessage(v)}
		if inBefore {
			e.Before = append(e.Before, f)
		} else {
			e.Fields = append(e.Fields, f)
		}
	}
	return e
}

// mustApply applies events and fails on a transient error.
func mustApply(t testing.TB, a *Applier, events ...apply.Event) []error {
	t.Helper()
	out, err := a.Apply(context.Background(), events)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(out) != len(events) {
		t.Fatalf("Apply: %d outcomes for %d events", len(out), len(events))
	}
	return out
}

func allNil(t testing.TB, out []error) {
	t.Helper()
	for i, e := range out {
		if e != nil {
			t.Fatalf("event %d: %v", i, e)
		}
	}
}
