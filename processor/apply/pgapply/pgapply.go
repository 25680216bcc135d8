// Package pgapply is apply.kind postgres: it writes sync events into a
// PostgreSQL table, exactly once, in order per partition.
//
// One batch is one database transaction:
//
//  1. BEGIN; SET CONSTRAINTS ALL IMMEDIATE; the batch's event IDs are
//     looked up in the applied table: an ID that is there already was
//     applied before, and its event is skipped.
//  2. Updates that carry before values read the target's current values
//     of those columns (SELECT … FOR UPDATE) and compare them, as typed
//     values, with the before values: a difference is a conflict, resolved
//     by on_conflict.
//  3. The changes run pipelined (pgx.Batch) in chunks, each under a
//     SAVEPOINT. A statement that fails with a permanent error (SQLSTATE
//     class 22 data exception, 23 integrity constraint violation) rolls
//     back its chunk; that event alone is Rejected and the chunk runs
//     again without it, so one bad row cannot hold back its neighbours.
//  4. The IDs of the applied events go into the applied table, and the
//     transaction commits. Any other error rolls the whole batch back and
//     is returned as transient.
//
// See docs/postgres-apply.md.
package pgapply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/apply"
	"github.com/cdcsync/cdcsync/topology"
)

// chunk is the number of events under one SAVEPOINT. A failing event makes
// at most its chunk run again; a batch of 500 opens 8 subtransactions,
// below PostgreSQL's cache of 64 per transaction.
const chunk = 64

// defaultConnectTimeout applies when the DSN sets no connect_timeout.
const defaultConnectTimeout = 10 * time.Second

// lockTimeout bounds each statement's wait for a row lock (a variable for
// the tests).
var lockTimeout = "30s"

// ConfigError is a configuration the target refuses: the start stops with
// exit code 2. Its text begins with FILE:LINE: path.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

// Applier applies sync events to one PostgreSQL table.
type Applier struct {
	topology   string
	cfg        topology.PostgresApply
	truncate   bool
	pool       *pgxpool.Pool
	tbl        *table
	key        []*column
	fieldCol   map[string]string // event field -> column (configured mapping)
	applied    string            // quoted applied table
	appliedRaw string            // its name as messages print it
	log        *zap.Logger
	conflicts  *prometheus.CounterVec
	secret     string // the DSN's password, redacted from errors

	// PruneWindow is how long applied event IDs are kept: the dedup
	// window. Set it before the first Apply; 0 means
	// topology.DefaultDedupWindow.
	PruneWindow time.Duration

	required int      // NOT NULL columns without a default, other than the key
	sqlCache sync.Map // write statements by mode and column set

	pruneMu   sync.Mutex
	lastPrune time.Time
}

var _ apply.Applier = (*Applier)(nil)

