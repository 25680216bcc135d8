package processor

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"regexp/syntax"
	"strings"

	"github.com/IBM/sarama"

	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// ErrAccessDenied is wrapped by every authentication or authorization
// failure: a wrong password, a refused or expired certificate, a missing
// ACL. It is fatal: the topology stops, and cdcsync run exits with status
// 2, because retrying cannot help until someone changes the credentials
// or the ACLs.
var ErrAccessDenied = errors.New("processor: access denied")

// AccessError is an authentication or authorization failure. ACL names
// what was refused when it is known: a resource and an operation. It
// wraps ErrAccessDenied and the broker's error.
type AccessError struct {
	Topology string
	ACL      ACL    // zero when the failure is not one ACL (authentication)
	What     string // what was being done, when ACL is zero
	Err      error
}

func (e *AccessError) Error() string {
	var b strings.Builder
	b.WriteString(ErrAccessDenied.Error())
	if e.Topology != "" {
		b.WriteString(": topology " + e.Topology)
	}
	if e.ACL.Operation != "" {
		fmt.Fprintf(&b, ": %s on %s refused (%v); grant it with: %s", e.ACL.Operation, e.ACL.resource(), e.Err, e.ACL.Command("User:<principal>"))
		return b.String()
	}
	fmt.Fprintf(&b, ": %s: %v", e.What, e.Err)
	return b.String()
}

// Unwrap returns ErrAccessDenied and the broker's error.
func (e *AccessError) Unwrap() []error { return []error{ErrAccessDenied, e.Err} }

