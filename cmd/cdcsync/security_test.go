package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, as PEM files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	serverCert                tls.Certificate
	pool                      *x509.CertPool
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, server bool) ([]byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		if server {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	p := &testPKI{dir: dir, caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "client.pem"), keyFile: filepath.Join(dir, "client.key")}
	write := func(name string, b []byte) {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	c, k := issue("cdcsync-client", false)
	write(p.certFile, c)
	write(p.keyFile, k)
	sc, sk := issue("broker", true)
	p.serverCert, err = tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	return p
}

func (p *testPKI) serverTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.serverCert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
}

// mtlsProbe is a listener that requires a client certificate signed by the
// test CA and reports the common name of each client that completed the
// handshake. It speaks no Kafka: it proves only that the client used the
// configured CA, certificate and key.
func mtlsProbe(t *testing.T, p *testPKI) (string, <-chan string) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() == nil && len(tc.ConnectionState().PeerCertificates) > 0 {
					select {
					case got <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName:
					default:
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String(), got
}

func writeWorkerFile(t *testing.T, p *testPKI, extra string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "worker.yaml")
	doc := "security.protocol: ssl\nssl.ca.location: " + p.caFile + "\nssl.certificate.location: " + p.certFile +
		"\nssl.key.location: " + p.keyFile + "\n" + extra
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func waitHandshake(t *testing.T, got <-chan string, what string) {
	t.Helper()
	select {
	case cn := <-got:
		if cn != "cdcsync-client" {
			t.Fatalf("%s: client certificate %q, want cdcsync-client", what, cn)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no mTLS handshake with the configured client certificate within 20s: the security block did not reach its Kafka client", what)
	}
}

// Every command that opens a Kafka client takes the security block: each
// one here completes an mTLS handshake with the configured CA and client
// certificate against a listener that requires them.
func TestCommandsUseSecurityBlock(t *testing.T) {
	p := newPKI(t)
	cfg := writeWorkerFile(t, p, "")
	for _, tc := range []struct {
		name string
		args func(addr string) []string
	}{
		{"dlq inspect", func(a string) []string {
			return []string{"dlq", "inspect", "--config", cfg, "--brokers", a, "some.dlq"}
		}},
		{"dlq replay", func(a string) []string { return []string{"dlq", "replay", "--config", cfg, "--brokers", a, "some.dlq"} }},
		{"run", func(a string) []string {
			dir := t.TempDir()
			topo := `name: sec
systems: [crm, erp]
source: {system: crm, topics: [crm.public.customers], format: debezium-json}
authority: {default_owner: crm}
sink: {topic: "sync.{table}", key: [id]}
dlq: {topic: sec.dlq}
`
			if err := os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(topo), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"run", "--config", cfg, "--brokers", a, "--topologies", dir, "--http-addr", ""}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := mtlsProbe(t, p)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- runMain(ctx, tc.args(addr), strings.NewReader(""), io.Discard, io.Discard) }()
			waitHandshake(t, got, tc.name)
			cancel()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("%s did not stop after cancel", tc.name)
			}
		})
	}
}

// schemas check sends the registry credentials from a file and presents
// the registry client certificate.
func TestSchemasCheckUsesRegistrySecurity(t *testing.T) {
	p := newPKI(t)
	var auth, cn string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error_code":40401,"message":"Subject not found"}`))
	}))
	srv.TLS = p.serverTLS()
	srv.StartTLS()
	defer srv.Close()
	secretFile := filepath.Join(t.TempDir(), "userinfo")
	if err := os.WriteFile(secretFile, []byte("apikey:s3cr3t-registry\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	doc := "schema.registry.ssl.ca.location: " + p.caFile + "\nschema.registry.ssl.certificate.location: " + p.certFile +
		"\nschema.registry.ssl.key.location: " + p.keyFile + "\nschema.registry.basic.auth.user.info_file: " + secretFile + "\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	topo := `name: avsec
systems: [crm, erp]
source: {system: crm, topics: [crm.public.customers], format: debezium-avro}
authority: {default_owner: crm}
sink: {topic: "sync.{table}", key: [id]}
dlq: {topic: avsec.dlq}
`
	if err := os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(topo), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	err := runMain(context.Background(), []string{"schemas", "check", "--config", cfg, "--registry", srv.URL, dir}, strings.NewReader(""), &out, &errOut)
	if err == nil {
		t.Fatalf("schemas check passed against a registry without the subject:\n%s", out.String())
	}
	if want := "Basic YXBpa2V5OnMzY3IzdC1yZWdpc3RyeQ=="; auth != want {
		t.Errorf("Authorization = %q, want %q (apikey:s3cr3t-registry)", auth, want)
	}
	if cn != "cdcsync-client" {
		t.Errorf("registry saw client certificate %q, want cdcsync-client", cn)
	}
	for _, s := range []string{out.String(), errOut.String(), err.Error()} {
		if strings.Contains(s, "s3cr3t-registry") {
			t.Errorf("the registry secret was printed: %s", s)
		}
	}
}

// A secret written into the worker file is refused without echoing it;
// secrets come from CDCSYNC_* variables or *_file keys.
func TestWorkerFileRefusesSecrets(t *testing.T) {
	f := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(f, []byte("security.protocol: sasl_ssl\nsasl.mechanism: SCRAM-SHA-512\nsasl.username: u\nsasl.password: hunter2-literal\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadWorkerConfig(f, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "CDCSYNC_SASL_PASSWORD") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v; want a refusal naming CDCSYNC_SASL_PASSWORD, without the value", err)
	}
}

func TestSecurityFromEnvAndFile(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"CDCSYNC_SECURITY_PROTOCOL":  "sasl_plaintext",
		"CDCSYNC_SASL_MECHANISM":     "SCRAM-SHA-256",
		"CDCSYNC_SASL_USERNAME":      "alice",
		"CDCSYNC_SASL_PASSWORD_FILE": pw,
	}
	wf, err := loadWorkerConfig("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	wf.Brokers = []string{"127.0.0.1:9092"}
	if err := wf.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	if wf.origin["sasl.password_file"] != "CDCSYNC_SASL_PASSWORD_FILE" {
		t.Errorf("origin of sasl.password_file = %q", wf.origin["sasl.password_file"])
	}
	// The variable itself wins over nothing; a missing password is named.
	delete(env, "CDCSYNC_SASL_PASSWORD_FILE")
	wf, _ = loadWorkerConfig("", func(k string) string { return env[k] })
	wf.Brokers = []string{"127.0.0.1:9092"}
	if err := wf.Config.Validate(); err == nil || !strings.Contains(err.Error(), "sasl.password") {
		t.Errorf("Validate without a password = %v, want sasl.password named", err)
	}
	env["CDCSYNC_SASL_PASSWORD"] = "from-env-secret"
	wf, _ = loadWorkerConfig("", func(k string) string { return env[k] })
	if wf.Security.SASLPassword.Reveal() != "from-env-secret" {
		t.Errorf("CDCSYNC_SASL_PASSWORD not read")
	}
}
