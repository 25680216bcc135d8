package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/processor/route"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// fakeEmitter records what the stages decided for each record.
type fakeEmitter struct {
	calls []emitted
}

type emitted struct {
	kind   string // skip, emit, retract
	r      *record
	ledger *ledgerEntry
	outs   []*sarama.ProducerMessage
	err    error
}

func (e *fakeEmitter) begin(msg *sarama.ConsumerMessage, start time.Time) *record {
	r := &record{offset: msg.Offset, src: msg, start: start}
	r.first.r = r
	r.cur = &r.first
	return r
}
func (e *fakeEmitter) skip(r *record) { e.calls = append(e.calls, emitted{kind: "skip", r: r}) }
func (e *fakeEmitter) emit(r *record, l *ledgerEntry, outs ...*sarama.ProducerMessage) {
	e.calls = append(e.calls, emitted{kind: "emit", r: r, ledger: l, outs: outs})
}
func (e *fakeEmitter) retract(r *record, err error) {
	e.calls = append(e.calls, emitted{kind: "retract", r: r, err: err})
}

func (e *fakeEmitter) last(t *testing.T) emitted {
	t.Helper()
	if len(e.calls) == 0 {
		t.Fatal("the stages told the emitter nothing")
	}
	return e.calls[len(e.calls)-1]
}

const stagesSource = "erp.public.contacts"

// fakeSinks stands for the pipeline's sink topic handling: known topics
// with their partition counts; a name that is not a legal topic is
// refused by the pipeline's own check; err fails every topic.
type fakeSinks struct {
	p     *pipeline
	parts map[string]int32
	err   error
}

func (s *fakeSinks) usable(topic string) (int32, error) {
	if s.err != nil {
		return 0, s.err
	}
	if n, ok := s.parts[topic]; ok {
		return n, nil
	}
	if err := topology.CheckTopicName(topic); err != nil {
		return 0, s.p.checkSinkTopic(topic) // refuses before it reads any metadata
	}
	return 0, fmt.Errorf("test: unexpected sink topic %q", topic)
}

// stagesFixture is a pipeline with no broker and a fake emitter.
type stagesFixture struct {
	p     *pipeline
	c     *claimCtx
	em    *fakeEmitter
	src   *testSource
	off   int64
	sinks *fakeSinks
}

