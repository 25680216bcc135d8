package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The dashboard and the alert rules name cdcsync metrics in PromQL. This
// file reads their expressions and finds the metric and label names in
// them with a small tokenizer (the Prometheus parser is a heavy module for
// one test); kfake_dashboards_test.go checks the names against a running
// worker's /metrics, and TestDeployPromQLParses has promtool parse every
// expression in full.

const (
	dashboardFile = "../deploy/grafana/cdcsync.json"
	alertsFile    = "../deploy/prometheus/alerts.yml"
)

// promExpr is one PromQL expression and where it was found.
type promExpr struct {
	where string // file and panel or alert
	expr  string
}

// deployExprs returns every PromQL expression of the dashboard (panel
// targets) and the alert rules, and the dashboard's label_values()
// variable queries as metric/label pairs.
func deployExprs(t *testing.T) (exprs []promExpr, labelValues [][2]string) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
			Panels []json.RawMessage `json:"panels"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for _, p := range dash.Panels {
		if len(p.Panels) > 0 {
			t.Fatalf("%s: row %q holds collapsed panels; keep rows expanded so every panel is checked", dashboardFile, p.Title)
		}
		for i, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: panel %q target %d has no expression", dashboardFile, p.Title, i)
				continue
			}
			exprs = append(exprs, promExpr{fmt.Sprintf("%s panel %q", dashboardFile, p.Title), tg.Expr})
		}
	}
	labelValuesRe := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValuesRe.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", dashboardFile, v.Name, s)
			continue
		}
		labelValues = append(labelValues, [2]string{m[1], m[2]})
	}

	data, err = os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, promExpr{fmt.Sprintf("%s alert %s", alertsFile, r.Alert), r.Expr})
		}
	}
	if len(exprs) < 20 {
		t.Fatalf("found only %d expressions in %s and %s", len(exprs), dashboardFile, alertsFile)
	}
	return exprs, labelValues
}

// promRefs is what one expression names.
type promRefs struct {
	metrics  map[string][]string // metric name -> label names in its {} matchers
	grouping []string            // label names in by, without, on, ignoring, group_left and group_right
}

// promFunctions are PromQL's functions and aggregation operators: an
// identifier followed by "(" must be one of them.
var promFunctions = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
		abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week day_of_year days_in_month
		delta deriv exp floor histogram_quantile histogram_count histogram_sum histogram_fraction histogram_avg
		histogram_stddev histogram_stdvar holt_winters double_exponential_smoothing hour idelta increase irate
		label_replace label_join ln log2 log10 minute month predict_linear rate resets round scalar sgn sort sort_desc
		sort_by_label sort_by_label_desc sqrt time timestamp vector year avg_over_time min_over_time max_over_time
		sum_over_time count_over_time quantile_over_time stddev_over_time stdvar_over_time last_over_time
		present_over_time mad_over_time acos acosh asin asinh atan atanh cos cosh sin sinh tan tanh deg rad pi start end`) {
		promFunctions[f] = true
	}
}

var promGroupingKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
var promBinaryKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// parsePromRefs tokenizes a PromQL expression (with Grafana's $variables)
// and returns the metric names, their matcher labels and the grouping
// labels. It skips strings, comments, range and subquery brackets and
// numbers, and reports what it cannot read: an unknown function, an
// unterminated string, bracket or label list.
func parsePromRefs(expr string) (promRefs, error) {
	r := promRefs{metrics: map[string][]string{}}
	s := expr
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	ident := func() string {
		j := i
		for i < len(s) && isIdentChar(s[i]) {
			i++
		}
		return s[j:i]
	}
	str := func() (string, error) { // at a quote
		q := s[i]
		i++
		var b strings.Builder
		for i < len(s) && s[i] != q {
			if s[i] == '\\' && q != '`' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
			i++
		}
		if i >= len(s) {
			return "", fmt.Errorf("unterminated string")
		}
		i++
		return b.String(), nil
	}
	// labelList reads "(a, b, c)" after a grouping keyword.
	labelList := func() error {
		skipSpace()
		if i >= len(s) || s[i] != '(' {
			return nil // on/ignoring without a list is not valid PromQL, but group_left may stand alone
		}
		i++
		for {
			skipSpace()
			if i < len(s) && s[i] == ')' {
				i++
				return nil
			}
			if i >= len(s) || !isIdentStart(s[i]) {
				return fmt.Errorf("bad label list at %q", s[i:])
			}
			r.grouping = append(r.grouping, ident())
			skipSpace()
			if i < len(s) && s[i] == ',' {
				i++
			}
		}
	}
	// matchers reads "{a="x", b=~"y"}" and returns the label names; a
	// __name__ matcher names the metric.
	matchers := func() (labels []string, name string, err error) {
		i++ // {
		for {
			skipSpace()
			if i < len(s) && s[i] == '}' {
				i++
				return labels, name, nil
			}
			if i >= len(s) || !isIdentStart(s[i]) {
				return nil, "", fmt.Errorf("bad label matcher at %q", s[i:])
			}
			l := ident()
			skipSpace()
			for i < len(s) && strings.IndexByte("=!~", s[i]) >= 0 {
				i++
			}
			skipSpace()
			if i >= len(s) || strings.IndexByte("\"'`", s[i]) < 0 {
				return nil, "", fmt.Errorf("label %s: no quoted value", l)
			}
			v, err := str()
			if err != nil {
				return nil, "", err
			}
			if l == "__name__" {
				name = v
			} else {
				labels = append(labels, l)
			}
			skipSpace()
			if i < len(s) && s[i] == ',' {
				i++
			}
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			return r, nil
		}
		c := s[i]
		switch {
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			if _, err := str(); err != nil {
				return r, err
			}
		case c == '[': // a range or subquery: durations and Grafana variables
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return r, fmt.Errorf("unterminated [")
			}
			i += j + 1
		case c == '$': // a Grafana variable: $name or ${name}
			i++
			if i < len(s) && s[i] == '{' {
				j := strings.IndexByte(s[i:], '}')
				if j < 0 {
					return r, fmt.Errorf("unterminated ${")
				}
				i += j + 1
			} else {
				ident()
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
				i++
			}
		case c == '{': // matchers without a metric name
			labels, name, err := matchers()
			if err != nil {
				return r, err
			}
			if name == "" {
				return r, fmt.Errorf("a selector without a metric name")
			}
			r.metrics[name] = append(r.metrics[name], labels...)
		case isIdentStart(c):
			id := ident()
			skipSpace()
			next := byte(0)
			if i < len(s) {
				next = s[i]
			}
			lower := strings.ToLower(id)
			switch {
			case promGroupingKeywords[lower]:
				if err := labelList(); err != nil {
					return r, err
				}
			case promBinaryKeywords[lower], lower == "inf", lower == "nan":
			case promFunctions[id] && (strings.HasPrefix(s[i:], "by") || strings.HasPrefix(s[i:], "without")):
				// an aggregation with its grouping first: sum by (a) (...)
			case next == '(':
				if !promFunctions[id] {
					return r, fmt.Errorf("unknown function %s()", id)
				}
			default:
				labels := []string{}
				if next == '{' {
					var name string
					var err error
					if labels, name, err = matchers(); err != nil {
						return r, err
					}
					if name != "" {
						return r, fmt.Errorf("%s{__name__=...}: two metric names", id)
					}
				}
				r.metrics[id] = append(r.metrics[id], labels...)
			}
		default:
			i++
		}
	}
}

