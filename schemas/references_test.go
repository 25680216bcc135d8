package schemas

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Apicurio's Connect converter, by default, registers Debezium's source
// block as a schema of its own and refers to it with a Confluent schema
// reference. WriterSchema must hand the decoder one self-contained schema.
func TestWriterSchemaResolvesReferences(t *testing.T) {
	reg, c := newRegistry(t)
	const source = `{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[{"name":"lsn","type":["null","long"],"default":null}]}`
	if _, _, err := reg.RegisterSchema("io.debezium.connector.postgresql.Source", sr.Schema{Schema: source}); err != nil {
		t.Fatal(err)
	}
	const envelope = `{"type":"record","name":"Envelope","namespace":"shop.public.customers","fields":[` +
		`{"name":"source","type":"io.debezium.connector.postgresql.Source"},` +
		`{"name":"previous","type":["null","io.debezium.connector.postgresql.Source"],"default":null},` +
		`{"name":"op","type":"string"}]}`
	id, _, err := reg.RegisterSchema("shop.public.customers-value", sr.Schema{Schema: envelope, References: []sr.SchemaReference{
		{Name: "io.debezium.connector.postgresql.Source", Subject: "io.debezium.connector.postgresql.Source", Version: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	text, err := c.WriterSchema(id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(text, `"fields"`) != 2 {
		t.Errorf("the referenced record is not defined exactly once: %s", text)
	}
	codec, err := goavro.NewCodec(text)
	if err != nil {
		t.Fatalf("the dereferenced schema does not compile: %v\n%s", err, text)
	}
	body, err := codec.BinaryFromNative(nil, map[string]any{
		"source":   map[string]any{"lsn": goavro.Union("long", int64(42))},
		"previous": nil,
		"op":       "c",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := codec.NativeFromBinary(body); err != nil {
		t.Fatal(err)
	}

	// A referenced version the registry no longer serves is an unknown
	// schema: permanent, the record goes to the DLQ.
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/subjects/io.debezium.connector.postgresql.Source/versions/") {
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error_code":40402,"message":"Version 1 not found."}`))
			return true
		}
		return false
	})
	fresh := NewClient(reg.URL(), ClientOptions{Timeout: time.Second})
	if _, err := fresh.WriterSchema(id); !errors.Is(err, cdc.ErrUnknownSchema) {
		t.Errorf("missing referenced version: err = %v, want cdc.ErrUnknownSchema", err)
	}
}
