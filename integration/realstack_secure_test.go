//go:build realstack

package integration

// The secured broker of integration/realstack/up-secure.sh: SASL_SSL with
// SCRAM-SHA-512, an mTLS listener, the StandardAuthorizer with
// allow.everyone.if.no.acl.found=false. cdcsync uses only the secured
// listeners; the tests set up topics, ACLs and Debezium-shaped records
// through the broker's PLAINTEXT super-user listener.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/topology"
)

type secureBroker struct {
	sasl, ssl, admin []string
	ca, cert, key    string
	user, pwFile, pw string
	mtlsPrincipal    string
}

func loadSecure(t *testing.T) *secureBroker {
	t.Helper()
	path := os.Getenv("CDCSYNC_REALSTACK_SECURE_STATE")
	if path == "" {
		path = filepath.Join(".cache", "realstack", "secure.env")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("secured broker not up (%v): run integration/realstack/run.sh, or setup.sh and up-secure.sh first", err)
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	b := &secureBroker{sasl: []string{"127.0.0.1:" + kv["SEC_SASL_PORT"]}, ssl: []string{"127.0.0.1:" + kv["SEC_SSL_PORT"]},
		admin: []string{"127.0.0.1:" + kv["SEC_ADMIN_PORT"]}, ca: kv["SEC_CA"], cert: kv["SEC_CLIENT_CERT"], key: kv["SEC_CLIENT_KEY"],
		user: kv["SEC_USER"], pwFile: kv["SEC_PASSWORD_FILE"], mtlsPrincipal: kv["SEC_MTLS_PRINCIPAL"]}
	pw, err := os.ReadFile(b.pwFile)
	if err != nil || len(pw) == 0 {
		t.Fatalf("%s: password file %q: %v", path, b.pwFile, err)
	}
	b.pw = string(pw)
	return b
}

// env is the worker's security block: SASL_SSL, the test CA, the password
// from a file.
func (b *secureBroker) env(pwFile string) []string {
	return []string{"CDCSYNC_SECURITY_PROTOCOL=sasl_ssl", "CDCSYNC_SSL_CA_LOCATION=" + b.ca,
		"CDCSYNC_SASL_MECHANISM=SCRAM-SHA-512", "CDCSYNC_SASL_USERNAME=" + b.user, "CDCSYNC_SASL_PASSWORD_FILE=" + pwFile,
		"CDCSYNC_KAFKA_VERSION=3.6.0"}
}

func (b *secureBroker) adminClient(t *testing.T) (sarama.Client, sarama.ClusterAdmin) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	c, err := sarama.NewClient(b.admin, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return c, a
}

func aclOf(a processor.ACL, principal string) (sarama.Resource, sarama.Acl) {
	rt := map[string]sarama.AclResourceType{"Topic": sarama.AclResourceTopic, "Group": sarama.AclResourceGroup,
		"TransactionalId": sarama.AclResourceTransactionalID}[a.Resource]
	pt := sarama.AclPatternLiteral
	if a.Pattern == "PREFIXED" {
		pt = sarama.AclPatternPrefixed
	}
	op := map[string]sarama.AclOperation{"Read": sarama.AclOperationRead, "Write": sarama.AclOperationWrite,
		"Create": sarama.AclOperationCreate}[a.Operation]
	return sarama.Resource{ResourceType: rt, ResourceName: a.Name, ResourcePatternType: pt},
		sarama.Acl{Principal: principal, Host: "*", Operation: op, PermissionType: sarama.AclPermissionAllow}
}

// grant gives principal exactly acls (the documented set, or it minus one).
func grant(t *testing.T, admin sarama.ClusterAdmin, principal string, acls []processor.ACL) {
	t.Helper()
	var cs []*sarama.ResourceAcls
	for _, a := range acls {
		r, acl := aclOf(a, principal)
		cs = append(cs, &sarama.ResourceAcls{Resource: r, Acls: []*sarama.Acl{&acl}})
	}
	if err := admin.CreateACLs(cs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, a := range acls {
			r, acl := aclOf(a, principal)
			_, _ = admin.DeleteACL(sarama.AclFilter{ResourceType: r.ResourceType, ResourceName: &r.ResourceName,
				ResourcePatternTypeFilter: r.ResourcePatternType, Principal: &principal, Host: &acl.Host,
				Operation: acl.Operation, PermissionType: acl.PermissionType}, false)
		}
	})
}

const secureTopology = `name: %s
systems: [erp, crm]
source: {topics: [%s], system: erp, format: debezium-json}
authority:
  owners: {first_name: crm, last_name: crm, email: crm}
  default_owner: erp
sink: {topic: '%s.sync.{table}', key: [id]}
dlq: {topic: %s.dlq}
guarantee: %s
`