func newStagesFixture(t testing.TB, extra string) *stagesFixture {
	t.Helper()
	plan, err := topology.Parse("stages.yaml", []byte(`name: stages
systems: [erp, crm]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json}
authority:
  owners: {email: crm}
  default_owner: erp
sink: {topic: 'sync.{table}', key: [id]}
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(prometheus.NewRegistry())
	p, err := newPipeline(plan, DefaultConfig(), nil, nil, m, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.topics, p.partitions = []string{stagesSource}, 4
	em := &fakeEmitter{}
	sinks := &fakeSinks{p: p, parts: map[string]int32{"sync.contacts": 3}}
	c := &claimCtx{p: p, em: em, ps: &partState{idx: ledger.NewIndex(time.Hour)}, ctx: context.Background(),
		log: p.log, process: m.process.WithLabelValues(plan.Name()), sinks: sinks}
	return &stagesFixture{p: p, c: c, em: em, src: &testSource{Table: "contacts"}, sinks: sinks}
}

// handle runs one source record through the stages.
func (f *stagesFixture) handle(key, value []byte) error {
	f.off++
	return f.c.handle(&sarama.ConsumerMessage{Topic: stagesSource, Partition: 1, Offset: f.off, Key: key, Value: value,
		Timestamp: time.Now()})
}

// testContact is a row of the contacts table.
type testContact struct {
	ID             int64
	Email, Address string
}

func contact(id int64, email string) *testContact {
	return &testContact{ID: id, Email: email, Address: "1 Main St"}
}

// testSource writes Debezium JSON records of one PostgreSQL table, as
// Debezium 3.6 does without schemas (internal/demo cannot be imported
// here: it imports this package).
type testSource struct {
	Table string
	lsn   int64
}

func (s *testSource) row(c *testContact) string {
	if c == nil {
		return "null"
	}
	return fmt.Sprintf(`{"id":%d,"email":%q,"address":%q}`, c.ID, c.Email, c.Address)
}

func (s *testSource) Change(op byte, before, after *testContact) (key, value []byte) {
	s.lsn += 88
	id := int64(0)
	if after != nil {
		id = after.ID
	} else if before != nil {
		id = before.ID
	}
	value = fmt.Appendf(nil, `{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"postgresql","name":"erp","ts_ms":1764230400000,"snapshot":"false","db":"erp","sequence":"[\"%d\",\"%d\"]","schema":"public","table":%q,"txId":700,"lsn":%d},"transaction":null,"op":"%c","ts_ms":1764230400003}`,
		s.row(before), s.row(after), s.lsn-88, s.lsn, s.Table, s.lsn, op)
	return fmt.Appendf(nil, `{"id":%d}`, id), value
}

func (s *testSource) Tombstone(id int64) []byte { return fmt.Appendf(nil, `{"id":%d}`, id) }

func headerOf(m *sarama.ProducerMessage, key string) string {
	for _, h := range m.Headers {
		if string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

func wantDLQ(t *testing.T, e emitted, stage string, target error) {
	t.Helper()
	if e.kind != "emit" || e.ledger != nil || len(e.outs) != 1 || e.outs[0].Topic != "dlq.stages" {
		t.Fatalf("got %s with ledger %v and %d outputs, want one DLQ record and no ledger entry", e.kind, e.ledger != nil, len(e.outs))
	}
	if got := headerOf(e.outs[0], dlq.HeaderStage); got != stage {
		t.Errorf("DLQ stage %q, want %q", got, stage)
	}
	if target != nil && !strings.Contains(headerOf(e.outs[0], dlq.HeaderExceptionMessage), target.Error()) {
		t.Errorf("DLQ message %q does not name %v", headerOf(e.outs[0], dlq.HeaderExceptionMessage), target)
	}
}

// fakeDecoder fails with a given error.
type fakeDecoder struct{ err error }

func (d fakeDecoder) Decode(string, []byte, []byte) (*cdc.Event, error) { return nil, d.err }

func TestStagesDecodeErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		class Class
	}{
		{"malformed", &cdc.DecodeError{Part: "value", Err: cdc.ErrMalformed}, Permanent},
		{"unknown schema", &cdc.DecodeError{Part: "value", Err: cdc.ErrUnknownSchema, SchemaID: 7}, Permanent},
		{"registry unavailable", &cdc.RegistryError{SchemaID: 7, Err: errors.New("503")}, Transient},
		{"registry access denied", fmt.Errorf("fetching schema 7: %w", schemas.ErrAccessDenied), Fatal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newStagesFixture(t, "")
			f.p.dec = fakeDecoder{tc.err}
			err := f.handle([]byte(`{"id":1}`), []byte(`{}`))
			e := f.em.last(t)
			switch tc.class {
			case Permanent:
				if err != nil {
					t.Fatalf("handle = %v, want the record handled (DLQ)", err)
				}
				wantDLQ(t, e, dlq.StageDecode, nil)
			default:
				if err == nil || classify(err) != tc.class || e.kind != "retract" {
					t.Fatalf("handle = %v (%v), emitter %s: want a %v error and the record retracted", err, classify(err), e.kind, tc.class)
				}
			}
			if f.c.ps.idx.Len() != 0 {
				t.Errorf("the ledger index holds %d entries after a failed decode", f.c.ps.idx.Len())
			}
		})
	}
}

func TestStagesEmitAndDuplicate(t *testing.T) {
	f := newStagesFixture(t, "")
	k, v := f.src.Change('c', nil, contact(1, "a@x"))
	if err := f.handle(k, v); err != nil {
		t.Fatal(err)
	}
	e := f.em.last(t)
	if e.kind != "emit" || e.ledger == nil || len(e.outs) != 1 || e.outs[0].Topic != "sync.contacts" {
		t.Fatalf("got %s, ledger %v, %d outputs: want one sink record and a ledger entry", e.kind, e.ledger != nil, len(e.outs))
	}
	if key, _ := e.outs[0].Key.Encode(); string(key) != `{"id":1}` {
		t.Errorf("sink key %s", key)
	}
	// The same record again (a redelivery): a duplicate.
	f.off--
	if err := f.handle(k, v); err != nil {
		t.Fatal(err)
	}
	if e := f.em.last(t); e.kind != "skip" || f.p.stats.Duplicates.Load() != 1 {
		t.Fatalf("redelivery: %s, %d duplicates; want a skip counted as duplicate", e.kind, f.p.stats.Duplicates.Load())
	}
}

func TestStagesTombstone(t *testing.T) {
	for _, policy := range []string{"pass", "drop"} {
		t.Run(policy, func(t *testing.T) {
			f := newStagesFixture(t, "")
			if policy == "drop" {
				f = newStagesFixture(t, "")
				plan, err := topology.Parse("stages.yaml", []byte(`name: stages
systems: [erp, crm]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json, tombstones: drop}
sink: {topic: 'sync.{table}', key: [id]}
`))
				if err != nil {
					t.Fatal(err)
				}
				f.p.plan = plan
			}
			if err := f.handle(f.src.Tombstone(5), nil); err != nil {
				t.Fatal(err)
			}
			e := f.em.last(t)
			if policy == "drop" {
				if e.kind != "skip" {
					t.Fatalf("tombstones: drop: got %s", e.kind)
				}
				return
			}
			if e.kind != "emit" || e.ledger != nil || len(e.outs) != 1 || e.outs[0].Value != nil {
				t.Fatalf("tombstone: got %s, ledger %v, outputs %d: want one tombstone and no ledger entry", e.kind, e.ledger != nil, len(e.outs))
			}
		})
	}
}

func TestStagesAuthority(t *testing.T) {
	t.Run("drop", func(t *testing.T) {
		// erp changes only email, which crm owns: dropped as an echo.
		f := newStagesFixture(t, "")
		before, after := contact(2, "old@x"), contact(2, "new@x")
		k, v := f.src.Change('u', before, after)
		if err := f.handle(k, v); err != nil {
			t.Fatal(err)
		}
		if e := f.em.last(t); e.kind != "skip" || f.p.stats.AuthorityEvents.Load() != 1 {
			t.Fatalf("got %s, %d authority drops", e.kind, f.p.stats.AuthorityEvents.Load())
		}
	})
	t.Run("violation", func(t *testing.T) {
		f := newStagesFixture(t, "")
		// erp changes email (crm's) together with address (its own).
		f.p.rules = newRules(mustPlanFor(t, "authority: {owners: {email: crm}, default_owner: erp, on_violation: dlq}\n"))
		before, after := contact(3, "old@x"), contact(3, "new@x")
		after.Address = "2 Main St"
		k, v := f.src.Change('u', before, after)
		if err := f.handle(k, v); err != nil {
			t.Fatal(err)
		}
		wantDLQ(t, f.em.last(t), dlq.StageAuthority, nil)
	})
}

func mustPlanFor(t *testing.T, extra string) *topology.Plan {
	t.Helper()
	plan, err := topology.Parse("stages.yaml", []byte(`name: stages
systems: [erp, crm]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json}
sink: {topic: 'sync.{table}', key: [id]}
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestStagesMissingKey(t *testing.T) {
	f := newStagesFixture(t, "")
	f.p.plan = mustPlanFor(t, "")
	plan, err := topology.Parse("stages.yaml", []byte(`name: stages
systems: [erp, crm]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json}
sink: {topic: 'sync.{table}', key: [region]}
`))
	if err != nil {
		t.Fatal(err)
	}
	f.p.plan = plan
	k, v := f.src.Change('c', nil, contact(4, "a@x"))
	if err := f.handle(k, v); err != nil {
		t.Fatal(err)
	}
	wantDLQ(t, f.em.last(t), dlq.StageRoute, route.ErrMissingKeyField)
	if f.c.ps.idx.Len() != 0 {
		t.Error("a record sent to the DLQ left a ledger entry")
	}
}

