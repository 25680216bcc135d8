package processor

import (
	"errors"
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

// Regression (issue 9, item 8): malformed broker and registry addresses
// passed Validate and were retried forever as "cannot reach". Each one is
// now refused at start, naming the key and the entry.
func TestConfigValidateAddresses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // after "processor: invalid configuration: "
	}{
		{"broker without port", func(c *Config) { c.Brokers = []string{"foo"} }, `brokers[0]: "foo" is not host:port (missing port in address)`},
		{"broker port out of range", func(c *Config) { c.Brokers = []string{"k:9092", "127.0.0.1:99999"} }, `brokers[1]: "127.0.0.1:99999": port 99999 is out of range 1-65535`},
		{"broker port zero", func(c *Config) { c.Brokers = []string{"k:0"} }, `brokers[0]: "k:0": port 0 is out of range`},
		{"broker port not a number", func(c *Config) { c.Brokers = []string{"k:http"} }, `brokers[0]: "k:http": port "http" is not a number`},
		{"broker is a URL", func(c *Config) { c.Brokers = []string{"k:9092", "http://k:9092"} }, `brokers[1]: "http://k:9092" is a URL; want host:port`},
		{"broker empty entry", func(c *Config) { c.Brokers = []string{"k:9092", ""} }, `brokers[1]: empty address`},
		{"broker blank entry", func(c *Config) { c.Brokers = []string{"  "} }, `brokers[0]: empty address`},
		{"broker without host", func(c *Config) { c.Brokers = []string{":9092"} }, `brokers[0]: ":9092" has no host`},
		{"broker host with space", func(c *Config) { c.Brokers = []string{"my host:9092"} }, `brokers[0]: "my host:9092": host "my host" has illegal character ' '`},
		{"broker host empty label", func(c *Config) { c.Brokers = []string{"k..local:9092"} }, `brokers[0]: "k..local:9092": host "k..local" has an empty label`},
		{"broker too many colons", func(c *Config) { c.Brokers = []string{"k:1:2"} }, `brokers[0]: "k:1:2" is not host:port (too many colons in address)`},
		{"registry bad scheme", func(c *Config) { c.RegistryURL = "ht!tp://x" }, `registry_url: "ht!tp://x" is not a URL`},
		{"registry no scheme", func(c *Config) { c.RegistryURL = "schema-registry:8081" }, `registry_url: "schema-registry:8081": scheme must be http or https`},
		{"registry ftp", func(c *Config) { c.RegistryURL = "ftp://r:21" }, `registry_url: "ftp://r:21": scheme must be http or https`},
		{"registry no host", func(c *Config) { c.RegistryURL = "http://" }, `registry_url: "http://" has no host`},
		{"registry bad port", func(c *Config) { c.RegistryURL = "http://r:99999" }, `registry_url: "http://r:99999": port 99999 is out of range`},
		{"registry empty port", func(c *Config) { c.RegistryURL = "http://r:" }, `registry_url: "http://r:": port "" is not a number`},
		{"registry blank", func(c *Config) { c.RegistryURL = " " }, `registry_url: empty URL`},
		{"http_addr without port", func(c *Config) { c.HTTPAddr = "localhost" }, `http_addr: "localhost" is not [host]:port`},
		{"http_addr port out of range", func(c *Config) { c.HTTPAddr = ":70000" }, `http_addr: ":70000": port 70000 is out of range`},
		{"http_addr URL", func(c *Config) { c.HTTPAddr = "http://0.0.0.0:9102" }, `http_addr: "http://0.0.0.0:9102" is a URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted the config; want %q", tc.want)
			}
			var ce *ConfigError
			if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) {
				t.Errorf("error %v is not a *ConfigError wrapping ErrConfig", err)
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

func TestConfigValidateGoodAddresses(t *testing.T) {
	for _, tc := range []struct {
		brokers       []string
		registry, web string
	}{
		{[]string{"kafka-1:9092", "kafka_2.internal:19092"}, "http://schema-registry:8081", ":9102"},
		{[]string{"127.0.0.1:1", "[::1]:9092"}, "https://registry.example.com", "127.0.0.1:0"},
		{[]string{"[fe80::1]:65535"}, "http://user:pw@[::1]:8081/apis/ccompat/v7", "[::1]:9102"},
	} {
		c := validConfig()
		c.Brokers, c.RegistryURL, c.HTTPAddr = tc.brokers, tc.registry, tc.web
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

// Regression (issue 9): "kafka_version: 0.11.0", the README's own wording
// of the minimum, was refused because sarama wants four parts before 1.0.
func TestParseKafkaVersion(t *testing.T) {
	for in, want := range map[string]sarama.KafkaVersion{
		"0.11.0": sarama.V0_11_0_0, "0.11.0.0": sarama.V0_11_0_0, "0.11": sarama.V0_11_0_0, "0.11.0.2": sarama.V0_11_0_2,
		"1.0": sarama.V1_0_0_0, "2.8": sarama.V2_8_0_0, "2.8.0": sarama.V2_8_0_0, "3.6.0": sarama.V3_6_0_0, " 4.0.0 ": sarama.V4_0_0_0,
	} {
		got, err := ParseKafkaVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseKafkaVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
		c := validConfig()
		c.KafkaVersion = in
		if err := c.Validate(); err != nil {
			t.Errorf("kafka_version %q: %v", in, err)
		}
	}
	for in, want := range map[string]string{
		"0.10.2":   "0.10.2 is older than 0.11.0, the oldest version cdcsync supports",
		"0.10.2.0": "0.10.2.0 is older than 0.11.0",
		"0.8":      "0.8 is older than 0.11.0",
		"":         `"" is not a Kafka version; want MAJOR.MINOR[.PATCH]`,
		"3":        `"3" is not a Kafka version`,
		"banana":   `"banana" is not a Kafka version`,
		"2.8.0.1":  `"2.8.0.1" is not a Kafka version`,
		"2..8":     `"2..8" is not a Kafka version`,
		"v3.6.0":   `"v3.6.0" is not a Kafka version`,
	} {
		_, err := ParseKafkaVersion(in)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseKafkaVersion(%q) = %v; want %q", in, err, want)
		}
	}
}
