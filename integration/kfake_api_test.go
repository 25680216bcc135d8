package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/topology"
)

const apiToken = "s3cret-token"

// startAPIWorker is startWorker with the HTTP server on a free port and
// an api_token, so the REST API can pause, resume and restart.
func startAPIWorker(t *testing.T, brokers []string, name string, plans ...*topology.Plan) (*worker, string) {
	t.Helper()
	cfg := processor.DefaultConfig()
	cfg.Brokers = brokers
	cfg.ClientID = name
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.APIToken = apiToken
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.Heartbeat = 500 * time.Millisecond
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).With(zap.String("worker", name))
	w, err := processor.New(cfg, plans, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { _ = wk.stop() })
	deadline := time.Now().Add(10 * time.Second)
	for w.HTTPAddr() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("worker %s: the HTTP server did not start", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return wk, "http://" + w.HTTPAddr()
}

// call sends a request and decodes the JSON answer into out (when not
// nil); it returns the status code and the raw body.
func call(t *testing.T, method, url, token string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); strings.Contains(url, "/topologies") && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, url, ct)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

func status(t *testing.T, base, name string) api.Status {
	t.Helper()
	var s api.Status
	if code, body := call(t, http.MethodGet, base+"/topologies/"+name+"/status", "", &s); code != http.StatusOK {
		t.Fatalf("status: %d %s", code, body)
	}
	return s
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heldBy reports whether the worker answering at base holds partitions,
// every one of them paused, and says so in its own status.
func heldBy(t *testing.T, base, name string) bool {
	s := status(t, base, name)
	self := s.Workers[0]
	if !self.Self || self.State != api.StatePaused || s.State != api.StatePaused || len(self.Partitions) == 0 {
		return false
	}
	for _, p := range self.Partitions {
		if !p.Paused {
			return false
		}
	}
	return true
}

// Pause through worker A stops consumption on A and B (and on a worker C
// started during the pause, which comes up paused); records produced
// meanwhile are not consumed and show as true lag in the status; resume
// through B restarts all three and every change arrives exactly once.
func TestKfakeAPIPauseResume(t *testing.T) { testPauseResume(t, "at_least_once") }

// The same under exactly_once: the held claims' transactional producers
// stay open and idle, and resume reads on inside new transactions.
func TestKfakeAPIPauseResumeExactlyOnce(t *testing.T) { testPauseResume(t, "exactly_once") }

func testPauseResume(t *testing.T, guarantee string) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 4, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "apipause", src.Topic(), "sync.apipause")+"guarantee: "+guarantee+"\n")
	w := makeWorkload(src, 200, 4000, 0.10, 21)
	first, second := w.Records[:2000], w.Records[2000:]
	readSink := func() []*sarama.ConsumerMessage {
		if guarantee == "exactly_once" {
			return readCommitted(t, brokers, "sync.apipause")
		}
		return readAll(t, brokers, "sync.apipause")
	}

	a, urlA := startAPIWorker(t, brokers, "wa", plan)
	b, urlB := startAPIWorker(t, brokers, "wb", plan)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := st.Kafka.WaitGroupStable(ctx, string(plan.Group()), 2); err != nil {
		t.Fatalf("the group did not settle with 2 members: %v", err)
	}
	produce(t, brokers, first)
	waitProcessed(t, brokers, time.Minute, plan)

	// Every partition has an owner, both workers own some, and the lag is
	// zero once caught up.
	waitFor(t, 20*time.Second, "status naming both workers as owners", func() bool {
		s := status(t, urlA, plan.Name())
		owners := map[string]int{}
		for _, p := range s.Partitions {
			if p.Stale || p.LagRecords != 0 {
				return false
			}
			owners[p.Worker]++
		}
		return len(s.Partitions) == 4 && owners["wa"] > 0 && owners["wb"] > 0 && s.State == api.StateRunning
	})

	// State changes need the token.
	for _, tok := range []string{"", "wrong"} {
		var e api.Error
		code, body := call(t, http.MethodPut, urlA+"/topologies/"+plan.Name()+"/pause", tok, nil)
		if err := json.Unmarshal([]byte(body), &e); code != http.StatusUnauthorized || err != nil || e.Code != 401 {
			t.Fatalf("pause with token %q: %d %s, want a 401 JSON error", tok, code, body)
		}
	}
	var act api.Action
	if code, body := call(t, http.MethodPut, urlA+"/topologies/"+plan.Name()+"/pause", apiToken, &act); code != http.StatusAccepted {
		t.Fatalf("pause: %d %s", code, body)
	}
	if act.Desired.State != api.StatePaused || act.Desired.By != "wa" {
		t.Errorf("pause answered %+v", act)
	}
	waitFor(t, 30*time.Second, "both workers holding their partitions paused", func() bool {
		return heldBy(t, urlA, plan.Name()) && heldBy(t, urlB, plan.Name())
	})
	// A worker started during the pause comes up paused.
	c, urlC := startAPIWorker(t, brokers, "wc", plan)
	ctx3, cancel3 := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel3()
	if _, err := st.Kafka.WaitGroupStable(ctx3, string(plan.Group()), 3); err != nil {
		t.Fatalf("the group did not settle with 3 members: %v", err)
	}
	waitFor(t, 30*time.Second, "all three workers holding their partitions paused", func() bool {
		return heldBy(t, urlA, plan.Name()) && heldBy(t, urlB, plan.Name()) && heldBy(t, urlC, plan.Name())
	})
	// Paused is ready: the partitions are restored and held.
	waitFor(t, 10*time.Second, "/readyz of a paused worker answering 200 and naming the pause", func() bool {
		code, body := call(t, http.MethodGet, urlC+"/readyz", "", nil)
		return code == http.StatusOK && strings.Contains(body, "topology apipause paused")
	})
	if code, body := call(t, http.MethodGet, urlA+"/healthz", "", nil); code != http.StatusOK {
		t.Errorf("/healthz while paused: %d %q, want 200 (paused is not failed)", code, body)
	}

	inBefore := a.w.Stats(plan.Name()).In + b.w.Stats(plan.Name()).In + c.w.Stats(plan.Name()).In
	rebalances := func() int64 {
		return a.w.Stats(plan.Name()).Rebalances + b.w.Stats(plan.Name()).Rebalances + c.w.Stats(plan.Name()).Rebalances
	}
	sessions := rebalances()
	sinkBefore := len(readSink())
	produce(t, brokers, second)
	// The true lag: every record produced during the pause is behind, on
	// the partition it went to, and ages.
	waitFor(t, 20*time.Second, "status showing the records produced during the pause as lag", func() bool {
		s := status(t, urlB, plan.Name())
		var lag int64
		for _, p := range s.Partitions {
			if p.Worker == "" || !p.Paused {
				return false
			}
			if p.LagRecords > 0 && p.LagSeconds <= 0 {
				return false
			}
			lag += p.LagRecords
		}
		return len(s.Partitions) == 4 && lag == int64(len(second))
	})
	time.Sleep(2 * time.Second)
	inAfter := a.w.Stats(plan.Name()).In + b.w.Stats(plan.Name()).In + c.w.Stats(plan.Name()).In
	if inAfter != inBefore {
		t.Errorf("records in moved from %d to %d while paused", inBefore, inAfter)
	}
	if n := len(readSink()); n != sinkBefore {
		t.Errorf("the sink grew from %d to %d records while paused", sinkBefore, n)
	}

	if code, body := call(t, http.MethodPut, urlB+"/topologies/"+plan.Name()+"/resume", apiToken, &act); code != http.StatusAccepted {
		t.Fatalf("resume: %d %s", code, body)
	}
	waitProcessed(t, brokers, time.Minute, plan)
	// The held claims kept the group: no session began during the pause,
	// and resume released the claims without one.
	if n := rebalances(); n != sessions {
		t.Errorf("%d new sessions during the pause and the resume, want none", n-sessions)
	}
	checkExactlyOnce(t, readSink(), w)
	waitFor(t, 20*time.Second, "status running on every worker", func() bool {
		s := status(t, urlC, plan.Name())
		for _, wr := range s.Workers {
			if wr.State == api.StatePaused {
				return false
			}
		}
		return s.State == api.StateRunning && len(s.Workers) == 3
	})
	total := int64(0)
	for _, wk := range []*worker{a, b, c} {
		total += wk.w.Stats(plan.Name()).Out
	}
	if total != int64(w.Unique) {
		t.Errorf("records out = %d, want %d", total, w.Unique)
	}

	// A worker that stops cleanly takes its report with it.
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the stopped worker's report gone", func() bool {
		for _, wr := range status(t, urlA, plan.Name()).Workers {
			if wr.ID == "wc" {
				return false
			}
		}
		return true
	})
}