func truncateValue(lsn int64) []byte {
	return fmt.Appendf(nil, `{"before":null,"after":null,"source":{"version":"3.6.1.Final","connector":"postgresql","name":"erp","ts_ms":1764230400000,"snapshot":"false","db":"erp","sequence":"[null,\"%d\"]","schema":"public","table":"contacts","txId":900,"lsn":%d},"transaction":null,"op":"t","ts_ms":1764230400001}`, lsn, lsn)
}

func TestStagesKeylessTruncate(t *testing.T) {
	for _, policy := range []string{"dlq", "drop", "pass"} {
		t.Run(policy, func(t *testing.T) {
			f := newStagesFixture(t, "")
			f.p.plan = mustPlanFor(t, "")
			plan, err := topology.Parse("stages.yaml", []byte(`name: stages
systems: [erp, crm]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json, truncate: `+policy+`}
sink: {topic: 'sync.{table}', key: [id]}
`))
			if err != nil {
				t.Fatal(err)
			}
			f.p.plan = plan
			if err := f.handle(nil, truncateValue(900)); err != nil {
				t.Fatal(err)
			}
			e := f.em.last(t)
			switch policy {
			case "dlq":
				wantDLQ(t, e, dlq.StageRoute, ErrTruncateHeld)
			case "drop":
				if e.kind != "skip" {
					t.Fatalf("got %s, want skip", e.kind)
				}
			case "pass":
				// One keyless record per sink partition (3, as the sink
				// topic has), each aimed at its partition.
				if e.kind != "emit" || len(e.outs) != 3 {
					t.Fatalf("got %s with %d outputs, want one per sink partition", e.kind, len(e.outs))
				}
				for i, o := range e.outs {
					if nk, ok := o.Key.(route.NullKey); !ok || nk.Partition != int32(i) {
						t.Errorf("output %d key %#v, want route.NullKey{%d}", i, o.Key, i)
					}
				}
			}
		})
	}
}