// secureSetup makes a topology over a fresh source topic holding n
// Debezium changes, written through the super-user listener.
func secureSetup(t *testing.T, b *secureBroker, name, guarantee string, n int) (string, *topology.Plan, *workload) {
	t.Helper()
	src := demo.NewSource(name, "erp", false)
	_, admin := b.adminClient(t)
	if err := admin.CreateTopic(src.Topic(), &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	w := makeWorkload(src, 20, n, 0.1, 7)
	if err := demo.ProduceWith(b.admin, nil, w.Records); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	doc := fmt.Sprintf(secureTopology, name, src.Topic(), name, name, guarantee)
	if guarantee == "exactly_once" {
		doc += "commit_interval: 100ms\n"
	}
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err := topology.Parse(name+".yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return dir, plan, w
}

func countRecords(t *testing.T, b *secureBroker, topic string) int64 {
	c, _ := b.adminClient(t)
	parts, err := c.Partitions(topic)
	if err != nil {
		return 0
	}
	var n int64
	for _, p := range parts {
		hw, _ := c.GetOffset(topic, p, sarama.OffsetNewest)
		lo, _ := c.GetOffset(topic, p, sarama.OffsetOldest)
		n += hw - lo
	}
	return n
}

func noSecret(t *testing.T, b *secureBroker, logs ...string) {
	t.Helper()
	for _, l := range logs {
		if strings.Contains(l, b.pw) {
			t.Errorf("the SASL password appears in a log of the run")
		}
	}
}

// A JSON (at_least_once) and an exactly_once topology run end to end over
// SASL_SSL with exactly the documented ACLs.
func TestRealStackSecureEndToEnd(t *testing.T) {
	b := loadSecure(t)
	for _, g := range []string{"at_least_once", "exactly_once"} {
		t.Run(g, func(t *testing.T) {
			name := "sec" + strings.ReplaceAll(g, "_", "") + runID()
			dir, plan, w := secureSetup(t, b, name, g, 200)
			_, admin := b.adminClient(t)
			grant(t, admin, "User:"+b.user, append(processor.RequiredACLs(plan, true), processor.ControlACLs(processor.DefaultControlTopic, true)...))
			p := startProcess(t, name, b.sasl, dir, b.env(b.pwFile)...)
			sink := name + ".sync.contacts"
			deadline := time.Now().Add(60 * time.Second)
			for countRecords(t, b, sink) < int64(w.Unique) && time.Now().Before(deadline) {
				select {
				case err := <-p.done:
					t.Fatalf("worker exited: %v\n%s", err, tail(p.log.String(), 30))
				case <-time.After(500 * time.Millisecond):
				}
			}
			if got := countRecords(t, b, sink); got < int64(w.Unique) {
				t.Fatalf("sink %s has %d records after 60s, want %d\n%s", sink, got, w.Unique, tail(p.log.String(), 30))
			}
			if n := countRecords(t, b, string(plan.DLQTopic())); n != 0 {
				t.Errorf("DLQ has %d records", n)
			}
			if err := p.terminate(30 * time.Second); err != nil {
				t.Errorf("worker did not stop cleanly: %v", err)
			}
			noSecret(t, b, p.log.String())
		})
	}
}

// runOnce runs a worker that is expected to stop by itself, and returns its
// exit code and log.
func runOnce(t *testing.T, b *secureBroker, brokers []string, dir string, env ...string) (int, string) {
	t.Helper()
	p := startProcess(t, "sec-once", brokers, dir, env...)
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if err == nil {
			return 0, p.log.String()
		}
		if errors.As(err, &ee) {
			return ee.ExitCode(), p.log.String()
		}
		t.Fatal(err)
	case <-time.After(45 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("worker did not stop within 45s (a silent stall):\n%s", tail(p.log.String(), 30))
	}
	return 0, ""
}

func TestRealStackSecureWrongPassword(t *testing.T) {
	b := loadSecure(t)
	name := "secpw" + runID()
	dir, plan, _ := secureSetup(t, b, name, "at_least_once", 5)
	_, admin := b.adminClient(t)
	grant(t, admin, "User:"+b.user, append(processor.RequiredACLs(plan, true), processor.ControlACLs(processor.DefaultControlTopic, true)...))
	wrong := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(wrong, []byte("not-the-password"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, log := runOnce(t, b, b.sasl, dir, b.env(wrong)...)
	if code != 2 || !strings.Contains(log, "access denied") || !strings.Contains(log, `SCRAM-SHA-512 user "cdcsync"`) ||
		!strings.Contains(log, "SASL Authentication failed") {
		t.Errorf("exit %d; want 2 and a message naming the user and the SASL failure:\n%s", code, tail(log, 20))
	}
	noSecret(t, b, log)
	if strings.Contains(log, "not-the-password") {
		t.Errorf("the wrong password appears in the log")
	}
}

// Removing any one documented ACL stops the worker with status 2 and a
// message naming the refused operation and resource; no record reaches the
// DLQ.
func TestRealStackSecureMissingACL(t *testing.T) {
	b := loadSecure(t)
	name := "secacl" + runID()
	_, plan, _ := secureSetup(t, b, name, "exactly_once", 20)
	acls := processor.RequiredACLs(plan, true)
	for i, drop := range acls {
		t.Run(fmt.Sprintf("%d-%s-%s", i, drop.Operation, drop.Resource), func(t *testing.T) {
			// A topology of its own per case, so no topic a previous case
			// created hides a missing Create.
			tn := fmt.Sprintf("%s%d", name, i)
			dir, plan, _ := secureSetup(t, b, tn, "exactly_once", 20)
			// The control topic's ACLs come last, granted in every case.
			all := append(processor.RequiredACLs(plan, true), processor.ControlACLs(processor.DefaultControlTopic, true)...)
			rest := append(append([]processor.ACL{}, all[:i]...), all[i+1:]...)
			_, admin := b.adminClient(t)
			if all[i].Name == string(plan.LedgerTopic()) && all[i].Operation != "Create" {
				// Read and Write on the ledger are checked once it exists:
				// a first run with every ACL creates it, then one is
				// revoked. (On a first start without the ledger, a
				// refused ledger write is reported by the runtime.)
				// Every ACL is granted before the warm-up worker starts: it
				// had been started between two grants and lost the race for
				// the control topic's under load (exit 2, access denied).
				grant(t, admin, "User:"+b.user, all[i:i+1])
				grant(t, admin, "User:"+b.user, rest)
				warm := startProcess(t, tn+"-warm", b.sasl, dir, b.env(b.pwFile)...)
				if err := warm.waitReady(60 * time.Second); err != nil {
					t.Fatalf("warm-up run: %v\n%s", err, tail(warm.log.String(), 20))
				}
				_ = warm.terminate(30 * time.Second)
				r, acl := aclOf(all[i], "User:"+b.user)
				if _, err := admin.DeleteACL(sarama.AclFilter{ResourceType: r.ResourceType, ResourceName: &r.ResourceName,
					ResourcePatternTypeFilter: r.ResourcePatternType, Principal: &acl.Principal, Operation: acl.Operation,
					PermissionType: acl.PermissionType}, false); err != nil {
					t.Fatal(err)
				}
			} else {
				grant(t, admin, "User:"+b.user, rest)
			}
			code, log := runOnce(t, b, b.sasl, dir, b.env(b.pwFile)...)
			want := all[i].Operation + " on "
			if code != 2 || !strings.Contains(log, want) || !strings.Contains(log, fmt.Sprintf("%q", all[i].Name)) {
				t.Errorf("without %s %s %q: exit %d; want 2 and a message naming it:\n%s", all[i].Operation, all[i].Resource, all[i].Name, code, tail(log, 15))
			}
			if n := countRecords(t, b, string(plan.DLQTopic())); n != 0 {
				t.Errorf("DLQ has %d records", n)
			}
			noSecret(t, b, log)
		})
	}
}

// A client without a certificate is refused where mTLS is required, with
// a message that says so; with the certificate it connects.
func TestRealStackSecureMTLSRequired(t *testing.T) {
	b := loadSecure(t)
	name := "secmtls" + runID()
	dir, plan, _ := secureSetup(t, b, name, "at_least_once", 5)
	_, admin := b.adminClient(t)
	grant(t, admin, b.mtlsPrincipal, append(processor.RequiredACLs(plan, true), processor.ControlACLs(processor.DefaultControlTopic, true)...))
	code, log := runOnce(t, b, b.ssl, dir, "CDCSYNC_SECURITY_PROTOCOL=ssl", "CDCSYNC_SSL_CA_LOCATION="+b.ca, "CDCSYNC_KAFKA_VERSION=3.6.0")
	if code != 2 || !strings.Contains(log, "access denied") || !strings.Contains(log, "no ssl.certificate.location") {
		t.Errorf("without a client certificate: exit %d; want 2 and a message about the missing certificate:\n%s", code, tail(log, 15))
	}
	p := startProcess(t, name, b.ssl, dir, "CDCSYNC_SECURITY_PROTOCOL=ssl", "CDCSYNC_SSL_CA_LOCATION="+b.ca,
		"CDCSYNC_SSL_CERTIFICATE_LOCATION="+b.cert, "CDCSYNC_SSL_KEY_LOCATION="+b.key, "CDCSYNC_KAFKA_VERSION=3.6.0")
	if err := p.waitReady(60 * time.Second); err != nil {
		t.Fatalf("with the client certificate: %v\n%s", err, tail(p.log.String(), 30))
	}
	_ = p.terminate(30 * time.Second)
}
