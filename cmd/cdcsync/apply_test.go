package main

import (
	"strings"
	"testing"
)

const applyTopology = `name: crm-apply
systems: [erp, crm]
source: {topics: [sync.crm.contacts], system: erp, format: cdcsync-json}
apply:
  kind: http
  http:
    url: "http://127.0.0.1:1/crm/{entity}/{key.id}"
    secrets_env: [CDCSYNC_TEST_UNSET_SECRET]
`

// An apply topology whose signing secret is not set is refused at start
// with exit status 2, naming the option's file and line, before any
// connection; `topology validate` accepts the file (the secret is read when a
// worker starts, so a check in CI needs no secrets).
func TestRunApplySecretUnset(t *testing.T) {
	clearEnv(t)
	topo := writeFile(t, t.TempDir(), "crm-apply.yaml", applyTopology)
	_, _, err := run(t, "", "run", "--topologies", topo, "--brokers", "127.0.0.1:1", "--http-addr", "")
	wantExit(t, err, 2)
	for _, w := range []string{"crm-apply.yaml:8: apply.http.secrets_env[0]", "CDCSYNC_TEST_UNSET_SECRET is not set"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	_, _, err = run(t, "", "topology", "validate", topo)
	wantExit(t, err, 0)
}
