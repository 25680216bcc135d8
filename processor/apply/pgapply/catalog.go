package pgapply

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// column is one column of the target table as the catalog gives it.
type column struct {
	name  string
	ident string // quoted identifier
	typ   string // format_type without typmod: the cast target of input text
	array bool
	elem  kind   // the conversion of the value (of each element for an array)
	cmp   string // how a before value compares: "" typed (IS NOT DISTINCT FROM), "jsonb", "text"
	gen   bool   // generated column: never written
	// required: NOT NULL without a default, so an INSERT … ON CONFLICT
	// must carry it even when the row exists.
	required bool
}

// table is the target table.
type table struct {
	qname string // schema.table, quoted
	name  string // schema.table as the messages print it
	cols  map[string]*column
}

// readTable reads the table from the catalog. found is false when the
// table does not exist.
func readTable(ctx context.Context, conn *pgx.Conn, name string) (*table, bool, error) {
	var oid uint32
	var schema, rel string
	var relkind string
	err := conn.QueryRow(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1)`, name).Scan(&oid, &schema, &rel, &relkind)
	if err == pgx.ErrNoRows {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if relkind != "r" && relkind != "p" {
		return nil, false, nil
	}
	t := &table{
		qname: pgx.Identifier{schema, rel}.Sanitize(),
		name:  schema + "." + rel,
		cols:  map[string]*column{},
	}
	rows, err := conn.Query(ctx, `SELECT a.attname, format_type(a.atttypid, NULL), format_type(b.oid, NULL),
  b.typcategory = 'A',
  COALESCE((SELECT format_type(CASE WHEN e.typtype = 'd' THEN e.typbasetype ELSE e.oid END, NULL)
            FROM pg_type e WHERE e.oid = b.typelem AND b.typcategory = 'A'), ''),
  a.attgenerated <> '',
  a.attnotnull AND NOT a.atthasdef
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, oid)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var c column
		var base, elem string
		if err := rows.Scan(&c.name, &c.typ, &base, &c.array, &elem, &c.gen, &c.required); err != nil {
			return nil, false, err
		}
		c.ident = pgx.Identifier{c.name}.Sanitize()
		scalar := base
		if c.array {
			scalar = elem
		}
		c.elem = kindOf(scalar)
		switch scalar {
		case "json":
			c.cmp = "jsonb" // json has no equality operator
		case "xml", "point", "line", "lseg", "box", "path", "polygon", "circle":
			c.cmp = "text"
		}
		t.cols[c.name] = &c
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return t, true, nil
}

// hasUniqueIndex reports whether a unique index (or the primary key) covers
// exactly cols, as INSERT … ON CONFLICT (cols) needs.
func hasUniqueIndex(ctx context.Context, conn *pgx.Conn, tableName string, cols []string) (bool, error) {
	want := append([]string(nil), cols...)
	sort.Strings(want)
	var ok bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (
  SELECT 1 FROM pg_index i
  WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
    AND i.indnkeyatts = cardinality($2::text[])
    AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
         WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey[0:i.indnkeyatts-1])) = $2::text[])`,
		tableName, want).Scan(&ok)
	return ok, err
}

// appliedDDL is the table of applied event IDs, created when missing.
func appliedDDL(qname, indexName string) string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  topology   text COLLATE "C" NOT NULL,
  event_id   text COLLATE "C" NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topology, event_id)
);
CREATE INDEX IF NOT EXISTS %s ON %s USING brin (applied_at)`, qname, indexName, qname)
}

// splitName splits "schema.table" (unquoted) into its parts; a name
// without a schema gets defSchema.
func splitName(name, defSchema string) (string, string) {
	if s, t, ok := strings.Cut(name, "."); ok {
		return s, t
	}
	return defSchema, name
}