func TestStagesKeylessMessage(t *testing.T) {
	f := newStagesFixture(t, "")
	f.sinks.parts["sync."] = 3 // a message names no table
	v := []byte(`{"op":"m","ts_ms":1764230400001,"source":{"version":"3.6.1.Final","connector":"postgresql","name":"erp","ts_ms":1764230400000,"snapshot":"false","db":"erp","schema":"","table":"","lsn":901},"message":{"prefix":"audit","content":"aGVsbG8="}}`)
	if err := f.handle(nil, v); err != nil {
		t.Fatal(err)
	}
	e := f.em.last(t)
	if e.kind == "emit" && len(e.outs) == 1 && e.outs[0].Topic == "dlq.stages" {
		t.Fatalf("message went to the DLQ: %s", headerOf(e.outs[0], dlq.HeaderExceptionMessage))
	}
	if e.kind != "emit" || len(e.outs) != 1 {
		t.Fatalf("got %s with %d outputs, want one", e.kind, len(e.outs))
	}
	if nk, ok := e.outs[0].Key.(route.NullKey); !ok || nk.Partition != 1 {
		t.Errorf("message key %#v, want route.NullKey{1}: it keeps the source partition", e.outs[0].Key)
	}
}

func TestStagesOversizedOutput(t *testing.T) {
	f := newStagesFixture(t, "")
	big := contact(6, "a@x")
	big.Address = strings.Repeat("x", maxMessageBytes)
	k, v := f.src.Change('c', nil, big)
	if err := f.handle(k, v); err != nil {
		t.Fatal(err)
	}
	wantDLQ(t, f.em.last(t), dlq.StageProduce, nil)
	if f.c.ps.idx.Len() != 0 {
		t.Error("a record sent to the DLQ left a ledger entry")
	}
}

func TestStagesIllegalSinkTopic(t *testing.T) {
	f := newStagesFixture(t, "")
	plan, err := topology.Parse("stages.yaml", []byte(`name: stages
systems: [erp, crm]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json}
sink: {topic: 'sync.{table}', key: [id]}
`))
	if err != nil {
		t.Fatal(err)
	}
	f.p.plan = plan
	// The table name makes the sink topic illegal ('/' is not allowed).
	f.src.Table = "con/tacts"
	k, v := f.src.Change('c', nil, contact(7, "a@x"))
	if err := f.handle(k, v); err != nil {
		t.Fatal(err)
	}
	wantDLQ(t, f.em.last(t), dlq.StageRoute, nil)
	if got := headerOf(f.em.last(t).outs[0], dlq.HeaderExceptionClassName); got != "topology.ErrInvalidTopicName" {
		t.Errorf("exception class %q, want topology.ErrInvalidTopicName", got)
	}
}

// errors.tolerance: none turns a DLQ decision into a fatal error, and the
// record is retracted.
func TestStagesToleranceNone(t *testing.T) {
	f := newStagesFixture(t, "errors: {tolerance: none}\n")
	f.p.dec = fakeDecoder{&cdc.DecodeError{Part: "value", Err: cdc.ErrMalformed}}
	err := f.handle([]byte(`{"id":1}`), []byte(`{}`))
	if classify(err) != Fatal || f.em.last(t).kind != "retract" {
		t.Fatalf("handle = %v, emitter %s: want fatal and retracted", err, f.em.last(t).kind)
	}
}

// An Avro sink encoder whose registry is unavailable (503) leaves the
// record to be retried; one that refuses our credentials (403) stops the
// topology. Neither goes to the DLQ, and neither leaves a ledger entry.
func TestStagesEncodeFailure(t *testing.T) {
	for _, tc := range []struct {
		status int
		class  Class
	}{{http.StatusServiceUnavailable, Transient}, {http.StatusForbidden, Fatal}} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			reg := srfake.New()
			t.Cleanup(reg.Close)
			reg.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
				w.WriteHeader(tc.status)
				return true
			})
			f := newStagesFixture(t, "")
			f.p.enc = schemas.NewEncoder(schemas.NewClient(reg.URL(), schemas.ClientOptions{}), schemas.EncoderOptions{})
			k, v := f.src.Change('c', nil, contact(8, "a@x"))
			err := f.handle(k, v)
			if classify(err) != tc.class || f.em.last(t).kind != "retract" {
				t.Fatalf("handle = %v (%v), emitter %s: want %v and the record retracted", err, classify(err), f.em.last(t).kind, tc.class)
			}
			if f.c.ps.idx.Len() != 0 {
				t.Error("a retracted record left a ledger entry")
			}
		})
	}
}

