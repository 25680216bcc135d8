package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/topology"
)

const (
	srcTopic = "erp.public.contacts"
	dlqTopic = "dlq.contacts-erp-to-crm"
	topoName = "contacts-erp-to-crm"
	token    = "s3cret"
)

const topoYAML = `name: contacts-erp-to-crm
systems: [erp, crm]
source:
  topics: [erp.public.contacts]
  system: erp
  format: debezium-json
authority:
  owners: {email: crm}
  default_owner: erp
sink:
  topic: sync.crm.{table}
  key: [id]
dlq:
  topic: dlq.contacts-erp-to-crm
`

func plan(t *testing.T, yaml string) *topology.Plan {
	t.Helper()
	p, err := topology.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func clientConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	dlq.ConfigureReplayProducer(cfg)
	return cfg
}

// fixture is a kfake cluster whose DLQ holds three dead letters (two
// decode failures, one route failure) and one record that is not a DLQ
// record, and a console serving it.
type fixture struct {
	cluster *kfake.Cluster
	client  sarama.Client
	srv     *httptest.Server
	sources []*sarama.ConsumerMessage
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, srcTopic), kfake.SeedTopics(2, dlqTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	client, err := sarama.NewClient(c.ListenAddrs(), clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	f := &fixture{cluster: c, client: client}

	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	trace := sarama.RecordHeader{Key: []byte("traceparent"), Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}
	srcs := []struct {
		key, value string
		partition  int32
		f          dlq.Failure
	}{
		{`{"id":1}`, `{"payload":`, 0, dlq.Failure{Stage: dlq.StageDecode, ExceptionClass: "cdc.ErrMalformed", Message: "cdc: malformed record"}},
		{`{"id":2}`, "\x00\x01binary", 1, dlq.Failure{Stage: dlq.StageDecode, ExceptionClass: "cdc.ErrMalformed", Message: "cdc: malformed record"}},
		{`{"id":3}`, `{"payload":{"op":"u"}}`, 2, dlq.Failure{Stage: dlq.StageRoute, ExceptionClass: "*route.KeyError", Message: `route: missing key field "id"`}},
	}
	for _, s := range srcs {
		p, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: srcTopic, Partition: s.partition,
			Key: sarama.StringEncoder(s.key), Value: sarama.StringEncoder(s.value), Headers: []sarama.RecordHeader{trace}})
		if err != nil {
			t.Fatal(err)
		}
		src := &sarama.ConsumerMessage{Topic: srcTopic, Partition: p, Offset: off, Key: []byte(s.key), Value: []byte(s.value),
			Headers: []*sarama.RecordHeader{&trace}, Timestamp: time.Now()}
		f.sources = append(f.sources, src)
		s.f.Topology, s.f.Attempts, s.f.FirstFailure = topoName, 1, time.Now()
		msg := dlq.Record(dlqTopic, src, s.f)
		msg.Partition = 0 // the fixture keeps its DLQ on one partition, in order
		if _, _, err := prod.SendMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	// Not a DLQ record: counted as skipped, never failing the others.
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: dlqTopic, Partition: 1, Value: sarama.StringEncoder("stray")}); err != nil {
		t.Fatal(err)
	}

	cfg.Plans = []*topology.Plan{plan(t, topoYAML)}
	cfg.Connect = func(context.Context) (sarama.Client, error) { return sarama.NewClient(c.ListenAddrs(), clientConfig()) }
	cfg.Log = zaptest.NewLogger(t)
	con, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	con.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) call(t *testing.T, method, path, tok string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json; body %s", method, path, ct, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
	return resp.StatusCode
}

