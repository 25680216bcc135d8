//go:build realstack

package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/api"
)

// On a real Kafka 4.x broker: the control topic exists compacted with one
// partition, and a pause through one worker holds both workers' partitions
// until a resume through the other; every change then arrives once.
func TestRealStackAPIPauseResume(t *testing.T) {
	s := loadStack(t)
	run := runID()
	src := demo.NewSource("api"+run, "erp", false)
	c := newClient(t, s.brokers)
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(src.Topic(), &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	name := "api-" + run
	sink := "sync.api" + run
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, name, src.Topic(), sink))
	w := makeWorkload(src, 100, 1000, 0.1, 31)

	a, urlA := startAPIWorker(t, s.brokers, "rs-wa-"+run, plan)
	b, urlB := startAPIWorker(t, s.brokers, "rs-wb-"+run, plan)
	produce(t, s.brokers, w.Records[:500])
	waitProcessed(t, s.brokers, 2*time.Minute, plan)

	cfgs, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: processor.DefaultControlTopic})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cfgs {
		if e.Name == "cleanup.policy" && e.Value != "compact" {
			t.Errorf("control topic cleanup.policy = %q, want compact", e.Value)
		}
	}
	if parts, err := c.Partitions(processor.DefaultControlTopic); err != nil || len(parts) != 1 {
		t.Errorf("control topic partitions %v %v, want 1", parts, err)
	}

	if code, body := call(t, http.MethodPut, urlA+"/topologies/"+name+"/pause", apiToken, nil); code != http.StatusAccepted {
		t.Fatalf("pause: %d %s", code, body)
	}
	waitFor(t, 60*time.Second, "both workers holding their partitions", func() bool {
		return heldBy(t, urlA, name) && heldBy(t, urlB, name)
	})
	in := a.w.Stats(name).In + b.w.Stats(name).In
	produce(t, s.brokers, w.Records[500:])
	waitFor(t, 30*time.Second, "the pause's records shown as lag", func() bool {
		var lag int64
		for _, p := range status(t, urlB, name).Partitions {
			lag += p.LagRecords
		}
		return lag == 500
	})
	if got := a.w.Stats(name).In + b.w.Stats(name).In; got != in {
		t.Errorf("records in moved from %d to %d while paused", in, got)
	}
	if code, body := call(t, http.MethodPut, urlB+"/topologies/"+name+"/resume", apiToken, nil); code != http.StatusAccepted {
		t.Fatalf("resume: %d %s", code, body)
	}
	waitProcessed(t, s.brokers, 2*time.Minute, plan)
	checkExactlyOnce(t, readAll(t, s.brokers, sink), w)
	if st := status(t, urlA, name); st.State != api.StateRunning {
		t.Errorf("state %s after resume", st.State)
	}
}
