//go:build browser

// The browser tier: the web console driven in headless Chromium
// (chromedp) against two workers on the embedded kfake broker with the
// demo's contacts data set. Run it with
//
//	go test -tags browser -count=1 -run TestBrowser ./integration/
//
// integration/run-tests.sh installs Debian's chromium when it is missing.
// With the tag given, a missing browser fails the test: it is never
// skipped. CDCSYNC_SCREENSHOTS=DIR writes the console's main views there
// as PNG (docs/img holds the committed ones).
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdcsync/cdcsync/internal/demo"
	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/processor/dlq"
	"github.com/cdcsync/cdcsync/topology"
)

// findChromium returns the headless browser's path, or fails the test.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CDCSYNC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found (chromium, chromium-browser, google-chrome, or CDCSYNC_CHROMIUM): " +
		"install Debian's chromium (apt-get install -y chromium); integration/run-tests.sh does it")
	return ""
}

// browser starts headless Chromium; the returned context drives one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium(t)
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// do runs browser steps with a deadline, failing the test with what was
// being done and the page's content.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		html, _ := chromedp.Run(hctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage:\n%s", what, err, html)
	}
}

// bget runs one browser action that returns a value.
func bget[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))
}

// textOf is the text of the first element matching a CSS selector.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return bget(t, ctx, "text of "+sel, chromedp.TextContent(chromedp.CSS(sel)))
}

// follow clicks a link and waits for the page it loads.
func follow(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(sctx, click(sel))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.Status != 200 {
		t.Fatalf("%s: %s answered %d", what, resp.URL, resp.Status)
	}
}

func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// screenshot writes the page to $CDCSYNC_SCREENSHOTS/name.png when set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CDCSYNC_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := bget(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

const browserToken = "console-test-token"

// startConsoleWorker is an in-process worker serving the REST API and the
// console on a loopback port.
func startConsoleWorker(t *testing.T, brokers []string, name string, plans ...*topology.Plan) *worker {
	t.Helper()
	return startConsoleWorkerWith(t, brokers, name, "", plans...)
}