func hwm(t *testing.T, client sarama.Client, topic string, p int32) int64 {
	t.Helper()
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatal(err)
	}
	o, err := client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestDLQSummaryListAndRecord(t *testing.T) {
	f := newFixture(t, Config{Tokens: api.Options{Token: token}})

	var s Summary
	if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq", "", &s); code != 200 {
		t.Fatalf("summary: %d", code)
	}
	if s.Total != 3 || s.Skipped != 1 || s.Topic != dlqTopic {
		t.Fatalf("summary %+v: want 3 records, 1 skipped, topic %s", s, dlqTopic)
	}
	want := []GroupCount{{"decode", "cdc.ErrMalformed", 2}, {"route", "*route.KeyError", 1}}
	if len(s.Groups) != 2 || s.Groups[0] != want[0] || s.Groups[1] != want[1] {
		t.Fatalf("groups %+v, want %+v", s.Groups, want)
	}
	if len(s.ByStage) != 2 || s.ByStage[0] != (Count{"decode", 2}) || len(s.ByException) != 2 {
		t.Fatalf("by stage %+v, by exception %+v", s.ByStage, s.ByException)
	}

	var l RecordList
	if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq/records?stage=decode&exception=cdc.ErrMalformed", "", &l); code != 200 {
		t.Fatalf("records: %d", code)
	}
	if l.Matched != 2 || len(l.Records) != 2 || l.Records[0].Origin != (Origin{srcTopic, 0, f.sources[0].Offset}) {
		t.Fatalf("records %+v", l)
	}
	if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq/records?limit=1", "", &l); code != 200 || l.Matched != 3 || len(l.Records) != 1 {
		t.Fatalf("limit=1: %d %+v", code, l)
	}

	var r Record
	path := "/topologies/" + topoName + "/dlq/records/0/1"
	if code := f.call(t, "GET", path, "", &r); code != 200 {
		t.Fatalf("record: %d", code)
	}
	if r.Origin != (Origin{srcTopic, 1, f.sources[1].Offset}) || r.Stage != "decode" || r.Exception != "cdc.ErrMalformed" {
		t.Fatalf("record %+v", r)
	}
	if r.Key.Encoding != "json" || !strings.Contains(r.Key.Text, `"id": 2`) {
		t.Fatalf("key %+v, want indented JSON", r.Key)
	}
	if r.Value.Encoding != "hex" || !strings.Contains(r.Value.Text, "62 69 6e") {
		t.Fatalf("value %+v, want a hex dump", r.Value)
	}
	if len(r.Headers) < 2 || r.Headers[0] != (Header{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false}) {
		t.Fatalf("headers %+v: want the source's traceparent first", r.Headers)
	}
	var stage bool
	for _, h := range r.Headers[1:] {
		if !h.Error {
			t.Fatalf("header %+v after the original ones is not marked as an error header", h)
		}
		stage = stage || (h.Key == dlq.HeaderStage && h.Value == "decode")
	}
	if !stage {
		t.Fatalf("headers %+v: no %s", r.Headers, dlq.HeaderStage)
	}

	var e map[string]any
	for _, c := range []struct {
		path string
		code int
	}{
		{"/topologies/nope/dlq", 404},
		{"/topologies/nope/dlq/records", 404},
		{"/topologies/" + topoName + "/dlq/records/0/99", 404}, // past the high-water mark
		{"/topologies/" + topoName + "/dlq/records/1/0", 404},  // not a DLQ record
		{"/topologies/" + topoName + "/dlq/records/x/0", 400},  // not a number
		{"/topologies/" + topoName + "/dlq/records?limit=0", 400},
		{"/topologies/" + topoName + "/dlq/records?since=yesterday", 400},
		{"/topologies/" + topoName + "/dlq/replay", 405}, // GET
	} {
		e = nil
		if code := f.call(t, "GET", c.path, "", &e); code != c.code || e["message"] == nil {
			t.Errorf("GET %s: %d %v, want %d with an error message", c.path, code, e, c.code)
		}
	}
}

