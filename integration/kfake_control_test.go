package integration

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor/api"
)

// TestKfakeControlTopicOffsetOutOfRange: the control topic answers
// OFFSET_OUT_OF_RANGE to fetches, as when compaction or retention moves
// its log start between the offset lookup and the fetch. Regression: a
// worker starting then stopped for good ("reading the control topic …:
// the requested offset is out of range", seen in the exactly-once chaos
// test), and a worker already following it stopped following pause and
// resume without a word. Now both retry and reopen the partition.
func TestKfakeControlTopicOffsetOutOfRange(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	plan := mustPlan(t, fmt.Sprintf(contactsTopology, "ctloor", src.Topic(), "sync.ctloor"))

	var refuse atomic.Int64 // fetches of the control topic still to refuse
	var refused atomic.Int64
	st.Kafka.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		st.Kafka.KeepControl()
		fr := req.(*kmsg.FetchRequest)
		if len(fr.Topics) != 1 || refuse.Load() <= 0 {
			return nil, nil, false
		}
		t0 := fr.Topics[0]
		if t0.Topic != "cdcsync.control" && t0.TopicID != st.Kafka.TopicInfo("cdcsync.control").TopicID {
			return nil, nil, false
		}
		refuse.Add(-1)
		refused.Add(1)
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = t0.Topic, t0.TopicID
		for _, p := range t0.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = kerr.OffsetOutOfRange.Code
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})

	// A first worker creates the control topic and writes its reports.
	a, urlA := startAPIWorker(t, brokers, "ca", plan)
	waitFor(t, 30*time.Second, "worker ca running", func() bool { return status(t, urlA, plan.Name()).State != "" })

	// A second worker starts while the control topic refuses fetches: it
	// retries and starts, instead of stopping.
	refuse.Store(3)
	b, urlB := startAPIWorker(t, brokers, "cb", plan)
	waitFor(t, 60*time.Second, "worker cb reading the control topic after the refusals", func() bool {
		return refuse.Load() == 0 && b.w.Ready()
	})
	if err, stopped := b.wait(2 * time.Second); stopped {
		t.Fatalf("worker cb stopped: %v", err)
	}

	// Both now follow the topic; refuse their fetches again, then pause
	// through ca: cb must still see the pause (it reopened the partition).
	refuse.Store(4)
	waitFor(t, 30*time.Second, "the followers' fetches refused", func() bool { return refuse.Load() <= 0 })
	var act api.Action
	if code, body := call(t, http.MethodPut, urlA+"/topologies/"+plan.Name()+"/pause", apiToken, &act); code != http.StatusAccepted {
		t.Fatalf("pause: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := st.Kafka.WaitGroupStable(ctx, string(plan.Group()), 2); err != nil {
		t.Fatalf("the group did not settle with 2 members: %v", err)
	}
	waitFor(t, 30*time.Second, "worker cb paused through the control topic", func() bool {
		return status(t, urlB, plan.Name()).Workers[0].State == api.StatePaused
	})
	if code, body := call(t, http.MethodPut, urlA+"/topologies/"+plan.Name()+"/resume", apiToken, &act); code != http.StatusAccepted {
		t.Fatalf("resume: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "worker cb running again", func() bool {
		return status(t, urlB, plan.Name()).Workers[0].State == api.StateRunning
	})
	t.Logf("control-topic fetches refused with OFFSET_OUT_OF_RANGE: %d", refused.Load())
	_ = a
}