// New connects to the target, reads the table from the catalog, checks the
// configuration against it and creates the applied table when it is
// missing.
func New(ctx context.Context, opts apply.Options) (*Applier, error) {
	cfg := opts.Config.Postgres
	where := opts.Where
	if where == nil {
		where = func(p string) string { return p }
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	cfgErr := func(path, format string, args ...any) error {
		return &ConfigError{msg: where(path) + ": " + fmt.Sprintf(format, args...)}
	}
	dsn, err := readDSN(cfg)
	if err != nil {
		path := "apply.postgres.dsn_env"
		if cfg.DSNFile != "" {
			path = "apply.postgres.dsn_file"
		}
		return nil, cfgErr(path, "%v", err)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		path := "apply.postgres.dsn_env"
		if cfg.DSNFile != "" {
			path = "apply.postgres.dsn_file"
		}
		// pgconn redacts the password in its parse errors; the DSN itself
		// is never printed.
		return nil, cfgErr(path, "the DSN does not parse: %v", redact(err, ""))
	}
	maxConns := int32(opts.Config.MaxConcurrency)
	if maxConns < 1 {
		maxConns = 1
	}
	pcfg.MaxConns = maxConns
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		// A target that does not answer is transient, not a hang.
		pcfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pcfg.MinConns = 0
	a := &Applier{
		topology: opts.Topology,
		cfg:      cfg,
		truncate: opts.Config.Truncate == topology.ApplyTruncateApply,
		fieldCol: cfg.Columns,
		log:      log,
		secret:   pcfg.ConnConfig.Password,
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, a.redact(fmt.Errorf("postgres apply: %w", err))
	}
	a.pool = pool
	if err := a.start(ctx, cfgErr); err != nil {
		pool.Close()
		return nil, err
	}
	a.conflicts = conflictsCounter(opts.Registerer)
	return a, nil
}

func (a *Applier) start(ctx context.Context, cfgErr func(path, format string, args ...any) error) error {
	c, err := a.pool.Acquire(ctx)
	if err != nil {
		return a.redact(fmt.Errorf("postgres apply: connect: %w", err))
	}
	defer c.Release()
	conn := c.Conn()
	tbl, found, err := readTable(ctx, conn, a.cfg.Table)
	if err != nil {
		return a.redact(fmt.Errorf("postgres apply: reading table %s: %w", a.cfg.Table, err))
	}
	if !found {
		return cfgErr("apply.postgres.table", "table %s does not exist (or is not a table)", a.cfg.Table)
	}
	a.tbl = tbl
	if len(a.cfg.Key) == 0 {
		return cfgErr("apply.postgres.key", "no key columns")
	}
	for i, k := range a.cfg.Key {
		col, ok := tbl.cols[k]
		if !ok {
			return cfgErr(fmt.Sprintf("apply.postgres.key[%d]", i), "column %q not in %s", k, tbl.name)
		}
		a.key = append(a.key, col)
	}
	ok, err := hasUniqueIndex(ctx, conn, tbl.qname, a.cfg.Key)
	if err != nil {
		return a.redact(fmt.Errorf("postgres apply: reading indexes of %s: %w", tbl.name, err))
	}
	if !ok {
		return cfgErr("apply.postgres.key", "no primary key or unique index on (%s) of %s", strings.Join(a.cfg.Key, ", "), tbl.name)
	}
	for field, colName := range a.cfg.Columns {
		col, ok := tbl.cols[colName]
		if !ok {
			return cfgErr("apply.postgres.columns."+field, "column %q not in %s", colName, tbl.name)
		}
		if col.gen {
			return cfgErr("apply.postgres.columns."+field, "column %q of %s is generated: it cannot be written", colName, tbl.name)
		}
	}
	for _, col := range tbl.cols {
		if col.required && !a.isKey(col) {
			a.required++
		}
	}
	schema, _ := splitName(tbl.name, "public")
	applied := a.cfg.AppliedTable
	if applied == "" {
		applied = "cdcsync_applied"
	}
	as, at := splitName(applied, schema)
	a.applied = pgx.Identifier{as, at}.Sanitize()
	a.appliedRaw = as + "." + at
	// Workers start at the same time: CREATE TABLE IF NOT EXISTS is not
	// safe against itself (23505 on pg_type), so the creation is
	// serialised by an advisory lock of the table's name.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "cdcsync:"+a.appliedRaw); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, appliedDDL(a.applied, pgx.Identifier{at + "_applied_at"}.Sanitize()))
		return err
	})
	if err != nil {
		return a.redact(fmt.Errorf("postgres apply: creating %s: %w", a.appliedRaw, err))
	}
	return nil
}

// readDSN reads the DSN from the environment or a file; the DSN itself is
// never part of an error.
func readDSN(cfg topology.PostgresApply) (string, error) {
	if cfg.DSNFile != "" {
		b, err := os.ReadFile(cfg.DSNFile)
		if err != nil {
			return "", fmt.Errorf("reading the DSN file: %v", err)
		}
		dsn := strings.TrimSpace(string(b))
		if dsn == "" {
			return "", fmt.Errorf("DSN file %s is empty", cfg.DSNFile)
		}
		return dsn, nil
	}
	if cfg.DSNEnv == "" {
		return "", errors.New("neither dsn_env nor dsn_file is set")
	}
	dsn := strings.TrimSpace(os.Getenv(cfg.DSNEnv))
	if dsn == "" {
		return "", fmt.Errorf("environment variable %s is not set or empty", cfg.DSNEnv)
	}
	return dsn, nil
}

// redact removes the DSN's password from an error's text.
func (a *Applier) redact(err error) error { return redact(err, a.secret) }

func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

