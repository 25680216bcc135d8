package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdcsync/cdcsync/internal/demo"
)

// seriesAddedByPrometheus are the series Prometheus writes for every
// target itself; the alert rules may name them although no worker
// exports them.
var seriesAddedByPrometheus = map[string]bool{"up": true}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"instance": true, "job": true}

// TestKfakeDashboardMetrics starts a worker on kfake, drives it through
// the situations the dashboard and the alerts watch (records flowing, a
// producer breaker that opens and closes, a topology that stops on a fatal
// error, one that waits for its source topic), scrapes its /metrics, and
// checks that every metric and label the dashboard and the alert rules
// name is there, and that the lifecycle gauges tell the truth. Issue 13:
// dashboards and alerts that name a metric the worker does not export
// show nothing and never fire.
func TestKfakeDashboardMetrics(t *testing.T) {
	src := demo.NewSource("erp", "erp", false)
	st := cluster(t, 2, src.Topic())
	brokers := st.Brokers()
	good := mustPlan(t, fmt.Sprintf(contactsTopology, "dash-good", src.Topic(), "sync.dash")+
		"errors: {breaker: {failures: 1, open: 200ms}, retry: {initial: 10ms, max: 200ms}}\n")
	bad := mustPlan(t, fmt.Sprintf(contactsTopology, "dash-bad", src.Topic(), "sync.dash-bad"))
	waiting := mustPlan(t, fmt.Sprintf(contactsTopology, "dash-wait", "crm.public.missing", "sync.dash-wait"))
	// dash-bad's ledger has the wrong partition count: a fatal stop at start.
	admin, err := sarama.NewClusterAdminFromClient(newClient(t, brokers))
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(string(bad.LedgerTopic()), &sarama.TopicDetail{NumPartitions: 5, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}

	// The sink refuses produce while down is set.
	var down atomic.Bool
	st.Kafka.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		st.Kafka.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if !down.Load() || !slices.ContainsFunc(pr.Topics, func(tp kmsg.ProduceRequestTopic) bool { return tp.Topic == "sync.dash" }) {
			return nil, nil, false
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = -1 // UNKNOWN_SERVER_ERROR: not retried by sarama, transient for cdcsync
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})

	wl := makeWorkload(src, 20, 200, 0.1, 31)
	produce(t, brokers, wl.Records[:100])
	wk, base := startHTTPWorker(t, brokers, "w1", good, bad, waiting)
	waitProcessed(t, brokers, time.Minute, good)
	down.Store(true)
	produce(t, brokers, wl.Records[100:])
	within(t, 30*time.Second, func() string {
		if c := readBreaker(t, wk, good.Name(), "producer"); c.open == 0 {
			return fmt.Sprintf("the producer breaker did not open while the sink refused produce: %+v", c)
		}
		return ""
	})
	down.Store(false)
	waitProcessed(t, brokers, time.Minute, good)
	within(t, 10*time.Second, func() string {
		if c := readBreaker(t, wk, good.Name(), "producer"); c.closed == 0 || c.state != 0 {
			return fmt.Sprintf("the producer breaker did not close once the sink was back: %+v", c)
		}
		return ""
	})

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	fams := parseExposition(t, body)

	// The lifecycle gauges say what /readyz and /healthz say.
	gauge := func(name, topology string) string {
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, name+`{topology="`+topology+`"} `) {
				return strings.Fields(l)[1]
			}
		}
		return "absent"
	}
	for _, c := range []struct{ topology, ready, failed string }{
		{good.Name(), "1", "0"}, {bad.Name(), "0", "1"}, {waiting.Name(), "0", "0"},
	} {
		if r, f := gauge("cdcsync_topology_ready", c.topology), gauge("cdcsync_topology_failed", c.topology); r != c.ready || f != c.failed {
			t.Errorf("%s: cdcsync_topology_ready %s, cdcsync_topology_failed %s; want %s and %s", c.topology, r, f, c.ready, c.failed)
		}
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz %d, want 503 with dash-bad stopped", code)
	}

	exprs, labelValues := deployExprs(t)
	checked := map[string]bool{}
	for _, e := range exprs {
		refs, err := parsePromRefs(e.expr)
		if err != nil {
			t.Errorf("%s: %v in %q", e.where, err, e.expr)
			continue
		}
		if len(refs.metrics) == 0 {
			t.Errorf("%s: %q names no metric", e.where, e.expr)
		}
		known := map[string]bool{}
		for l := range targetLabels {
			known[l] = true
		}
		for m, labels := range refs.metrics {
			checked[m] = true
			if seriesAddedByPrometheus[m] {
				for _, l := range labels {
					if !targetLabels[l] {
						t.Errorf("%s: %s has no label %s", e.where, m, l)
					}
				}
				continue
			}
			fam, ok := fams[m]
			switch {
			case !ok:
				t.Errorf("%s: metric %s is not in the worker's /metrics", e.where, m)
				continue
			case !strings.HasPrefix(m, "cdcsync_") && !strings.HasPrefix(m, "go_") && !strings.HasPrefix(m, "process_"):
				t.Errorf("%s: %s is not a cdcsync metric", e.where, m)
			}
			for l := range fam.labels {
				known[l] = true
			}
			for _, l := range labels {
				if !fam.labels[l] && !targetLabels[l] {
					t.Errorf("%s: %s has no label %s (it has %v)", e.where, m, l, keys(fam.labels))
				}
			}
		}
		for _, l := range refs.grouping {
			if !known[l] {
				t.Errorf("%s: groups by %s, which none of its metrics has", e.where, l)
			}
		}
	}
	for _, lv := range labelValues {
		if fam, ok := fams[lv[0]]; !ok || !fam.labels[lv[1]] {
			t.Errorf("%s: variable query label_values(%s, %s): no such metric and label in /metrics", dashboardFile, lv[0], lv[1])
		}
	}
	// What the issue asks the dashboard and the alerts to show.
	for _, m := range []string{
		"cdcsync_records_in_total", "cdcsync_records_out_total", "cdcsync_duplicates_total", "cdcsync_authority_dropped_events_total",
		"cdcsync_dlq_records_total", "cdcsync_lag_records", "cdcsync_lag_seconds", "cdcsync_breaker_state",
		"cdcsync_rebalances_total", "cdcsync_ledger_keys", "cdcsync_ledger_restore_seconds_bucket",
		"cdcsync_topology_ready", "cdcsync_topology_failed",
	} {
		if !checked[m] {
			t.Errorf("neither the dashboard nor the alerts use %s", m)
		}
	}
	t.Logf("checked %d expressions naming %d metrics against /metrics", len(exprs), len(checked))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestDeployPromQLParses has promtool parse every expression of the
// dashboard (Grafana's variables replaced by values) and checks and
// unit-tests the alert rules. run-tests.sh installs promtool (Debian's
// prometheus package) first; under CI a missing promtool fails the test.
func TestDeployPromQLParses(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed; integration/run-tests.sh installs it (apt-get install prometheus)")
		}
		t.Skip("promtool is not installed (apt-get install prometheus); CI runs this check")
	}
	exprs, _ := deployExprs(t)
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h", "$topology", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, e := range exprs {
		if !strings.HasPrefix(e.where, dashboardFile) {
			continue
		}
		n++
		fmt.Fprintf(&b, "      - record: dashboard:expr%d\n        expr: %q\n", n, vars.Replace(e.expr))
	}
	rules := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(rules, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", rules},
		{"check", "rules", alertsFile},
		{"test", "rules", "../deploy/prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
