package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/saga"
)

func readerConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	return cfg
}

// BenchmarkKfakeSaga measures the saga orchestrator end to end on kfake:
// one in-process runtime runs the three-step saga of TestKfakeSagaChaos
// on 8 partitions, with participants that answer every command at once
// (success). Each iteration is a new broker. burst produces 5,000
// triggers at once: sagas/s is completed sagas over the time from the
// first trigger produced to the last saga completed, and its latencies
// include the queueing of the burst. paced-250/s produces 2,000 triggers
// at 250 a second: its latencies are those of an orchestrator that keeps
// up. p50 and p99 are the time from a trigger's produce to its saga's
// completion (the completion time in the state).
//
//	go test -run '^$' -bench BenchmarkKfakeSaga -benchtime 3x ./integration/
func BenchmarkKfakeSaga(b *testing.B) {
	b.Run("burst", func(b *testing.B) { benchSaga(b, 5_000, 0) })
	// 250 triggers a second for 8 s: the latency of sagas that do not
	// queue behind a burst.
	b.Run("paced-250/s", func(b *testing.B) { benchSaga(b, 2_000, 250) })
}

// benchSaga runs sagas sagas; rate > 0 produces the triggers at that rate
// (in chunks every 100 ms) instead of in one burst.
func benchSaga(b *testing.B, sagas, rate int) {
	const parts = 8
	var rates, p50s, p99s []float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := embeddedStack(parts, chaosTrigger)
		if err != nil {
			b.Fatal(err)
		}
		brokers := st.Brokers()
		name := fmt.Sprintf("bench-%d", i)
		def := chaosDefinition(b, name)
		ready := make(chan struct{}, 1)
		rt, err := saga.New(saga.Config{Def: chaosDefinition(b, name), Brokers: brokers, OnSetup: func([]int32) {
			select {
			case ready <- struct{}{}:
			default:
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		<-ready
		pctx, pcancel := context.WithCancel(context.Background())
		participants(pctx, b, brokers, parts)
		var ids []string
		for j := 0; len(ids) < sagas; j++ {
			if id := fmt.Sprintf("b-%06d", j); fateOf(id) == fateOK {
				ids = append(ids, id)
			}
		}
		client, err := sarama.NewClient(brokers, readerConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		if rate == 0 {
			produceTriggers(b, brokers, ids)
		} else {
			chunk := rate / 10
			for j := 0; j < len(ids); j += chunk {
				next := began.Add(time.Duration(j/chunk) * 100 * time.Millisecond)
				time.Sleep(time.Until(next))
				produceTriggers(b, brokers, ids[j:min(j+chunk, len(ids))])
			}
		}
		var states []*saga.State
		for {
			states, _, err = saga.ReadStates(context.Background(), client, def.StateTopic())
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, s := range states {
				if s.Status == saga.Completed {
					n++
				}
			}
			if n == sagas {
				break
			}
			if time.Since(began) > 5*time.Minute {
				b.Fatalf("%d of %d sagas completed after 5 minutes", n, sagas)
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.StopTimer()
		var last time.Time
		lat := make([]float64, 0, len(states))
		for _, s := range states {
			var trig struct {
				At int64 `json:"at"`
			}
			if err := json.Unmarshal(s.Trigger, &trig); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, s.Ended.Sub(time.Unix(0, trig.At)).Seconds())
			if s.Ended.After(last) {
				last = s.Ended
			}
		}
		slices.Sort(lat)
		rates = append(rates, float64(sagas)/last.Sub(began).Seconds())
		p50s = append(p50s, lat[len(lat)/2]*1000)
		p99s = append(p99s, lat[len(lat)*99/100]*1000)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		pcancel()
		client.Close()
		st.Close()
	}
	b.ReportMetric(median(rates), "sagas/s")
	b.ReportMetric(median(p50s), "p50-ms")
	b.ReportMetric(median(p99s), "p99-ms")
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