var (
	conflictsMu  sync.Mutex
	conflictsVec = map[prometheus.Registerer]*prometheus.CounterVec{}
)

// conflictsCounter registers cdcsync_apply_conflicts_total on reg once.
func conflictsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cdcsync_apply_conflicts_total",
		Help: "Fields an apply topology found changed in the target since the event's before value (the target changed them itself), by topology and field.",
	}, []string{"topology", "field"})
	if reg == nil {
		return cv
	}
	conflictsMu.Lock()
	defer conflictsMu.Unlock()
	if have, ok := conflictsVec[reg]; ok {
		return have
	}
	if err := reg.Register(cv); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if have, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				cv = have
			}
		}
	}
	conflictsVec[reg] = cv
	return cv
}

// Close closes the connections and deletes the topology's conflict
// series: the topology is gone from this worker.
func (a *Applier) Close() error {
	a.pool.Close()
	a.conflicts.DeletePartialMatch(prometheus.Labels{"topology": a.topology})
	return nil
}

// plan is one event, prepared in Go.
type plan struct {
	ev      *apply.Event
	op      byte // 'w' write (c u r), 'd' delete, 't' truncate, 0 nothing to do
	keyText string
	keys    []*string
	cols    []*column
	vals    []*string
	before  []*string // per cols entry; nil entry: no before value; nil slice: none at all
	hasBef  []bool
	// conflict read result: per cols entry, whether the current value
	// equals the before value, and the current value's text.
	read    bool // the row was read and exists
	eq      []bool
	cur     []*string
	skipCol []bool // on_conflict skip: columns not written
	confl   []conflict
	done    bool  // finished before the database (skipped or rejected)
	out     error // its outcome
}

type conflict struct {
	field              string
	before, cur, after *string
}

// prepare maps an event onto the table and converts its values.
func (a *Applier) prepare(ev *apply.Event) *plan {
	p := &plan{ev: ev}
	reject := func(format string, args ...any) *plan {
		p.done = true
		p.out = &apply.Rejected{Reason: fmt.Sprintf(format, args...), Headers: map[string]string{"cdcsync.apply.pg.table": a.tbl.name}}
		return p
	}
	switch ev.Op {
	case 'c', 'u', 'r':
		p.op = 'w'
	case 'd':
		p.op = 'd'
	case 't':
		if !a.truncate {
			p.done = true // apply.truncate: ignore
			return p
		}
		p.op = 't'
		return p
	default:
		return reject("op %q cannot be applied to a table", string(ev.Op))
	}
	if len(ev.Key) != len(a.key) {
		return reject("event key has %d fields, apply.postgres.key %d columns", len(ev.Key), len(a.key))
	}
	var kt strings.Builder
	for i, f := range ev.Key {
		v, err := a.key[i].toText(f.Raw)
		if err != nil {
			return reject("key field %q to column %s (%s): %v", f.Name, a.key[i].name, a.key[i].typ, err)
		}
		if v == nil {
			return reject("key field %q is null", f.Name)
		}
		p.keys = append(p.keys, v)
		kt.WriteString(strconv.Itoa(len(*v)))
		kt.WriteByte(':')
		kt.WriteString(*v)
		kt.WriteByte(',')
	}
	p.keyText = kt.String()
	if p.op == 'd' {
		return p
	}
	var before map[string]*apply.Field
	if ev.Op == 'u' && len(ev.Before) > 0 {
		before = make(map[string]*apply.Field, len(ev.Before))
		for i := range ev.Before {
			before[ev.Before[i].Name] = &ev.Before[i]
		}
	}
	for _, f := range ev.Fields {
		if string(f.Raw) == unavailable {
			continue // an unchanged TOASTed value: the column stays as it is
		}
		name := f.Name
		if m, ok := a.fieldCol[f.Name]; ok {
			name = m
		}
		col, ok := a.tbl.cols[name]
		if !ok {
			return reject("field %q: column %q not in %s", f.Name, name, a.tbl.name)
		}
		if col.gen {
			return reject("field %q: column %q of %s is generated", f.Name, name, a.tbl.name)
		}
		if a.isKey(col) {
			continue // the key's value comes from the event key
		}
		if slices.Contains(p.cols, col) {
			// Two fields onto one column (a field and another mapped to
			// it): no statement can set a column twice.
			return reject("field %q: column %q of %s is set by another field of the event too", f.Name, name, a.tbl.name)
		}
		v, err := col.toText(f.Raw)
		if err != nil {
			return reject("field %q to column %s (%s): %v", f.Name, col.name, col.typ, err)
		}
		p.cols = append(p.cols, col)
		p.vals = append(p.vals, v)
		var bv *string
		has := false
		if b, ok := before[f.Name]; ok && string(b.Raw) != unavailable {
			bv, err = col.toText(b.Raw)
			if err != nil {
				return reject("before value of field %q to column %s (%s): %v", f.Name, col.name, col.typ, err)
			}
			has = true
		}
		p.before = append(p.before, bv)
		p.hasBef = append(p.hasBef, has)
	}
	return p
}

