package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDirectory(t *testing.T) {
	plans, err := Load("testdata/valid")
	if err != nil {
		t.Fatal(err)
	}
	// README.txt is ignored; files come in name order.
	if len(plans) != 2 || plans[0].Name() != "contacts-erp-to-crm" || plans[1].Name() != "orders-outbox" {
		t.Fatalf("got %d plans: %v", len(plans), plans)
	}
	o := plans[1]
	if o.File() != filepath.Join("testdata", "valid", "orders-outbox.yml") {
		t.Errorf("File = %q", o.File())
	}
	if !o.MatchesTopic("shop.public.orders") || o.Guarantee() != ExactlyOnce || o.CommitInterval().String() != "250ms" ||
		o.SubjectStrategy() != SubjectTopicRecord || o.Tombstones() != TombstonesDrop || o.Tolerance() != TolerateNone ||
		o.Dedup().Key != DedupField || o.Dedup().Field != "event_id" || o.Format() != DebeziumAvro {
		t.Errorf("orders-outbox plan:\n%s", o.Describe())
	}
	if got := o.SinkTopic("shop", "public", "orders", "orders"); got != "shop.public.orders.synced" {
		t.Errorf("SinkTopic = %q", got)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDuplicateNames(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":      minimalDoc,
		"b.yml":       "# same name as a.yaml\n" + minimalDoc,
		"c.yaml.bak":  minimalDoc,
		".hidden.yml": minimalDoc,
		"notes.txt":   "not yaml",
	})
	_, err := Load(dir)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	e := errs[0]
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yml")
	if e.File != b || e.Line != 2 || e.Field != "name" || !errors.Is(err, ErrDuplicateName) {
		t.Errorf("got %v", e)
	}
	if want := `topology "minimal" is already defined in ` + a + ":1"; e.Reason != want {
		t.Errorf("reason %q, want %q", e.Reason, want)
	}
}

func TestLoadCollectsAcrossFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": strings.Replace(minimalDoc, "format: debezium-avro", "format: avro", 1),
		"b.yaml": "",
		"c.yaml": minimalDoc,
	})
	plans, err := Load(dir, filepath.Join(dir, "missing.yaml"))
	if plans != nil {
		t.Errorf("got plans despite errors")
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	if !errors.Is(errs[0], ErrRead) || !errors.Is(errs[0], os.ErrNotExist) {
		t.Errorf("missing file: %v", errs[0])
	}
	if errs[1].File != filepath.Join(dir, "a.yaml") || errs[1].Field != "source.format" || errs[1].Line != 3 {
		t.Errorf("a.yaml: %v", errs[1])
	}
	if errs[2].File != filepath.Join(dir, "b.yaml") || !errors.Is(errs[2], ErrMissing) {
		t.Errorf("b.yaml: %v", errs[2])
	}
}

func TestLoadFilesAndNothing(t *testing.T) {
	dir := writeFiles(t, map[string]string{"topology.conf": minimalDoc, "notes.txt": ""})
	// A file named directly loads whatever its extension.
	plans, err := Load(filepath.Join(dir, "topology.conf"))
	if err != nil || len(plans) != 1 {
		t.Fatalf("Load(file) = %v, %v", plans, err)
	}
	// Naming the same file twice loads it once rather than reporting a
	// duplicate name.
	if plans, err := Load(dir+"/topology.conf", filepath.Join(dir, "topology.conf")); err != nil || len(plans) != 1 {
		t.Errorf("same file twice: %v, %v", plans, err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrMissing) {
		t.Errorf("directory without topologies: %v", err)
	}
	if _, err := Load(); !errors.Is(err, ErrMissing) {
		t.Errorf("no paths: %v", err)
	}
}

func TestLoadFileInvalidTestdata(t *testing.T) {
	if _, err := Load("testdata/invalid"); err == nil {
		t.Fatal("testdata/invalid loaded")
	}
}

func TestDescribe(t *testing.T) {
	p, err := Parse("minimal.yaml", []byte(minimalDoc))
	if err != nil {
		t.Fatal(err)
	}
	d := p.Describe()
	for _, want := range []string{
		"topology minimal (minimal.yaml)\n",
		"consumer group               cdcsync.minimal\n",
		"ledger topic                 minimal.ledger\n",
		"source.topics                erp.public.t\n",
		"source.tombstones            pass  (default)\n",
		"dedup.window                 168h  (default)\n",
		"authority.default_owner      erp  (default: source.system)\n",
		"sink.format                  json  (default)\n",
		"dlq.topic                    dlq.minimal  (default: dlq.<name>)\n",
		"errors.retry.initial         100ms  (default)\n",
		"errors.retry.max_elapsed     0 (retry forever)  (default)\n",
		"errors.breaker.failures      5  (default)\n",
		"errors.breaker.open          1s  (default)\n",
		"guarantee                    at_least_once  (default)\n",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q:\n%s", want, d)
		}
	}
	p, err = Parse("contacts.yaml", []byte(validDoc))
	if err != nil {
		t.Fatal(err)
	}
	d = p.Describe()
	for _, want := range []string{
		"authority.owners.email       crm\n",
		"authority.default_owner      crm\n",
		"dedup.window                 168h\n", // written, so not marked
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q:\n%s", want, d)
		}
	}
}
