package processor

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/processor/ledger"
	"github.com/cdcsync/cdcsync/topology"
)

// Config is a worker's configuration. The zero value is not usable; start
// from DefaultConfig and set Brokers.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	// Kafka property: bootstrap.servers.
	Brokers []string `yaml:"brokers"`
	// ClientID names this worker to the brokers. Default "cdcsync-<hostname>".
	// Kafka property: client.id.
	ClientID string `yaml:"client_id"`
	// KafkaVersion is the protocol version sarama speaks. Default "2.8.0";
	// must be 0.11.0 or newer (record headers, idempotence, transactions).
	KafkaVersion string `yaml:"kafka_version"`
	// HTTPAddr serves /metrics, /healthz and /readyz. Default ":9102";
	// empty disables the server.
	HTTPAddr string `yaml:"http_addr"`
	// IngressAddr serves the webhook topologies' source.webhook.path
	// (docs/webhooks.md), apart from HTTPAddr so it can be exposed while
	// the metrics stay private. Default empty: no ingress endpoint.
	IngressAddr string `yaml:"ingress_addr"`
	// MaxInFlight bounds the records per claimed partition that are
	// consumed but not yet fully acknowledged. When it is reached the
	// partition pauses until acknowledgements arrive. Default 1024.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxInFlightBytes bounds, per claimed partition under at_least_once,
	// the bytes (key + value) of the source records consumed but not yet
	// fully acknowledged; the partition pauses while a new record would
	// pass it. One record larger than the limit still passes alone.
	// Default 8 MiB: with 1024 records of 1 KB it never binds, with
	// 100 KB rows it keeps about 80 in flight. exactly_once is bounded by
	// txn_max_records instead.
	MaxInFlightBytes int `yaml:"max_in_flight_bytes"`
	// MemoryBudgetBytes sizes the garbage collector: the worker's Go
	// memory may grow to about this before a collection, which costs far
	// less CPU than Go's default of collecting whenever the heap doubles.
	// Past half the budget, the live heap sets the limit, as under Go's
	// default (internal/membudget). Default 110 MiB (a peak RSS of about
	// 135 MB on the benchmark); 0 leaves Go's defaults. GOGC or GOMEMLIMIT
	// in the environment override it.
	MemoryBudgetBytes int64 `yaml:"memory_budget_bytes"`
	// ShutdownTimeout bounds the soft shutdown (flush, commit, leave the
	// group). Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReplicationFactor is used when cdcsync creates ledger, DLQ and sink
	// topics. Default -1: the broker's default.replication.factor.
	ReplicationFactor int16 `yaml:"replication_factor"`
	// SessionTimeout is the consumer-group session timeout. Default 10s.
	// Kafka property: session.timeout.ms.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// Heartbeat is the consumer-group heartbeat interval. Default 3s.
	// Kafka property: heartbeat.interval.ms.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// CommitInterval is how often marked offsets are committed under
	// at_least_once. Default 1s. Kafka property: auto.commit.interval.ms.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// TransactionTimeout bounds how long an exactly_once transaction may
	// stay open. A worker killed mid-transaction blocks read_committed
	// consumers of its partitions at most this long (less when the next
	// owner fences it first). Default 10s. Kafka property:
	// transaction.timeout.ms (must not exceed the broker's
	// transaction.max.timeout.ms).
	TransactionTimeout time.Duration `yaml:"transaction_timeout"`
	// RegistryURL is the Confluent-compatible schema registry, needed by
	// topologies with source.format debezium-avro or sink.format avro.
	RegistryURL string `yaml:"registry_url"`
	// RegistryTimeout bounds each registry request. Default 5s. A timeout
	// is a transient failure: retried, never sent to the DLQ.
	RegistryTimeout time.Duration `yaml:"registry_timeout"`
	// TxnMaxRecords commits an exactly_once transaction early when it
	// holds this many source records. Default 5000.
	TxnMaxRecords int `yaml:"txn_max_records"`
	// Security is TLS, SASL and registry authentication (security.go).
	Security Security `yaml:",inline"`

	// ControlTopic carries pause, resume and restart to every worker, and
	// each worker's status reports (control.go). Default
	// "cdcsync.control"; created at start when missing, with 1 partition
	// and cleanup.policy=compact. Empty: no control topic; the REST
	// API's actions then act on the worker that answers only, and its
	// status shows that worker only.
	ControlTopic string `yaml:"control_topic"`
	// APIToken authorizes the REST API's state-changing routes (pause,
	// resume, restart): CDCSYNC_API_TOKEN, or read from APITokenFile
	// (api_token_file). Unset: those routes answer 403.
	APIToken     Secret `yaml:"-"`
	APITokenFile string `yaml:"api_token_file"`
	// APITokenRead, when set, is required (or APIToken) by the REST API's
	// read-only routes: CDCSYNC_API_TOKEN_READ, or read from
	// APITokenReadFile (api_token_read_file). Unset: they are open.
	APITokenRead     Secret `yaml:"-"`
	APITokenReadFile string `yaml:"api_token_read_file"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "worker"
	}
	return Config{
		ClientID:           "cdcsync-" + host,
		KafkaVersion:       "2.8.0",
		HTTPAddr:           ":9102",
		MaxInFlight:        1024,
		MaxInFlightBytes:   8 << 20,
		MemoryBudgetBytes:  110 << 20,
		ShutdownTimeout:    30 * time.Second,
		ReplicationFactor:  -1,
		SessionTimeout:     10 * time.Second,
		Heartbeat:          3 * time.Second,
		CommitInterval:     time.Second,
		TransactionTimeout: 10 * time.Second,
		TxnMaxRecords:      5000,
		RegistryTimeout:    5 * time.Second,
		ControlTopic:       DefaultControlTopic,
	}
}

// DefaultControlTopic is the default control_topic.
const DefaultControlTopic = "cdcsync.control"

// apiTokens reads the REST API's tokens (from the file when the variable
// is unset). A token file that cannot be read is a configuration error.
func (c Config) apiTokens() (write, read Secret, err error) {
	if write, err = secret(c.APIToken, c.APITokenFile, "api_token_file"); err != nil {
		return "", "", err
	}
	if read, err = secret(c.APITokenRead, c.APITokenReadFile, "api_token_read_file"); err != nil {
		return "", "", err
	}
	return write, read, nil
}

// ErrConfig is wrapped by every configuration error; it is fatal.
var ErrConfig = errors.New("processor: invalid configuration")

// Validate reports the first invalid option, naming its key.
func (c Config) Validate() error {
	bad := func(key, format string, a ...any) error {
		return &ConfigError{Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	if len(c.Brokers) == 0 {
		return bad("brokers", "at least one broker is required")
	}
	// A malformed address never connects: refuse it here rather than
	// retry it forever as "cannot reach".
	for i, b := range c.Brokers {
		if err := CheckBrokerAddr(b); err != nil {
			return bad(fmt.Sprintf("brokers[%d]", i), "%v", err)
		}
	}
	if _, err := ParseKafkaVersion(c.KafkaVersion); err != nil {
		return bad("kafka_version", "%v", err)
	}
	if c.HTTPAddr != "" {
		if err := CheckListenAddr(c.HTTPAddr); err != nil {
			return bad("http_addr", "%v", err)
		}
	}
	if c.IngressAddr != "" {
		if err := CheckListenAddr(c.IngressAddr); err != nil {
			return bad("ingress_addr", "%v", err)
		}
	}
	if c.RegistryURL != "" {
		if err := CheckRegistryURL(c.RegistryURL); err != nil {
			return bad("registry_url", "%v", err)
		}
	}
	if c.MaxInFlight < 1 {
		return bad("max_in_flight", "must be at least 1, got %d", c.MaxInFlight)
	}
	if c.MaxInFlightBytes < 1 {
		return bad("max_in_flight_bytes", "must be at least 1, got %d", c.MaxInFlightBytes)
	}
	if c.MemoryBudgetBytes < 0 {
		return bad("memory_budget_bytes", "must be 0 (Go's defaults) or positive, got %d", c.MemoryBudgetBytes)
	}
	if c.ShutdownTimeout <= 0 {
		return bad("shutdown_timeout", "must be positive")
	}
	if c.SessionTimeout <= 0 {
		return bad("session_timeout", "must be positive, got %v", c.SessionTimeout)
	}
	if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 {
		return bad("replication_factor", "must be -1 (the broker default) or at least 1, got %d", c.ReplicationFactor)
	}
	if c.Heartbeat <= 0 || c.Heartbeat >= c.SessionTimeout {
		return bad("heartbeat", "must be positive and shorter than session_timeout (%v)", c.SessionTimeout)
	}
	if c.CommitInterval <= 0 {
		return bad("commit_interval", "must be positive")
	}
	if c.TransactionTimeout < time.Second {
		return bad("transaction_timeout", "must be at least 1s, got %v", c.TransactionTimeout)
	}
	if c.RegistryTimeout <= 0 {
		return bad("registry_timeout", "must be positive, got %v", c.RegistryTimeout)
	}
	if c.TxnMaxRecords < 1 {
		return bad("txn_max_records", "must be at least 1, got %d", c.TxnMaxRecords)
	}
	if c.ControlTopic != "" {
		if err := topology.CheckTopicName(c.ControlTopic); err != nil {
			return bad("control_topic", "%v", err)
		}
	}
	if c.APIToken != "" && c.APITokenFile != "" {
		return bad("api_token_file", "CDCSYNC_API_TOKEN is set too; give the token one way")
	}
	if c.APITokenRead != "" && c.APITokenReadFile != "" {
		return bad("api_token_read_file", "CDCSYNC_API_TOKEN_READ is set too; give the token one way")
	}
	return c.Security.Validate()
}

// maxMessageBytes is the largest record cdcsync produces (sarama's
// Producer.MaxMessageBytes, Kafka's max.request.size), as sarama measures
// it (ProducerMessage.ByteSize). It stays under Kafka's default
// max.message.bytes (1048588, which includes the 61-byte batch header), so
// a record that passes this check is never refused by a broker or topic
// with the default limit. A larger sink record goes to the DLQ (stage
// produce); a larger DLQ record is cut to fit (dlq.Fit).
const maxMessageBytes = 1_000_000

// rebalanceTimeout is every consumer group's rebalance timeout: how long
// a member has to finish its claims and rejoin (applyDrainGrace fits in
// it), and how long a member killed without leaving holds a rebalance.
const rebalanceTimeout = 15 * time.Second

// groupConfig is the configuration of a client that runs a consumer group
// (and fetches for it): sc with a read timeout of twice the rebalance
// timeout. sarama bounds a JoinGroup request by Net.ReadTimeout like any
// other, while the coordinator holds it until every member has rejoined
// or the rebalance timeout has passed, and kfake restarts that wait on
// every join. With the producers' 15 s read timeout and a rebalance
// timeout of 10–15 s the live members' joins timed out while a SIGKILLed
// member held the rebalance, each rejoin restarted the wait, and the group
// did not settle for a minute or more (TestKfakeSagaChaos: 9,793 of
// 10,000 sagas done after 4 minutes). The Java client gives a join the
// rebalance timeout plus 5 s; twice the rebalance timeout leaves room for
// one restarted wait. Producers keep 15 s (see saramaConfig).
func groupConfig(sc *sarama.Config) *sarama.Config {
	g := *sc
	g.Net.ReadTimeout = max(g.Net.ReadTimeout, 2*g.Consumer.Group.Rebalance.Timeout)
	return &g
}

// producerConfig is sc with the producers' read timeout, for a producer
// client made from a group client's configuration.
func producerConfig(sc *sarama.Config) *sarama.Config {
	p := *sc
	p.Net.ReadTimeout = producerReadTimeout
	return &p
}

// producerReadTimeout: see saramaConfig.
const producerReadTimeout = 15 * time.Second

// saramaConfig builds the one sarama configuration a worker uses, for a
// given purpose, and validates it.
func (c Config) saramaConfig(purpose string) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	v, err := ParseKafkaVersion(c.KafkaVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: kafka_version: %v", ErrConfig, err)
	}
	sc.Version = v
	sc.ClientID = c.ClientID
	sc.Metadata.RefreshFrequency = time.Minute
	// A broker that stops answering without closing its connections (a
	// paused JVM, a partitioned host) holds every request sent to it for
	// Net.ReadTimeout; with sarama's default of 30 s, exactly_once
	// partitions stayed stuck about 20 s past the end of a 30 s SIGSTOP of
	// a broker (docs/faults.md, BrokerStop). 15 s stays above
	// Producer.Timeout (10 s, the broker's own acks=all wait) so a slow
	// but healthy produce is not cut short. A client that runs a consumer
	// group needs longer: groupConfig.
	sc.Net.ReadTimeout = producerReadTimeout
	// sarama asks the broker to create every unknown topic it requests
	// metadata for; a broker with auto.create.topics.enable=true (Kafka's
	// default) then creates it with num.partitions (1) and its default
	// replication before cdcsync can create it with the source's count.
	// cdcsync creates its topics itself (pipeline.ensureTopic, ledger.Ensure).
	sc.Metadata.AllowAutoTopicCreation = false

	// Consumer side.
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = c.CommitInterval
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = c.Heartbeat
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	sc.Consumer.Group.Rebalance.Timeout = rebalanceTimeout
	ledger.TuneRestoreConfig(sc) // fetch wait that suits ledger restore and the source alike
	// Memory: 256 KiB per partition, at most 8 MiB per fetch response
	// (Kafka fetch.max.bytes; sarama's default is 50 MiB) and sarama's
	// 256-message channels; with 4 MiB and 1024 a worker on 8 partitions
	// peaked at 430 MB. With sarama's 1 MiB per partition, a worker on a
	// real Kafka broker peaked at 125–177 MB in the bench (8 MiB
	// responses, each alive until its last record is copied out); with
	// 256 KiB at 104–117 MB, at the same rate (docs/bench-findings.md).
	sc.Consumer.Fetch.Default = 256 << 10
	sc.Consumer.Fetch.MaxBytes = 8 << 20
	sc.Consumer.MaxProcessingTime = time.Second
	sc.ChannelBufferSize = 256

	// Producer side: idempotent, acks=all, ordered (one request in flight),
	// so per-key order holds through retries.
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return backoff(retries, 100*time.Millisecond, 5*time.Second)
	}
	sc.Producer.Flush.Bytes = 512 << 10
	sc.Producer.Flush.Frequency = 2 * time.Millisecond
	sc.Producer.Compression = sarama.CompressionNone
	sc.Producer.MaxMessageBytes = maxMessageBytes
	sc.ClientID = c.ClientID + "-" + purpose
	if err := c.Security.Apply(sc); err != nil {
		return nil, err
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: sarama: %v", ErrConfig, err)
	}
	return sc, nil
}

// ConfigError is an invalid option: Key is its YAML key, with an index for
// a list entry ("brokers[1]"). It wraps ErrConfig.
type ConfigError struct {
	Key    string
	Reason string
}

func (e *ConfigError) Error() string { return ErrConfig.Error() + ": " + e.Key + ": " + e.Reason }

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// MinKafkaVersion is the oldest protocol version cdcsync speaks: record
// headers, idempotent producers and transactions need 0.11.0.
var MinKafkaVersion = sarama.V0_11_0_0

// ParseKafkaVersion reads a Kafka version as people write it: "0.11.0",
// "0.11.0.0", "2.8", "3.6.0". sarama.ParseKafkaVersion needs exactly four
// parts before 1.0 and three after; missing trailing parts are zero here.
// Versions older than MinKafkaVersion are refused.
func ParseKafkaVersion(s string) (sarama.KafkaVersion, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	want := 3
	if parts[0] == "0" {
		want = 4
	}
	ok := len(parts) >= 2 && len(parts) <= want
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" || len(p) > 4 {
			ok = false
		}
	}
	if !ok {
		return sarama.KafkaVersion{}, fmt.Errorf("%q is not a Kafka version; want MAJOR.MINOR[.PATCH], e.g. 3.6.0, 2.8 or 0.11.0", s)
	}
	for len(parts) < want {
		parts = append(parts, "0")
	}
	v, err := sarama.ParseKafkaVersion(strings.Join(parts, "."))
	if err != nil {
		return sarama.KafkaVersion{}, fmt.Errorf("%q is not a Kafka version: %v", s, err)
	}
	if !v.IsAtLeast(MinKafkaVersion) {
		return sarama.KafkaVersion{}, fmt.Errorf("%s is older than 0.11.0, the oldest version cdcsync supports (record headers, idempotence and transactions need it)", s)
	}
	return v, nil
}

// CheckBrokerAddr returns why addr is not a broker address: host:port,
// with a host name, an IPv4 address or a bracketed IPv6 address, and a
// port from 1 to 65535. A URL ("http://k:9092") is refused.
func CheckBrokerAddr(addr string) error {
	if strings.TrimSpace(addr) == "" {
		return errors.New("empty address; want host:port")
	}
	if strings.Contains(addr, "://") {
		return fmt.Errorf("%q is a URL; want host:port", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (%v)", addr, addrReason(err))
	}
	if host == "" {
		return fmt.Errorf("%q has no host; want host:port", addr)
	}
	if err := checkHost(host); err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	return nil
}

// CheckListenAddr returns why addr is not a listen address: [host]:port,
// port 0 to 65535 (0 picks a free port).
func CheckListenAddr(addr string) error {
	if strings.Contains(addr, "://") {
		return fmt.Errorf("%q is a URL; want [host]:port, e.g. :9102", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not [host]:port (%v)", addr, addrReason(err))
	}
	if host != "" {
		if err := checkHost(host); err != nil {
			return fmt.Errorf("%q: %v", addr, err)
		}
	}
	if port != "0" {
		if err := checkPort(port); err != nil {
			return fmt.Errorf("%q: %v", addr, err)
		}
	}
	return nil
}

// CheckRegistryURL returns why u is not a schema registry URL: http or
// https, with a host and, if given, a port from 1 to 65535.
func CheckRegistryURL(u string) error {
	if strings.TrimSpace(u) == "" {
		return errors.New("empty URL; want http://host:port")
	}
	pu, err := url.Parse(u)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%q is not a URL (%v); want http://host:port", u, err)
	}
	if pu.Scheme != "http" && pu.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https, e.g. http://schema-registry:8081", u)
	}
	if pu.Host == "" || pu.Hostname() == "" {
		return fmt.Errorf("%q has no host", u)
	}
	if err := checkHost(pu.Hostname()); err != nil {
		return fmt.Errorf("%q: %v", u, err)
	}
	if p := pu.Port(); p != "" || strings.HasSuffix(pu.Host, ":") {
		if err := checkPort(p); err != nil {
			return fmt.Errorf("%q: %v", u, err)
		}
	}
	return nil
}

// checkHost accepts an IP address or a DNS name (letters, digits, '-',
// '_' and '.'; '_' because container host names use it).
func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > 253 {
		return fmt.Errorf("host name is %d bytes, longer than 253", len(h))
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("host %q has an empty label", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %q has illegal character %q", h, c)
			}
		}
	}
	return nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || p == "" || p[0] == '+' || p[0] == '-' {
		return fmt.Errorf("port %q is not a number", p)
	}
	if n < 1 || n > 65535 {
		return fmt.Errorf("port %d is out of range 1-65535", n)
	}
	return nil
}

// addrReason is net.SplitHostPort's reason without the repeated address.
func addrReason(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}
