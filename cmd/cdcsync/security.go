package main

import (
	"fmt"
	"os"

	"github.com/cdcsync/cdcsync/processor"
)

// securityEnv lists the CDCSYNC_* variables of the security block, each
// with its key (Kafka's name) and the field it sets. Secrets have a
// variable and a *_FILE variable, and are never flags or worker-file
// values.
func securityEnv(s *processor.Security) []struct {
	name, key string
	dst       any // *string or *processor.Secret
} {
	return []struct {
		name, key string
		dst       any
	}{
		{"CDCSYNC_SECURITY_PROTOCOL", "security.protocol", &s.Protocol},
		{"CDCSYNC_SSL_CA_LOCATION", "ssl.ca.location", &s.SSLCAFile},
		{"CDCSYNC_SSL_CERTIFICATE_LOCATION", "ssl.certificate.location", &s.SSLCertFile},
		{"CDCSYNC_SSL_KEY_LOCATION", "ssl.key.location", &s.SSLKeyFile},
		{"CDCSYNC_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "ssl.endpoint.identification.algorithm", &s.SSLEndpointIdentification},
		{"CDCSYNC_SASL_MECHANISM", "sasl.mechanism", &s.SASLMechanism},
		{"CDCSYNC_SASL_USERNAME", "sasl.username", &s.SASLUsername},
		{"CDCSYNC_SASL_PASSWORD", "sasl.password", &s.SASLPassword},
		{"CDCSYNC_SASL_PASSWORD_FILE", "sasl.password_file", &s.SASLPasswordFile},
		{"CDCSYNC_SASL_OAUTHBEARER_TOKEN_FILE", "sasl.oauthbearer.token_file", &s.SASLOAuthTokenFile},
		{"CDCSYNC_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "schema.registry.basic.auth.user.info", &s.RegistryUserInfo},
		{"CDCSYNC_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE", "schema.registry.basic.auth.user.info_file", &s.RegistryUserInfoFile},
		{"CDCSYNC_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN", "schema.registry.bearer.auth.token", &s.RegistryBearerToken},
		{"CDCSYNC_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN_FILE", "schema.registry.bearer.auth.token_file", &s.RegistryBearerTokenFile},
		{"CDCSYNC_SCHEMA_REGISTRY_SSL_CA_LOCATION", "schema.registry.ssl.ca.location", &s.RegistryCAFile},
		{"CDCSYNC_SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION", "schema.registry.ssl.certificate.location", &s.RegistryCertFile},
		{"CDCSYNC_SCHEMA_REGISTRY_SSL_KEY_LOCATION", "schema.registry.ssl.key.location", &s.RegistryKeyFile},
	}
}

// secretKeys are refused in the worker file: a secret comes from a
// variable or a file.
var secretKeys = map[string]string{
	"sasl.password":                        "CDCSYNC_SASL_PASSWORD",
	"schema.registry.basic.auth.user.info": "CDCSYNC_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
	"schema.registry.bearer.auth.token":    "CDCSYNC_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN",
	"api_token":                            "CDCSYNC_API_TOKEN",
	"api_token_read":                       "CDCSYNC_API_TOKEN_READ",
}

// checkNoSecrets refuses a secret written into the worker file, without
// repeating its value.
func checkNoSecrets(file string, keys map[string]any) error {
	for k, env := range secretKeys {
		if _, ok := keys[k]; ok {
			return fmt.Errorf("%s: %s: secrets are not read from the worker file; set %s or %s_file (a file holding only the secret, e.g. a Kubernetes or Docker secret)",
				file, k, env, k)
		}
	}
	return nil
}

// applySecurityEnv layers the security variables over wf.
func applySecurityEnv(wf *workerFile, getenv func(string) string) {
	for _, e := range securityEnv(&wf.Security) {
		v := getenv(e.name)
		if v == "" {
			continue
		}
		switch d := e.dst.(type) {
		case *string:
			*d = v
		case *processor.Secret:
			*d = processor.Secret(v)
		}
		wf.setOrigin(e.key, e.name)
	}
}

// commandSecurity is the security block of a command other than run:
// the worker file of --config (or CDCSYNC_CONFIG) and the CDCSYNC_*
// variables, validated. Errors are exit 2.
func commandSecurity(configFile string) (processor.Security, error) {
	wf, err := loadWorkerConfig(configFile, os.Getenv)
	if err != nil {
		return processor.Security{}, &exitError{code: 2, err: err}
	}
	if err := wf.Security.Validate(); err != nil {
		return processor.Security{}, &exitError{code: 2, err: wf.withOrigin(err)}
	}
	for _, w := range wf.Security.Warnings() {
		fmt.Fprintln(os.Stderr, "cdcsync: warning:", w)
	}
	return wf.Security, nil
}

// configFlagHelp is the --config flag's help of the commands other than
// run.
const configFlagHelp = "worker YAML file whose security.protocol, ssl.*, sasl.* and schema.registry.* keys apply (env CDCSYNC_CONFIG; the CDCSYNC_* security variables apply too)"
