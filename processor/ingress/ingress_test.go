package ingress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

const testSecret = "whsec_ingress_test"

func stripeSig(secret string, at time.Time, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

func testMap() cdc.WebhookMap {
	return cdc.WebhookMap{ID: "id", Type: "type", Entity: "data.object.object", Key: []string{"data.object.id"},
		After: "data.object", Before: "data.previous_attributes",
		Op: func(t string) (cdc.Op, bool) {
			switch {
			case strings.HasSuffix(t, ".created"):
				return cdc.OpCreate, true
			case strings.HasSuffix(t, ".updated"):
				return cdc.OpUpdate, true
			}
			return 0, false
		}}
}

type rig struct {
	url     string
	kafka   *kfake.Cluster
	client  sarama.Client
	metrics *Metrics
	down    atomic.Bool
	slow    atomic.Bool // produce requests answered after 700 ms
}

// newRig runs the ingress on loopback in front of an in-process kfake
// broker, with the production producer.
func newRig(t *testing.T, tweak func(*Config)) *rig {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "stripe.raw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	r := &rig{kafka: kc}
	kc.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if r.down.Load() && req.Key() == int16(kmsg.Produce) {
			return nil, errors.New("broker down"), true
		}
		if r.slow.Load() && req.Key() == int16(kmsg.Produce) {
			time.Sleep(700 * time.Millisecond)
		}
		return nil, nil, false
	})
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Retry.Max = 3
	sc.Producer.Retry.Backoff = 50 * time.Millisecond
	sc.Producer.Flush.Frequency = time.Millisecond
	sc.Producer.MaxMessageBytes = 1_000_000 // as the worker's producers (processor.maxMessageBytes)
	client, err := sarama.NewClient(kc.ListenAddrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	r.client = client
	prod, err := NewKafkaProducer(client)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{Scheme: Stripe, Secrets: []string{testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ProduceTimeout = 2 * time.Second
	cfg.ReadTimeout = 3 * time.Second
	cfg.ReadHeaderTimeout = 2 * time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	r.metrics = NewMetrics(prometheus.NewRegistry())
	srv, err := New(cfg, []Endpoint{{Topology: "stripe", Path: "/webhooks/stripe", Topic: "stripe.raw", Verifier: v, Map: testMap(), MaxBody: 1 << 20}},
		prod, r.metrics, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = prod.Close()
		_ = client.Close()
	})
	r.url = "http://" + ln.Addr().String()
	return r
}

func event(id, typ, cus string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"data":{"object":{"id":%q,"object":"customer","email":"a@example.com"}}}`, id, typ, cus))
}

func (r *rig) post(t *testing.T, path string, body []byte, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (r *rig) records(t *testing.T) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumerFromClient(r.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []*sarama.ConsumerMessage
	for p := int32(0); p < 4; p++ {
		hw, err := r.client.GetOffset("stripe.raw", p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		pc, err := c.ConsumePartition("stripe.raw", p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			out = append(out, m)
			if m.Offset == hw-1 {
				break
			}
		}
		pc.Close()
	}
	return out
}

func TestIngressAnswers(t *testing.T) {
	r := newRig(t, nil)
	now := time.Now()
	good := event("evt_1", "customer.created", "cus_1")
	sig := func(b []byte) map[string]string {
		return map[string]string{"Stripe-Signature": stripeSig(testSecret, now, b)}
	}

	resp, _ := r.post(t, "/nope", good, sig(good))
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, r.url+"/webhooks/stripe", nil)
	gr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	gr.Body.Close()
	if gr.StatusCode != 405 || gr.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q", gr.StatusCode, gr.Header.Get("Allow"))
	}
	resp, body := r.post(t, "/webhooks/stripe", good, nil)
	if resp.StatusCode != 401 || strings.TrimSpace(body) != "unauthorized" {
		t.Errorf("no signature: %d %q", resp.StatusCode, body)
	}
	resp, body = r.post(t, "/webhooks/stripe", good, map[string]string{"Stripe-Signature": stripeSig("whsec_other", now, good)})
	if resp.StatusCode != 401 || strings.TrimSpace(body) != "unauthorized" {
		t.Errorf("forged: %d %q (no detail allowed)", resp.StatusCode, body)
	}
	resp, body = r.post(t, "/webhooks/stripe", good, map[string]string{"Stripe-Signature": stripeSig(testSecret, now.Add(-time.Hour), good)})
	if resp.StatusCode != 400 || !strings.Contains(body, "tolerance") {
		t.Errorf("stale: %d %q", resp.StatusCode, body)
	}
	bad := []byte(`{"id":"evt_2","type":"charge.succeeded","data":{"object":{"id":"ch_1","object":"charge"}}}`)
	resp, body = r.post(t, "/webhooks/stripe", bad, sig(bad))
	if resp.StatusCode != 400 || !strings.Contains(body, "unmapped event type") {
		t.Errorf("unmapped: %d %q", resp.StatusCode, body)
	}
	bad = []byte(`{"id":"evt_3",`)
	resp, body = r.post(t, "/webhooks/stripe", bad, sig(bad))
	if resp.StatusCode != 400 || !strings.Contains(body, "not valid JSON") {
		t.Errorf("malformed: %d %q", resp.StatusCode, body)
	}

	h := sig(good)
	h["Traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	resp, _ = r.post(t, "/webhooks/stripe", good, h)
	if resp.StatusCode != 200 {
		t.Fatalf("valid: %d", resp.StatusCode)
	}
	recs := r.records(t)
	if len(recs) != 1 {
		t.Fatalf("raw topic holds %d records, want 1 (only the acknowledged one)", len(recs))
	}
	m := recs[0]
	if !bytes.Equal(m.Value, good) {
		t.Errorf("value is not the raw body: %s", m.Value)
	}
	d, _ := testMap().Extract(good, nil)
	if !bytes.Equal(m.Key, d.RecordKey) {
		t.Errorf("key %q, want the entity key %q", m.Key, d.RecordKey)
	}
	hdr := map[string]string{}
	for _, h := range m.Headers {
		hdr[string(h.Key)] = string(h.Value)
	}
	if _, ok := hdr["stripe-signature"]; ok {
		t.Error("the signature header was copied onto the raw record")
	}
	if hdr["traceparent"] == "" || hdr[HeaderDeliveryID] != "evt_1" {
		t.Errorf("headers %v", hdr)
	}
	if ts, err := time.Parse(time.RFC3339Nano, hdr[HeaderReceivedAt]); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("received_at %q: %v", hdr[HeaderReceivedAt], err)
	}
	for reason, want := range map[string]float64{ReasonNotFound: 1, ReasonUnauthorized: 2, ReasonStale: 1, ReasonBadRequest: 2} {
		topo := "stripe"
		if reason == ReasonNotFound {
			topo = ""
		}
		if got := testutil.ToFloat64(r.metrics.Rejected.WithLabelValues(topo, reason)); got != want {
			t.Errorf("rejected{%s} = %v, want %v", reason, got, want)
		}
	}
	if got := testutil.ToFloat64(r.metrics.Accepted.WithLabelValues("stripe")); got != 1 {
		t.Errorf("accepted = %v", got)
	}
}

// While the broker refuses produce requests the endpoint answers 503
// with Retry-After and acknowledges nothing; afterwards it accepts again.
func TestIngressBrokerDown(t *testing.T) {
	r := newRig(t, func(c *Config) { c.ProduceTimeout = time.Second })
	r.down.Store(true)
	b := event("evt_d", "customer.created", "cus_d")
	resp, _ := r.post(t, "/webhooks/stripe", b, map[string]string{"Stripe-Signature": stripeSig(testSecret, time.Now(), b)})
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("broker down: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	r.down.Store(false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, _ = r.post(t, "/webhooks/stripe", b, map[string]string{"Stripe-Signature": stripeSig(testSecret, time.Now(), b)})
		if resp.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("after the outage: %d", resp.StatusCode)
	}
}

// rawRequest writes req on a new connection and returns the status code,
// or 0 when the server closed the connection without an answer.
func rawRequest(t *testing.T, addr string, write func(w *bufio.Writer) error) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	bw := bufio.NewWriter(c)
	werr := write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Hostile input: no crash, no 5xx, every answer a 4xx (or, for a body the
// server stops reading, a closed connection after its 413). Bounded: at
// most 100 connections, loopback, under 30 s.
func TestIngressHostile(t *testing.T) {
	r := newRig(t, func(c *Config) { c.ReadTimeout = 2 * time.Second; c.ReadHeaderTimeout = time.Second })
	addr := strings.TrimPrefix(r.url, "http://")
	now := time.Now()
	signed := func(b []byte) map[string]string {
		return map[string]string{"Stripe-Signature": stripeSig(testSecret, now, b)}
	}
	check := func(name string, code int, allowed ...int) {
		t.Helper()
		for _, a := range allowed {
			if code == a {
				return
			}
		}
		t.Errorf("%s: status %d, want one of %v", name, code, allowed)
	}

	resp, _ := r.post(t, "/webhooks/stripe", nil, signed(nil))
	check("0 B", resp.StatusCode, 400)
	big := bytes.Repeat([]byte("a"), 1<<20+1)
	resp, _ = r.post(t, "/webhooks/stripe", big, signed(big))
	check("1 MiB + 1", resp.StatusCode, 413)
	// 50 MiB streamed without a Content-Length (chunked): the limit is
	// applied while reading, nothing is buffered past it.
	code := rawRequest(t, addr, func(w *bufio.Writer) error {
		fmt.Fprintf(w, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nStripe-Signature: t=1,v1=00\r\n\r\n")
		chunk := bytes.Repeat([]byte("b"), 1<<20)
		for i := 0; i < 50; i++ {
			fmt.Fprintf(w, "%x\r\n", len(chunk))
			w.Write(chunk)
			if _, err := w.WriteString("\r\n"); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err // the server answered and closed: expected
			}
		}
		_, err := w.WriteString("0\r\n\r\n")
		return err
	})
	check("50 MiB chunked", code, 413, 0)
	code = rawRequest(t, addr, func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 50<<20)
		return err
	})
	check("50 MiB announced", code, 413)

	inv := []byte("{\"id\":\"evt_\xff\",\"type\":\"customer.created\"}")
	resp, _ = r.post(t, "/webhooks/stripe", inv, signed(inv))
	check("invalid UTF-8", resp.StatusCode, 400)
	deep := []byte(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000))
	resp, _ = r.post(t, "/webhooks/stripe", deep, signed(deep))
	check("100k-deep JSON", resp.StatusCode, 400)
	deepObj := []byte(`{"id":"e","x":` + strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000) + "}")
	resp, _ = r.post(t, "/webhooks/stripe", deepObj, signed(deepObj))
	check("100k-deep object (1.2 MB)", resp.StatusCode, 400, 413)

	// Header injection: CR LF inside a header value, and a bare LF.
	code = rawRequest(t, addr, func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-A: a\rStripe-Signature: t=1,v1=00\r\nContent-Length: 2\r\n\r\n{}")
		return err
	})
	check("CR in a header", code, 400, 401)
	code = rawRequest(t, addr, func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-A: a\nX-B: b\r\nContent-Length: 2\r\n\r\n{}")
		return err
	})
	check("bare LF", code, 400, 401)
	code = rawRequest(t, addr, func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-\x00A: a\r\nContent-Length: 2\r\n\r\n{}")
		return err
	})
	check("NUL in a header name", code, 400)

	// 500 headers, and a header block over MaxHeaderBytes.
	h := signed(good500)
	for i := 0; i < 500; i++ {
		h[fmt.Sprintf("X-H-%d", i)] = "v"
	}
	resp, _ = r.post(t, "/webhooks/stripe", good500, h)
	check("500 headers", resp.StatusCode, 200)
	code = rawRequest(t, addr, func(w *bufio.Writer) error {
		fmt.Fprintf(w, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
		for i := 0; i < 5000; i++ {
			fmt.Fprintf(w, "X-Header-%d: %s\r\n", i, strings.Repeat("v", 30))
		}
		_, err := w.WriteString("Content-Length: 2\r\n\r\n{}")
		return err
	})
	check("headers over 64 KiB", code, 431, 0)

	// Slow senders: 100 connections that trickle their headers or body;
	// the timeouts cut them, and meanwhile a signed delivery still gets
	// through.
	var wg sync.WaitGroup
	var fivexx atomic.Int32
	for i := 0; i < 99; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if i%2 == 0 {
				fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
			} else {
				fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nStripe-Signature: t=1,v1=00\r\n\r\n")
			}
			for j := 0; j < 8; j++ {
				if _, err := c.Write([]byte("a")); err != nil {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil && resp.StatusCode >= 500 {
				fivexx.Add(1)
			}
		}(i)
	}
	time.Sleep(200 * time.Millisecond)
	g := event("evt_slow", "customer.created", "cus_slow")
	resp, _ = r.post(t, "/webhooks/stripe", g, signed(g))
	check("delivery during slow senders", resp.StatusCode, 200)
	wg.Wait()
	if fivexx.Load() != 0 {
		t.Errorf("%d slow senders got a 5xx", fivexx.Load())
	}
	if n := testutil.ToFloat64(r.metrics.Rejected.WithLabelValues("stripe", ReasonUnavailable)); n != 0 {
		t.Errorf("%v 503s for bad input", n)
	}
}

var good500 = event("evt_500", "customer.created", "cus_500")

// Beyond MaxConcurrent requests in flight the endpoint answers 503 with
// Retry-After at once instead of queueing without bound.
func TestIngressConcurrencyBound(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxConcurrent = 2 })
	r.slow.Store(true)
	var wg sync.WaitGroup
	codes := make(chan int, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b := event(fmt.Sprintf("evt_b%d", i), "customer.created", fmt.Sprintf("cus_b%d", i))
			resp, _ := r.post(t, "/webhooks/stripe", b, map[string]string{"Stripe-Signature": stripeSig(testSecret, time.Now(), b)})
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			codes <- resp.StatusCode
		}(i)
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[200] < 1 || n[503] < 1 || n[200]+n[503] != 6 {
		t.Errorf("answers %v: want some 200 and some 503, nothing else", n)
	}
	if got := testutil.ToFloat64(r.metrics.Rejected.WithLabelValues("stripe", ReasonOverloaded)); got != float64(n[503]) {
		t.Errorf("overloaded counted %v, answered %d", got, n[503])
	}
}

// A body under max_body whose record is over the producer's 1,000,000
// bytes is refused with 413. Regression: sarama reports its own size check
// as a ConfigurationError, which was answered 503, so the provider would
// have retried a delivery that can never be stored.
func TestIngressRecordTooLarge(t *testing.T) {
	r := newRig(t, nil)
	pad := strings.Repeat("x", 1_000_100)
	b := []byte(fmt.Sprintf(`{"id":"evt_big","type":"customer.created","data":{"object":{"id":"cus_big","object":"customer","note":%q}}}`, pad))
	resp, _ := r.post(t, "/webhooks/stripe", b, map[string]string{"Stripe-Signature": stripeSig(testSecret, time.Now(), b)})
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if got := testutil.ToFloat64(r.metrics.Rejected.WithLabelValues("stripe", ReasonTooLarge)); got != 1 {
		t.Errorf("too_large counted %v", got)
	}
}
