package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

// newCluster starts an in-process single-broker kfake cluster, reached over
// TCP, and closes it when the test ends.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig is the sarama config the worker would use: a recent protocol
// version (kfake needs 0.11 or newer) and the restore tuning.
func testConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = "cdcsync-ledger-test"
	TuneRestoreConfig(cfg)
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Admin.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

func newClient(t testing.TB, c *kfake.Cluster, tweaks ...func(*sarama.Config)) sarama.Client {
	t.Helper()
	cfg := testConfig()
	for _, f := range tweaks {
		f(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cl, err := sarama.NewClient(c.ListenAddrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func newAdmin(t testing.TB, c *kfake.Cluster) sarama.ClusterAdmin {
	t.Helper()
	a, err := sarama.NewClusterAdmin(c.ListenAddrs(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Pins the values TuneRestoreConfig documents, and that they validate.
func TestTuneRestoreConfig(t *testing.T) {
	cfg := sarama.NewConfig()
	def := cfg.Consumer.Fetch.Default
	TuneRestoreConfig(cfg)
	// The source consumer shares this config: its fetch size stays
	// sarama's, or a worker holds 4 MiB per partition of fetch responses.
	if cfg.Consumer.Fetch.Default != def || cfg.Consumer.Fetch.Min != 1 || cfg.Consumer.MaxWaitTime != 250*time.Millisecond {
		t.Fatalf("%+v, wait %v", cfg.Consumer.Fetch, cfg.Consumer.MaxWaitTime)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ def, max, maxBytes, want int32 }{
		{1 << 20, 0, 50 << 20, RestoreFetchSize},
		{8 << 20, 0, 50 << 20, 8 << 20},
		{1 << 20, 2 << 20, 50 << 20, 2 << 20},
		{1 << 20, 0, 3 << 20, 3 << 20},
	} {
		c := sarama.NewConfig()
		c.Consumer.Fetch.Default, c.Consumer.Fetch.Max, c.Consumer.Fetch.MaxBytes = tc.def, tc.max, tc.maxBytes
		r := restorer{cfg: c}
		if got := r.initialFetchSize(); got != tc.want {
			t.Errorf("%+v: restore fetch size %d, want %d", tc, got, tc.want)
		}
	}
}