func (a *Applier) isKey(c *column) bool {
	for _, k := range a.key {
		if k == c {
			return true
		}
	}
	return false
}

func (p *plan) needsRead() bool {
	if p.done || p.op != 'w' {
		return false
	}
	for _, h := range p.hasBef {
		if h {
			return true
		}
	}
	return false
}

// fieldName returns the event field of column index i.
func (p *plan) fieldName(a *Applier, i int) string {
	col := p.cols[i].name
	for f, c := range a.fieldCol {
		if c == col {
			return f
		}
	}
	return col
}

// Apply applies a batch of one partition in one transaction.
func (a *Applier) Apply(ctx context.Context, events []apply.Event) ([]error, error) {
	if len(events) == 0 {
		return nil, nil
	}
	a.maybePrune(ctx)
	plans := make([]*plan, len(events))
	for i := range events {
		plans[i] = a.prepare(&events[i])
	}
	c, err := a.pool.Acquire(ctx)
	if err != nil {
		return nil, a.transient(err)
	}
	conn := c.Conn()
	ok := false
	defer func() {
		if !ok {
			// Roll back whatever is open; a connection in an unknown
			// state is closed, the pool then drops it.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
				_ = conn.Close(rctx)
			}
			cancel()
		}
		c.Release()
	}()
	if err := a.begin(ctx, conn, plans); err != nil {
		return nil, a.transient(err)
	}
	if err := a.readConflicts(ctx, conn, plans); err != nil {
		return nil, a.transient(err)
	}
	if err := a.write(ctx, conn, plans); err != nil {
		return nil, a.transient(err)
	}
	ok = true
	out := make([]error, len(plans))
	for i, p := range plans {
		out[i] = p.out
		for _, cf := range p.confl {
			a.conflicts.WithLabelValues(a.topology, cf.field).Inc()
			a.log.Info("apply conflict: the target changed a field since the event's before value",
				zap.String("topology", a.topology), zap.String("table", a.tbl.name), zap.String("event_id", p.ev.ID),
				zap.String("key", keyJSON(p.ev)), zap.String("field", cf.field),
				zap.String("on_conflict", a.cfg.OnConflict.String()))
		}
	}
	return out, nil
}

