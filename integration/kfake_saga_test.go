package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/internal/embedded"
	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/saga"
	"github.com/cdcsync/cdcsync/topology"
)

// The chaos saga: three steps a, b, c, each with its own command topic,
// all replying on one reply topic. Step b fails for 10% of the sagas and
// is left unanswered for 2% (those time out); a and b have
// compensations, c (the last step) needs none.
const (
	chaosTrigger = "orders"
	chaosReplies = "saga.replies"
)

const chaosSagaDoc = `name: %s
saga:
  trigger: {topic: orders, type: OrderPlaced}
  retention: 1h
  steps:
    - name: a
      command: {topic: saga.a.cmd, type: Do-a, payload: {order: "{trigger.id}"}}
      reply_topic: saga.replies
      timeout: 3s
      compensation: {topic: saga.a.cmd, type: Undo-a, payload: {ref: "{steps.a.ref}"}}
      compensation_attempts: 20
      compensation_backoff: 100ms
    - name: b
      command: {topic: saga.b.cmd, type: Do-b, payload: {order: "{trigger.id}", prev: "{steps.a.ref}"}}
      reply_topic: saga.replies
      timeout: 3s
      compensation: {topic: saga.b.cmd, type: Undo-b, payload: {ref: "{steps.b.ref}"}}
      compensation_attempts: 20
      compensation_backoff: 100ms
    - name: c
      command: {topic: saga.c.cmd, type: Do-c, payload: {order: "{trigger.id}", prev: "{steps.b.ref}"}}
      reply_topic: saga.replies
      timeout: 3s
`

// chaosDefinition is the chaos saga as the runtime runs it, compiled from
// the topology file the worker processes load.
func chaosDefinition(t testing.TB, name string) *saga.Definition {
	t.Helper()
	p, err := topology.Parse(name+".yaml", []byte(fmt.Sprintf(chaosSagaDoc, name)))
	if err != nil {
		t.Fatalf("topology: %v", err)
	}
	return p.SagaDefinition()
}

// fate is what the participants do with a saga: deterministic in its ID,
// so a participant's answer never depends on which attempt it sees.
type fate int

const (
	fateOK fate = iota
	fateFailB
	fateSilentB
)

func fateOf(id string) fate {
	h := fnv.New32a()
	h.Write([]byte(id))
	switch v := h.Sum32() % 100; {
	case v < 10:
		return fateFailB
	case v < 12:
		return fateSilentB
	}
	return fateOK
}

// flakyComp: the first attempt of these sagas' compensations fails, so
// compensations are retried.
func flakyComp(id string) bool {
	h := fnv.New32a()
	h.Write([]byte("comp" + id))
	return h.Sum32()%4 == 0
}