// startConsoleWorkerWith is startConsoleWorker with api_token_read set
// to readToken when it is not empty.
func startConsoleWorkerWith(t *testing.T, brokers []string, name, readToken string, plans ...*topology.Plan) *worker {
	t.Helper()
	cfg := processor.DefaultConfig()
	cfg.APITokenRead = processor.Secret(readToken)
	cfg.Brokers = brokers
	cfg.ClientID = name
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.APIToken = processor.Secret(browserToken)
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.Heartbeat = 500 * time.Millisecond
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).With(zap.String("worker", name))
	w, err := processor.New(cfg, plans, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { wk.done <- w.Run(ctx) }()
	t.Cleanup(func() { _ = wk.stop() })
	deadline := time.Now().Add(10 * time.Second)
	for w.HTTPAddr() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("worker %s: no HTTP server after 10s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return wk
}

// jsonPlans are the demo's JSON topologies (the Avro one needs the
// registry and adds nothing the console shows differently).
func jsonPlans(t *testing.T) []*topology.Plan {
	t.Helper()
	all, err := demo.Topologies()
	if err != nil {
		t.Fatal(err)
	}
	var out []*topology.Plan
	for _, p := range all {
		if p.Format() == topology.DebeziumJSON {
			out = append(out, p)
		}
	}
	if len(out) != 2 {
		t.Fatalf("want the demo's 2 JSON topologies, got %d", len(out))
	}
	return out
}

func TestBrowserConsole(t *testing.T) {
	const erpToCRM = "contacts-erp-to-crm"
	st := cluster(t, 4, "erp.public.contacts", "crm.public.contacts")
	brokers := st.Brokers()
	plans := jsonPlans(t)
	records, expect := demo.Contacts(60)
	produce(t, brokers, records)
	w1 := startConsoleWorker(t, brokers, "console-w1", plans...)
	w2 := startConsoleWorker(t, brokers, "console-w2", plans...)
	waitProcessed(t, brokers, 30*time.Second, plans...)

	// What the DLQ really holds, read with the CLI's reader.
	var erpPlan *topology.Plan
	for _, p := range plans {
		if p.Name() == erpToCRM {
			erpPlan = p
		}
	}
	inDLQ, err := dlq.Read(context.Background(), newClient(t, brokers), string(erpPlan.DLQTopic()), dlq.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(inDLQ) != expect.Poison {
		t.Fatalf("%s holds %d records, the data set has %d poison records", erpPlan.DLQTopic(), len(inDLQ), expect.Poison)
	}

	base := "http://" + w1.w.HTTPAddr()
	ctx := browser(t)

	t.Run("topologies render", func(t *testing.T) {
		// Each topology's 4 partitions, 2 on each worker, from both
		// workers' reports.
		do(t, ctx, "index", chromedp.Navigate(base+"/"),
			waitJS(`document.querySelectorAll("#topologies tbody tr[data-topology]").length === 2`),
			waitJS(`[...document.querySelectorAll("#topologies td.partitions")].every(td => td.textContent === "4")`),
			waitJS(`[...document.querySelectorAll("#topologies td.state")].every(td => td.textContent === "running")`))
		names := textOf(t, ctx, "#topologies tbody")
		for _, p := range plans {
			if !strings.Contains(names, p.Name()) {
				t.Errorf("index does not list %s:\n%s", p.Name(), names)
			}
		}
		screenshot(t, ctx, "console-topologies")
	})

	t.Run("DLQ drill-down shows a poison record's headers", func(t *testing.T) {
		do(t, ctx, "topology page", chromedp.Navigate(base+"/console/topologies/"+erpToCRM),
			waitJS(fmt.Sprintf(`document.querySelectorAll("#dlq-records a.record-link").length === %d`, len(inDLQ))))
		total := textOf(t, ctx, "#dlq-total")
		if !strings.HasPrefix(total, fmt.Sprintf("%d record(s)", len(inDLQ))) {
			t.Errorf("DLQ total %q, want %d record(s)", total, len(inDLQ))
		}
		// The plan, from GET /topologies/{name}.
		do(t, ctx, "plan", waitJS(`document.getElementById("plan").textContent.includes("`+string(erpPlan.DLQTopic())+`")`))
		screenshot(t, ctx, "console-topology")
		first := inDLQ[0]
		link := fmt.Sprintf(`a.record-link[href$="/dlq/%d/%d"]`, first.DLQPartition, first.DLQOffset)
		follow(t, ctx, "open a record", link)
		do(t, ctx, "the record's headers", waitJS(`document.querySelectorAll("#record-headers tbody td.hkey").length > 5`))
		headers, facts := textOf(t, ctx, "#record-headers tbody"), textOf(t, ctx, "#record-facts")
		for _, h := range first.Headers {
			if !strings.Contains(headers, string(h.Key)) || !strings.Contains(headers, string(h.Value)) {
				t.Errorf("record page lacks header %s=%s:\n%s", h.Key, h.Value, headers)
			}
		}
		origin := fmt.Sprintf("%s partition %d offset %d", first.Topic, first.Partition, first.Offset)
		if !strings.Contains(facts, origin) || !strings.Contains(facts, first.Stage) {
			t.Errorf("record facts lack origin %q and stage %q:\n%s", origin, first.Stage, facts)
		}
		screenshot(t, ctx, "console-dlq-record")
	})

	t.Run("dry-run preview counts what the DLQ holds; a replay without the token is refused", func(t *testing.T) {
		do(t, ctx, "topology page", chromedp.Navigate(base+"/console/topologies/"+erpToCRM),
			waitJS(`document.querySelectorAll("#dlq-records a.record-link").length > 0`),
			click("#replay-preview"),
			waitJS(`document.getElementById("replay-result").dataset.count !== undefined`))
		count := bget(t, ctx, "preview count", chromedp.Evaluate[string](`document.getElementById("replay-result").dataset.count`))
		result := textOf(t, ctx, "#replay-result")
		if count != fmt.Sprint(len(inDLQ)) {
			t.Fatalf("dry run counts %s, the DLQ holds %d: %s", count, len(inDLQ), result)
		}
		screenshot(t, ctx, "console-replay-preview")

		do(t, ctx, "replay without token", click("#replay-run"),
			waitJS(`document.getElementById("replay-result").textContent.startsWith("401")`))
		notice := textOf(t, ctx, "#notice")
		if !strings.Contains(notice, "401 Unauthorized") {
			t.Errorf("notice %q, want the 401 shown", notice)
		}
		after, err := dlq.Read(context.Background(), newClient(t, brokers), string(erpPlan.DLQTopic()), dlq.Filter{}, 0)
		if err != nil || len(after) != len(inDLQ) {
			t.Fatalf("DLQ after a refused replay: %d records, %v", len(after), err)
		}
	})

	t.Run("pause through the console stops consumption on both workers; resume restarts it", func(t *testing.T) {
		do(t, ctx, "topology page", chromedp.Navigate(base+"/console/topologies/"+erpToCRM),
			waitJS(`document.querySelectorAll("#workers tbody tr[data-worker]").length === 2`),
			waitJS(`document.getElementById("state").textContent === "running"`),
			waitJS(`document.querySelectorAll("#partitions tbody tr[data-partition]").length === 4`))
		owners := textOf(t, ctx, "#partitions tbody")
		for _, w := range []string{"console-w1", "console-w2"} {
			if !strings.Contains(owners, w) {
				t.Fatalf("the partitions table names no partition of %s; both workers must hold some:\n%s", w, owners)
			}
		}

		// Without the token the pause is refused, and the console says so.
		do(t, ctx, "pause without the token", click("#pause"),
			waitJS(`document.getElementById("action-result").textContent.startsWith("401")`))
		if n := textOf(t, ctx, "#notice"); !strings.Contains(n, "401 Unauthorized") {
			t.Errorf("notice %q, want the 401 shown", n)
		}
		if st := textOf(t, ctx, "#state"); st != "running" {
			t.Fatalf("state %q after a refused pause", st)
		}

		do(t, ctx, "enter the token", chromedp.SendKeys(chromedp.ID("token"), browserToken), click("#token-save"),
			waitJS(`sessionStorage.getItem("cdcsync.api_token") === "`+browserToken+`"`))
		// Paused on both workers: each reports it.
		do(t, ctx, "pause", click("#pause"),
			waitJS(`document.getElementById("state").textContent === "paused"`),
			waitJS(`[...document.querySelectorAll("#workers tbody tr[data-worker] td:nth-child(2)")].every(td => td.textContent.startsWith("paused"))`))
		in := func() [2]int64 {
			return [2]int64{w1.w.Stats(erpToCRM).In, w2.w.Stats(erpToCRM).In}
		}
		before := in()
		var erp []demo.Record
		for _, r := range records {
			if r.Topic == "erp.public.contacts" {
				erp = append(erp, r)
			}
		}
		produce(t, brokers, erp) // the same records again: consumed, then dropped as duplicates (the poison ones reach the DLQ again)
		// The lag shows in the console while nothing is consumed.
		do(t, ctx, "lag while paused", waitJS(fmt.Sprintf(
			`[...document.querySelectorAll("#partitions tbody tr[data-partition] td:nth-child(4)")].reduce((a, td) => a + Number(td.textContent.replace(/,/g, "")), 0) === %d`, len(erp))))
		time.Sleep(2 * time.Second)
		if got := in(); got != before {
			t.Fatalf("records consumed while paused: workers' records in %v -> %v", before, got)
		}
		screenshot(t, ctx, "console-paused")

		do(t, ctx, "resume", click("#resume"), waitJS(`document.getElementById("state").textContent === "running"`))
		waitProcessed(t, brokers, 30*time.Second, erpPlan)
		after := in()
		if after[0]+after[1]-before[0]-before[1] < int64(len(erp)) {
			t.Fatalf("after resume the workers consumed %d records, want %d", after[0]+after[1]-before[0]-before[1], len(erp))
		}
		for i := range after {
			if after[i] == before[i] {
				t.Errorf("worker %d consumed nothing after resume", i+1)
			}
		}
	})

	t.Run("replay with the token writes the dead letters back to their source partitions", func(t *testing.T) {
		client := newClient(t, brokers)
		hwms := func() int64 {
			if err := client.RefreshMetadata("erp.public.contacts"); err != nil {
				t.Fatal(err)
			}
			var n int64
			for p := int32(0); p < 4; p++ {
				o, err := client.GetOffset("erp.public.contacts", p, sarama.OffsetNewest)
				if err != nil {
					t.Fatal(err)
				}
				n += o
			}
			return n
		}
		// The pause test produced the poison records again: read what the
		// DLQ holds now.
		now, err := dlq.Read(context.Background(), client, string(erpPlan.DLQTopic()), dlq.Filter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		before := hwms()
		// The token typed earlier is still in this tab's sessionStorage.
		do(t, ctx, "replay", chromedp.Navigate(base+"/console/topologies/"+erpToCRM),
			waitJS(`document.querySelectorAll("#dlq-records a.record-link").length > 0`),
			click("#replay-preview"),
			waitJS(`!document.getElementById("replay-run").disabled`),
			click("#replay-run"),
			waitJS(`document.getElementById("replay-result").textContent.startsWith("Replayed")`))
		if got := textOf(t, ctx, "#replay-result"); got != fmt.Sprintf("Replayed %d record(s) to their source partitions.", len(now)) {
			t.Fatalf("replay result %q, want %d replayed", got, len(now))
		}
		if got := hwms(); got != before+int64(len(now)) {
			t.Fatalf("the source topic grew by %d records, want %d", got-before, len(now))
		}
		// The poison records fail again, and reach the DLQ again.
		waitProcessed(t, brokers, 30*time.Second, erpPlan)
		again, err := dlq.Read(context.Background(), client, string(erpPlan.DLQTopic()), dlq.Filter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 2*len(now) {
			t.Fatalf("the DLQ holds %d records after the replay, want %d", len(again), 2*len(now))
		}
	})

	t.Run("restart through the console", func(t *testing.T) {
		do(t, ctx, "restart", chromedp.Navigate(base+"/console/topologies/"+erpToCRM),
			waitJS(`document.getElementById("state").textContent === "running"`),
			click("#restart"),
			waitJS(`document.getElementById("action-result").textContent === "Restart: done"`),
			waitJS(`document.getElementById("state").textContent === "running"`),
			waitJS(`document.querySelectorAll("#partitions tbody tr[data-partition]").length === 4`))
		resp, err := http.Get(base + "/topologies/" + erpToCRM + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st api.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		if st.Desired.Restart != 1 || st.State != api.StateRunning {
			t.Fatalf("status after the console's restart: state %s, restarts %d; want running, 1", st.State, st.Desired.Restart)
		}
	})

	t.Run("a worker with api_token_read shows nothing until the token is given", func(t *testing.T) {
		w3 := startConsoleWorkerWith(t, brokers, "console-w3", "reader-token", plans...)
		base3 := "http://" + w3.w.HTTPAddr()
		do(t, ctx, "index without a token", chromedp.Navigate(base3+"/"),
			chromedp.Evaluate[chromedp.Void](`sessionStorage.clear()`),
			chromedp.Reload(),
			waitJS(`document.getElementById("notice").textContent.startsWith("401 Unauthorized")`))
		if n := len(bget(t, ctx, "rows", chromedp.Nodes(chromedp.CSS("#topologies tbody tr[data-topology]"), chromedp.AtLeast(0)))); n != 0 {
			t.Fatalf("%d topologies listed without the read token", n)
		}
		do(t, ctx, "enter the read token", chromedp.SendKeys(chromedp.ID("token"), "reader-token"), click("#token-save"),
			chromedp.Reload(),
			waitJS(`document.querySelectorAll("#topologies tbody tr[data-topology]").length === 2`),
			waitJS(`[...document.querySelectorAll("#topologies td.state")].every(td => td.textContent === "running")`))
		// The read token reads; it does not change state.
		do(t, ctx, "pause with the read token", chromedp.Navigate(base3+"/console/topologies/"+erpToCRM),
			waitJS(`document.getElementById("state").textContent === "running"`),
			click("#pause"),
			waitJS(`document.getElementById("action-result").textContent.startsWith("401")`))
	})
}
