package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/topology"
)

// server serves the API of a real worker (built, not run: no broker is
// needed for these routes) without a control topic, so actions apply to
// this worker only.
func server(t *testing.T, opts api.Options) (*httptest.Server, *processor.Worker) {
	t.Helper()
	plan, err := topology.Parse("contacts.yaml", []byte(`name: contacts
systems: [erp, crm]
source: {topics: [erp.public.contacts], system: erp, format: debezium-json}
sink: {topic: sync.contacts, key: [id]}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := processor.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.ClientID = "w1"
	cfg.ControlTopic = ""
	w, err := processor.New(cfg, []*topology.Plan{plan}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, w, opts, zaptest.NewLogger(t))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, w
}

func do(t *testing.T, method, url, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	if !json.Valid(b) {
		t.Errorf("%s %s: body is not JSON: %s", method, url, b)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestAuth(t *testing.T) {
	for _, c := range []struct {
		name          string
		opts          api.Options
		method, path  string
		token         string
		want          int
		wantInMessage string
	}{
		{"read open by default", api.Options{Token: "w"}, "GET", "/topologies/contacts/status", "", 200, ""},
		{"write without api_token is disabled", api.Options{}, "PUT", "/topologies/contacts/pause", "anything", 403, "CDCSYNC_API_TOKEN"},
		{"write without a token", api.Options{Token: "w"}, "PUT", "/topologies/contacts/pause", "", 401, "Bearer"},
		{"write with a wrong token", api.Options{Token: "w"}, "PUT", "/topologies/contacts/pause", "x", 401, ""},
		{"write with a longer token", api.Options{Token: "w"}, "PUT", "/topologies/contacts/pause", "ww", 401, ""},
		{"write with the read token", api.Options{Token: "w", ReadToken: "r"}, "PUT", "/topologies/contacts/pause", "r", 401, ""},
		{"write with the token", api.Options{Token: "w"}, "PUT", "/topologies/contacts/pause", "w", 202, ""},
		{"read needs api_token_read when set", api.Options{Token: "w", ReadToken: "r"}, "GET", "/topologies", "", 401, ""},
		{"read with api_token_read", api.Options{Token: "w", ReadToken: "r"}, "GET", "/topologies", "r", 200, ""},
		{"read with api_token", api.Options{Token: "w", ReadToken: "r"}, "GET", "/topologies/contacts", "w", 200, ""},
		{"unknown topology after auth", api.Options{Token: "w"}, "POST", "/topologies/nope/restart", "w", 404, "nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := server(t, c.opts)
			code, h, body := do(t, c.method, srv.URL+c.path, c.token)
			if code != c.want || !strings.Contains(body, c.wantInMessage) {
				t.Errorf("%d %s; want %d with %q", code, body, c.want, c.wantInMessage)
			}
			if code == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// Without a control topic, pause, resume and restart change this
// worker's desired state, and status and the list report it.
func TestActionsLocal(t *testing.T) {
	srv, w := server(t, api.Options{Token: "w"})
	var a api.Action
	code, _, body := do(t, "PUT", srv.URL+"/topologies/contacts/pause", "w")
	if err := json.Unmarshal([]byte(body), &a); code != 202 || err != nil || a.Desired.State != api.StatePaused || a.Desired.By != "w1" {
		t.Fatalf("pause: %d %s", code, body)
	}
	s, err := w.Status(t.Context(), "contacts")
	if err != nil || s.State != api.StatePaused || s.Workers[0].State != api.StatePaused || !s.Workers[0].Self {
		t.Errorf("status after pause: %+v %v", s, err)
	}
	var list []api.Topology
	_, _, body = do(t, "GET", srv.URL+"/topologies", "")
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 1 || list[0].State != api.StatePaused {
		t.Errorf("list: %s", body)
	}
	code, _, body = do(t, "POST", srv.URL+"/topologies/contacts/restart", "w")
	if err := json.Unmarshal([]byte(body), &a); code != 202 || err != nil || a.Desired.Restart != 1 || a.Desired.State != api.StatePaused {
		t.Errorf("restart: %d %s (a restart keeps a pause)", code, body)
	}
	code, _, body = do(t, "PUT", srv.URL+"/topologies/contacts/resume", "w")
	if err := json.Unmarshal([]byte(body), &a); code != 202 || err != nil || a.Desired.State != api.StateRunning || a.Desired.Restart != 1 {
		t.Errorf("resume: %d %s", code, body)
	}
	var st api.Status
	_, _, body = do(t, "GET", srv.URL+"/topologies/contacts/status", "")
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.State == api.StatePaused || st.Desired.State != api.StateRunning ||
		st.Workers[0].Breakers["registry"] != "closed" || st.Workers[0].Breakers["producer"] != "closed" {
		t.Errorf("status after resume: %s", body)
	}
}

func TestRoutesJSONErrors(t *testing.T) {
	srv, _ := server(t, api.Options{Token: "w"})
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/topologies/nope", 404},
		{"GET", "/topologies/nope/status", 404},
		{"GET", "/topologies/contacts/x/y", 404},
		{"PUT", "/topologies/contacts", 405},
		{"GET", "/topologies/contacts/pause", 405},
		{"PUT", "/topologies/contacts/restart", 405},
		{"POST", "/topologies", 405},
	} {
		code, h, body := do(t, c.method, srv.URL+c.path, "w")
		var e api.Error
		if err := json.Unmarshal([]byte(body), &e); code != c.want || err != nil || e.Code != c.want || e.Message == "" {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.want)
		}
		if code == 405 && h.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
	code, _, body := do(t, "GET", srv.URL+"/topologies/contacts", "")
	var pj topology.PlanJSON
	if err := json.Unmarshal([]byte(body), &pj); code != 200 || err != nil || pj.Name != "contacts" || pj.DLQTopic != "dlq.contacts" {
		t.Errorf("plan: %d %s", code, body)
	}
}