// participants answers the commands of the chaos saga until ctx ends:
// one consumer per command partition (read_committed), replying on the
// same partition of the reply topic with the correlation headers.
func participants(ctx context.Context, t testing.TB, brokers []string, parts int32) *sync.WaitGroup {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // acks
		defer wg.Done()
		for {
			select {
			case <-prod.Successes():
			case e := <-prod.Errors():
				t.Errorf("participant reply: %v", e.Err)
			case <-ctx.Done():
				return
			}
		}
	}()
	for _, step := range []string{"a", "b", "c"} {
		for p := range parts {
			pc, err := cons.ConsumePartition("saga."+step+".cmd", p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer pc.Close()
				for {
					var m *sarama.ConsumerMessage
					select {
					case m = <-pc.Messages():
					case <-ctx.Done():
						return
					}
					hdr := map[string]string{}
					var hs []sarama.RecordHeader
					for _, h := range m.Headers {
						hdr[string(h.Key)] = string(h.Value)
						if strings.HasPrefix(string(h.Key), "cdcsync.saga.") {
							hs = append(hs, *h)
						}
					}
					id, kind := hdr[saga.HeaderID], hdr[saga.HeaderKind]
					out := `{"outcome":"success","result":{"ref":"` + step + `-` + id + `"}}`
					switch {
					case kind == "compensation" && flakyComp(id) && hdr[saga.HeaderAttempt] == "1":
						out = `{"outcome":"failure","error":"try again"}`
					case kind == "compensation":
						out = `{"outcome":"success"}`
					case step == "b" && fateOf(id) == fateFailB:
						out = `{"outcome":"failure","error":"card declined"}`
					case step == "b" && fateOf(id) == fateSilentB:
						continue // never answered: the saga times out
					}
					select {
					case prod.Input() <- &sarama.ProducerMessage{Topic: chaosReplies, Partition: m.Partition, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(out), Headers: hs}:
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}
	t.Cleanup(func() { wg.Wait(); prod.Close(); cons.Close(); client.Close() })
	return &wg
}

// produceTriggers writes OrderPlaced triggers o-from..o-to-1, keyed by
// order ID, plus records of another type that start nothing.
func produceTriggers(t testing.TB, brokers []string, ids []string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, 0, len(ids))
	for i, id := range ids {
		v := fmt.Sprintf(`{"id":%q,"type":"OrderPlaced","amount":%d,"at":%d}`, id, i%500, time.Now().UnixNano())
		msgs = append(msgs, &sarama.ProducerMessage{Topic: chaosTrigger, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(v)})
		if i%50 == 0 {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: chaosTrigger, Key: sarama.StringEncoder(id), Value: sarama.StringEncoder(`{"id":"x` + id + `","type":"OrderViewed"}`)})
		}
	}
	for i := 0; i < len(msgs); i += 500 {
		if err := p.SendMessages(msgs[i:min(i+500, len(msgs))]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKfakeSagaChaos: 10,000 sagas of three steps (2,000 with -short),
// run by `cdcsync run` worker processes loading a saga topology, with
// participants failing step b for 10% and leaving it unanswered for
// 2%, run by three orchestrator processes while five SIGKILLs land at
// random moments, one worker is added and one removed, and 5% of the
// triggers are delivered twice. At the end, read_committed:
//   - every saga is terminal: completed, or compensated;
//   - a completed saga sent a, b and c once each and compensated nothing;
//   - a compensated saga compensated exactly the steps that happened (a;
//     and b too when it timed out, since it may have happened), in
//     reverse;
//   - every command and compensation record (saga, step, kind, attempt)
//     appears exactly once;
//   - the redelivered triggers started nothing.
func TestKfakeSagaChaos(t *testing.T) {
	sagaWait := 4 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("CDCSYNC_SAGA_WAIT")); err == nil {
		sagaWait = d
	}
	sagas := 10_000
	if testing.Short() {
		sagas = 2_000
	}
	const parts = 4
	// kfake's cleaner, unlike a real broker's, compacts the records of
	// open transactions: a worker SIGKILLed inside a transaction leaves
	// it open until the next owner fences it, seconds later, and a
	// cleaner round in between dropped the committed states its records
	// superseded; the abort then lost those sagas for every reader
	// (TestKfakeCompactionDropsCommittedUnderOpenTxn). So this broker
	// compacts hourly, as kfake does by default: never during the test.
	st, err := embedded.Start(embedded.Options{Topics: []string{chaosTrigger}, Partitions: parts, NoRegistry: true, CleanerBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	brokers := st.Brokers()
	name := "chaos-orders"
	def := chaosDefinition(t, name)
	dir := writeTopology(t, fmt.Sprintf(chaosSagaDoc, name))
	ids := make([]string, sagas)
	for i := range ids {
		ids[i] = fmt.Sprintf("o-%05d", i)
	}
	rng := rand.New(rand.NewPCG(17, 17))
	var dups []string
	for _, id := range ids {
		if rng.IntN(100) < 5 {
			dups = append(dups, id)
		}
	}

	n := 0
	start := func() *proc { n++; return startProcess(t, fmt.Sprintf("%s-%d", name, n), brokers, dir) }
	workers := []*proc{start(), start(), start()}
	// The workers create the reply and command topics; wait for them.
	waitTopics(t, brokers, append(def.CommandTopics(), chaosReplies, def.StateTopic())...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	participants(ctx, t, brokers, parts)

	produced := make(chan struct{})
	go func() {
		defer close(produced)
		chunk := len(ids) / 10
		for i := 0; i < len(ids); i += chunk {
			produceTriggers(t, brokers, ids[i:min(i+chunk, len(ids))])
			time.Sleep(300 * time.Millisecond)
		}
		produceTriggers(t, brokers, dups) // redelivered triggers
	}()

	kills := 0
	for i := 0; i < 7; i++ {
		time.Sleep(time.Duration(1000+rng.IntN(2500)) * time.Millisecond)
		switch i {
		case 2:
			workers = append(workers, start())
			t.Logf("added a worker (%d running)", len(workers))
		case 4:
			j := rng.IntN(len(workers))
			if err := workers[j].terminate(time.Minute); err != nil {
				t.Errorf("SIGTERM: %v", err)
			}
			workers = append(workers[:j], workers[j+1:]...)
			t.Logf("removed a worker (%d running)", len(workers))
		default:
			j := rng.IntN(len(workers))
			workers[j].kill()
			kills++
			workers[j] = start()
			t.Logf("killed worker %d with SIGKILL and restarted it (kill %d)", j, kills)
		}
	}
	<-produced
	workers = settleKfakeGroup(t, brokers, "cdcsync-saga-"+name, workers, start)

	// Wait until every saga is terminal.
	client := newClient(t, brokers)
	var states []*saga.State
	deadline := time.Now().Add(sagaWait)
	for {
		var err error
		states, _, err = saga.ReadStates(context.Background(), client, def.StateTopic())
		if err != nil {
			t.Fatal(err)
		}
		terminal := 0
		for _, s := range states {
			if s.Status.Terminal() {
				terminal++
			}
		}
		if len(states) == sagas && terminal == sagas {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d sagas, %d terminal, want %d", sagaWait, len(states), terminal, sagas)
		}
		time.Sleep(2 * time.Second)
	}
	for _, p := range workers {
		if err := p.terminate(time.Minute); err != nil {
			t.Errorf("SIGTERM: %v", err)
		}
	}
	cancel()

	// Every command and compensation exactly once, read_committed.
	type sent struct{ id, step, kind, attempt string }
	count := map[sent]int{}
	bySaga := map[string][]sent{}
	for _, topic := range def.CommandTopics() {
		for _, m := range readCommitted(t, brokers, topic) {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[string(x.Key)] = string(x.Value)
			}
			s := sent{h[saga.HeaderID], h[saga.HeaderStep], h[saga.HeaderKind], h[saga.HeaderAttempt]}
			if count[s]++; count[s] == 1 {
				bySaga[s.id] = append(bySaga[s.id], s)
			}
		}
	}
	dupSent := 0
	for s, c := range count {
		if c != 1 {
			dupSent++
			if dupSent <= 5 {
				t.Errorf("%+v appears %d times to a read_committed reader", s, c)
			}
		}
	}
	if dupSent > 0 {
		t.Fatalf("%d commands or compensations appear more than once", dupSent)
	}

	outcomes := map[saga.Status]int{}
	for _, s := range states {
		outcomes[s.Status]++
		cmds := map[string]int{}
		comps := map[string]int{}
		for _, x := range bySaga[s.ID] {
			if x.kind == "command" {
				cmds[x.step]++
			} else {
				comps[x.step]++
			}
		}
		stepSt := map[string]saga.StepState{}
		for _, x := range s.Steps {
			stepSt[x.Name] = x
		}
		switch f := fateOf(s.ID); {
		case f == fateOK:
			if s.Status != saga.Completed || cmds["a"] != 1 || cmds["b"] != 1 || cmds["c"] != 1 || len(comps) != 0 {
				t.Errorf("saga %s (ok): %s, commands %v, compensations %v", s.ID, s.Status, cmds, comps)
			}
		case f == fateFailB:
			// b refused: nothing of b to undo; a is undone.
			if s.Status != saga.Compensated || cmds["a"] != 1 || cmds["b"] != 1 || cmds["c"] != 0 ||
				comps["b"] != 0 || comps["a"] != stepSt["a"].CompAttempts || stepSt["a"].Status != saga.StepCompensated {
				t.Errorf("saga %s (b fails): %s, commands %v, compensations %v, steps %+v", s.ID, s.Status, cmds, comps, s.Steps)
			}
		case f == fateSilentB:
			// b timed out: it may have happened, so b then a are undone.
			if s.Status != saga.Compensated || cmds["a"] != 1 || cmds["b"] != 1 || cmds["c"] != 0 ||
				comps["b"] != stepSt["b"].CompAttempts || comps["a"] != stepSt["a"].CompAttempts ||
				stepSt["b"].Status != saga.StepCompensated || stepSt["a"].Status != saga.StepCompensated ||
				!stepSt["b"].CompDoneAt.Before(stepSt["a"].CompSentAt) && !stepSt["b"].CompDoneAt.Equal(stepSt["a"].CompSentAt) {
				t.Errorf("saga %s (b unanswered): %s, commands %v, compensations %v, steps %+v", s.ID, s.Status, cmds, comps, s.Steps)
			}
		}
		if t.Failed() && outcomes[saga.Completed]+outcomes[saga.Compensated] > 20 {
			break
		}
	}
	if t.Failed() {
		return
	}
	// Every trigger ID has exactly one saga: the redelivered ones (and
	// those replayed after a kill) started no second one, since each
	// saga's first command was sent exactly once.
	if len(states) != sagas || len(bySaga) != sagas {
		t.Fatalf("%d sagas and %d with commands, want %d", len(states), len(bySaga), sagas)
	}
	t.Logf("%d sagas (%d triggers redelivered): %d completed, %d compensated, %d failed; %d commands and compensations, each once; %d kills",
		sagas, len(dups), outcomes[saga.Completed], outcomes[saga.Compensated], outcomes[saga.Failed], len(count), kills)
}

// waitTopics waits until every topic exists.
func waitTopics(t *testing.T, brokers []string, topics ...string) {
	t.Helper()
	c := newClient(t, brokers)
	deadline := time.Now().Add(30 * time.Second)
	for _, topic := range topics {
		for {
			_ = c.RefreshMetadata(topic)
			if ps, err := c.Partitions(topic); err == nil && len(ps) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("topic %s was not created", topic)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// An in-process runtime over kfake: the order of a saga's records, the
// participant contract end to end, the state topic's content after
// completion and compensation, and a restart that resumes a saga in
// flight from the state topic and times it out after the restore.
func TestKfakeSagaResumesAfterRestart(t *testing.T) {
	st := cluster(t, 2, chaosTrigger)
	brokers := st.Brokers()
	def := chaosDefinition(t, "resume")
	run := func() (context.CancelFunc, chan error) {
		rt, err := saga.New(saga.Config{Def: chaosDefinition(t, "resume"), Brokers: brokers, Log: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		return cancel, done
	}
	stop1, done1 := run()
	waitTopics(t, brokers, append(def.CommandTopics(), chaosReplies, def.StateTopic())...)
	// Find IDs of each fate.
	var ok, failB, silent string
	for i := 0; ok == "" || failB == "" || silent == ""; i++ {
		id := fmt.Sprintf("r-%d", i)
		switch fateOf(id) {
		case fateOK:
			ok = cmp(ok, id)
		case fateFailB:
			failB = cmp(failB, id)
		case fateSilentB:
			silent = cmp(silent, id)
		}
	}
	produceTriggers(t, brokers, []string{ok, failB, silent})
	pctx, pcancel := context.WithCancel(context.Background())
	defer pcancel()
	participants(pctx, t, brokers, 2)
	client := newClient(t, brokers)
	waitStatus := func(id string, want saga.Status) *saga.State {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			states, _, err := saga.ReadStates(context.Background(), client, def.StateTopic())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range states {
				if s.ID == id && s.Status == want {
					return s
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("saga %s never became %s", id, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStatus(ok, saga.Completed)
	waitStatus(failB, saga.Compensated)
	// The silent saga waits for b's reply; the orchestrator stops before
	// its 3 s deadline, and the next one re-arms it from the state.
	s := waitStatus(silent, saga.Running)
	stop1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	if time.Now().After(s.Deadline) {
		t.Log("the deadline passed before the restart; the re-armed deadline fires at once")
	}
	stop2, done2 := run()
	defer func() { stop2(); <-done2 }()
	got := waitStatus(silent, saga.Compensated)
	if got.Steps[1].Status != saga.StepCompensated || got.Steps[0].Status != saga.StepCompensated {
		t.Fatalf("steps %+v", got.Steps)
	}
	// A late reply for the compensated step b: recorded, ignored.
	pcfg := sarama.NewConfig()
	pcfg.Version = sarama.V2_8_0_0
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(brokers, pcfg)
	if err == nil {
		_, _, err = prod.SendMessage(&sarama.ProducerMessage{Topic: chaosReplies, Partition: got.Partition, Key: sarama.StringEncoder(silent),
			Value: sarama.StringEncoder(`{"outcome":"success","result":{"ref":"late"}}`),
			Headers: []sarama.RecordHeader{{Key: []byte(saga.HeaderID), Value: []byte(silent)}, {Key: []byte(saga.HeaderStep), Value: []byte("b")},
				{Key: []byte(saga.HeaderKind), Value: []byte("command")}, {Key: []byte(saga.HeaderAttempt), Value: []byte("1")}}})
		prod.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		states, _, err := saga.ReadStates(context.Background(), client, def.StateTopic())
		if err != nil {
			t.Fatal(err)
		}
		var cur *saga.State
		for _, x := range states {
			if x.ID == silent {
				cur = x
			}
		}
		if cur != nil && len(cur.Late) == 1 {
			if cur.Status != saga.Compensated || cur.Late[0].Step != "b" {
				t.Fatalf("late reply changed the saga: %+v", cur)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the late reply was not recorded")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var raw json.RawMessage = got.Encode()
	t.Logf("compensated saga state: %s", raw)
}

func cmp(have, id string) string {
	if have != "" {
		return have
	}
	return id
}

// A saga topology in a worker (the path of `cdcsync run`): the sagas are
// visible on the REST API (/topologies/{name}/sagas and /{id}), in the
// metrics, and with `cdcsync saga list|show` reading the state topic.
func TestKfakeSagaWorkerViews(t *testing.T) {
	st := cluster(t, 2, chaosTrigger)
	brokers := st.Brokers()
	name := "view-orders"
	def := chaosDefinition(t, name)
	_, base := startAPIWorker(t, brokers, "w1", mustPlan(t, fmt.Sprintf(chaosSagaDoc, name)))
	waitTopics(t, brokers, append(def.CommandTopics(), chaosReplies, def.StateTopic())...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	participants(ctx, t, brokers, 2)
	var ok, failB string
	for i := 0; ok == "" || failB == ""; i++ {
		id := fmt.Sprintf("v-%d", i)
		switch fateOf(id) {
		case fateOK:
			ok = cmp(ok, id)
		case fateFailB:
			failB = cmp(failB, id)
		}
	}
	produceTriggers(t, brokers, []string{ok, failB, ok}) // ok twice: a redelivery
	produce(t, brokers, []demo.Record{{Topic: chaosTrigger, Key: []byte("junk"), Value: []byte("not json")}})
	var list api.SagaList
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, body := call(t, http.MethodGet, base+"/topologies/"+name+"/sagas", "", &list); code != http.StatusOK {
			t.Fatalf("GET sagas: %d %s", code, body)
		}
		done := 0
		for _, s := range list.Sagas {
			if s.Status.Terminal() {
				done++
			}
		}
		if len(list.Sagas) == 2 && done == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sagas %+v", list)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var comp api.SagaList
	call(t, http.MethodGet, base+"/topologies/"+name+"/sagas?state=compensated", "", &comp)
	if len(comp.Sagas) != 1 || comp.Sagas[0].ID != failB || !strings.Contains(comp.Sagas[0].Error, "step b failed: card declined") {
		t.Fatalf("compensated: %+v", comp)
	}
	var one saga.State
	if code, body := call(t, http.MethodGet, base+"/topologies/"+name+"/sagas/"+ok, "", &one); code != http.StatusOK || one.Status != saga.Completed || len(one.Steps) != 3 {
		t.Fatalf("GET saga: %d %s", code, body)
	}
	if code, _ := call(t, http.MethodGet, base+"/topologies/"+name+"/sagas/nope", "", nil); code != http.StatusNotFound {
		t.Errorf("unknown saga: %d", code)
	}
	if code, _ := call(t, http.MethodGet, base+"/topologies/"+name+"/sagas?state=bogus", "", nil); code != http.StatusBadRequest {
		t.Errorf("bad state: %d", code)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cdcsync_saga_started_total{topology="view-orders"} 2`,
		`cdcsync_saga_completed_total{topology="view-orders"} 1`,
		`cdcsync_saga_compensated_total{topology="view-orders"} 1`,
		`cdcsync_saga_in_flight{topology="view-orders"} 0`,
		`cdcsync_saga_triggers_total{result="duplicate",topology="view-orders"} 1`,
		`cdcsync_saga_triggers_total{result="rejected",topology="view-orders"} 1`,
		`cdcsync_saga_step_seconds_count{step="b",topology="view-orders"} 2`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The trigger that is not JSON went to the DLQ, with the DLQ headers.
	dl := readCommitted(t, brokers, "dlq."+name)
	if len(dl) != 1 || string(dl[0].Value) != "not json" {
		t.Fatalf("DLQ: %d records", len(dl))
	}
	hdr := map[string]string{}
	for _, h := range dl[0].Headers {
		hdr[string(h.Key)] = string(h.Value)
	}
	if hdr[dlq.HeaderStage] != "saga-trigger" || hdr[dlq.HeaderTopic] != chaosTrigger || hdr[dlq.HeaderTopology] != name {
		t.Errorf("DLQ headers %v", hdr)
	}

	// Pause (REST API): a trigger waits, no saga starts; resume: it starts.
	if code, body := call(t, http.MethodPut, base+"/topologies/"+name+"/pause", apiToken, nil); code != http.StatusAccepted {
		t.Fatalf("pause: %d %s", code, body)
	}
	time.Sleep(2 * time.Second) // the session ends and the next one holds its claims
	var later string
	for i := 1000; later == ""; i++ {
		if x := fmt.Sprintf("v-%d", i); fateOf(x) == fateOK {
			later = x
		}
	}
	produceTriggers(t, brokers, []string{later})
	time.Sleep(2 * time.Second)
	call(t, http.MethodGet, base+"/topologies/"+name+"/sagas", "", &list)
	if len(list.Sagas) != 2 {
		t.Fatalf("a saga started while the topology was paused: %+v", list.Sagas)
	}
	if code, body := call(t, http.MethodPut, base+"/topologies/"+name+"/resume", apiToken, nil); code != http.StatusAccepted {
		t.Fatalf("resume: %d %s", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		var one saga.State
		if code, _ := call(t, http.MethodGet, base+"/topologies/"+name+"/sagas/"+later, "", &one); code == http.StatusOK && one.Status == saga.Completed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the saga triggered while paused did not complete after the resume")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The CLI reads the same state topic.
	bin := cdcsyncBinary(t)
	out, err := exec.Command(bin, "saga", "list", "--brokers", strings.Join(brokers, ","), "--state", "compensated", name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), failB) || strings.Contains(string(out), ok+" ") {
		t.Fatalf("saga list: %v\n%s", err, out)
	}
	dir := writeTopology(t, fmt.Sprintf(chaosSagaDoc, name))
	out, err = exec.Command(bin, "saga", "show", "--brokers", strings.Join(brokers, ","), "--topologies", dir, name, failB).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "status     compensated") || !strings.Contains(string(out), "compensation  Undo-a to saga.a.cmd, 1 attempt(s)") {
		t.Fatalf("saga show: %v\n%s", err, out)
	}
	t.Logf("cdcsync saga show:\n%s", out)
	if out, err := exec.Command(bin, "saga", "show", "--brokers", strings.Join(brokers, ","), name, "nope").CombinedOutput(); err == nil {
		t.Fatalf("saga show of an unknown saga succeeded:\n%s", out)
	}
}

// A terminal saga's state is tombstoned after saga.retention: ReadStates
// (the CLI's and the API's reader) no longer returns it. (The tombstone
// record itself is not counted: the state topic is compacted with
// delete.retention.ms=0, and kfake's cleaner may already have dropped it.)
func TestKfakeSagaTombstonedAfterRetention(t *testing.T) {
	st := cluster(t, 2, chaosTrigger)
	brokers := st.Brokers()
	doc := strings.Replace(fmt.Sprintf(chaosSagaDoc, "short"), "retention: 1h", "retention: 2s", 1)
	def := mustPlan(t, doc).SagaDefinition()
	rt, err := saga.New(saga.Config{Def: def, Brokers: brokers, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitTopics(t, brokers, append(def.CommandTopics(), chaosReplies, def.StateTopic())...)
	participants(ctx, t, brokers, 2)
	var id string
	for i := 0; id == ""; i++ {
		if x := fmt.Sprintf("t-%d", i); fateOf(x) == fateOK {
			id = x
		}
	}
	produceTriggers(t, brokers, []string{id})
	client := newClient(t, brokers)
	var ended time.Time
	deadline := time.Now().Add(30 * time.Second)
	for {
		states, _, err := saga.ReadStates(context.Background(), client, def.StateTopic())
		if err != nil {
			t.Fatal(err)
		}
		if len(states) == 1 && states[0].Status == saga.Completed && ended.IsZero() {
			ended = states[0].Ended
			if !states[0].Retained.Equal(ended.Add(2 * time.Second)) {
				t.Fatalf("retained %v, ended %v", states[0].Retained, ended)
			}
		}
		if len(states) == 0 && !ended.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("saga not completed and tombstoned: %d states", len(states))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if since := time.Since(ended); since < 2*time.Second {
		t.Fatalf("tombstoned %v after it ended, before the 2s retention", since)
	}
}