// A topology stopped by a fatal error (a ledger with the wrong partition
// count) on both workers comes back, once the cause is fixed, with one
// restart through the API and no process restart.
func TestKfakeAPIRestartFailed(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "apirestart", src.Topic(), "sync.apirestart"))
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(string(plan.LedgerTopic()), &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	w := makeWorkload(src, 50, 600, 0.1, 22)
	produce(t, brokers, w.Records)

	a, urlA := startAPIWorker(t, brokers, "wa", plan)
	b, urlB := startAPIWorker(t, brokers, "wb", plan)
	for _, u := range []string{urlA, urlB} {
		waitFor(t, 30*time.Second, "the topology failed", func() bool {
			s := status(t, u, plan.Name())
			return s.State == api.StateFailed && s.Workers[0].State == api.StateFailed &&
				strings.Contains(s.Error, string(plan.LedgerTopic()))
		})
		if code, _ := call(t, http.MethodGet, u+"/healthz", "", nil); code != http.StatusServiceUnavailable {
			t.Errorf("/healthz = %d while the topology is failed, want 503", code)
		}
	}
	for _, wk := range []*worker{a, b} {
		if err, stopped := wk.wait(time.Second); stopped {
			t.Fatalf("a worker with an api_token exited when its only topology failed: %v", err)
		}
	}

	// The fix: a ledger with the source's partition count.
	if err := admin.DeleteTopic(string(plan.LedgerTopic())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the ledger topic deleted", func() bool {
		md, err := admin.DescribeTopics([]string{string(plan.LedgerTopic())})
		return err == nil && len(md) == 1 && errors.Is(md[0].Err, sarama.ErrUnknownTopicOrPartition)
	})
	var act api.Action
	if code, body := call(t, http.MethodPost, urlA+"/topologies/"+plan.Name()+"/restart", apiToken, &act); code != http.StatusAccepted {
		t.Fatalf("restart: %d %s", code, body)
	}
	if act.Desired.Restart != 1 {
		t.Errorf("restart count %d, want 1", act.Desired.Restart)
	}
	waitProcessed(t, brokers, time.Minute, plan)
	checkExactlyOnce(t, readAll(t, brokers, "sync.apirestart"), w)
	for _, u := range []string{urlA, urlB} {
		waitFor(t, 20*time.Second, "the topology running again", func() bool {
			s := status(t, u, plan.Name())
			return s.State == api.StateRunning && s.Error == ""
		})
		if code, body := call(t, http.MethodGet, u+"/healthz", "", nil); code != http.StatusOK {
			t.Errorf("/healthz = %d %q after the restart, want 200", code, body)
		}
	}
	// Both workers are back in the group: each owns one of the two
	// partitions.
	waitFor(t, 30*time.Second, "each worker owning a partition", func() bool {
		s := status(t, urlB, plan.Name())
		return len(s.Partitions) == 2 && s.Partitions[0].Worker != s.Partitions[1].Worker && !s.Partitions[0].Stale && !s.Partitions[1].Stale
	})
	if b.w.Stats(plan.Name()).Out+a.w.Stats(plan.Name()).Out != int64(w.Unique) {
		t.Errorf("records out = %d + %d, want %d", a.w.Stats(plan.Name()).Out, b.w.Stats(plan.Name()).Out, w.Unique)
	}
	if err := a.stop(); err != nil {
		t.Errorf("worker a stopped with %v after a successful restart", err)
	}
	_ = ledger.ErrPartitionMismatch
}

