package processor

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// validConfig is DefaultConfig with the one required option set.
func validConfig() Config {
	c := DefaultConfig()
	c.Brokers = []string{"127.0.0.1:9092"}
	return c
}

func TestConfigValidateOK(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig with brokers: %v", err)
	}
	c := validConfig()
	c.KafkaVersion = "0.11.0.0" // the oldest version allowed
	if err := c.Validate(); err != nil {
		t.Fatalf("kafka_version 0.11.0.0: %v", err)
	}
}

// TestConfigValidateBreaksOneField breaks one option at a time; each error
// wraps ErrConfig and starts with the option's YAML key.
func TestConfigValidateBreaksOneField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // "key: reason" prefix after "processor: invalid configuration: "
	}{
		{"no brokers", func(c *Config) { c.Brokers = nil }, "brokers: at least one broker"},
		{"empty brokers", func(c *Config) { c.Brokers = []string{} }, "brokers: "},
		{"unparsable version", func(c *Config) { c.KafkaVersion = "banana" }, "kafka_version: "},
		{"empty version", func(c *Config) { c.KafkaVersion = "" }, "kafka_version: "},
		{"version too old", func(c *Config) { c.KafkaVersion = "0.10.2.0" }, "kafka_version: 0.10.2.0 is older than 0.11.0"},
		{"max_in_flight zero", func(c *Config) { c.MaxInFlight = 0 }, "max_in_flight: must be at least 1, got 0"},
		{"max_in_flight negative", func(c *Config) { c.MaxInFlight = -3 }, "max_in_flight: must be at least 1, got -3"},
		{"max_in_flight_bytes zero", func(c *Config) { c.MaxInFlightBytes = 0 }, "max_in_flight_bytes: must be at least 1, got 0"},
		{"memory_budget_bytes negative", func(c *Config) { c.MemoryBudgetBytes = -1 }, "memory_budget_bytes: must be 0 (Go's defaults) or positive, got -1"},
		{"shutdown_timeout zero", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout: must be positive"},
		{"shutdown_timeout negative", func(c *Config) { c.ShutdownTimeout = -time.Second }, "shutdown_timeout: must be positive"},
		{"heartbeat zero", func(c *Config) { c.Heartbeat = 0 }, "heartbeat: must be positive and shorter than session_timeout"},
		{"heartbeat equals session", func(c *Config) { c.Heartbeat = c.SessionTimeout }, "heartbeat: must be positive and shorter than session_timeout (10s)"},
		{"heartbeat longer than session", func(c *Config) { c.Heartbeat = time.Minute }, "heartbeat: "},
		{"commit_interval zero", func(c *Config) { c.CommitInterval = 0 }, "commit_interval: must be positive"},
		{"commit_interval negative", func(c *Config) { c.CommitInterval = -time.Millisecond }, "commit_interval: must be positive"},
		{"transaction_timeout zero", func(c *Config) { c.TransactionTimeout = 0 }, "transaction_timeout: must be at least 1s, got 0s"},
		{"transaction_timeout below 1s", func(c *Config) { c.TransactionTimeout = 999 * time.Millisecond }, "transaction_timeout: must be at least 1s"},
		{"txn_max_records zero", func(c *Config) { c.TxnMaxRecords = 0 }, "txn_max_records: must be at least 1, got 0"},
		{"registry_timeout zero", func(c *Config) { c.RegistryTimeout = 0 }, "registry_timeout: must be positive, got 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted the config; want an error naming %q", tc.want)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if classify(err) != Fatal {
				t.Errorf("classify(%v) = %v, want fatal", err, classify(err))
			}
			msg := strings.TrimPrefix(err.Error(), ErrConfig.Error()+": ")
			if !strings.HasPrefix(msg, tc.want) {
				t.Errorf("Validate() = %q, want it to start with %q", msg, tc.want)
			}
		})
	}
}

