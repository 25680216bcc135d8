package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/processor/api"
	"github.com/cdcsync/cdcsync/topology"
)

//go:embed assets
var assets embed.FS

// Config is what the console needs from the worker.
type Config struct {
	// Plans are the worker's topologies.
	Plans []*topology.Plan
	// Connect opens a Kafka client for one request's DLQ reads and
	// replays; the console closes it. Its config must suit a replay
	// producer (dlq.ConfigureReplayProducer) and a short
	// Consumer.MaxWaitTime (Read finds a partition's end by waiting out
	// fetches).
	Connect func(ctx context.Context) (sarama.Client, error)
	// Tokens are api_token (state changes: a replay) and api_token_read
	// (reads, when set); the console guards its routes as the REST API
	// does (api.Auth).
	Tokens api.Options
	// MaxEntries bounds the dead letters one request reads into memory;
	// a summary, list or replay of a larger DLQ covers the first ones and
	// says so (truncated). 0: DefaultMaxEntries.
	MaxEntries int
	Log        *zap.Logger
}

// Validate reports a missing field.
func (c Config) Validate() error {
	switch {
	case len(c.Plans) == 0:
		return errors.New("console: no topologies")
	case c.Connect == nil:
		return errors.New("console: Connect is nil")
	}
	return nil
}

// Console serves the pages and the DLQ endpoints. It holds no goroutine
// and no connection between requests.
type Console struct {
	cfg       Config
	plans     map[string]*topology.Plan
	names     []string
	forbidden map[string]string // topics a replay must never write, and why
	pages     *template.Template
	js, css   []byte // the script and the style sheet, served as they are embedded
	auth      *api.Auth
	log       *zap.Logger
}

// New builds a console; it opens nothing.
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	pages, err := template.ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	js, err := assets.ReadFile("assets/console.js")
	if err != nil {
		return nil, err
	}
	css, err := assets.ReadFile("assets/console.css")
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, plans: map[string]*topology.Plan{}, forbidden: map[string]string{},
		pages: pages, js: js, css: css,
		auth: api.NewAuth(cfg.Tokens), log: cfg.Log,
	}
	for _, p := range cfg.Plans {
		c.plans[p.Name()] = p
		c.names = append(c.names, p.Name())
		// The same refusals as `cdcsync dlq replay --topologies`.
		c.forbidden[string(p.DLQTopic())] = fmt.Sprintf("the DLQ topic of topology %s (%s)", p.Name(), p.File())
		c.forbidden[string(p.LedgerTopic())] = fmt.Sprintf("the ledger topic of topology %s (%s)", p.Name(), p.File())
	}
	return c, nil
}

// Register adds the console's routes to mux: the pages at / and under
// /console/, the DLQ endpoints under /topologies/{name}/dlq.
func (c *Console) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", c.index)
	mux.HandleFunc("GET /console/static/console.js", c.asset(c.js, "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /console/static/console.css", c.asset(c.css, "text/css; charset=utf-8"))
	mux.HandleFunc("GET /console/topologies/{name}", c.topologyPage)
	mux.HandleFunc("GET /console/topologies/{name}/dlq/{partition}/{offset}", c.recordPage)

	// As the REST API's routes: any other method is a JSON 405.
	mux.HandleFunc("/topologies/{name}/dlq", api.Only(http.MethodGet, c.read(c.dlqSummary)))
	mux.HandleFunc("/topologies/{name}/dlq/records", api.Only(http.MethodGet, c.read(c.dlqRecords)))
	mux.HandleFunc("/topologies/{name}/dlq/records/{partition}/{offset}", api.Only(http.MethodGet, c.read(c.dlqRecord)))
	mux.HandleFunc("/topologies/{name}/dlq/replay", api.Only(http.MethodPost, c.read(c.dlqReplay)))
}

// asset serves an embedded file; they change only with the binary.
func (c *Console) asset(b []byte, contentType string) http.HandlerFunc {
	return func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", contentType)
		rw.Header().Set("Cache-Control", "no-cache")
		_, _ = rw.Write(b)
	}
}

