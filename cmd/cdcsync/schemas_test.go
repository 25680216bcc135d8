package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

const schemasTopology = `name: customers-erp
systems: [erp, crm]
source: {topics: [pg.public.customers], system: erp, format: debezium-avro}
authority:
  owners: {email: crm, phone: erp, FIELDS}
sink: {topic: sync.customers, key: [id], format: avro}
`

func seedSource(t *testing.T, reg *srfake.Registry) {
	for _, part := range []string{"key", "value"} {
		b, err := os.ReadFile("../../processor/cdc/testdata/avro/pg_update." + part + ".avsc")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := reg.RegisterSchema("pg.public.customers-"+part, sr.Schema{Schema: string(b)}); err != nil {
			t.Fatal(err)
		}
	}
}

func runSchemasCheck(t *testing.T, url, doc string) (string, error) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := cmdSchemas(context.Background(), []string{"--registry", url, path}, &out, &errb)
	return out.String(), err
}

func TestSchemasCheck(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	seedSource(t, reg)

	out, err := runSchemasCheck(t, reg.URL(), strings.Replace(schemasTopology, ", FIELDS", ", city: erp", 1))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "all checks passed") || !strings.Contains(out, "will be registered at start") {
		t.Fatalf("output:\n%s", out)
	}

	// A field the source does not have.
	out, err = runSchemasCheck(t, reg.URL(), strings.Replace(schemasTopology, ", FIELDS", ", fax: crm", 1))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, `FAIL  pg.public.customers-value  authority.owners.fax: field "fax" not in version 1`) {
		t.Fatalf("missing field: %v\n%s", err, out)
	}

	// An incompatible output subject.
	reg.SeedSchema("sync.customers-value", 1, 900, sr.Schema{Schema: `{"type":"record","name":"Event","namespace":"io.cdcsync","fields":[{"name":"legacy","type":"string"}]}`})
	out, err = runSchemasCheck(t, reg.URL(), strings.Replace(schemasTopology, ", FIELDS", "", 1))
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "FAIL  sync.customers-value  sink.format: output schema is incompatible under BACKWARD with version 1") {
		t.Fatalf("incompatible output: %v\n%s", err, out)
	}
}

func TestSchemasCheckRegistryDown(t *testing.T) {
	out, err := runSchemasCheck(t, "http://127.0.0.1:1", strings.Replace(schemasTopology, ", FIELDS", "", 1))
	if err == nil || !strings.Contains(err.Error(), "schema registry unavailable") {
		t.Fatalf("registry down: %v\n%s", err, out)
	}
}
