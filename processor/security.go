package processor

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/schemas"
)

// Security is the connection security of a worker: one block applied to
// every Kafka client cdcsync opens (consumers, producers, the
// transactional ones included, the admin client, the ledger restore,
// dlq inspect/replay and bench) and to the schema registry client. Its
// YAML keys are Kafka's (librdkafka's where Java's name a keystore); the
// zero value is PLAINTEXT without registry credentials.
//
// Secrets (Secret fields) are never read from the worker file: they come
// from a CDCSYNC_* environment variable or a file named by the matching
// *_file key, and they print as "[redacted]" everywhere.
type Security struct {
	// Protocol is plaintext (default), ssl, sasl_plaintext or sasl_ssl;
	// upper case is accepted. Kafka property: security.protocol.
	Protocol string `yaml:"security.protocol"`

	// SSLCAFile is a PEM file of the CAs that sign the brokers'
	// certificates; empty: the system roots. Kafka property:
	// ssl.ca.location (Java: ssl.truststore.location).
	SSLCAFile string `yaml:"ssl.ca.location"`
	// SSLCertFile and SSLKeyFile are the PEM client certificate and its
	// unencrypted private key, for mTLS; both or neither. Kafka
	// properties: ssl.certificate.location, ssl.key.location (Java:
	// ssl.keystore.location).
	SSLCertFile string `yaml:"ssl.certificate.location"`
	SSLKeyFile  string `yaml:"ssl.key.location"`
	// SSLEndpointIdentification is "https" (default: the broker's
	// certificate must name the host dialled) or "none" (no host-name
	// check; the worker logs a warning at start). Kafka property:
	// ssl.endpoint.identification.algorithm.
	SSLEndpointIdentification string `yaml:"ssl.endpoint.identification.algorithm"`

	// SASLMechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or
	// OAUTHBEARER. Kafka property: sasl.mechanism.
	SASLMechanism string `yaml:"sasl.mechanism"`
	// SASLUsername is the SASL user. Kafka property: sasl.username.
	SASLUsername string `yaml:"sasl.username"`
	// SASLPassword is the SASL password: CDCSYNC_SASL_PASSWORD, or read
	// from SASLPasswordFile (sasl.password_file). Kafka property:
	// sasl.password.
	SASLPassword     Secret `yaml:"-"`
	SASLPasswordFile string `yaml:"sasl.password_file"`
	// SASLOAuthTokenFile holds a static OAUTHBEARER token (a JWT), read
	// again at every new connection so a sidecar can rotate it. Kafka has
	// no property for this; it stands in for
	// sasl.oauthbearer.token.endpoint.url.
	SASLOAuthTokenFile string `yaml:"sasl.oauthbearer.token_file"`

	// RegistryUserInfo is "KEY:SECRET" for HTTP basic authentication to
	// the schema registry (Confluent Cloud's API key and secret):
	// CDCSYNC_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO or the file
	// RegistryUserInfoFile. Property: basic.auth.user.info.
	RegistryUserInfo     Secret `yaml:"-"`
	RegistryUserInfoFile string `yaml:"schema.registry.basic.auth.user.info_file"`
	// RegistryBearerToken is a bearer token for the registry:
	// CDCSYNC_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN or the file
	// RegistryBearerTokenFile. Property: bearer.auth.token.
	RegistryBearerToken     Secret `yaml:"-"`
	RegistryBearerTokenFile string `yaml:"schema.registry.bearer.auth.token_file"`
	// RegistryCAFile, RegistryCertFile and RegistryKeyFile are PEM files
	// for an https registry: its CA, and a client certificate and key.
	// Properties: schema.registry.ssl.ca.location,
	// schema.registry.ssl.certificate.location,
	// schema.registry.ssl.key.location.
	RegistryCAFile   string `yaml:"schema.registry.ssl.ca.location"`
	RegistryCertFile string `yaml:"schema.registry.ssl.certificate.location"`
	RegistryKeyFile  string `yaml:"schema.registry.ssl.key.location"`
}

// Secret is a password, key or token. It prints, marshals and logs as
// "[redacted]" (or "" when empty); only Reveal returns the value.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts %#v too.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalText redacts JSON, YAML and zap's reflection encoder.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON redacts JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Reveal returns the secret itself, for the client that sends it.
func (s Secret) Reveal() string { return string(s) }

// Security protocols, as Kafka names them (lower case here).
const (
	ProtocolPlaintext     = "plaintext"
	ProtocolSSL           = "ssl"
	ProtocolSASLPlaintext = "sasl_plaintext"
	ProtocolSASLSSL       = "sasl_ssl"
)

func (s Security) protocol() string {
	if s.Protocol == "" {
		return ProtocolPlaintext
	}
	return strings.ToLower(s.Protocol)
}

func (s Security) usesTLS() bool {
	p := s.protocol()
	return p == ProtocolSSL || p == ProtocolSASLSSL
}