// IsAccessFailure reports whether err is an authentication or
// authorization failure: fatal, never retried, never a DLQ record.
func IsAccessFailure(err error) bool {
	if err == nil {
		return false
	}
	for _, k := range []error{
		ErrAccessDenied,
		schemas.ErrAccessDenied,
		sarama.ErrSASLAuthenticationFailed,
		sarama.ErrUnsupportedSASLMechanism,
		sarama.ErrIllegalSASLState,
		sarama.ErrTopicAuthorizationFailed,
		sarama.ErrGroupAuthorizationFailed,
		sarama.ErrClusterAuthorizationFailed,
		sarama.ErrTransactionalIDAuthorizationFailed,
		sarama.ErrDelegationTokenAuthorizationFailed,
	} {
		if errors.Is(err, k) {
			return true
		}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &hostname) {
		return true
	}
	// A TLS alert from the broker (no or a bad client certificate) is an
	// unexported type in crypto/tls: recognise its text.
	msg := err.Error()
	// Some paths (a transaction's abort) keep only the broker error's
	// text: recognise the authorization errors by it too.
	for _, k := range []sarama.KError{sarama.ErrTopicAuthorizationFailed, sarama.ErrGroupAuthorizationFailed,
		sarama.ErrClusterAuthorizationFailed, sarama.ErrTransactionalIDAuthorizationFailed} {
		if strings.Contains(msg, k.Error()) {
			return true
		}
	}
	for _, s := range []string{"tls: certificate required", "tls: bad certificate", "tls: unknown certificate authority",
		"tls: certificate expired", "tls: certificate revoked", "tls: access denied", "SASL Authentication failed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// ACL is one Kafka ACL a topology needs, as kafka-acls.sh names it.
type ACL struct {
	Resource  string // Topic, Group or TransactionalId
	Pattern   string // LITERAL or PREFIXED
	Name      string
	Operation string // Read, Write, Create
	Why       string
}

func (a ACL) resource() string {
	p := ""
	if a.Pattern == "PREFIXED" {
		p = "prefixed "
	}
	return fmt.Sprintf("%s%s %q", p, strings.ToLower(a.Resource[:1])+a.Resource[1:], a.Name)
}

// Command is the kafka-acls.sh command that grants a to principal.
func (a ACL) Command(principal string) string {
	flag := map[string]string{"Topic": "--topic", "Group": "--group", "TransactionalId": "--transactional-id"}[a.Resource]
	return fmt.Sprintf("kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config admin.properties --add --allow-principal %s --operation %s %s '%s' --resource-pattern-type %s",
		principal, a.Operation, flag, a.Name, strings.ToLower(a.Pattern))
}

// RequiredACLs is the least-privilege set of ACLs a topology needs on a
// broker with an authorizer (Kafka 2.8 or newer, where an idempotent
// producer needs Write on a topic rather than IdempotentWrite on the
// cluster). Read and Write imply Describe. Without create, the Create
// ACLs are left out: the DLQ, ledger and sink topics must then exist.
func RequiredACLs(p *topology.Plan, create bool) []ACL {
	var out []ACL
	add := func(res, pattern, name, why string, ops ...string) {
		for _, op := range ops {
			if op == "Create" && !create {
				continue
			}
			out = append(out, ACL{Resource: res, Pattern: pattern, Name: name, Operation: op, Why: why})
		}
	}
	if p.IsSaga() {
		sagaACLs(p, add) // sagarest.go
		return out
	}
	if pat := p.SourcePattern(); pat != "" {
		prefix := regexpPrefix(pat)
		add("Topic", "PREFIXED", prefix, "consume the source topics (the literal prefix of source.topic_pattern)", "Read")
	} else {
		for _, t := range p.SourceTopics() {
			add("Topic", "LITERAL", string(t), "consume a source topic", "Read")
		}
	}
	add("Group", "LITERAL", string(p.Group()), "join the consumer group and commit its offsets", "Read")
	if !p.IsApply() { // an apply topology has no ledger and no sink (applypipe.go)
		add("Topic", "LITERAL", string(p.LedgerTopic()), "restore and write the dedup ledger", "Read", "Write", "Create")
	}
	add("Topic", "LITERAL", string(p.DLQTopic()), "write the dead-letter queue", "Write", "Create")
	if p.IsApply() {
		return out
	}
	sink := p.SinkTopicTemplate()
	if i := strings.Index(sink, "{"); i >= 0 {
		add("Topic", "PREFIXED", sink[:i], "write the sink topics (the text of sink.topic before its first placeholder)", "Write", "Create")
	} else {
		add("Topic", "LITERAL", sink, "write the sink topic", "Write", "Create")
	}
	if p.Guarantee() == topology.ExactlyOnce {
		add("TransactionalId", "PREFIXED", string(p.Group())+"-", "one transactional producer per claimed source partition", "Write")
	}
	return out
}

// ControlACLs are the ACLs of the worker's control topic (control_topic,
// control.go), which every worker needs besides its topologies' ACLs:
// Read to replay and follow it, Write for the REST API's actions and the
// status reports, and Create when it is missing. Nil when topic is empty
// (no control topic).
func ControlACLs(topic string, create bool) []ACL {
	if topic == "" {
		return nil
	}
	why := "pause, resume and restart of every worker, and the status reports (the REST API)"
	out := []ACL{
		{Resource: "Topic", Pattern: "LITERAL", Name: topic, Operation: "Read", Why: why},
		{Resource: "Topic", Pattern: "LITERAL", Name: topic, Operation: "Write", Why: why},
	}
	if create {
		out = append(out, ACL{Resource: "Topic", Pattern: "LITERAL", Name: topic, Operation: "Create", Why: why})
	}
	return out
}

// regexpPrefix is the literal text every match of the anchored pattern
// starts with ("" when there is none).
func regexpPrefix(pat string) string {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return ""
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return ""
	}
	prefix, _ := prog.Prefix()
	return prefix
}

// Operation bits of Kafka's authorized-operations fields.
const (
	opRead  = 3
	opWrite = 4
)

// checkAccess asks the brokers, before the pipeline starts, whether its
// principal holds each ACL of RequiredACLs that can be checked without
// side effects, so that a missing one is refused at start with its name:
//   - the group: FindCoordinator (Describe), then DescribeGroups with
//     the authorized operations (Read);
//   - the source, ledger, DLQ and literal sink topics: metadata with the
//     authorized operations (Read or Write); a missing topic is created
//     with validate_only to check Create;
//   - under exactly_once, the transactional IDs: FindCoordinator
//     (Describe, which Write implies).
//
// Sink topics of a template are known only from the data; a missing ACL on
// them is reported when the first record is written, naming the topic.
// Failures other than refusals (a broker down) are returned as they are,
// transient.
func (p *pipeline) checkAccess() error {
	if !p.cfg.Security.usesSASL() && p.cfg.Security.SSLCertFile == "" {
		// No principal but ANONYMOUS: nothing to check that the
		// runtime would not report as clearly.
		return nil
	}
	plan := p.plan
	if plan.IsSaga() {
		// The saga runtime has its own group and topics (RequiredACLs
		// lists them); an access failure stops it when it meets one.
		return nil
	}
	deny := func(a ACL, err error) error {
		return fatal(&AccessError{Topology: plan.Name(), ACL: a, Err: err})
	}
	acls := RequiredACLs(plan, true)
	find := func(res, op, name string) ACL {
		for _, a := range acls {
			if a.Resource == res && a.Operation == op && (a.Name == name || a.Pattern == "PREFIXED" && strings.HasPrefix(name, a.Name)) {
				return a
			}
		}
		return ACL{Resource: res, Pattern: "LITERAL", Name: name, Operation: op}
	}
	client := p.client
	group := string(plan.Group())
	groupACL := find("Group", "Read", group)

	if _, err := client.Coordinator(group); err != nil {
		if IsAccessFailure(err) {
			return deny(groupACL, err)
		}
		return err
	}
	v := client.Config().Version
	if v.IsAtLeast(sarama.V2_3_0_0) {
		if b, err := client.Coordinator(group); err == nil {
			res, err := b.DescribeGroups(&sarama.DescribeGroupsRequest{Version: 3, Groups: []string{group}, IncludeAuthorizedOperations: true})
			if err == nil && len(res.Groups) == 1 {
				g := res.Groups[0]
				switch {
				case IsAccessFailure(g.Err):
					return deny(groupACL, g.Err)
				case g.Err == sarama.ErrNoError && g.AuthorizedOperations != math.MinInt32 && g.AuthorizedOperations&(1<<opRead) == 0:
					return deny(groupACL, sarama.ErrGroupAuthorizationFailed)
				}
			}
		}
	}

	if plan.Guarantee() == topology.ExactlyOnce {
		id := group + "-access-check"
		if ts := plan.SourceTopics(); len(ts) > 0 {
			id = fmt.Sprintf("%s-%s-0", group, ts[0])
		}
		if _, err := client.TransactionCoordinator(id); err != nil {
			if IsAccessFailure(err) {
				return deny(find("TransactionalId", "Write", id), err)
			}
			return err
		}
	}

	// Topics and the operation each needs.
	need := map[string][]int{}
	var order []string
	want := func(t string, ops ...int) {
		if _, ok := need[t]; !ok {
			order = append(order, t)
		}
		need[t] = append(need[t], ops...)
	}
	for _, t := range plan.SourceTopics() {
		want(string(t), opRead)
	}
	if !plan.IsApply() {
		want(string(plan.LedgerTopic()), opRead, opWrite)
	}
	want(string(plan.DLQTopic()), opWrite)
	if sink := plan.SinkTopicTemplate(); !plan.IsApply() && !strings.Contains(sink, "{") {
		want(sink, opWrite)
	}
	if !v.IsAtLeast(sarama.V2_3_0_0) {
		return nil
	}
	b := client.LeastLoadedBroker()
	if b == nil {
		return sarama.ErrOutOfBrokers
	}
	req := sarama.NewMetadataRequest(v, order)
	req.AllowAutoTopicCreation = false
	req.IncludeTopicAuthorizedOperations = true
	res, err := b.GetMetadata(req)
	if err != nil {
		if IsAccessFailure(err) {
			return fatal(&AccessError{Topology: plan.Name(), What: "reading topic metadata", Err: err})
		}
		return err
	}
	opName := map[int]string{opRead: "Read", opWrite: "Write"}
	var missing []string
	for _, tm := range res.Topics {
		ops := need[tm.Name]
		switch {
		case tm.Err == sarama.ErrTopicAuthorizationFailed:
			// Not even Describe, which Read and Write imply.
			return deny(find("Topic", opName[ops[0]], tm.Name), tm.Err)
		case tm.Err == sarama.ErrUnknownTopicOrPartition:
			missing = append(missing, tm.Name)
		case tm.Err == sarama.ErrNoError && tm.TopicAuthorizedOperations != math.MinInt32:
			for _, op := range ops {
				if tm.TopicAuthorizedOperations&(1<<op) == 0 {
					return deny(find("Topic", opName[op], tm.Name), sarama.ErrTopicAuthorizationFailed)
				}
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// Not closed: closing an admin made from a client closes the client.
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	for _, t := range missing {
		if p.plan.MatchesTopic(t) {
			continue // a source not created yet: the runtime waits for it
		}
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: p.cfg.ReplicationFactor}, true)
		if err != nil && IsAccessFailure(err) {
			return deny(find("Topic", "Create", t), err)
		}
	}
	return nil
}

// explainAccess turns an access failure that stopped a running pipeline
// into an AccessError. The broker's error does not say which resource it
// refused, so the message lists the topology's ACLs of that kind.
func explainAccess(plan *topology.Plan, err error) error {
	var ae *AccessError
	if err == nil || errors.As(err, &ae) || !IsAccessFailure(err) {
		return err
	}
	res := ""
	switch {
	case errors.Is(err, sarama.ErrGroupAuthorizationFailed):
		res = "Group"
	case errors.Is(err, sarama.ErrTransactionalIDAuthorizationFailed):
		res = "TransactionalId"
	case errors.Is(err, sarama.ErrTopicAuthorizationFailed), errors.Is(err, sarama.ErrClusterAuthorizationFailed):
		res = "Topic"
	default:
		return &AccessError{Topology: plan.Name(), What: "authenticating to the brokers", Err: err}
	}
	var names []string
	for _, a := range RequiredACLs(plan, true) {
		if a.Resource == res {
			names = append(names, a.Operation+" on "+a.resource())
		}
	}
	return &AccessError{Topology: plan.Name(), What: "the broker refused an operation; the topology needs " + strings.Join(names, ", "), Err: err}
}

// principalOf says who a client authenticates as, for messages.
func principalOf(sc *sarama.Config) string {
	switch {
	case sc.Net.SASL.Enable && sc.Net.SASL.Mechanism == sarama.SASLTypeOAuth:
		return "the OAUTHBEARER token of sasl.oauthbearer.token_file"
	case sc.Net.SASL.Enable:
		return fmt.Sprintf("SASL %s user %q", sc.Net.SASL.Mechanism, sc.Net.SASL.User)
	case sc.Net.TLS.Enable && sc.Net.TLS.Config != nil && len(sc.Net.TLS.Config.Certificates) > 0:
		return "the client certificate of ssl.certificate.location"
	case sc.Net.TLS.Enable:
		return "an anonymous TLS client (no ssl.certificate.location)"
	}
	return "an anonymous PLAINTEXT client"
}
