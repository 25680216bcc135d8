package processor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestControlConfig(t *testing.T) {
	base := DefaultConfig()
	base.Brokers = []string{"k:9092"}
	if base.ControlTopic != "cdcsync.control" {
		t.Errorf("default control_topic %q", base.ControlTopic)
	}
	for _, c := range []struct {
		name string
		set  func(*Config)
		key  string
	}{
		{"illegal control topic", func(c *Config) { c.ControlTopic = "a b" }, "control_topic"},
		{"token twice", func(c *Config) { c.APIToken, c.APITokenFile = "x", "/f" }, "api_token_file"},
		{"read token twice", func(c *Config) { c.APITokenRead, c.APITokenReadFile = "x", "/f" }, "api_token_read_file"},
	} {
		cfg := base
		c.set(&cfg)
		var ce *ConfigError
		if err := cfg.Validate(); !errors.As(err, &ce) || ce.Key != c.key {
			t.Errorf("%s: %v, want an error on %s", c.name, err, c.key)
		}
	}
	off := base
	off.ControlTopic = ""
	if err := off.Validate(); err != nil {
		t.Errorf("no control topic: %v", err)
	}

	// The tokens come from their files, trimmed, and never print.
	dir := t.TempDir()
	wf, rf := filepath.Join(dir, "w"), filepath.Join(dir, "r")
	_ = os.WriteFile(wf, []byte("write-token\n"), 0o600)
	_ = os.WriteFile(rf, []byte("read-token\n"), 0o600)
	cfg := base
	cfg.APITokenFile, cfg.APITokenReadFile = wf, rf
	w, r, err := cfg.apiTokens()
	if err != nil || w.Reveal() != "write-token" || r.Reveal() != "read-token" || w.String() != "[redacted]" {
		t.Errorf("tokens %q %q %v", w.Reveal(), r.Reveal(), err)
	}
	cfg.APITokenFile = filepath.Join(dir, "missing")
	if _, _, err := cfg.apiTokens(); err == nil || !strings.Contains(err.Error(), "api_token_file") {
		t.Errorf("missing token file: %v", err)
	}
	if _, err := New(cfg, nil, nil); err == nil {
		t.Error("New accepted no topologies")
	}
}

func TestControlACLs(t *testing.T) {
	acls := ControlACLs("cdcsync.control", true)
	ops := []string{}
	for _, a := range acls {
		if a.Resource != "Topic" || a.Pattern != "LITERAL" || a.Name != "cdcsync.control" {
			t.Errorf("ACL %+v", a)
		}
		ops = append(ops, a.Operation)
	}
	if strings.Join(ops, ",") != "Read,Write,Create" {
		t.Errorf("operations %v", ops)
	}
	if len(ControlACLs("cdcsync.control", false)) != 2 || ControlACLs("", true) != nil {
		t.Error("without create: Read and Write; without a topic: none")
	}
}
