package integration

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/apply/pgapply/pgtest"
	"github.com/cdcsync/cdcsync/topology"
)

// TestKfakeApplyPostgres runs apply.kind postgres through the framework:
// a sink topology and a postgres apply topology in one worker, kfake and a
// throwaway PostgreSQL. Every key ends with its last change, each event is
// recorded once in the applied table, and nothing goes to the DLQ. A
// mapped column that does not exist refuses the worker at the option's
// line with ErrConfig.
func TestKfakeApplyPostgres(t *testing.T) {
	pg := pgtest.StartTB(t)
	if _, err := pg.Psql("", `CREATE TABLE crm_contacts (id bigint PRIMARY KEY, phone text, address text, city text,
		balance numeric, updated_at bigint, first_name text, last_name text, email text)`); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KFAKE_APPLY_PG_DSN", pg.DSN(""))
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic(), "sync.contacts")
	sink := mustPlan(t, fmt.Sprintf(contactsTopology, "contacts-sync", src.Topic(), "sync.contacts"))
	const applyDoc = `name: crm-apply
systems: [erp, crm]
source: {topics: [sync.contacts], system: erp, format: cdcsync-json}
apply:
  kind: postgres
  batch: {max_events: 100, max_wait: 20ms}
  postgres:
    dsn_env: KFAKE_APPLY_PG_DSN
    table: crm_contacts
    key: [id]
%s`
	// The refusal first: no worker starts with a column the table lacks.
	bad := mustPlan(t, fmt.Sprintf(applyDoc, "    columns: {phone: phone_number}\n"))
	cfg := processor.DefaultConfig()
	cfg.Brokers = st.Brokers()
	if _, err := processor.New(cfg, []*topology.Plan{sink, bad}, zap.NewNop()); !errors.Is(err, processor.ErrConfig) ||
		!strings.Contains(err.Error(), "TestKfakeApplyPostgres.yaml:11: apply.postgres.columns.phone") {
		t.Fatalf("unknown column: %v, want ErrConfig at the option's line", err)
	}

	w := makeWorkload(src, 30, 500, 0.1, 7)
	wk := startWorker(t, st.Brokers(), "apply-pg", sink, mustPlan(t, fmt.Sprintf(applyDoc, "")))
	produce(t, st.Brokers(), w.Records)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := pg.Psql("", "SELECT count(*) FROM cdcsync_applied")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(out)); n == w.Unique {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%d events in the applied table after 60 s, want %d", n, w.Unique)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := pg.Psql("", "SELECT id, phone FROM crm_contacts ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != len(w.PerKey) {
		t.Errorf("%d rows, want %d keys", len(rows), len(w.PerKey))
	}
	for _, r := range rows {
		f := strings.Split(r, "\t")
		id, _ := strconv.ParseInt(f[0], 10, 64)
		if want := fmt.Sprintf("seq-%d-%d", id, w.PerKey[id]); f[1] != want {
			t.Errorf("row %d: phone %q, want its last change %q", id, f[1], want)
		}
	}
	if s := wk.w.Stats("crm-apply"); s.DLQ != 0 || s.Out != int64(w.Unique) {
		t.Errorf("crm-apply stats %+v: want %d applied, no DLQ", s, w.Unique)
	}
}