func TestDLQReplay(t *testing.T) {
	f := newFixture(t, Config{Tokens: api.Options{Token: token}})
	base := "/topologies/" + topoName + "/dlq/replay"
	before := []int64{hwm(t, f.client, srcTopic, 0), hwm(t, f.client, srcTopic, 1), hwm(t, f.client, srcTopic, 2)}

	var r Replay
	if code := f.call(t, "POST", base+"?dry_run=true&stage=decode", "", &r); code != 200 {
		t.Fatalf("dry run: %d", code)
	}
	if !r.DryRun || r.Count != 2 || len(r.Preview) != 2 || r.Written != 0 || r.Refused != "" {
		t.Fatalf("dry run %+v: want 2 records, nothing written", r)
	}
	// No dry_run parameter is a dry run too: a replay is asked for explicitly.
	if code := f.call(t, "POST", base, "", &r); code != 200 || !r.DryRun || r.Count != 3 {
		t.Fatalf("no dry_run: %d %+v", code, r)
	}
	var e map[string]any
	for _, tok := range []string{"", "wrong"} {
		if code := f.call(t, "POST", base+"?dry_run=false", tok, &e); code != 401 || e["message"] == nil {
			t.Fatalf("replay with token %q: %d %v, want 401", tok, code, e)
		}
	}
	for p, o := range before {
		if got := hwm(t, f.client, srcTopic, int32(p)); got != o {
			t.Fatalf("a refused replay wrote to %s/%d: %d -> %d", srcTopic, p, o, got)
		}
	}

	// A replay of another count than the preview's is refused: the DLQ
	// changed since.
	if code := f.call(t, "POST", base+"?dry_run=false&stage=decode&expect=3", token, &e); code != 409 {
		t.Fatalf("replay expecting 3 of 2: %d %v, want 409", code, e)
	}
	if code := f.call(t, "POST", base+"?dry_run=false&expect=x", token, &e); code != 400 {
		t.Fatalf("expect=x: %d, want 400", code)
	}
	r = Replay{}
	if code := f.call(t, "POST", base+"?dry_run=false&stage=decode&expect=2", token, &r); code != 200 {
		t.Fatalf("replay: %d", code)
	}
	if r.DryRun || r.Count != 2 || r.Written != 2 || len(r.Last) != 2 {
		t.Fatalf("replay %+v: want 2 written", r)
	}
	// The decode failures came from partitions 0 and 1; the route one
	// (partition 2) was filtered out.
	for p, grew := range []int64{1, 1, 0} {
		if got := hwm(t, f.client, srcTopic, int32(p)); got != before[p]+grew {
			t.Fatalf("%s/%d: high-water mark %d, want %d", srcTopic, p, got, before[p]+grew)
		}
	}
	cons, err := sarama.NewConsumerFromClient(f.client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(srcTopic, 1, before[1])
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		if string(m.Key) != `{"id":2}` || string(m.Value) != "\x00\x01binary" || len(m.Headers) == 0 || string(m.Headers[0].Key) != "traceparent" {
			t.Fatalf("replayed record %q %q: want the original key, value and headers", m.Key, m.Value)
		}
		for _, h := range m.Headers {
			if strings.HasPrefix(string(h.Key), "__connect.errors.") || strings.HasPrefix(string(h.Key), "cdcsync.errors.") {
				t.Fatalf("replayed record carries the error header %s", h.Key)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replayed record is not in the source topic")
	}
}

func TestDLQReplayRefusals(t *testing.T) {
	// No api_token: state changes are disabled, reads stay open.
	f := newFixture(t, Config{})
	var e map[string]any
	if code := f.call(t, "POST", "/topologies/"+topoName+"/dlq/replay?dry_run=false", "anything", &e); code != 403 {
		t.Fatalf("replay without api_token configured: %d %v, want 403", code, e)
	}
	if code := f.call(t, "POST", "/topologies/"+topoName+"/dlq/replay?dry_run=maybe", "", &e); code != 400 {
		t.Fatalf("dry_run=maybe: %d, want 400", code)
	}
	var s Summary
	if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq", "", &s); code != 200 || s.Total != 3 {
		t.Fatalf("summary: %d %+v", code, s)
	}
}

func TestReadToken(t *testing.T) {
	f := newFixture(t, Config{Tokens: api.Options{Token: token, ReadToken: "reader"}})
	var s Summary
	if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq", "", &s); code != 401 {
		t.Fatalf("read without api_token_read: %d, want 401", code)
	}
	for _, tok := range []string{"reader", token} {
		if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq", tok, &s); code != 200 || s.Total != 3 {
			t.Fatalf("read with %q: %d %+v", tok, code, s)
		}
	}
	// The read token does not change state.
	if code := f.call(t, "POST", "/topologies/"+topoName+"/dlq/replay?dry_run=false", "reader", nil); code != 401 {
		t.Fatalf("replay with the read token: %d, want 401", code)
	}
}

