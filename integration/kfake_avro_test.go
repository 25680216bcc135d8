package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

const avroTopic = "pg.public.customers"

const avroTopology = `name: %s
systems: [erp, crm]
source: {topics: [pg.public.customers], system: erp, format: debezium-avro}
authority: {default_owner: erp}
sink: {topic: %s, key: [id], format: avro}
`

// avroStack starts kfake and srfake.
func avroStack(t *testing.T) *embedded.Stack {
	t.Helper()
	st, err := embedded.Start(embedded.Options{Topics: []string{avroTopic}, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// startAvroWorker is startWorker with the embedded registry configured.
func startAvroWorker(t *testing.T, st *embedded.Stack, name string, plans ...*topology.Plan) *worker {
	t.Helper()
	return startWorkerWithRegistry(t, st.Brokers(), st.RegistryURL(), name, plans...)
}

// avroWriter makes Debezium Avro records of the customers table from the
// fixture in processor/cdc/testdata/avro, in two writer versions: v2 adds
// a nullable "loyalty" column.
type avroWriter struct {
	keyID, v1ID, v2ID int
	key, v1, v2       *goavro.Codec
	base              map[string]any // the fixture's update, native form
}

func readFixture(t *testing.T, name string) string {
	b, err := os.ReadFile("../processor/cdc/testdata/avro/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newAvroWriter(t *testing.T, reg interface {
	RegisterSchema(string, sr.Schema) (int, int, error)
}) *avroWriter {
	keyText, v1Text := readFixture(t, "pg_update.key.avsc"), readFixture(t, "pg_update.value.avsc")
	v2Text := addLoyalty(t, v1Text)
	w := &avroWriter{}
	var err error
	for _, s := range []struct {
		subject, text string
		id            *int
		codec         **goavro.Codec
	}{{avroTopic + "-key", keyText, &w.keyID, &w.key}, {avroTopic + "-value", v1Text, &w.v1ID, &w.v1}, {avroTopic + "-value", v2Text, &w.v2ID, &w.v2}} {
		if *s.id, _, err = reg.RegisterSchema(s.subject, sr.Schema{Schema: s.text}); err != nil {
			t.Fatal(err)
		}
		if *s.codec, err = goavro.NewCodec(s.text); err != nil {
			t.Fatal(err)
		}
	}
	body := []byte(readFixture(t, "pg_update.value.bin"))[5:]
	native, _, err := w.v1.NativeFromBinary(body)
	if err != nil {
		t.Fatal(err)
	}
	w.base = native.(map[string]any)
	return w
}

// addLoyalty adds an optional column at the end of the Value record
// (defined in "before", referenced by name in "after").
func addLoyalty(t *testing.T, v1 string) string {
	var env map[string]any
	if err := json.Unmarshal([]byte(v1), &env); err != nil {
		t.Fatal(err)
	}
	before := env["fields"].([]any)[0].(map[string]any)
	value := before["type"].([]any)[1].(map[string]any)
	value["fields"] = append(value["fields"].([]any),
		map[string]any{"name": "loyalty", "type": []any{"null", "string"}, "default": nil})
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// record makes an update of customer id at source position lsn.
func (w *avroWriter) record(t *testing.T, id, lsn int64, v2 bool) demo.Record {
	key, err := w.key.BinaryFromNative(cdc.AppendWireHeader(nil, w.keyID), map[string]any{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	after := map[string]any{}
	for k, v := range w.base["after"].(map[string]any)["pg.public.customers.Value"].(map[string]any) {
		after[k] = v
	}
	after["id"] = id
	after["email"] = fmt.Sprintf("c%d-%d@example.com", id, lsn)
	codec, sid := w.v1, w.v1ID
	if v2 {
		after["loyalty"] = goavro.Union("string", "gold")
		codec, sid = w.v2, w.v2ID
	}
	src := map[string]any{}
	for k, v := range w.base["source"].(map[string]any) {
		src[k] = v
	}
	src["lsn"] = goavro.Union("long", lsn)
	v := map[string]any{}
	for k, x := range w.base {
		v[k] = x
	}
	v["before"] = nil
	v["after"] = goavro.Union("pg.public.customers.Value", after)
	v["source"] = src
	value, err := codec.BinaryFromNative(cdc.AppendWireHeader(nil, sid), v)
	if err != nil {
		t.Fatal(err)
	}
	return demo.Record{Topic: avroTopic, Key: key, Value: value}
}

// checkAvroSink reads the sink topic: every value Confluent-framed Avro of
// the event schema with the schema headers. It returns the event IDs and
// how many carry the v2 column.
func checkAvroSink(t *testing.T, brokers []string, topic string) (ids map[string]int, loyalty int) {
	return checkAvroMsgs(t, readAll(t, brokers, topic))
}

// checkAvroMsgs is checkAvroSink on records already read.
func checkAvroMsgs(t *testing.T, msgs []*sarama.ConsumerMessage) (ids map[string]int, loyalty int) {
	codec, err := goavro.NewCodec(schemas.EventSchema)
	if err != nil {
		t.Fatal(err)
	}
	ids = map[string]int{}
	for _, m := range msgs {
		id, body, err := cdc.SplitWire(m.Value)
		if err != nil {
			t.Fatalf("sink record %d/%d: %v", m.Partition, m.Offset, err)
		}
		hs := map[string]string{}
		for _, h := range m.Headers {
			hs[string(h.Key)] = string(h.Value)
		}
		if hs[schemas.HeaderSchemaID] != strconv.Itoa(id) || hs[schemas.HeaderSchemaVersion] == "" {
			t.Fatalf("sink record %d/%d: schema headers %v, framing ID %d", m.Partition, m.Offset, hs, id)
		}
		native, rest, err := codec.NativeFromBinary(body)
		if err != nil || len(rest) != 0 {
			t.Fatalf("sink record %d/%d: %v", m.Partition, m.Offset, err)
		}
		ev := native.(map[string]any)
		ids[ev["id"].(string)]++
		if f, ok := ev["fields"].(map[string]any); ok {
			if _, ok := f["map"].(map[string]any)["loyalty"]; ok {
				loyalty++
			}
		}
	}
	return ids, loyalty
}

// TestKfakeAvroEvolution: a column is added mid-stream; records of both
// writer versions decode side by side and every change reaches the Avro
// sink once.
func TestKfakeAvroEvolution(t *testing.T) {
	st := avroStack(t)
	w := newAvroWriter(t, st.Registry)
	plan := mustPlan(t, fmt.Sprintf(avroTopology, "avro-evolution", "sync.avro-evolution"))
	var recs []demo.Record
	const n = 2000
	for i := range n {
		recs = append(recs, w.record(t, int64(i%200), int64(1000+i), i >= n/2))
	}
	produce(t, st.Brokers(), recs)
	wk := startAvroWorker(t, st, "w1", plan)
	waitProcessed(t, st.Brokers(), 2*time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	if s := wk.w.Stats(plan.Name()); s.DLQ != 0 {
		t.Fatalf("%d records in the DLQ", s.DLQ)
	}
	ids, loyalty := checkAvroSink(t, st.Brokers(), "sync.avro-evolution")
	if len(ids) != n {
		t.Fatalf("%d distinct events in the sink, want %d", len(ids), n)
	}
	if loyalty != n/2 {
		t.Fatalf("%d events carry the v2 column, want %d", loyalty, n/2)
	}
}

// TestKfakeAvroRegistryDown: the registry answers 503 for 10 s while
// records of a writer schema the worker has not seen yet flow. That is
// transient: nothing goes to the DLQ, nothing is lost, and processing
// resumes when the registry is back.
func TestKfakeAvroRegistryDown(t *testing.T) {
	st := avroStack(t)
	w := newAvroWriter(t, st.Registry)
	plan := mustPlan(t, fmt.Sprintf(avroTopology, "avro-down", "sync.avro-down"))
	var refused atomic.Int64
	var down atomic.Bool
	st.Registry.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !down.Load() {
			return false
		}
		refused.Add(1)
		rw.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	const n = 1000
	var first, second []demo.Record
	for i := range n {
		r := w.record(t, int64(i%100), int64(5000+i), i >= n/2)
		if i < n/2 {
			first = append(first, r)
		} else {
			second = append(second, r)
		}
	}
	wk := startAvroWorker(t, st, "w1", plan)
	produce(t, st.Brokers(), first)
	time.Sleep(2 * time.Second)
	down.Store(true)
	produce(t, st.Brokers(), second) // v2: its schema must be fetched
	time.Sleep(10 * time.Second)
	down.Store(false)
	waitProcessed(t, st.Brokers(), 2*time.Minute, plan)
	if err := wk.stop(); err != nil {
		t.Fatal(err)
	}
	if refused.Load() == 0 {
		t.Fatal("the outage refused no request: the test did not test anything")
	}
	if s := wk.w.Stats(plan.Name()); s.DLQ != 0 {
		t.Fatalf("%d records went to the DLQ during a registry outage", s.DLQ)
	}
	ids, _ := checkAvroSink(t, st.Brokers(), "sync.avro-down")
	if len(ids) != n {
		t.Fatalf("%d distinct events in the sink, want %d: changes were lost", len(ids), n)
	}
}

// TestKfakeAvroIncompatibleOutput: an output subject holding a schema the
// event schema cannot read under BACKWARD is refused by schemas check and
// at start.
func TestKfakeAvroIncompatibleOutput(t *testing.T) {
	st := avroStack(t)
	newAvroWriter(t, st.Registry)
	st.Registry.SeedSchema("sync.avro-incompat-value", 1, 9000, sr.Schema{
		Schema: `{"type":"record","name":"Event","namespace":"io.cdcsync","fields":[{"name":"legacy","type":"string"}]}`})
	plan := mustPlan(t, fmt.Sprintf(avroTopology, "avro-incompat", "sync.avro-incompat"))

	findings, err := schemas.CheckPlan(schemas.NewClient(st.RegistryURL(), schemas.ClientOptions{}), plan)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, f := range findings {
		if !f.OK {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("schemas check: %v", findings)
	}

	wk := startAvroWorker(t, st, "w1", plan)
	err, stopped := wk.wait(30 * time.Second)
	if !stopped {
		t.Fatal("the worker started with an incompatible output schema")
	}
	if !errors.Is(err, schemas.ErrIncompatible) {
		t.Fatalf("worker stopped with %v, want schemas.ErrIncompatible", err)
	}
}

// TestKfakeAvroRegistryAccessDenied: a registry that refuses the worker's
// credentials (401) stops the topology with a clear access error. It used
// to be folded into "registry unavailable" and retried forever.
func TestKfakeAvroRegistryAccessDenied(t *testing.T) {
	st := avroStack(t)
	w := newAvroWriter(t, st.Registry)
	plan := mustPlan(t, fmt.Sprintf(avroTopology, "avro-denied", "sync.avro-denied"))
	var refused atomic.Int64
	var deny atomic.Bool
	st.Registry.Intercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !deny.Load() {
			return false
		}
		refused.Add(1)
		rw.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		rw.WriteHeader(http.StatusUnauthorized)
		_, _ = rw.Write([]byte(`{"error_code":401,"message":"Unauthorized"}`))
		return true
	})
	wk := startAvroWorker(t, st, "w1", plan)
	produce(t, st.Brokers(), []demo.Record{w.record(t, 1, 5000, false)})
	waitProcessed(t, st.Brokers(), time.Minute, plan)
	deny.Store(true)
	produce(t, st.Brokers(), []demo.Record{w.record(t, 2, 5001, true)}) // v2: its schema must be fetched
	err, stopped := wk.wait(time.Minute)
	if !stopped {
		t.Fatal("the worker kept running (retrying?) while the registry refused its credentials")
	}
	if refused.Load() == 0 {
		t.Fatal("the registry refused no request: the test did not test anything")
	}
	if !processor.IsAccessFailure(err) || !errors.Is(err, schemas.ErrAccessDenied) {
		t.Fatalf("Run returned %v; want an access failure wrapping schemas.ErrAccessDenied", err)
	}
	if s := wk.w.Stats(plan.Name()); s.DLQ != 0 {
		t.Fatalf("%d records went to the DLQ on a refused registry login", s.DLQ)
	}
}