type pageData struct {
	Title string
	// Protected: api_token_read is set, so the frame names no topology
	// and no topic; the script fills it from the API with the token.
	Protected  bool
	Topologies []topologyRow
	Name       string // the topology of a topology or record page
	Partition  int32
	Offset     int64
	DLQTopic   string
}

type topologyRow struct {
	Name, Sources, Guarantee, DLQTopic string
}

func (c *Console) index(rw http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Topologies", Protected: c.cfg.Tokens.ReadToken != ""}
	for _, n := range c.names {
		if d.Protected {
			break
		}
		p := c.plans[n]
		src := p.SourcePattern()
		if ts := p.SourceTopics(); len(ts) > 0 {
			parts := make([]string, len(ts))
			for i, t := range ts {
				parts[i] = string(t)
			}
			src = strings.Join(parts, ", ")
		}
		d.Topologies = append(d.Topologies, topologyRow{Name: n, Sources: src, Guarantee: p.Guarantee().String(), DLQTopic: string(p.DLQTopic())})
	}
	c.render(rw, "index.html", d)
}

func (c *Console) topologyPage(rw http.ResponseWriter, r *http.Request) {
	p, ok := c.plans[r.PathValue("name")]
	if !ok {
		http.Error(rw, "unknown topology "+strconv.Quote(r.PathValue("name")), http.StatusNotFound)
		return
	}
	d := pageData{Title: p.Name(), Name: p.Name(), DLQTopic: string(p.DLQTopic()), Protected: c.cfg.Tokens.ReadToken != ""}
	if d.Protected {
		d.DLQTopic = ""
	}
	c.render(rw, "topology.html", d)
}

func (c *Console) recordPage(rw http.ResponseWriter, r *http.Request) {
	p, ok := c.plans[r.PathValue("name")]
	if !ok {
		http.Error(rw, "unknown topology "+strconv.Quote(r.PathValue("name")), http.StatusNotFound)
		return
	}
	part, off, err := position(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	d := pageData{
		Title: fmt.Sprintf("%s %d/%d", p.DLQTopic(), part, off), Name: p.Name(),
		Partition: part, Offset: off, DLQTopic: string(p.DLQTopic()),
	}
	if c.cfg.Tokens.ReadToken != "" {
		d.Title, d.DLQTopic, d.Protected = fmt.Sprintf("%s %d/%d", p.Name(), part, off), "", true
	}
	c.render(rw, "record.html", d)
}

func (c *Console) render(rw http.ResponseWriter, page string, d pageData) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	if err := c.pages.ExecuteTemplate(rw, page, d); err != nil {
		c.log.Warn("console: rendering a page", zap.String("page", page), zap.Error(err))
	}
}

// position reads the {partition} and {offset} path values.
func position(r *http.Request) (int32, int64, error) {
	p, err1 := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	o, err2 := strconv.ParseInt(r.PathValue("offset"), 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return 0, 0, fmt.Errorf("want /{partition}/{offset} as two non-negative integers, got %q/%q",
			r.PathValue("partition"), r.PathValue("offset"))
	}
	return int32(p), o, nil
}

// read wraps a JSON endpoint: reads need api_token_read when it is set
// (401), and the topology must exist (404).
func (c *Console) read(h func(http.ResponseWriter, *http.Request, *topology.Plan)) http.HandlerFunc {
	return c.auth.Read(func(rw http.ResponseWriter, r *http.Request) {
		p, ok := c.plans[r.PathValue("name")]
		if !ok {
			writeError(rw, http.StatusNotFound, fmt.Sprintf("topology %q is not run by this worker", r.PathValue("name")))
			return
		}
		h(rw, r, p)
	})
}

func writeJSON(rw http.ResponseWriter, code int, v any) { api.WriteJSON(rw, code, v) }

func writeError(rw http.ResponseWriter, code int, msg string) { api.WriteError(rw, code, msg) }