// A sink topic that cannot be made usable: permanent (the broker refused
// to create it) goes to the DLQ, stage route; transient (no broker) is
// retried, and nothing is written or recorded.
func TestStagesSinkTopicUnusable(t *testing.T) {
	f := newStagesFixture(t, "")
	f.sinks.err = &SinkTopicError{Topic: "sync.contacts", Reason: "the broker refused to create it", Err: sarama.ErrPolicyViolation}
	k, v := f.src.Change('c', nil, contact(9, "a@x"))
	if err := f.handle(k, v); err != nil {
		t.Fatal(err)
	}
	wantDLQ(t, f.em.last(t), dlq.StageRoute, nil)

	f.sinks.err = fmt.Errorf("reading the metadata of sink topic sync.contacts: %w", sarama.ErrOutOfBrokers)
	err := f.handle(k, v)
	if classify(err) != Transient || dependencyOf(err) != depProducer || f.em.last(t).kind != "retract" {
		t.Fatalf("handle = %v, emitter %s: want a transient producer-path error and the record retracted", err, f.em.last(t).kind)
	}
	if f.c.ps.idx.Len() != 0 {
		t.Error("a retracted record left a ledger entry")
	}
}

// BenchmarkStages is the claim goroutine's work per record beyond the
// Kafka clients: decode, dedup, authority, route, encode and the ledger
// entry of an emitted update (handle with the fake emitter; no producer).
func BenchmarkStages(b *testing.B) { benchStages(b, func(*claimCtx) {}) }

// BenchmarkStagesOwned is BenchmarkStages with DecodeOwned, as the claim
// loops decoded before claimCtx.scratch (each op decodes the same
// record bytes, which nobody writes).
func BenchmarkStagesOwned(b *testing.B) { benchStages(b, func(c *claimCtx) { c.owned = true }) }

// BenchmarkStagesReuse is BenchmarkStages as the claim loops run it:
// DecodeOwnedReuse in the claim's scratch.
func BenchmarkStagesReuse(b *testing.B) {
	benchStages(b, func(c *claimCtx) { c.owned, c.scratch = true, new(cdc.Scratch) })
}

func benchStages(b *testing.B, setup func(*claimCtx)) {
	f := newStagesFixture(b, "")
	setup(f.c)
	const n = 4096
	keys, vals := make([][]byte, n), make([][]byte, n)
	for i := range n {
		// erp changes the address, which it owns: emitted.
		before := &testContact{ID: int64(i), Email: "a@x", Address: "1 Main St"}
		after := &testContact{ID: int64(i), Email: "a@x", Address: "2 Main St"}
		keys[i], vals[i] = f.src.Change('u', before, after)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.em.calls = f.em.calls[:0]
		if i%n == 0 && i > 0 {
			f.c.ps.idx = ledger.NewIndex(time.Hour) // every record new again
		}
		if err := f.handle(keys[i%n], vals[i%n]); err != nil {
			b.Fatal(err)
		}
		if e := f.em.calls[0]; e.kind != "emit" || e.ledger == nil {
			b.Fatalf("record %d: %s, want emitted with a ledger entry", i, e.kind)
		}
	}
}

