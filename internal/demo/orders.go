package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/saga"
)

// OrdersTopic is the order saga's trigger topic.
const OrdersTopic = "shop.orders"

// declined reports whether the demo's payment provider declines order i:
// one order in eight.
func declined(i int) bool { return i%8 == 5 }

// Orders returns the order saga's triggers: n OrderPlaced events keyed by
// order ID, and how many payments the provider will decline.
func Orders(n int) (records []Record, declines int) {
	for i := range n {
		id := fmt.Sprintf("order-%04d", i+1)
		v := fmt.Sprintf(`{"id":%q,"type":"OrderPlaced","sku":"SKU-%d","qty":%d,"amount":%d.%02d}`, id, 100+i%7, 1+i%3, 20+i*3%180, i%100)
		records = append(records, Record{Topic: OrdersTopic, Key: []byte(id), Value: []byte(v)})
		if declined(i) {
			declines++
		}
	}
	return records, declines
}

// Participants are the order saga's in-process stock, payment and
// shipping services. Each reads its command topic (read_committed) and
// answers on the step's reply topic, on the command's partition, with the
// correlation headers: the participant contract of docs/sagas.md.
type Participants struct {
	mu           sync.Mutex
	reserved     map[string]bool // reservation -> held
	charged      map[string]bool // charge -> not refunded
	shipped      map[string]bool
	declinedIDs  map[string]bool
	declineOrder map[string]bool
}

// ParticipantStats is what the participants did.
type ParticipantStats struct {
	Reserved, Released, Charged, Declined, Shipped int
}

// Stats counts the participants' state.
func (p *Participants) Stats() ParticipantStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s ParticipantStats
	for _, held := range p.reserved {
		if held {
			s.Reserved++
		} else {
			s.Released++
		}
	}
	for _, c := range p.charged {
		if c {
			s.Charged++
		}
	}
	s.Declined = len(p.declinedIDs)
	s.Shipped = len(p.shipped)
	return s
}

// RunParticipants serves the order saga's commands until ctx ends. The
// orders listed in decline are declined by the payment provider. suffix
// is appended to the command and reply topic names (the real-stack test
// runs its own copy of the saga); the demo passes "".
func RunParticipants(ctx context.Context, brokers []string, partitions int32, decline map[string]bool, suffix string) (*Participants, func(), error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, nil, err
	}
	// The orchestrator creates the command topics; wait for them.
	for _, t := range []string{"stock.commands" + suffix, "payment.commands" + suffix, "shipping.commands" + suffix} {
		for deadline := time.Now().Add(30 * time.Second); ; {
			_ = client.RefreshMetadata(t)
			if ps, err := client.Partitions(t); err == nil && len(ps) == int(partitions) {
				break
			}
			if time.Now().After(deadline) {
				client.Close()
				return nil, nil, fmt.Errorf("demo: the saga did not create %s", t)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		cons.Close()
		client.Close()
		return nil, nil, err
	}
	p := &Participants{reserved: map[string]bool{}, charged: map[string]bool{}, shipped: map[string]bool{},
		declinedIDs: map[string]bool{}, declineOrder: decline}
	var wg sync.WaitGroup
	for _, svc := range []string{"stock", "payment", "shipping"} {
		for part := range partitions {
			pc, err := cons.ConsumePartition(svc+".commands"+suffix, part, sarama.OffsetOldest)
			if err != nil {
				cons.Close()
				client.Close()
				return nil, nil, err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer pc.Close()
				for {
					select {
					case m := <-pc.Messages():
						reply := p.handle(svc, m)
						reply.Topic += suffix
						reply.Partition = m.Partition
						if _, _, err := prod.SendMessage(reply); err != nil && ctx.Err() == nil {
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}
	stop := func() { wg.Wait(); prod.Close(); cons.Close(); client.Close() }
	return p, stop, nil
}

// handle performs one command, idempotently per (saga, step, kind).
func (p *Participants) handle(svc string, m *sarama.ConsumerMessage) *sarama.ProducerMessage {
	var hs []sarama.RecordHeader
	h := map[string]string{}
	for _, x := range m.Headers {
		h[string(x.Key)] = string(x.Value)
		if strings.HasPrefix(string(x.Key), "cdcsync.saga.") {
			hs = append(hs, *x)
		}
	}
	var payload map[string]any
	_ = json.Unmarshal(m.Value, &payload)
	id := h[saga.HeaderID]
	out := map[string]any{"outcome": "success"}
	p.mu.Lock()
	switch h[saga.HeaderType] {
	case "ReserveStock":
		p.reserved["res-"+id] = true
		out["result"] = map[string]any{"reservation": "res-" + id}
	case "ReleaseStock":
		if r, _ := payload["reservation"].(string); r != "" {
			p.reserved[r] = false
		}
	case "Charge":
		if p.declineOrder[id] {
			p.declinedIDs[id] = true
			out = map[string]any{"outcome": "failure", "error": "card declined"}
		} else {
			p.charged["ch-"+id] = true
			out["result"] = map[string]any{"charge": "ch-" + id}
		}
	case "Refund":
		if c, _ := payload["charge"].(string); c != "" {
			p.charged[c] = false
		}
	case "Ship":
		p.shipped[id] = true
		out["result"] = map[string]any{"tracking": "trk-" + id}
	}
	p.mu.Unlock()
	v, _ := json.Marshal(out)
	return &sarama.ProducerMessage{Topic: svc + ".replies", Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(v), Headers: hs}
}

// WaitSagas waits until every saga of the state topic is terminal and
// there are n of them, and returns them.
func WaitSagas(ctx context.Context, brokers []string, stateTopic string, n int, timeout time.Duration) ([]*saga.State, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	deadline := time.Now().Add(timeout)
	for {
		states, _, err := saga.ReadStates(ctx, client, stateTopic)
		if err == nil && len(states) == n {
			done := 0
			for _, s := range states {
				if s.Status.Terminal() {
					done++
				}
			}
			if done == n {
				return states, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("demo: the order sagas did not all end within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