// begin opens the transaction and looks the batch's event IDs up: an ID
// that is there already was applied before, and its event is skipped.
func (a *Applier) begin(ctx context.Context, conn *pgx.Conn, plans []*plan) error {
	var ids []string
	for _, p := range plans {
		if !p.done {
			ids = append(ids, p.ev.ID)
		}
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET CONSTRAINTS ALL IMMEDIATE")
	// A row lock the target holds for long fails the batch (55P03,
	// transient) instead of stalling the partition without a signal.
	b.Queue("SET LOCAL lock_timeout = '" + lockTimeout + "'")
	b.Queue(`SELECT event_id FROM `+a.applied+` WHERE topology = $1 AND event_id = ANY($2::text[])`, a.topology, ids)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	for range 3 {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	applied := make(map[string]bool)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		applied[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	replayed := 0
	for _, p := range plans {
		if p.done {
			continue
		}
		if applied[p.ev.ID] {
			p.done = true // applied before, or a second copy in this batch
			replayed++
			continue
		}
		applied[p.ev.ID] = true
	}
	if replayed > 0 {
		ev := plans[0].ev
		a.log.Info("skipped events the target had applied already (a redelivery after a crash or rebalance)",
			zap.String("table", a.tbl.name), zap.Int("events", replayed),
			zap.String("topic", ev.Topic), zap.Int32("partition", ev.Partition), zap.Int64("first_offset", ev.Offset))
	}
	return br.Close()
}

// readConflicts locks and reads the current values of the columns whose
// before values the updates carry.
func (a *Applier) readConflicts(ctx context.Context, conn *pgx.Conn, plans []*plan) error {
	var idx []int
	for i, p := range plans {
		if p.needsRead() {
			idx = append(idx, i)
		}
	}
	return a.runChunked(ctx, conn, plans, idx, nil, func(b *pgx.Batch, p *plan) {
		var sql strings.Builder
		args := make([]any, 0, len(p.keys)+len(p.cols))
		sql.WriteString("SELECT ")
		n := 0
		for i, col := range p.cols {
			if i > 0 {
				sql.WriteString(", ")
			}
			if !p.hasBef[i] {
				sql.WriteString("true, NULL::text")
				continue
			}
			args = append(args, p.before[i])
			n = len(args)
			switch col.cmp {
			case "jsonb":
				t := "jsonb"
				if col.array {
					t = "jsonb[]"
				}
				fmt.Fprintf(&sql, "(%s::%s IS NOT DISTINCT FROM $%d::text::%s)", col.ident, t, n, t)
			case "text":
				fmt.Fprintf(&sql, "(%s::text IS NOT DISTINCT FROM ($%d::text::%s)::text)", col.ident, n, col.typ)
			default:
				fmt.Fprintf(&sql, "(%s IS NOT DISTINCT FROM $%d::text::%s)", col.ident, n, col.typ)
			}
			fmt.Fprintf(&sql, ", %s::text", col.ident)
		}
		fmt.Fprintf(&sql, " FROM %s WHERE ", a.tbl.qname)
		for i, k := range a.key {
			if i > 0 {
				sql.WriteString(" AND ")
			}
			args = append(args, p.keys[i])
			fmt.Fprintf(&sql, "%s = $%d::text::%s", k.ident, len(args), k.typ)
		}
		sql.WriteString(" FOR UPDATE")
		b.Queue(sql.String(), args...)
	}, func(br pgx.BatchResults, p *plan) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			return rows.Err() // no row: nothing to conflict with
		}
		dest := make([]any, 0, 2*len(p.cols))
		p.eq = make([]bool, len(p.cols))
		p.cur = make([]*string, len(p.cols))
		for i := range p.cols {
			dest = append(dest, &p.eq[i], &p.cur[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		p.read = true
		rows.Close()
		return rows.Err()
	}, nil)
}

// write runs the changes, chunk by chunk under savepoints, then records
// the IDs of the applied events and commits.
func (a *Applier) write(ctx context.Context, conn *pgx.Conn, plans []*plan) error {
	var idx []int
	for i, p := range plans {
		if !p.done {
			idx = append(idx, i)
		}
	}
	// Conflict decisions depend on which earlier events of the batch wrote
	// the same field (the target cannot have changed it in between: the
	// row is locked); they are decided again whenever an event drops out.
	decide := func(live []int) {
		written := map[string]map[*column]bool{}
		deleted := map[string]bool{}
		for _, i := range live {
			p := plans[i]
			switch p.op {
			case 't':
				written = map[string]map[*column]bool{}
				deleted = map[string]bool{}
				continue
			case 'd':
				deleted[p.keyText] = true
				delete(written, p.keyText)
				continue
			}
			p.skipCol, p.confl = nil, nil
			if p.read && !deleted[p.keyText] {
				for ci, col := range p.cols {
					if !p.hasBef[ci] || p.eq[ci] || written[p.keyText][col] {
						continue
					}
					p.confl = append(p.confl, conflict{
						field: p.fieldName(a, ci), before: p.before[ci], cur: p.cur[ci], after: p.vals[ci],
					})
					if a.cfg.OnConflict == topology.ConflictSkip {
						if p.skipCol == nil {
							p.skipCol = make([]bool, len(p.cols))
						}
						p.skipCol[ci] = true
					}
				}
			}
			if len(p.confl) > 0 && a.cfg.OnConflict == topology.ConflictDLQ {
				continue // rejected: it writes nothing
			}
			if w := written[p.keyText]; w == nil {
				written[p.keyText] = map[*column]bool{}
			}
			for ci, col := range p.cols {
				if p.skipCol == nil || !p.skipCol[ci] {
					written[p.keyText][col] = true
				}
			}
		}
	}
	// on_conflict dlq rejects the event before it runs.
	if a.cfg.OnConflict == topology.ConflictDLQ {
		decide(idx)
		kept := idx[:0:0]
		for _, i := range idx {
			p := plans[i]
			if len(p.confl) > 0 {
				p.done = true
				p.out = a.conflictRejected(p)
				continue
			}
			kept = append(kept, i)
		}
		idx = kept
	}
	var redecide func([]int)
	if a.cfg.OnConflict != topology.ConflictDLQ {
		redecide = decide
	}
	return a.runChunked(ctx, conn, plans, idx, redecide, a.queueWrite, func(br pgx.BatchResults, p *plan) error {
		_, err := br.Exec()
		return err
	}, func(live []int, b *pgx.Batch) {
		// Record the applied events in the same transaction. An ID that
		// another applier recorded meanwhile (two workers on one
		// partition during a rebalance) fails with 23505: the batch rolls
		// back as transient, and its retry skips that event.
		ids := make([]string, len(live))
		for i, pi := range live {
			ids[i] = plans[pi].ev.ID
		}
		if len(ids) > 0 {
			b.Queue("INSERT INTO "+a.applied+" (topology, event_id) SELECT $1, unnest($2::text[])", a.topology, ids)
		}
		b.Queue("COMMIT")
	})
}

// conflictRejected is the DLQ outcome of on_conflict dlq, with both values
// in headers.
func (a *Applier) conflictRejected(p *plan) *apply.Rejected {
	h := map[string]string{"cdcsync.apply.pg.table": a.tbl.name, "cdcsync.apply.conflict.key": keyJSON(p.ev)}
	var fields []string
	for _, cf := range p.confl {
		fields = append(fields, cf.field)
		h["cdcsync.apply.conflict."+cf.field+".before"] = textOrNull(cf.before)
		h["cdcsync.apply.conflict."+cf.field+".target"] = textOrNull(cf.cur)
		h["cdcsync.apply.conflict."+cf.field+".after"] = textOrNull(cf.after)
	}
	h["cdcsync.apply.conflict.fields"] = strings.Join(fields, ",")
	return &apply.Rejected{
		Reason:  fmt.Sprintf("conflict (on_conflict dlq): the target changed %s of %s since the event's before value", strings.Join(fields, ", "), a.tbl.name),
		Headers: h,
	}
}

// keyJSON is the event key as the sink writes it: {"id":1}.
func keyJSON(ev *apply.Event) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range ev.Key {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f.Name))
		b.WriteByte(':')
		b.Write(f.Raw)
	}
	b.WriteByte('}')
	return b.String()
}

func textOrNull(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}

// queueWrite queues the statement of one event.
func (a *Applier) queueWrite(b *pgx.Batch, p *plan) {
	switch p.op {
	case 't':
		b.Queue("DELETE FROM " + a.tbl.qname)
		return
	case 'd':
		args := make([]any, len(p.keys))
		for i := range p.keys {
			args[i] = p.keys[i]
		}
		b.Queue(a.sqlFor("d", nil), args...)
		return
	}
	args := make([]any, 0, len(p.keys)+len(p.cols))
	for i := range p.keys {
		args = append(args, p.keys[i])
	}
	cols := make([]*column, 0, len(p.cols))
	for ci, col := range p.cols {
		if p.skipCol != nil && p.skipCol[ci] {
			continue
		}
		args = append(args, p.vals[ci])
		cols = append(cols, col)
	}
	if len(cols) == 0 && len(p.cols) > 0 {
		// Every carried column is skipped (on_conflict skip): the row
		// stays as it is.
		b.Queue("SELECT 1")
		return
	}
	// INSERT … ON CONFLICT checks the NOT NULL constraints of the proposed
	// row even when the row exists: an event that does not carry every
	// NOT NULL column without a default updates first and inserts only
	// when no row was there.
	mode := "u" // INSERT … ON CONFLICT DO UPDATE
	carried := 0
	for _, col := range cols {
		if col.required {
			carried++
		}
	}
	if carried < a.required {
		mode = "U" // UPDATE, then INSERT when no row was updated
	}
	b.Queue(a.sqlFor(mode, cols), args...)
}

// sqlFor returns the statement of a write mode over cols, built once per
// column set: $1.. are the key columns, then cols.
func (a *Applier) sqlFor(mode string, cols []*column) string {
	var sig strings.Builder
	sig.WriteString(mode)
	for _, c := range cols {
		sig.WriteByte(0)
		sig.WriteString(c.name)
	}
	if s, ok := a.sqlCache.Load(sig.String()); ok {
		return s.(string)
	}
	keyCols := make([]string, len(a.key))
	keyParams := make([]string, len(a.key))
	keyCond := make([]string, len(a.key))
	for i, k := range a.key {
		keyCols[i] = k.ident
		keyParams[i] = fmt.Sprintf("$%d::text::%s", i+1, k.typ)
		keyCond[i] = k.ident + " = " + keyParams[i]
	}
	idents := make([]string, len(cols))
	params := make([]string, len(cols))
	sets := make([]string, len(cols))
	for i, c := range cols {
		idents[i] = c.ident
		params[i] = fmt.Sprintf("$%d::text::%s", len(a.key)+i+1, c.typ)
		sets[i] = c.ident + " = EXCLUDED." + c.ident
	}
	allCols := strings.Join(append(append([]string{}, keyCols...), idents...), ", ")
	allParams := strings.Join(append(append([]string{}, keyParams...), params...), ", ")
	var sql string
	switch {
	case mode == "d":
		sql = fmt.Sprintf("DELETE FROM %s WHERE %s", a.tbl.qname, strings.Join(keyCond, " AND "))
	case len(cols) == 0:
		sql = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO NOTHING",
			a.tbl.qname, allCols, allParams, strings.Join(keyCols, ", "))
	case mode == "u":
		sql = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s",
			a.tbl.qname, allCols, allParams, strings.Join(keyCols, ", "), strings.Join(sets, ", "))
	default:
		upd := make([]string, len(cols))
		for i, c := range cols {
			upd[i] = c.ident + " = " + params[i]
		}
		sql = fmt.Sprintf("WITH upd AS (UPDATE %s SET %s WHERE %s RETURNING 1) "+
			"INSERT INTO %s (%s) SELECT %s WHERE NOT EXISTS (SELECT 1 FROM upd) ON CONFLICT (%s) DO UPDATE SET %s",
			a.tbl.qname, strings.Join(upd, ", "), strings.Join(keyCond, " AND "),
			a.tbl.qname, allCols, allParams, strings.Join(keyCols, ", "), strings.Join(sets, ", "))
	}
	a.sqlCache.Store(sig.String(), sql)
	return sql
}