// Unknown topologies and routes answer 404 with a JSON body, a wrong
// method 405, and the plan is served as JSON.
func TestKfakeAPIErrors(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 1, src.Topic())
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "apierr", src.Topic(), "sync.apierr"))
	_, u := startAPIWorker(t, st.Brokers(), "wa", plan)
	for _, c := range []struct {
		method, path, token string
		code                int
	}{
		{http.MethodGet, "/topologies/nope", "", 404},
		{http.MethodGet, "/topologies/nope/status", "", 404},
		{http.MethodPut, "/topologies/nope/pause", apiToken, 404},
		{http.MethodGet, "/topologies/apierr/nothing", "", 404},
		{http.MethodPost, "/topologies/apierr/pause", apiToken, 405},
		{http.MethodGet, "/topologies/apierr/restart", "", 405},
		{http.MethodDelete, "/topologies", "", 405},
	} {
		code, body := call(t, c.method, u+c.path, c.token, nil)
		var e api.Error
		if err := json.Unmarshal([]byte(body), &e); code != c.code || err != nil || e.Code != c.code || e.Message == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", c.method, c.path, code, body, c.code)
		}
	}
	var list []api.Topology
	if code, body := call(t, http.MethodGet, u+"/topologies", "", &list); code != 200 || len(list) != 1 || list[0].Name != "apierr" {
		t.Errorf("GET /topologies: %d %s", code, body)
	}
	var pj topology.PlanJSON
	if code, body := call(t, http.MethodGet, u+"/topologies/apierr", "", &pj); code != 200 || pj.Group != "cdcsync.apierr" || len(pj.Options) == 0 {
		t.Errorf("GET /topologies/apierr: %d %s", code, body)
	}
}

