package processor

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/topology"
)

// TestOfflineOutcomes runs records through Offline and checks that each
// decision of the stages is reported as its outcome: Offline reads skip
// reasons from the stats handle counts, so a change there shows here.
func TestOfflineOutcomes(t *testing.T) {
	plan, err := topology.Parse("offline.yaml", []byte(`name: offline
systems: [erp, crm]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json, truncate: drop}
authority:
  owners: {email: crm}
  default_owner: erp
sink: {topic: 'sync.{table}', key: [id]}
`))
	if err != nil {
		t.Fatal(err)
	}
	off, err := NewOffline(plan, 3, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	src := &testSource{Table: "contacts"}
	var offset int64
	process := func(key, value []byte) OfflineResult {
		offset++
		return off.Process(&sarama.ConsumerMessage{Topic: stagesSource, Partition: 1, Offset: offset, Key: key, Value: value})
	}
	k, v := src.Change('u', contact(1, "a@x"), &testContact{ID: 1, Email: "a@x", Address: "2 Side St"})
	if r := process(k, v); r.Outcome != OutcomeSink || len(r.Records) != 1 || r.Records[0].Topic != "sync.contacts" {
		t.Errorf("owned change: %+v", r)
	}
	if r := process(k, v); r.Outcome != OutcomeDuplicate {
		t.Errorf("again: %+v", r)
	}
	k, v = src.Change('u', contact(1, "a@x"), &testContact{ID: 1, Email: "b@x", Address: "1 Main St"})
	if r := process(k, v); r.Outcome != OutcomeAuthorityDrop {
		t.Errorf("foreign change: %+v", r)
	}
	if r := process(k, []byte("{")); r.Outcome != OutcomeDLQ || r.Stage != "decode" || r.Err == nil || len(r.Records) != 1 ||
		r.Records[0].Topic != "dlq.offline" {
		t.Errorf("poison: %+v", r)
	}
	if r := process(src.Tombstone(1), nil); r.Outcome != OutcomeSink || r.Records[0].Value != nil {
		t.Errorf("tombstone: %+v", r)
	}
	_, tv := src.Change('t', nil, nil)
	if r := process(nil, tv); r.Outcome != OutcomeTruncateDrop {
		t.Errorf("truncate: %+v", r)
	}

	// errors.tolerance none: the topology would stop, nothing is written.
	strict, err := topology.Parse("strict.yaml", []byte(`name: strict
systems: [erp]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-json}
sink: {topic: sync.contacts, key: [id]}
errors: {tolerance: none}
`))
	if err != nil {
		t.Fatal(err)
	}
	so, err := NewOffline(strict, 1, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if r := so.Process(&sarama.ConsumerMessage{Topic: stagesSource, Value: []byte("{")}); r.Outcome != OutcomeNotHandled || classify(r.Err) != Fatal {
		t.Errorf("tolerance none: %+v", r)
	}

	// An Avro topology needs a registry.
	avro, err := topology.Parse("avro.yaml", []byte(`name: avro
systems: [erp]
source: {topics: [`+stagesSource+`], system: erp, format: debezium-avro}
sink: {topic: sync.contacts, key: [id]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewOffline(avro, 1, nil, zaptest.NewLogger(t)); !errors.Is(err, ErrOfflineFormat) {
		t.Errorf("avro without a registry: %v", err)
	}
}
