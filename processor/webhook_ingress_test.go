package processor

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/topology"
)

func webhookPlan(t *testing.T, name, path string) *topology.Plan {
	t.Helper()
	doc := `name: ` + name + `
systems: [stripe]
source:
  topics: [` + name + `.raw]
  system: stripe
  format: webhook
  webhook:
    path: ` + path + `
    scheme: stripe
    secrets: [env:CDCSYNC_TEST_WH_SECRET]
    map: {id: id, type: type, entity: data.object.object, key: [data.object.id], after: data.object, ops: {'*': u}}
sink: {topic: out, key: [id]}
`
	p, err := topology.Parse(name+".yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A webhook topology whose secret is not set stops the worker at start
// with a configuration error naming the option, never a value.
func TestWebhookSecretMissingIsConfigError(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	cfg.IngressAddr = "127.0.0.1:0"
	_, err := New(cfg, []*topology.Plan{webhookPlan(t, "a", "/a")}, zaptest.NewLogger(t))
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) || !strings.Contains(ce.Key, "source.webhook.secrets[0]") {
		t.Fatalf("got %v, want a ConfigError on source.webhook.secrets[0]", err)
	}
}

func TestWebhookPathsDistinct(t *testing.T) {
	t.Setenv("CDCSYNC_TEST_WH_SECRET", "whsec_x")
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	cfg.IngressAddr = "127.0.0.1:0"
	_, err := New(cfg, []*topology.Plan{webhookPlan(t, "a", "/same"), webhookPlan(t, "b", "/same")}, zaptest.NewLogger(t))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "/same") {
		t.Fatalf("two topologies on one path: %v", err)
	}
	w, err := New(cfg, []*topology.Plan{webhookPlan(t, "a", "/a"), webhookPlan(t, "b", "/b")}, zaptest.NewLogger(t))
	if err != nil || w.ingress == nil {
		t.Fatalf("two paths: %v", err)
	}
	cfg.IngressAddr = ""
	if w, err = New(cfg, []*topology.Plan{webhookPlan(t, "a", "/a")}, zaptest.NewLogger(t)); err != nil || w.ingress != nil {
		t.Fatalf("no ingress_addr: %v, ingress %v", err, w != nil && w.ingress != nil)
	}
}

func TestIngressAddrValidated(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	cfg.IngressAddr = "http://x:1"
	var ce *ConfigError
	if err := cfg.Validate(); !errors.As(err, &ce) || ce.Key != "ingress_addr" {
		t.Fatalf("got %v, want a ConfigError on ingress_addr", err)
	}
}
