package processor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cdcsync/cdcsync/topology"
)

func validSASL(t *testing.T) Security {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("pa55word-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Security{Protocol: "sasl_plaintext", SASLMechanism: "SCRAM-SHA-512", SASLUsername: "alice", SASLPasswordFile: pw}
}

// One field broken at a time; the error names the key.
func TestSecurityValidate(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		mut       func(*Security)
	}{
		{"protocol", "security.protocol", func(s *Security) { s.Protocol = "tls" }},
		{"mechanism", "sasl.mechanism", func(s *Security) { s.SASLMechanism = "GSSAPI" }},
		{"no mechanism", "sasl.mechanism", func(s *Security) { s.SASLMechanism = "" }},
		{"no user", "sasl.username", func(s *Security) { s.SASLUsername = "" }},
		{"no password", "sasl.password", func(s *Security) { s.SASLPasswordFile = "" }},
		{"unreadable password file", "sasl.password_file", func(s *Security) { s.SASLPasswordFile = "/nonexistent/pw" }},
		{"ssl keys without ssl", "security.protocol", func(s *Security) { s.SSLCAFile = s.SASLPasswordFile }},
		{"cert without key", "ssl.key.location", func(s *Security) { s.Protocol = "sasl_ssl"; s.SSLCertFile = s.SASLPasswordFile }},
		{"ca not PEM", "ssl.ca.location", func(s *Security) { s.Protocol = "sasl_ssl"; s.SSLCAFile = s.SASLPasswordFile }},
		{"endpoint identification", "ssl.endpoint.identification.algorithm", func(s *Security) {
			s.Protocol = "sasl_ssl"
			s.SSLEndpointIdentification = "hostname"
		}},
		{"sasl keys without sasl", "security.protocol", func(s *Security) { s.Protocol = "ssl" }},
		{"oauth without token file", "sasl.oauthbearer.token_file", func(s *Security) { s.SASLMechanism = "OAUTHBEARER" }},
		{"registry basic and bearer", "schema.registry.bearer.auth.token", func(s *Security) {
			s.RegistryUserInfo, s.RegistryBearerToken = "k:s", "tok"
		}},
		{"registry user info shape", "schema.registry.basic.auth.user.info", func(s *Security) { s.RegistryUserInfo = "no-colon" }},
	} {
		s := validSASL(t)
		if err := s.Validate(); err != nil {
			t.Fatalf("valid block refused: %v", err)
		}
		tc.mut(&s)
		err := s.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("%s: err = %v, want a ConfigError on %s", tc.name, err, tc.key)
		}
		if err != nil && strings.Contains(err.Error(), "pa55word") {
			t.Errorf("%s: error shows the password: %v", tc.name, err)
		}
	}
	if err := (Security{}).Validate(); err != nil {
		t.Errorf("the zero value (plaintext) is refused: %v", err)
	}
}

func TestSecurityApply(t *testing.T) {
	s := validSASL(t)
	sc := sarama.NewConfig()
	if err := s.Apply(sc); err != nil {
		t.Fatal(err)
	}
	if !sc.Net.SASL.Enable || sc.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA512 || sc.Net.SASL.User != "alice" ||
		sc.Net.SASL.Password != "pa55word-from-file" || sc.Net.SASL.SCRAMClientGeneratorFunc == nil || sc.Net.TLS.Enable {
		t.Errorf("SASL not applied: %+v", sc.Net.SASL)
	}
	if err := sc.Validate(); err != nil {
		t.Errorf("sarama refuses the result: %v", err)
	}
	// The worker's one configuration function applies it to every client.
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:9092"}
	cfg.Security = s
	wsc, err := cfg.saramaConfig("test")
	if err != nil {
		t.Fatal(err)
	}
	if !wsc.Net.SASL.Enable || wsc.Net.SASL.Password != "pa55word-from-file" {
		t.Errorf("saramaConfig did not apply the security block")
	}
	// ssl with endpoint identification off: TLS on, a warning.
	s = Security{Protocol: "SSL", SSLEndpointIdentification: "none"}
	sc = sarama.NewConfig()
	if err := s.Apply(sc); err != nil {
		t.Fatal(err)
	}
	if !sc.Net.TLS.Enable || !sc.Net.TLS.Config.InsecureSkipVerify || sc.Net.TLS.Config.VerifyConnection == nil {
		t.Errorf("TLS with verification of the chain only not applied")
	}
	if len(s.Warnings()) != 1 {
		t.Errorf("warnings = %v, want one about endpoint identification", s.Warnings())
	}
}

