// Package embedded runs an in-process Kafka broker (franz-go's kfake) and
// an in-process Confluent-compatible schema registry (franz-go's srfake)
// on loopback ports. Clients reach them over the real wire protocols —
// sarama over TCP, srclient over HTTP — so the embedded default exercises
// the same code paths as a real deployment. It backs `cdcsync demo`,
// `cdcsync bench` and the kfake test tier.
package embedded

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Options configures the embedded stack. Zero values pick free ports.
type Options struct {
	BrokerPort   int // loopback port for the broker; 0 picks a free one
	RegistryPort int // loopback port for the registry; 0 picks a free one
	// Topics are created at start, each with Partitions partitions
	// (default 8).
	Topics     []string
	Partitions int32
	// NoRegistry skips the schema registry.
	NoRegistry bool
	// CleanerBackoff is how often the broker compacts compacted topics
	// (Kafka log.cleaner.backoff.ms); zero or less means every second. kfake's
	// cleaner also compacts the records of open transactions, which a
	// real broker never does (integration's
	// TestKfakeCompactionDropsCommittedUnderOpenTxn): a test that kills
	// transactional writers of a compacted topic sets it to hours.
	CleanerBackoff time.Duration
}

// Stack is a running broker and registry. Close stops both.
type Stack struct {
	Kafka    *kfake.Cluster
	Registry *srfake.Registry
	srv      *http.Server
	regURL   string
}

// Start starts the broker and the registry.
func Start(o Options) (*Stack, error) {
	if o.Partitions == 0 {
		o.Partitions = 8
	}
	if o.CleanerBackoff <= 0 {
		// Compaction of ledger topics happens within a second, not an hour.
		o.CleanerBackoff = time.Second
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(int(o.Partitions)),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": strconv.FormatInt(o.CleanerBackoff.Milliseconds(), 10)}),
	}
	if o.BrokerPort != 0 {
		opts = append(opts, kfake.Ports(o.BrokerPort)) // kfake listens on 127.0.0.1
	}
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(o.Partitions, o.Topics...))
	}
	kc, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded: starting the broker: %w", err)
	}
	s := &Stack{Kafka: kc}
	if o.NoRegistry {
		return s, nil
	}
	reg := srfake.NewRegistry()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.RegistryPort)))
	if err != nil {
		kc.Close()
		return nil, fmt.Errorf("embedded: starting the registry: %w", err)
	}
	s.Registry = reg
	s.srv = &http.Server{Handler: reg.Handler(), ReadHeaderTimeout: 5 * time.Second}
	s.regURL = "http://" + ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Brokers are the broker addresses, host:port on loopback.
func (s *Stack) Brokers() []string { return s.Kafka.ListenAddrs() }

// RegistryURL is the registry's base URL, or "" without a registry.
func (s *Stack) RegistryURL() string { return s.regURL }

// Close stops the registry and the broker.
func (s *Stack) Close() {
	if s.srv != nil {
		_ = s.srv.Close()
	}
	s.Kafka.Close()
}