// Regression: a zero or negative session_timeout is reported under the key
// "heartbeat" ("heartbeat: must be positive and shorter than
// session_timeout (0s)"), so the error names the wrong option. Validate
// should check session_timeout on its own first.
func TestConfigValidateSessionTimeoutNamesItsKey(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		c := validConfig()
		c.SessionTimeout = d
		err := c.Validate()
		if err == nil {
			t.Fatalf("session_timeout %v accepted", d)
		}
		msg := strings.TrimPrefix(err.Error(), ErrConfig.Error()+": ")
		if !strings.HasPrefix(msg, "session_timeout: ") {
			t.Errorf("session_timeout %v: Validate() = %q, want it to name session_timeout", d, msg)
		}
	}
}

// Regression: replication_factor is not validated. 0 or anything below -1 is
// never valid in Kafka; today it passes Validate, and the broker's
// INVALID_REPLICATION_FACTOR at topic creation is classified transient, so
// prepare retries it forever instead of failing at start-up. Validate
// should refuse replication_factor == 0 and < -1.
func TestConfigValidateReplicationFactor(t *testing.T) {
	for _, rf := range []int16{-1, 1, 3} {
		c := validConfig()
		c.ReplicationFactor = rf
		if err := c.Validate(); err != nil {
			t.Errorf("replication_factor %d: %v", rf, err)
		}
	}
	for _, rf := range []int16{0, -2} {
		c := validConfig()
		c.ReplicationFactor = rf
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "replication_factor: ") {
			t.Errorf("replication_factor %d: Validate() = %v, want an error naming replication_factor", rf, err)
		}
	}
}

// TestDefaultConfig pins every default documented on Config. It compares
// the whole struct, so a new option fails here until its default is
// pinned too.
func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	host, _ := os.Hostname()
	if host == "" {
		host = "worker"
	}
	want := Config{
		Brokers:            nil,
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
		ControlTopic:       "cdcsync.control",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("DefaultConfig() =\n %+v\nwant\n %+v", c, want)
	}
	// Brokers are required: the defaults alone do not validate, and the
	// error says why.
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "brokers: ") {
		t.Errorf("DefaultConfig().Validate() = %v, want the brokers error", err)
	}
}

func TestSaramaConfig(t *testing.T) {
	c := validConfig()
	c.ClientID = "w1"
	c.CommitInterval = 250 * time.Millisecond
	c.SessionTimeout = 12 * time.Second
	c.Heartbeat = 4 * time.Second
	sc, err := c.saramaConfig("orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err != nil {
		t.Fatalf("the returned config does not validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Version", sc.Version, sarama.V2_8_0_0},
		{"ClientID", sc.ClientID, "w1-orders"},
		{"Producer.Idempotent", sc.Producer.Idempotent, true},
		{"Producer.RequiredAcks", sc.Producer.RequiredAcks, sarama.WaitForAll},
		{"Net.MaxOpenRequests", sc.Net.MaxOpenRequests, 1},
		{"Producer.Return.Successes", sc.Producer.Return.Successes, true},
		{"Producer.Return.Errors", sc.Producer.Return.Errors, true},
		{"Consumer.Return.Errors", sc.Consumer.Return.Errors, true},
		{"Consumer.Offsets.Initial", sc.Consumer.Offsets.Initial, sarama.OffsetOldest},
		{"Consumer.Offsets.AutoCommit.Interval", sc.Consumer.Offsets.AutoCommit.Interval, 250 * time.Millisecond},
		{"Consumer.Group.Session.Timeout", sc.Consumer.Group.Session.Timeout, 12 * time.Second},
		{"Consumer.Group.Heartbeat.Interval", sc.Consumer.Group.Heartbeat.Interval, 4 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if sc.Producer.Retry.BackoffFunc == nil {
		t.Fatal("Producer.Retry.BackoffFunc is nil")
	}
	for retries := 0; retries < 20; retries++ {
		if d := sc.Producer.Retry.BackoffFunc(retries, 10); d < 0 || d >= 5*time.Second {
			t.Errorf("BackoffFunc(%d) = %v, want in [0, 5s)", retries, d)
		}
	}
}

func TestSaramaConfigRefusesOldVersion(t *testing.T) {
	c := validConfig()
	for _, v := range []string{"0.10.2.0", "nope"} {
		c.KafkaVersion = v
		_, err := c.saramaConfig("x")
		if err == nil || !errors.Is(err, ErrConfig) {
			t.Errorf("kafka_version %q: saramaConfig error %v, want one wrapping ErrConfig", v, err)
		}
	}
}