func TestEmptyDLQ(t *testing.T) {
	// The DLQ topic does not exist until the first dead letter: an empty
	// summary, not an error.
	f := newFixture(t, Config{Tokens: api.Options{Token: token}})
	other := strings.ReplaceAll(topoYAML, "dlq.contacts-erp-to-crm", "dlq.never-created")
	con, err := New(Config{Plans: []*topology.Plan{plan(t, other)}, Log: zaptest.NewLogger(t),
		Connect: func(context.Context) (sarama.Client, error) {
			return sarama.NewClient(f.cluster.ListenAddrs(), clientConfig())
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	con.Register(mux)
	f.srv = httptest.NewServer(mux)
	defer f.srv.Close()
	var s Summary
	if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq", "", &s); code != 200 || s.Total != 0 || s.Groups == nil {
		t.Fatalf("empty DLQ: %d %+v", code, s)
	}
}

func TestPages(t *testing.T) {
	f := newFixture(t, Config{Tokens: api.Options{Token: token}})
	get := func(path string) (int, string, string) {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	// The pages load nothing from elsewhere and cannot be framed (their
	// buttons change state).
	resp, err := http.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	code, ct, body := get("/")
	if code != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, `href="/console/topologies/`+topoName+`"`) {
		t.Fatalf("GET /: %d %s\n%s", code, ct, body)
	}
	code, _, body = get("/console/topologies/" + topoName)
	if code != 200 || !strings.Contains(body, `data-topology="`+topoName+`"`) || !strings.Contains(body, dlqTopic) {
		t.Fatalf("topology page: %d\n%s", code, body)
	}
	code, _, body = get("/console/topologies/" + topoName + "/dlq/0/2")
	if code != 200 || !strings.Contains(body, `data-partition="0" data-offset="2"`) {
		t.Fatalf("record page: %d\n%s", code, body)
	}
	for p, want := range map[string]string{"/console/static/console.js": "text/javascript", "/console/static/console.css": "text/css"} {
		if code, ct, body := get(p); code != 200 || len(body) < 500 || !strings.HasPrefix(ct, want) {
			t.Fatalf("GET %s: %d, %s, %d bytes", p, code, ct, len(body))
		}
	}
	for _, p := range []string{"/console/topologies/nope", "/console/topologies/" + topoName + "/dlq/a/b", "/nothing-here",
		"/console/static/", "/console/static/index.html"} { // no listing, no templates
		if code, _, _ := get(p); code/100 != 4 {
			t.Errorf("GET %s: %d, want 4xx", p, code)
		}
	}
}

func TestDLQTruncated(t *testing.T) {
	// A DLQ larger than MaxEntries is read up to it, and every answer says
	// it is cut rather than presenting a partial count as the whole.
	f := newFixture(t, Config{Tokens: api.Options{Token: token}, MaxEntries: 2})
	var s Summary
	if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq", "", &s); code != 200 || s.Total != 2 || !s.Truncated {
		t.Fatalf("summary: %d %+v, want 2 records, truncated", code, s)
	}
	var r Replay
	if code := f.call(t, "POST", "/topologies/"+topoName+"/dlq/replay?dry_run=true", "", &r); code != 200 || r.Count != 2 || !r.Truncated {
		t.Fatalf("dry run: %d %+v, want 2 records, truncated", code, r)
	}
	var l RecordList
	if code := f.call(t, "GET", "/topologies/"+topoName+"/dlq/records?stage=route", "", &l); code != 200 || l.Matched != 0 || !l.Truncated {
		t.Fatalf("records: %d %+v, want the route failure (third) not read, truncated", code, l)
	}
}

func TestPagesWithReadToken(t *testing.T) {
	// Under api_token_read the page frames (a browser cannot send the
	// token when it navigates) name no topology and no topic.
	f := newFixture(t, Config{Tokens: api.Options{Token: token, ReadToken: "reader"}})
	for _, p := range []string{"/", "/console/topologies/" + topoName, "/console/topologies/" + topoName + "/dlq/0/1"} {
		resp, err := http.Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(b), dlqTopic) || strings.Contains(string(b), srcTopic) {
			t.Errorf("GET %s: %d, names a topic:\n%s", p, resp.StatusCode, b)
		}
		if p == "/" && strings.Contains(string(b), topoName) {
			t.Errorf("GET /: names the topology:\n%s", b)
		}
	}
}