// Other workers' reports on the control topic are merged into the status:
// a report older than three intervals is stale and its partitions show
// only where no live worker reports them; one older than ten minutes is
// left out; a tombstone removes a report.
func TestKfakeAPIStatusMerge(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 1, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "apimerge", src.Topic(), "sync.apimerge"))
	_, u := startAPIWorker(t, brokers, "wa", plan)
	waitFor(t, 30*time.Second, "the worker owning partition 0", func() bool {
		s := status(t, u, plan.Name())
		return len(s.Partitions) == 1 && s.Partitions[0].Worker == "wa"
	})

	pc := sarama.NewConfig()
	pc.Version = sarama.V2_8_0_0
	pc.Metadata.AllowAutoTopicCreation = false
	pc.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(brokers, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	report := func(id string, age time.Duration, parts ...int32) {
		r := api.Worker{ID: id, State: api.StateRunning, ReportedAt: time.Now().Add(-age).UTC(), Breakers: map[string]string{}}
		for _, p := range parts {
			r.Partitions = append(r.Partitions, api.Partition{Topic: src.Topic(), Partition: p, Worker: id, LagRecords: 7})
		}
		b, _ := json.Marshal(r)
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: processor.DefaultControlTopic,
			Key: sarama.StringEncoder("status/apimerge/" + id), Value: sarama.ByteEncoder(b)}); err != nil {
			t.Fatal(err)
		}
	}
	// A gone worker that owned partition 0 (now wa's) and a partition
	// nobody live reports; a long-expired one; a live one.
	report("ghost", 10*time.Second, 0, 5)
	report("ancient", 11*time.Minute, 6)
	report("live", 0)
	var s api.Status
	waitFor(t, 10*time.Second, "the reports read", func() bool {
		s = status(t, u, plan.Name())
		return len(s.Workers) == 3
	})
	byID := map[string]api.Worker{}
	for _, w := range s.Workers {
		byID[w.ID] = w
	}
	if !byID["wa"].Self || byID["wa"].Stale || !byID["ghost"].Stale || byID["live"].Stale || byID["ancient"].ID != "" {
		t.Errorf("workers %+v", s.Workers)
	}
	if len(s.Partitions) != 2 || s.Partitions[0].Worker != "wa" || s.Partitions[0].Stale ||
		s.Partitions[1].Partition != 5 || s.Partitions[1].Worker != "ghost" || !s.Partitions[1].Stale {
		t.Errorf("partitions %+v: want 0 from wa, 5 from ghost (stale)", s.Partitions)
	}
	if s.State != api.StateRunning {
		t.Errorf("state %s", s.State)
	}

	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: processor.DefaultControlTopic,
		Key: sarama.StringEncoder("status/apimerge/ghost")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the tombstone applied", func() bool {
		s = status(t, u, plan.Name())
		return len(s.Workers) == 2 && len(s.Partitions) == 1
	})
}
