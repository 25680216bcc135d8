// Package webhookload sends signed Stripe-style webhook deliveries to a
// cdcsync ingress, as a provider does: each delivery is retried until it
// gets a 2xx, after a 503 (honouring Retry-After up to a cap) or a
// connection error. The kfake end-to-end test and the load benchmark
// (cmd/webhookload) use it.
package webhookload

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// StripeSignature is the Stripe-Signature header of body signed at at:
// "t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
func StripeSignature(secret string, at time.Time, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Delivery is one webhook event.
type Delivery struct {
	ID       string // evt_...
	Customer string // the entity key
	Seq      int    // the customer's change number, from 1
	Body     []byte
}

// StripeEvent is a customer.created (seq 1) or customer.updated event
// laid out as Stripe's Event object, with previous_attributes on updates.
func StripeEvent(id, customer string, seq int, created time.Time) []byte {
	typ, prev := "customer.created", ""
	if seq > 1 {
		typ = "customer.updated"
		prev = fmt.Sprintf(`,"previous_attributes":{"description":"seq-%s-%d"}`, customer, seq-1)
	}
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"data":{"object":{"id":%q,"object":"customer","email":"%s@example.com","description":"seq-%s-%d","balance":%d,"metadata":{"plan":"pro"}}%s},"livemode":false,"pending_webhooks":1,"type":%q}`,
		id, created.Unix(), customer, customer, customer, seq, seq*100, prev, typ)
}

// Workload is a set of sender queues: each sender owns some customers and
// sends their deliveries in its order.
type Workload struct {
	Queues [][]Delivery
	Unique int
	Dups   int
}

// NewWorkload makes n unique deliveries over keys customers for senders
// queues. A share dup of them is queued a second time, later; a share
// swap of adjacent pairs of one customer's deliveries is swapped (sent
// out of order).
func NewWorkload(n, keys, senders int, dup, swap float64, seed uint64) *Workload {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	w := &Workload{Queues: make([][]Delivery, senders), Unique: n}
	seq := make([]int, keys)
	now := time.Now()
	for i := 0; i < n; i++ {
		k := rng.IntN(keys)
		seq[k]++
		cus := fmt.Sprintf("cus_%06d", k)
		d := Delivery{ID: fmt.Sprintf("evt_%08d_%d", i, seed), Customer: cus, Seq: seq[k]}
		d.Body = StripeEvent(d.ID, cus, d.Seq, now)
		q := k % senders
		w.Queues[q] = append(w.Queues[q], d)
	}
	for q := range w.Queues {
		qs := w.Queues[q]
		for i := 0; i+1 < len(qs); i++ {
			if rng.Float64() < swap {
				qs[i], qs[i+1] = qs[i+1], qs[i]
				i++
			}
		}
		var dups []Delivery
		for _, d := range qs {
			if rng.Float64() < dup {
				dups = append(dups, d)
			}
		}
		for _, d := range dups {
			pos := rng.IntN(len(qs) + 1)
			qs = slices.Insert(qs, pos, d)
		}
		w.Dups += len(dups)
		w.Queues[q] = qs
	}
	return w
}

// Stats are a run's counts, safe for concurrent use.
type Stats struct {
	Acked     atomic.Int64 // 2xx answers
	Retries   atomic.Int64 // sends after a 503 or a connection error
	Status503 atomic.Int64
	ConnErrs  atomic.Int64
	Other     atomic.Int64 // answers other than 2xx and 503: a bug for a signed delivery

	mu        sync.Mutex
	latencies []time.Duration // per acknowledged send: request to 2xx
	acked     []string        // delivery IDs in acknowledgement order
}

// Latencies returns the 2xx latencies, sorted.
func (s *Stats) Latencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	return l
}

// AckedIDs returns the acknowledged delivery IDs.
func (s *Stats) AckedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acked)
}

// Quantile returns the q quantile of sorted latencies.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// Sender posts deliveries to one URL.
type Sender struct {
	URL     string
	Secret  func(i int) string // the secret of the i-th delivery sent; rotation in tests
	Client  *http.Client
	MaxWait time.Duration // cap on a Retry-After wait; default 500ms
	Stats   *Stats
	sent    atomic.Int64
}

// Send posts d until a 2xx, a final 4xx, or ctx ends.
func (s *Sender) Send(ctx context.Context, d Delivery) error {
	maxWait := s.MaxWait
	if maxWait == 0 {
		maxWait = 500 * time.Millisecond
	}
	i := int(s.sent.Add(1))
	secret := s.Secret(i)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.Stats.Retries.Add(1)
		}
		now := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(d.Body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", StripeSignature(secret, now, d.Body))
		resp, err := s.Client.Do(req)
		wait := 50 * time.Millisecond
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.Stats.ConnErrs.Add(1)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 == 2:
				lat := time.Since(now)
				s.Stats.Acked.Add(1)
				s.Stats.mu.Lock()
				s.Stats.latencies = append(s.Stats.latencies, lat)
				s.Stats.acked = append(s.Stats.acked, d.ID)
				s.Stats.mu.Unlock()
				return nil
			case resp.StatusCode == http.StatusServiceUnavailable:
				s.Stats.Status503.Add(1)
				if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
					wait = min(time.Duration(ra)*time.Second, maxWait)
				}
			default:
				s.Stats.Other.Add(1)
				return fmt.Errorf("delivery %s: status %d", d.ID, resp.StatusCode)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// Run sends every queue of w concurrently, one goroutine per queue, each
// delivery after the previous one's 2xx, and returns the first error.
func (s *Sender) Run(ctx context.Context, w *Workload) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(w.Queues))
	for _, q := range w.Queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range q {
				if err := s.Send(ctx, d); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