// runChunked runs one statement per event of idx, pipelined, in chunks
// under a savepoint each. A permanent error of an event's statement rolls
// back its chunk, rejects that event alone and runs the rest again from
// the chunk's start. decide, when set, is called with the events still in
// the run before their statements are queued; tail, when set, queues
// statements after the last chunk (they must not fail on an event's
// account: a failure there is transient).
func (a *Applier) runChunked(ctx context.Context, conn *pgx.Conn, plans []*plan, idx []int,
	decide func(live []int), queue func(*pgx.Batch, *plan), read func(pgx.BatchResults, *plan) error, tail func([]int, *pgx.Batch)) error {
	live := append([]int(nil), idx...)
	start := 0 // live[:start] are done: released into the transaction
	for {
		if decide != nil {
			decide(live)
		}
		b := &pgx.Batch{}
		type span struct{ from, to int }
		var chunks []span
		for from := start; from < len(live); from += chunk {
			to := min(from+chunk, len(live))
			chunks = append(chunks, span{from, to})
			b.Queue("SAVEPOINT cdcsync_chunk")
			for _, i := range live[from:to] {
				queue(b, plans[i])
			}
			b.Queue("RELEASE SAVEPOINT cdcsync_chunk")
		}
		nChunked := b.Len()
		if tail != nil {
			tail(live, b)
		}
		if b.Len() == 0 {
			return nil
		}
		br := conn.SendBatch(ctx, b)
		failedAt := -1
		var failErr error
		for _, ch := range chunks {
			if _, err := br.Exec(); err != nil { // SAVEPOINT
				br.Close()
				return err
			}
			for pos := ch.from; pos < ch.to; pos++ {
				if err := read(br, plans[live[pos]]); err != nil {
					failedAt, failErr = pos, err
					break
				}
			}
			if failedAt >= 0 {
				break
			}
			if _, err := br.Exec(); err != nil { // RELEASE
				br.Close()
				return err
			}
			start = ch.to
		}
		if failedAt < 0 {
			for range b.Len() - nChunked { // the tail's statements
				if _, err := br.Exec(); err != nil {
					br.Close()
					return err
				}
			}
			return br.Close()
		}
		br.Close()
		if !permanent(failErr) {
			return failErr
		}
		// Undo the failed chunk, reject its bad event, run again from the
		// chunk's start.
		if _, err := conn.Exec(ctx, "ROLLBACK TO SAVEPOINT cdcsync_chunk; RELEASE SAVEPOINT cdcsync_chunk"); err != nil {
			return err
		}
		p := plans[live[failedAt]]
		p.done = true
		p.out = a.pgRejected(failErr)
		p.confl = nil // not applied: its conflicts were not resolved
		live = append(live[:failedAt:failedAt], live[failedAt+1:]...)
	}
}

