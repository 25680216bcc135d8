package processor

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cdcsync/cdcsync/topology"
)

// recordingRegisterer remembers every collector registered through it.
type recordingRegisterer struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	r.Registry.MustRegister(cs...)
	r.collectors = append(r.collectors, cs...)
}

// touch gives a vector one series, whatever its label count, so the
// registry exports the family.
func touch(t *testing.T, c prometheus.Collector) {
	t.Helper()
	for n := 0; n <= 6; n++ {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = "x"
		}
		var err error
		switch v := c.(type) {
		case *prometheus.GaugeVec:
			var g prometheus.Gauge
			if g, err = v.GetMetricWithLabelValues(vals...); err == nil {
				g.Set(1)
			}
		case *prometheus.CounterVec:
			var m prometheus.Counter
			if m, err = v.GetMetricWithLabelValues(vals...); err == nil {
				m.Inc()
			}
		case *prometheus.HistogramVec:
			var o prometheus.Observer
			if o, err = v.GetMetricWithLabelValues(vals...); err == nil {
				o.Observe(1)
			}
		default:
			return // a plain collector (CounterFunc) always exports
		}
		if err == nil {
			return
		}
	}
	t.Fatalf("could not give %T a series", c)
}

// docPlan is a minimal plan for the lifecycle gauges (metrics.watch).
func docPlan(t *testing.T) *topology.Plan {
	t.Helper()
	p, err := topology.Parse("t.yaml", []byte("name: t\nsystems: [a]\nsource: {topics: [a.s.x], system: a, format: debezium-json}\nsink: {topic: out, key: [id]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Regression guard (issue 10): the metric list in the docs had drifted from
// the code (lag_seconds documented as the age of the last record processed,
// new counters missing). TestMetricsDoc checks every metric the worker
// registers against the table in doc.go, both ways: name, type and labels.
func TestMetricsDoc(t *testing.T) {
	reg := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	m := newMetrics(reg)
	m.forTopology("t")
	m.watch(&pipeline{plan: docPlan(t)})
	for _, c := range reg.collectors {
		touch(t, c)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fams {
		labels := map[string]bool{}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		var names []string
		for l := range labels {
			names = append(names, l)
		}
		sort.Strings(names)
		typ := strings.ToLower(f.GetType().String())
		got[f.GetName()] = typ + " " + strings.Join(names, ",")
	}

	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, line := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(line, "//\tcdcsync_") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, "//"))
		if len(f) < 4 {
			t.Errorf("doc.go: metric line without name, type, labels and meaning: %q", line)
			continue
		}
		labels := strings.Split(f[2], ",")
		sort.Strings(labels)
		documented[f[0]] = f[1] + " " + strings.Join(labels, ",")
	}
	if len(documented) == 0 {
		t.Fatal("doc.go lists no metric")
	}
	for name, want := range got {
		if doc, ok := documented[name]; !ok {
			t.Errorf("%s (%s) is exported but not listed in doc.go", name, want)
		} else if doc != want {
			t.Errorf("%s: doc.go says %q, the registry exports %q", name, doc, want)
		}
	}
	for name := range documented {
		if _, ok := got[name]; !ok {
			t.Errorf("%s is listed in doc.go but not exported", name)
		}
	}
}