// The SCRAM client completes a conversation with xdg-go/scram's server for
// both hashes, and fails on a wrong password.
func TestSCRAMClient(t *testing.T) {
	for _, tc := range []struct {
		mech string
		hash scram.HashGeneratorFcn
	}{{"SCRAM-SHA-256", scram.SHA256}, {"SCRAM-SHA-512", scram.SHA512}} {
		creds := func(user string) (scram.StoredCredentials, error) {
			c, _ := tc.hash.NewClient("alice", "right", "")
			return c.GetStoredCredentials(scram.KeyFactors{Salt: "c2FsdA==", Iters: 4096}), nil
		}
		for _, pw := range []string{"right", "wrong"} {
			s := Security{Protocol: "sasl_plaintext", SASLMechanism: tc.mech, SASLUsername: "alice", SASLPassword: Secret(pw)}
			sc := sarama.NewConfig()
			if err := s.Apply(sc); err != nil {
				t.Fatal(err)
			}
			cl := sc.Net.SASL.SCRAMClientGeneratorFunc()
			srv, _ := tc.hash.NewServer(creds)
			conv := srv.NewConversation()
			if err := cl.Begin(sc.Net.SASL.User, sc.Net.SASL.Password, ""); err != nil {
				t.Fatal(err)
			}
			msg, err := cl.Step("")
			for err == nil && !cl.Done() {
				var reply string
				if reply, err = conv.Step(msg); err != nil {
					break
				}
				msg, err = cl.Step(reply)
			}
			ok := err == nil && conv.Valid()
			if ok != (pw == "right") {
				t.Errorf("%s with password %s: authenticated=%v (err %v)", tc.mech, pw, ok, err)
			}
		}
	}
}

// Secrets never show in fmt, JSON, zap or a config dump.
func TestSecretRedacted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Security = Security{SASLPassword: "hunter2-pw", RegistryUserInfo: "key:hunter2-ui", RegistryBearerToken: "hunter2-tok"}
	var buf bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel))
	log.Info("config", zap.Any("cfg", cfg), zap.Reflect("sec", cfg.Security), zap.Stringer("pw", cfg.Security.SASLPassword))
	js, _ := json.Marshal(cfg)
	dump := fmt.Sprintf("%v %+v %#v %s %q", cfg, cfg, cfg, cfg.Security.SASLPassword, cfg.Security.SASLPassword)
	for name, s := range map[string]string{"zap": buf.String(), "json": string(js), "fmt": dump} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s shows a secret: %s", name, s)
		}
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("%s does not show [redacted]: %s", name, s)
		}
	}
}

// GROUP_AUTHORIZATION_FAILED and SASL failures stopped nothing: they were
// classified transient and retried forever.
func TestAccessFailuresAreFatal(t *testing.T) {
	for _, err := range []error{
		sarama.ErrGroupAuthorizationFailed, sarama.ErrSASLAuthenticationFailed, sarama.ErrTopicAuthorizationFailed,
		sarama.ErrTransactionalIDAuthorizationFailed, sarama.ErrClusterAuthorizationFailed,
		fmt.Errorf("kafka: client has run out of available brokers to talk to: %w", sarama.ErrSASLAuthenticationFailed),
		errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: remote error: tls: certificate required"),
	} {
		if classify(err) != Fatal {
			t.Errorf("classify(%v) = %v, want fatal", err, classify(err))
		}
	}
	if classify(sarama.ErrOutOfBrokers) == Fatal {
		t.Errorf("an unreachable broker is fatal; want transient")
	}
}

func TestRequiredACLs(t *testing.T) {
	plan, err := topology.Parse("t.yaml", []byte(`name: orders
guarantee: exactly_once
systems: [crm, erp]
source: {system: crm, topics: [crm.public.orders], format: debezium-json}
authority: {default_owner: crm}
sink: {topic: "sync.{table}", key: [id]}
dlq: {topic: orders.dlq}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range RequiredACLs(plan, true) {
		got = append(got, fmt.Sprintf("%s %s %s %s", a.Operation, a.Resource, a.Pattern, a.Name))
	}
	want := []string{
		"Read Topic LITERAL crm.public.orders",
		"Read Group LITERAL cdcsync.orders",
		"Read Topic LITERAL orders.ledger", "Write Topic LITERAL orders.ledger", "Create Topic LITERAL orders.ledger",
		"Write Topic LITERAL orders.dlq", "Create Topic LITERAL orders.dlq",
		"Write Topic PREFIXED sync.", "Create Topic PREFIXED sync.",
		"Write TransactionalId PREFIXED cdcsync.orders-",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ACLs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(RequiredACLs(plan, false)); n != len(want)-3 {
		t.Errorf("without create: %d ACLs, want %d", n, len(want)-3)
	}
	ae := &AccessError{Topology: "orders", ACL: RequiredACLs(plan, true)[1], Err: sarama.ErrGroupAuthorizationFailed}
	if msg := ae.Error(); !strings.Contains(msg, `Read on group "cdcsync.orders" refused`) || !strings.Contains(msg, "--group 'cdcsync.orders'") {
		t.Errorf("message does not name the group and operation: %s", msg)
	}
	if !errors.Is(ae, ErrAccessDenied) || !errors.Is(ae, sarama.ErrGroupAuthorizationFailed) {
		t.Errorf("AccessError does not unwrap")
	}
	if p := regexpPrefix(`crm\.public\..*`); p != "crm.public." {
		t.Errorf("regexpPrefix = %q", p)
	}
}