// The claim loops hand the stages detached records (claimCtx.owned), which
// the JSON decoder reads without copying strings (cdc.DecodeOwned). The
// outputs and ledger keys must be exactly those of the copying decode, on
// creates, updates, a redelivery, a delete and a record the decoder sends
// to the DLQ.
func TestStagesOwnedDecodeSameOutputs(t *testing.T) {
	copying, owned := newStagesFixture(t, ""), newStagesFixture(t, "")
	owned.c.owned = true
	if _, ok := owned.p.dec.(cdc.OwnedDecoder); !ok {
		t.Fatalf("the pipeline's decoder %T cannot read owned records", owned.p.dec)
	}
	src := &testSource{Table: "contacts"}
	type rec struct{ k, v []byte }
	var recs []rec
	add := func(k, v []byte) { recs = append(recs, rec{k, v}) }
	add(src.Change('c', nil, contact(1, "a@x")))
	add(src.Change('c', nil, &testContact{ID: 2, Email: "b\"q\\u00e9@x", Address: "2 Main St"}))
	add(src.Change('u', contact(1, "a@x"), &testContact{ID: 1, Email: "a@x", Address: "9 High St"}))
	add(recs[2].k, recs[2].v) // redelivered
	add(src.Change('d', contact(2, "b@x"), nil))
	add([]byte(`{"id":3}`), []byte(`{"op":"u","after":{"id":`)) // cut short: DLQ, stage decode
	for i, r := range recs {
		if err := copying.handle(r.k, r.v); err != nil {
			t.Fatal(err)
		}
		m := &sarama.ConsumerMessage{Topic: stagesSource, Partition: 1, Offset: int64(i + 1), Key: r.k, Value: r.v, Timestamp: time.Now()}
		detach(m)
		owned.off++
		if err := owned.c.handle(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(copying.em.calls) != len(recs) || len(owned.em.calls) != len(recs) {
		t.Fatalf("%d and %d emitter calls, want %d each", len(copying.em.calls), len(owned.em.calls), len(recs))
	}
	enc := func(e sarama.Encoder) string {
		if e == nil {
			return "<nil>"
		}
		b, _ := e.Encode()
		return string(b)
	}
	for i := range recs {
		a, b := copying.em.calls[i], owned.em.calls[i]
		if a.kind != b.kind || len(a.outs) != len(b.outs) || (a.ledger == nil) != (b.ledger == nil) {
			t.Fatalf("record %d: copying %s with %d outputs, owned %s with %d", i, a.kind, len(a.outs), b.kind, len(b.outs))
		}
		if a.ledger != nil && string(a.ledger.key()) != string(b.ledger.key()) {
			t.Errorf("record %d: ledger key %x, owned %x", i, a.ledger.key(), b.ledger.key())
		}
		for j := range a.outs {
			oa, ob := a.outs[j], b.outs[j]
			if oa.Topic != ob.Topic || enc(oa.Key) != enc(ob.Key) || enc(oa.Value) != enc(ob.Value) {
				t.Errorf("record %d output %d:\ncopying %s %s %s\nowned   %s %s %s", i, j, oa.Topic, enc(oa.Key), enc(oa.Value), ob.Topic, enc(ob.Key), enc(ob.Value))
			}
			if ha, hb := headerText(oa.Headers), headerText(ob.Headers); ha != hb {
				t.Errorf("record %d output %d headers:\ncopying %s\nowned   %s", i, j, ha, hb)
			}
		}
	}
	if k := copying.em.calls[5].kind; k != "emit" || dlqStageOf(copying.em.calls[5].outs[0]) != dlq.StageDecode {
		t.Errorf("the cut record: %s, want a DLQ record of stage decode", k)
	}
	if copying.em.calls[3].kind != "skip" {
		t.Errorf("the redelivery: %s, want skip", copying.em.calls[3].kind)
	}
}

// headerText is headers as text, without the DLQ's first-failure time.
func headerText(hs []sarama.RecordHeader) string {
	var b strings.Builder
	for _, h := range hs {
		if string(h.Key) != "cdcsync.errors.first.failure" {
			fmt.Fprintf(&b, "%s=%q ", h.Key, h.Value)
		}
	}
	return b.String()
}

// reuseCorpus is a varied stream of source records for
// TestStagesReuseSameOutputs: every decode fixture of processor/cdc (the
// connectors, the envelope and bare forms, logical types, tombstones, a
// truncate, a message), and generated changes of three tables of very
// different widths, with JSON escapes, unicode, numbers of every form,
// nested values, an unchanged TOASTed column, snapshot reads, deletes and
// their tombstones, redeliveries, a record cut short (DLQ, decode), one
// that changes a field of another system's together with its own (DLQ,
// authority), one without the sink key (DLQ, route) and an echo.
func reuseCorpus(t *testing.T) []*sarama.ConsumerMessage {
	t.Helper()
	var msgs []*sarama.ConsumerMessage
	add := func(topic string, k, v []byte) {
		msgs = append(msgs, &sarama.ConsumerMessage{Topic: topic, Partition: 1, Key: k, Value: v})
	}
	files, err := filepath.Glob("cdc/testdata/decode/*.topic")
	if err != nil || len(files) == 0 {
		t.Fatalf("no decode fixtures: %v", err)
	}
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, f := range files {
		base := strings.TrimSuffix(f, ".topic")
		add(string(read(f)), read(base+".key.json"), read(base+".value.json"))
	}
	var lsn int64
	change := func(table string, op byte, key, before, after string) {
		lsn += 88
		add("erp.public."+table, []byte(key), fmt.Appendf(nil, `{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"postgresql","name":"erp","ts_ms":1764230400000,"snapshot":%q,"db":"erp","sequence":"[\"%d\",\"%d\"]","schema":"public","table":%q,"txId":%d,"lsn":%d},"transaction":{"id":"%d:%d","total_order":%d,"data_collection_order":1},"op":"%c","ts_ms":1764230400003,"ts_ns":1764230400003123456}`,
			before, after, map[bool]string{true: "true", false: "false"}[op == 'r'], lsn-88, lsn, table, 700+lsn/88, lsn, 700+lsn/88, lsn, lsn%7, op))
	}
	contact := func(id int, email, address string) string {
		return fmt.Sprintf(`{"id":%d,"email":"%s","address":"%s"}`, id, email, address)
	}
	order := func(id int, note string, total string) string {
		return fmt.Sprintf(`{"id":%d,"note":"%s","total":%s,"qty":%d,"price":19.99,"weight":-1.5e3,"big":9223372036854775807,"created":1764230400123456,"flag":true,"nothing":null,"tags":["a","b\"c",3],"meta":{"k":"v\u00e9","n":{"deep":[1,2,{"x":"y\n"}]}}}`,
			id, note, total, id*1000003)
	}
	wide := func(id, v int) string {
		var b strings.Builder
		fmt.Fprintf(&b, `{"id":%d`, id)
		for i := range 40 {
			fmt.Fprintf(&b, `,"c%d":"v%d-%d\\t%d","n%d":%d.%d`, i, v, i, id, i, v*1000+i, i)
		}
		return b.String() + "}"
	}
	notes := []string{`plain`, `tab\there \"q\" back\\slash`, `caf\u00e9 日本 😀 \u2028 ✓`, `\ud83d\ude00 pair`, strings.Repeat(`long\\`, 80)}
	for i := range 12 {
		id := i%5 + 1
		n := notes[i%len(notes)]
		switch i % 4 {
		case 0:
			change("orders", 'c', fmt.Sprintf(`{"id":%d}`, id), "null", order(id, n, "12.50"))
			change("contacts", 'r', fmt.Sprintf(`{"id":%d}`, id), "null", contact(id, "a"+n+"@x", "1 Main St"))
		case 1:
			change("orders", 'u', fmt.Sprintf(`{"id":%d}`, id), order(id, n, "12.50"), order(id, notes[(i+1)%len(notes)], "1e2"))
			change("items", 'c', fmt.Sprintf(`{"id":%d}`, id), "null", wide(id, i))
		case 2:
			change("items", 'u', fmt.Sprintf(`{"id":%d}`, id), wide(id, i-1), strings.Replace(wide(id, i), `"c3":"v`, `"c3":"__debezium_unavailable_value","x":"v`, 1))
			change("contacts", 'u', fmt.Sprintf(`{"id":%d}`, id), contact(id, "a@x", "1 Main St"), contact(id, "a@x", n))
		case 3:
			change("orders", 'd', fmt.Sprintf(`{"id":%d}`, id), order(id, n, "0"), "null")
			add("erp.public.orders", fmt.Appendf(nil, `{"id":%d}`, id), nil) // its tombstone
		}
		if i%3 == 2 {
			m := msgs[len(msgs)-2]
			add(m.Topic, m.Key, m.Value) // a redelivery
		}
	}
	// An echo: only email, crm's field, changed (dropped by authority).
	change("contacts", 'u', `{"id":9}`, contact(9, "old@x", "1 Main St"), contact(9, "new@x", "1 Main St"))
	// email (crm's) changed together with address (erp's): a violation.
	change("contacts", 'u', `{"id":9}`, contact(9, "old@x", "1 Main St"), contact(9, "new\\\"@x", "2 Main St"))
	// No id: the sink key cannot be formed.
	change("contacts", 'c', `{"region":"eu"}`, "null", `{"region":"eu","email":"z@x"}`)
	add("erp.public.contacts", []byte(`{"id":3}`), []byte(`{"op":"u","after":{"id":`)) // cut short
	add("erp.public.contacts", []byte(`{"id":3}`), truncateValue(9000))
	change("orders", 'c', `{"id":77}`, "null", order(77, notes[1], "5"))
	for i, m := range msgs {
		m.Offset = int64(i + 1)
	}
	return msgs
}

// A claim decodes each record's event in the memory of the previous one
// (claimCtx.scratch). Regression guard for aliasing: an output (sink
// record, DLQ record, ledger entry) that kept a reference into an event's
// memory would change when a later record is decoded over it. Every
// output of the run is therefore kept to its END and only then compared,
// byte for byte (key, value, every header; the ledger entry's key and
// value), with the outputs of a claim that decodes each event in fresh
// memory; with JSON sink records, with truncates passed to every sink
// partition, and with Avro sink records (srfake registry).
func TestStagesReuseSameOutputs(t *testing.T) {
	for _, v := range []struct{ name, source, sink string }{
		{"json", "", "sink: {topic: 'sync.{table}', key: [id]}"},
		{"truncate pass", ", truncate: pass", "sink: {topic: 'sync.{table}', key: [id]}"},
		{"avro", "", "sink: {topic: 'sync.{table}', key: [id], format: avro}"},
	} {
		t.Run(v.name, func(t *testing.T) {
			plan, err := topology.Parse("stages.yaml", []byte(`name: stages
systems: [erp, crm]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json`+v.source+`}
authority: {owners: {email: crm}, default_owner: erp, on_violation: dlq}
`+v.sink+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			var enc *schemas.Encoder
			if plan.SinkFormat() == topology.SinkAvro {
				reg := srfake.New()
				t.Cleanup(reg.Close)
				enc = schemas.NewEncoder(schemas.NewClient(reg.URL(), schemas.ClientOptions{}), schemas.EncoderOptions{})
			}
			testStagesReuse(t, plan, enc)
		})
	}
}

func testStagesReuse(t *testing.T, plan *topology.Plan, enc *schemas.Encoder) {
	clock := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	setup := func(reuse bool) *stagesFixture {
		f := newStagesFixture(t, "")
		f.p.plan = plan
		f.p.now = func() time.Time { return clock }
		f.p.rules = newRules(plan)
		if enc != nil {
			f.p.enc = enc
		}
		f.c.owned = true
		if reuse {
			f.c.scratch = new(cdc.Scratch)
		}
		return f
	}
	fresh, reused := setup(false), setup(true)
	if _, ok := reused.p.dec.(cdc.ReusingDecoder); !ok {
		t.Fatalf("the pipeline's decoder %T cannot decode into a scratch", reused.p.dec)
	}
	msgs := reuseCorpus(t)
	for _, f := range []*stagesFixture{fresh, reused} {
		f.sinks.parts = map[string]int32{}
		for _, m := range msgs {
			if ev, err := f.p.dec.Decode(m.Topic, m.Key, m.Value); err == nil {
				f.sinks.parts[f.p.plan.SinkTopic(ev.Source.Database, ev.Source.Schema, ev.Source.Table, ev.Entity)] = 3
			}
		}
		for _, m := range msgs {
			c := *m
			detach(&c)
			if err := f.c.handle(&c); err != nil {
				t.Fatalf("offset %d: %v", m.Offset, err)
			}
		}
	}
	if len(fresh.em.calls) != len(msgs) || len(reused.em.calls) != len(msgs) {
		t.Fatalf("%d and %d emitter calls, want %d each", len(fresh.em.calls), len(reused.em.calls), len(msgs))
	}
	encoded := func(e sarama.Encoder) string {
		if e == nil {
			return "<nil>"
		}
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%T %q", e, b)
	}
	allHeaders := func(hs []sarama.RecordHeader) string {
		var b strings.Builder
		for _, h := range hs {
			fmt.Fprintf(&b, "%q=%q ", h.Key, h.Value)
		}
		return b.String()
	}
	kinds := map[string]int{}
	for i, m := range msgs {
		a, b := fresh.em.calls[i], reused.em.calls[i]
		if a.kind != b.kind || len(a.outs) != len(b.outs) || (a.ledger == nil) != (b.ledger == nil) || fmt.Sprint(a.err) != fmt.Sprint(b.err) {
			t.Fatalf("offset %d: fresh %s with %d outputs, reused %s with %d", m.Offset, a.kind, len(a.outs), b.kind, len(b.outs))
		}
		kind := a.kind
		if a.ledger != nil {
			kind += "+ledger"
			if a.ledger.partition != b.ledger.partition || !bytes.Equal(a.ledger.kv, b.ledger.kv) {
				t.Errorf("offset %d: ledger entry %d %x, reused %d %x", m.Offset, a.ledger.partition, a.ledger.kv, b.ledger.partition, b.ledger.kv)
			}
		}
		for j := range a.outs {
			oa, ob := a.outs[j], b.outs[j]
			if oa.Topic == "dlq.stages" {
				kind = "dlq:" + dlqStageOf(oa)
			}
			if oa.Topic != ob.Topic || oa.Partition != ob.Partition || encoded(oa.Key) != encoded(ob.Key) || encoded(oa.Value) != encoded(ob.Value) {
				t.Errorf("offset %d output %d:\nfresh  %s %s %s\nreused %s %s %s", m.Offset, j, oa.Topic, encoded(oa.Key), encoded(oa.Value), ob.Topic, encoded(ob.Key), encoded(ob.Value))
			}
			if headerOf(oa, schemas.HeaderSchemaID) != "" {
				kinds["avro"]++
			}
			if ha, hb := allHeaders(oa.Headers), allHeaders(ob.Headers); ha != hb {
				t.Errorf("offset %d output %d headers:\nfresh  %s\nreused %s", m.Offset, j, ha, hb)
			}
		}
		if len(a.outs) > 1 {
			kinds["several outputs"]++
		}
		kinds[kind]++
	}
	if enc != nil && kinds["avro"] == 0 {
		t.Error("no Avro sink record")
	}
	if plan.Truncate() == topology.TruncatePass && kinds["several outputs"] == 0 {
		t.Error("no truncate went to every sink partition")
	}
	// The corpus must reach what it is meant to.
	for _, k := range []string{"emit+ledger", "emit", "skip", "dlq:" + dlq.StageDecode, "dlq:" + dlq.StageAuthority, "dlq:" + dlq.StageRoute} {
		if kinds[k] == 0 {
			t.Errorf("no record ended as %s (outcomes: %v)", k, kinds)
		}
	}
	t.Logf("%d records: %v", len(msgs), kinds)

	// And the claim did decode in reused memory: two records' events are
	// the same memory.
	d1, d2 := reused.c.stages(msgs[len(msgs)-1]), reused.c.stages(msgs[len(msgs)-2])
	if d1.ev == nil || d1.ev != d2.ev {
		t.Errorf("two records decoded with the claim's scratch gave events %p and %p: nothing reused", d1.ev, d2.ev)
	}
}