func (s Security) usesSASL() bool {
	p := s.protocol()
	return p == ProtocolSASLPlaintext || p == ProtocolSASLSSL
}

// Validate reports the first invalid security option, naming its key. It
// checks that every file named can be read, so a typo is refused at
// start rather than at the first connection.
func (s Security) Validate() error {
	bad := func(key, format string, a ...any) error {
		return &ConfigError{Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	switch s.protocol() {
	case ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
	default:
		return bad("security.protocol", "%q: want plaintext, ssl, sasl_plaintext or sasl_ssl", s.Protocol)
	}
	for _, f := range []struct{ key, path string }{
		{"ssl.ca.location", s.SSLCAFile}, {"ssl.certificate.location", s.SSLCertFile}, {"ssl.key.location", s.SSLKeyFile},
		{"sasl.password_file", s.SASLPasswordFile}, {"sasl.oauthbearer.token_file", s.SASLOAuthTokenFile},
		{"schema.registry.basic.auth.user.info_file", s.RegistryUserInfoFile},
		{"schema.registry.bearer.auth.token_file", s.RegistryBearerTokenFile},
		{"schema.registry.ssl.ca.location", s.RegistryCAFile},
		{"schema.registry.ssl.certificate.location", s.RegistryCertFile},
		{"schema.registry.ssl.key.location", s.RegistryKeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			return bad(f.key, "cannot read %q: %v", f.path, unwrapPath(err))
		}
	}
	tlsKeys := s.SSLCAFile != "" || s.SSLCertFile != "" || s.SSLKeyFile != "" || s.SSLEndpointIdentification != ""
	if tlsKeys && !s.usesTLS() {
		return bad("security.protocol", "ssl.* keys are set but security.protocol is %s; want ssl or sasl_ssl", s.protocol())
	}
	if (s.SSLCertFile == "") != (s.SSLKeyFile == "") {
		return bad("ssl.key.location", "ssl.certificate.location and ssl.key.location go together (mTLS needs both)")
	}
	if s.SSLCertFile != "" {
		if _, err := tls.LoadX509KeyPair(s.SSLCertFile, s.SSLKeyFile); err != nil {
			return bad("ssl.certificate.location", "%v", err)
		}
	}
	if s.SSLCAFile != "" {
		if _, err := loadCAs(s.SSLCAFile); err != nil {
			return bad("ssl.ca.location", "%v", err)
		}
	}
	switch strings.ToLower(s.SSLEndpointIdentification) {
	case "", "https", "none":
	default:
		return bad("ssl.endpoint.identification.algorithm", "%q: want https (verify the host name) or none", s.SSLEndpointIdentification)
	}
	saslKeys := s.SASLMechanism != "" || s.SASLUsername != "" || s.SASLPassword != "" || s.SASLPasswordFile != "" || s.SASLOAuthTokenFile != ""
	if !s.usesSASL() {
		if saslKeys {
			return bad("security.protocol", "sasl.* keys are set but security.protocol is %s; want sasl_plaintext or sasl_ssl", s.protocol())
		}
	} else {
		switch strings.ToUpper(s.SASLMechanism) {
		case sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
			if s.SASLUsername == "" {
				return bad("sasl.username", "required by sasl.mechanism %s", s.SASLMechanism)
			}
			if s.SASLPassword == "" && s.SASLPasswordFile == "" {
				return bad("sasl.password", "required by sasl.mechanism %s: set CDCSYNC_SASL_PASSWORD, or sasl.password_file (or CDCSYNC_SASL_PASSWORD_FILE)", s.SASLMechanism)
			}
			if s.SASLOAuthTokenFile != "" {
				return bad("sasl.oauthbearer.token_file", "only used with sasl.mechanism OAUTHBEARER")
			}
		case sarama.SASLTypeOAuth:
			if s.SASLOAuthTokenFile == "" {
				return bad("sasl.oauthbearer.token_file", "required by sasl.mechanism OAUTHBEARER")
			}
		case "":
			return bad("sasl.mechanism", "required by security.protocol %s: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", s.protocol())
		default:
			return bad("sasl.mechanism", "%q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", s.SASLMechanism)
		}
	}
	if (s.RegistryUserInfo != "" || s.RegistryUserInfoFile != "") && (s.RegistryBearerToken != "" || s.RegistryBearerTokenFile != "") {
		return bad("schema.registry.bearer.auth.token", "set basic auth or a bearer token for the registry, not both")
	}
	if (s.RegistryCertFile == "") != (s.RegistryKeyFile == "") {
		return bad("schema.registry.ssl.key.location", "schema.registry.ssl.certificate.location and schema.registry.ssl.key.location go together")
	}
	if _, err := s.RegistryOptions(); err != nil {
		return err
	}
	return nil
}

// Warnings are the start-up warnings of a valid configuration.
func (s Security) Warnings() []string {
	var w []string
	if s.usesTLS() && strings.EqualFold(s.SSLEndpointIdentification, "none") {
		w = append(w, "ssl.endpoint.identification.algorithm is none: the brokers' certificates are checked against the CA but not against their host names; a certificate of any host the CA signed is accepted")
	}
	if s.protocol() == ProtocolSASLPlaintext && strings.EqualFold(s.SASLMechanism, sarama.SASLTypePlaintext) {
		w = append(w, "security.protocol is sasl_plaintext with sasl.mechanism PLAIN: the password crosses the network unencrypted")
	}
	return w
}

func (s Security) logWarnings(log *zap.Logger) {
	for _, w := range s.Warnings() {
		log.Warn(w)
	}
}

// Apply sets sc's network security from s: TLS, SASL and the SCRAM client.
// Every sarama.Config cdcsync builds goes through it. It reads the secret
// files each time, so a rotated file is used by the next client.
func (s Security) Apply(sc *sarama.Config) error {
	if s.usesTLS() {
		tc, err := tlsConfig(s.SSLCAFile, s.SSLCertFile, s.SSLKeyFile, "ssl")
		if err != nil {
			return err
		}
		tc.InsecureSkipVerify = strings.EqualFold(s.SSLEndpointIdentification, "none")
		if tc.InsecureSkipVerify {
			// Still verify the chain against the CA; skip only the
			// host name, as Kafka's "none" does.
			tc.VerifyConnection = verifyChainOnly(tc.RootCAs)
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if !s.usesSASL() {
		return nil
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.Version = sarama.SASLHandshakeV1
	sc.Net.SASL.User = s.SASLUsername
	mech := strings.ToUpper(s.SASLMechanism)
	sc.Net.SASL.Mechanism = sarama.SASLMechanism(mech)
	switch mech {
	case sarama.SASLTypeOAuth:
		sc.Net.SASL.TokenProvider = tokenFile(s.SASLOAuthTokenFile)
		return nil
	case sarama.SASLTypeSCRAMSHA256:
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
	case sarama.SASLTypeSCRAMSHA512:
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
	}
	pw, err := secret(s.SASLPassword, s.SASLPasswordFile, "sasl.password_file")
	if err != nil {
		return err
	}
	sc.Net.SASL.Password = pw.Reveal()
	return nil
}

// RegistryOptions returns the registry client's authentication and TLS
// options (Timeout is left to the caller).
func (s Security) RegistryOptions() (schemas.ClientOptions, error) {
	var o schemas.ClientOptions
	ui, err := secret(s.RegistryUserInfo, s.RegistryUserInfoFile, "schema.registry.basic.auth.user.info_file")
	if err != nil {
		return o, err
	}
	if ui != "" {
		user, pass, ok := strings.Cut(ui.Reveal(), ":")
		if !ok || user == "" {
			return o, &ConfigError{Key: "schema.registry.basic.auth.user.info", Reason: "want KEY:SECRET (the value is not shown)"}
		}
		o.Username, o.Password = user, pass
	}
	tok, err := secret(s.RegistryBearerToken, s.RegistryBearerTokenFile, "schema.registry.bearer.auth.token_file")
	if err != nil {
		return o, err
	}
	o.BearerToken = tok.Reveal()
	if s.RegistryCAFile != "" || s.RegistryCertFile != "" {
		if o.TLS, err = tlsConfig(s.RegistryCAFile, s.RegistryCertFile, s.RegistryKeyFile, "schema.registry.ssl"); err != nil {
			return o, err
		}
	}
	return o, nil
}

// secret returns v, or the trimmed content of file when v is empty.
func secret(v Secret, file, key string) (Secret, error) {
	if v != "" || file == "" {
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", &ConfigError{Key: key, Reason: fmt.Sprintf("cannot read %q: %v", file, unwrapPath(err))}
	}
	return Secret(strings.TrimRight(string(b), "\r\n")), nil
}

func tlsConfig(caFile, certFile, keyFile, prefix string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, &ConfigError{Key: prefix + ".ca.location", Reason: err.Error()}
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, &ConfigError{Key: prefix + ".certificate.location", Reason: err.Error()}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %v", file, unwrapPath(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%q holds no PEM certificate", file)
	}
	return pool, nil
}

// verifyChainOnly checks the peer's chain against roots (the system's
// when nil) without the host name.
func verifyChainOnly(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("tls: the broker sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
}

// unwrapPath drops the path os.ReadFile repeats in its error.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// scramClient adapts xdg-go/scram to sarama.SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = cl.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// tokenFile is a static OAUTHBEARER token, read at each connection.
type tokenFile string

func (f tokenFile) Token() (*sarama.AccessToken, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("sasl.oauthbearer.token_file: %v", unwrapPath(err))
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, fmt.Errorf("sasl.oauthbearer.token_file %q is empty", string(f))
	}
	return &sarama.AccessToken{Token: tok}, nil
}