// permanent reports whether a statement error is the event's own fault:
// SQLSTATE class 22 (data exception: a value the column type refuses) or
// 23 (integrity constraint violation), or a value a cast cannot make.
func permanent(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch {
	case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"):
		return true
	case pe.Code == "42804", pe.Code == "42846": // datatype_mismatch, cannot_coerce
		return true
	}
	return false
}

func (a *Applier) pgRejected(err error) *apply.Rejected {
	var pe *pgconn.PgError
	errors.As(err, &pe)
	reason := fmt.Sprintf("%s: %s", pe.Code, pe.Message)
	if pe.Detail != "" {
		reason += " (" + pe.Detail + ")"
	}
	h := map[string]string{
		"cdcsync.apply.pg.code":    pe.Code,
		"cdcsync.apply.pg.message": pe.Message,
		"cdcsync.apply.pg.table":   a.tbl.name,
	}
	if pe.ConstraintName != "" {
		h["cdcsync.apply.pg.constraint"] = pe.ConstraintName
	}
	if pe.ColumnName != "" {
		h["cdcsync.apply.pg.column"] = pe.ColumnName
	}
	return &apply.Rejected{Reason: reason, Headers: h, Err: err}
}

// transient wraps a failure that is not the event's own: the batch rolled
// back and will be offered again.
func (a *Applier) transient(err error) error {
	return a.redact(fmt.Errorf("postgres apply to %s: %w", a.tbl.name, err))
}