func TestParsePromRefs(t *testing.T) {
	for _, tc := range []struct {
		expr     string
		metrics  string // name:labels;...
		grouping string
		err      string
	}{
		{`sum by (topology) (rate(cdcsync_records_in_total{topology=~"$topology"}[$__rate_interval]))`,
			"cdcsync_records_in_total:topology", "topology", ""},
		{"min_over_time(a_b[5m]) > 0\nunless on (instance, job) increase(c_total{to=\"closed\", x!~'y}'}[5m:1m]) > 0",
			"a_b:;c_total:to,x", "instance,job", ""},
		{`histogram_quantile(0.99, sum(rate(x_bucket[5m])) by (le)) * 1e3 offset 5m`, "x_bucket:", "le", ""},
		{`{__name__="named", a="b"} / ignoring(to) group_left other`, "named:a;other:", "to", ""},
		{`up{job="cdcsync"} == 0 and Inf > NaN`, "up:job", "", ""},
		{`sum without(instance)(x) + count by(a)(y)`, "x:;y:", "instance,a", ""},
		{`rat(x[5m])`, "", "", "unknown function rat()"},
		{`x{a="b}`, "", "", "unterminated string"},
		{`x{a}`, "", "", "no quoted value"},
		{`rate(x[5m)`, "", "", "unterminated ["},
	} {
		r, err := parsePromRefs(tc.expr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.expr, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		var ms []string
		for m, ls := range r.metrics {
			sort.Strings(ls)
			ms = append(ms, m+":"+strings.Join(ls, ","))
		}
		sort.Strings(ms)
		if got := strings.Join(ms, ";"); got != tc.metrics {
			t.Errorf("%q: metrics %q, want %q", tc.expr, got, tc.metrics)
		}
		if got := strings.Join(r.grouping, ","); got != tc.grouping {
			t.Errorf("%q: grouping %q, want %q", tc.expr, got, tc.grouping)
		}
	}
}

// scrapedFamily is one metric family of a /metrics page.
type scrapedFamily struct {
	typ    string
	labels map[string]bool
}

// parseExposition reads the Prometheus text format: the family of each
// sample (a histogram's _bucket, _sum and _count samples are families of
// their own here, of type "histogram") and its label names.
func parseExposition(t *testing.T, body string) map[string]*scrapedFamily {
	t.Helper()
	types := map[string]string{}
	out := map[string]*scrapedFamily{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if f := strings.Fields(l); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
			continue
		}
		if l == "" || l[0] == '#' {
			continue
		}
		end := strings.IndexAny(l, "{ ")
		if end < 0 {
			t.Fatalf("/metrics line %q has no value", l)
		}
		name := l[:end]
		fam := out[name]
		if fam == nil {
			fam = &scrapedFamily{labels: map[string]bool{}}
			out[name] = fam
			fam.typ = types[name]
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == "histogram" {
					fam.typ = "histogram"
				}
			}
		}
		if l[end] == '{' {
			rest := l[end+1:]
			for len(rest) > 0 && rest[0] != '}' {
				eq := strings.IndexByte(rest, '=')
				if eq < 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
					t.Fatalf("/metrics line %q: bad labels", l)
				}
				fam.labels[rest[:eq]] = true
				j := eq + 2
				for j < len(rest) && rest[j] != '"' {
					if rest[j] == '\\' {
						j++
					}
					j++
				}
				rest = strings.TrimPrefix(rest[min(j+1, len(rest)):], ",")
			}
		}
	}
	return out
}

// TestDashboardLayout checks what Grafana needs to import the dashboard
// as drawn: unique panel ids, panels inside the 24-column grid, no two
// panels overlapping, a data source on every panel that queries, and a
// title and description on every panel.
func TestDashboardLayout(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID          int                      `json:"id"`
			Type        string                   `json:"type"`
			Title       string                   `json:"title"`
			Description string                   `json:"description"`
			Datasource  any                      `json:"datasource"`
			GridPos     struct{ H, W, X, Y int } `json:"gridPos"`
			Targets     []any                    `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard uid %q title %q: both are needed for a stable import", dash.UID, dash.Title)
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
					goto next
				}
				taken[cell{x, y}] = p.Title
			}
		}
	next:
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || p.Description == "" {
			t.Errorf("panel %d (%s): title %q, description %q: both are needed", p.ID, p.Type, p.Title, p.Description)
		}
		if p.Datasource == nil || len(p.Targets) == 0 {
			t.Errorf("panel %q has no data source or no query", p.Title)
		}
	}
}
