package topology

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const applyHTTP = `name: crm-apply
systems: [erp, crm]
source:
  topics: [sync.contacts]
  format: cdcsync-json
  system: erp
apply:
  kind: http
  http:
    url: "https://crm.example/api/{entity}/{key.id}"
    secrets_env: [CRM_SECRET, CRM_SECRET_OLD]
`

const applyPG = `name: crm-apply
systems: [erp, crm]
source:
  topics: [sync.contacts]
  format: cdcsync-avro
  system: erp
apply:
  kind: postgres
  batch: {max_events: 100, max_wait: 10ms}
  postgres:
    dsn_env: CRM_PG_DSN
    table: public.contacts
    key: [id]
    columns: {phone: phone_number}
    on_conflict: dlq
`

func TestApplyParses(t *testing.T) {
	p, err := Parse("a.yaml", []byte(applyHTTP))
	if err != nil {
		t.Fatal(err)
	}
	a := p.Apply()
	if !p.IsApply() || a.Kind != ApplyHTTP || a.HTTP.Methods.Create != "POST" || a.HTTP.Methods.Update != "PATCH" ||
		a.HTTP.Methods.Delete != "DELETE" || a.HTTP.Timeout != DefaultHTTPTimeout || a.Batch.MaxEvents != 500 ||
		a.MaxConcurrency != 8 || len(a.HTTP.SecretsEnv) != 2 {
		t.Fatalf("defaults: %+v", a)
	}
	p, err = Parse("b.yaml", []byte(applyPG))
	if err != nil {
		t.Fatal(err)
	}
	pg := p.Apply().Postgres
	if pg.Table != "public.contacts" || pg.Columns["phone"] != "phone_number" || pg.OnConflict != ConflictDLQ ||
		pg.AppliedTable != DefaultAppliedTable || p.Apply().Batch.MaxEvents != 100 {
		t.Fatalf("postgres: %+v", pg)
	}
	if got, want := p.Where("apply.postgres.columns.phone"), "b.yaml:14: apply.postgres.columns.phone"; got != want {
		t.Errorf("Where = %q, want %q", got, want)
	}
	if q, err := Parse("c.yaml", []byte(applyPG+"dedup: {window: 24h}\n")); err != nil || q.Dedup().Window != 24*time.Hour {
		t.Errorf("dedup.window in an apply topology: %v", err)
	}
	if !strings.Contains(p.Describe(), "apply.postgres.on_conflict   dlq") {
		t.Errorf("Describe:\n%s", p.Describe())
	}
}

// TestApplyRefusals breaks one thing at a time.
func TestApplyRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, src, field, reason string
	}{
		{"sink and apply", applyHTTP + "sink: {topic: out, key: [id]}\n", "apply", "sink and apply cannot be used together"},
		{"debezium format", strings.Replace(applyHTTP, "cdcsync-json", "debezium-json", 1), "source.format", "an apply topology reads cdcsync's sync records"},
		{"no secrets", strings.Replace(applyHTTP, "    secrets_env: [CRM_SECRET, CRM_SECRET_OLD]\n", "", 1), "apply.http", "secrets_env or apply.http.secrets_file is required"},
		{"bad placeholder", strings.Replace(applyHTTP, "{key.id}", "{id}", 1), "apply.http.url", "unknown placeholder {id}"},
		{"placeholder in host", strings.Replace(applyHTTP, "crm.example", "{entity}.example", 1), "apply.http.url", "placeholder in the host"},
		{"relative url", strings.Replace(applyHTTP, "https://crm.example", "", 1), "apply.http.url", "absolute http"},
		{"http truncate", applyHTTP + "  truncate: apply\n", "apply.truncate", "a truncate has no key"},
		{"lower-case method", applyHTTP + "    methods: {update: patch}\n", "apply.http.methods.update", "not an HTTP method"},
		{"both dsn", strings.Replace(applyPG, "    dsn_env: CRM_PG_DSN\n", "    dsn_env: CRM_PG_DSN\n    dsn_file: /run/dsn\n", 1), "apply.postgres.dsn_file", "exactly one"},
		{"no key", strings.Replace(applyPG, "    key: [id]\n", "", 1), "apply.postgres.key", "required"},
		{"http options under postgres", applyPG + "  http: {timeout: 1s}\n", "apply.http", "only applies to apply.kind: http"},
		{"dedup key in apply", applyPG + "dedup: {key: content}\n", "dedup.key", "only applies to a sink topology"},
		{"authority in apply", applyPG + "authority: {default_owner: crm}\n", "authority", "only applies to a sink topology"},
		{"tombstones in apply", strings.Replace(applyPG, "  system: erp\n", "  system: erp\n  tombstones: drop\n", 1), "source.tombstones", "no effect in an apply topology"},
		{"source truncate in apply", strings.Replace(applyPG, "  system: erp\n", "  system: erp\n  truncate: pass\n", 1), "source.truncate", "apply.truncate says"},
		{"exactly once", applyPG + "guarantee: exactly_once\n", "guarantee", "does not apply to an apply topology"},
		{"no kind", strings.Replace(applyPG, "  kind: postgres\n", "", 1), "apply.kind", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("a.yaml", []byte(tc.src))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want Errors, got %v", err)
			}
			for _, e := range errs {
				if e.Field == tc.field && strings.Contains(e.Reason, tc.reason) && e.Line > 0 {
					return
				}
			}
			t.Fatalf("no %s error containing %q with a line:\n%v", tc.field, tc.reason, err)
		})
	}
}