// maybePrune deletes applied IDs older than the prune window, at most
// once per tenth of the window (and at most once a minute), outside any
// batch transaction.
func (a *Applier) maybePrune(ctx context.Context) {
	window := a.PruneWindow
	if window <= 0 {
		window = topology.DefaultDedupWindow
	}
	every := max(window/10, time.Minute)
	a.pruneMu.Lock()
	if time.Since(a.lastPrune) < every {
		a.pruneMu.Unlock()
		return
	}
	a.lastPrune = time.Now()
	a.pruneMu.Unlock()
	go func() {
		pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n, err := a.Prune(pctx, window)
		if err != nil {
			a.log.Warn("pruning the applied table failed; it runs again later", zap.String("table", a.appliedRaw), zap.Error(a.redact(err)))
			return
		}
		if n > 0 {
			a.log.Info("pruned the applied table", zap.String("table", a.appliedRaw), zap.Int64("rows", n), zap.Duration("older_than", window))
		}
	}()
	_ = ctx
}

// Prune deletes the topology's applied IDs older than window, in steps of
// 10000 rows, and returns how many it deleted.
func (a *Applier) Prune(ctx context.Context, window time.Duration) (int64, error) {
	var total int64
	for {
		tag, err := a.pool.Exec(ctx, `DELETE FROM `+a.applied+` WHERE ctid = ANY (ARRAY(
  SELECT ctid FROM `+a.applied+` WHERE topology = $1 AND applied_at < now() - $2::interval LIMIT 10000))`,
			a.topology, strconv.FormatInt(window.Microseconds(), 10)+" microseconds")
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}
