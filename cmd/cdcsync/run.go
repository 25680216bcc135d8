package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/topology"
)

// workerFile is the worker YAML file: processor.Config plus the
// topologies directory.
type workerFile struct {
	processor.Config `yaml:",inline"`
	Topologies       string `yaml:"topologies"`
	LogLevel         string `yaml:"log_level"`

	// origin says where each option that is not a default was set: the
	// worker file, a CDCSYNC_* variable or a flag, keyed by YAML key. It
	// is nil when everything is a default.
	origin map[string]string
}

// setOrigin records that key was set by src.
func (wf *workerFile) setOrigin(key, src string) {
	if wf.origin == nil {
		wf.origin = map[string]string{}
	}
	wf.origin[key] = src
}

// withOrigin adds where the option named by a configuration error was
// set, so "brokers[1]: ..." says whether the file, CDCSYNC_BROKERS or
// --brokers is to blame.
func (wf *workerFile) withOrigin(err error) error {
	var ce *processor.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	key, _, _ := strings.Cut(ce.Key, "[")
	if src := wf.origin[key]; src != "" {
		return fmt.Errorf("%w (%s set by %s)", err, key, src)
	}
	return err
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stdout)
	var (
		brokers    = fs.String("brokers", "", "bootstrap brokers, HOST:PORT[,..] (env CDCSYNC_BROKERS)")
		topoDir    = fs.String("topologies", "", "directory (or file) of topology YAML files (env CDCSYNC_TOPOLOGIES)")
		configFile = fs.String("config", "", "worker YAML file (env CDCSYNC_CONFIG)")
		httpAddr   = fs.String("http-addr", "", "address for /metrics, /healthz, /readyz (default :9102; env CDCSYNC_HTTP_ADDR)")
		clientID   = fs.String("client-id", "", "Kafka client.id of this worker (env CDCSYNC_CLIENT_ID)")
		registry   = fs.String("registry", "", "schema registry URL, for Avro topologies (env CDCSYNC_REGISTRY_URL)")
		logLevel   = fs.String("log-level", "", "debug, info, warn or error (default info; env CDCSYNC_LOG_LEVEL)")
	)
	if err := fs.parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	wf, err := loadWorkerConfig(*configFile, os.Getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	for _, f := range []struct {
		flag, key string
		apply     func()
	}{
		{"brokers", "brokers", func() { wf.Brokers = splitAddrs(*brokers) }},
		{"topologies", "topologies", func() { wf.Topologies = *topoDir }},
		{"http-addr", "http_addr", func() { wf.HTTPAddr = *httpAddr }},
		{"client-id", "client_id", func() { wf.ClientID = *clientID }},
		{"registry", "registry_url", func() { wf.RegistryURL = *registry }},
		{"log-level", "log_level", func() { wf.LogLevel = *logLevel }},
	} {
		if set[f.flag] {
			f.apply()
			wf.setOrigin(f.key, "--"+f.flag)
		}
	}
	// sarama wants "0.11.0.0" where people write "0.11.0"; Validate
	// reports a version that does not parse.
	if v, err := processor.ParseKafkaVersion(wf.KafkaVersion); err == nil {
		wf.KafkaVersion = v.String()
	}
	if wf.Topologies == "" {
		return &exitError{code: 2, err: errors.New("--topologies is required (or topologies: in --config, or CDCSYNC_TOPOLOGIES)")}
	}
	logger, err := newLogger(wf.LogLevel, stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer func() { _ = logger.Sync() }()
	setSaramaLogger(logger)

	plans, err := topology.Load(wf.Topologies)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("topologies refused:\n%w", err)}
	}
	w, err := processor.New(wf.Config, plans, logger)
	if err != nil {
		return &exitError{code: 2, err: wf.withOrigin(err)}
	}
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = p.Name()
	}
	logger.Info("worker starting", zap.Strings("brokers", wf.Brokers), zap.Strings("topologies", names),
		zap.String("client_id", wf.ClientID))
	if err := w.Run(ctx); err != nil {
		logger.Error("worker stopped", zap.Error(err))
		// A configuration problem found only at start (http_addr in use)
		// is still a configuration problem: exit 2, as the README says.
		// So is an access failure: a wrong password or a missing ACL.
		if errors.Is(err, processor.ErrConfig) || errors.Is(err, processor.ErrAccessDenied) {
			return &exitError{code: 2, err: wf.withOrigin(err)}
		}
		return &exitError{code: 1, err: err}
	}
	logger.Info("worker stopped cleanly")
	return nil
}

// loadWorkerConfig layers the defaults, the worker file and CDCSYNC_*
// environment variables; flags are applied by the caller, last.
func loadWorkerConfig(file string, getenv func(string) string) (workerFile, error) {
	wf := workerFile{Config: processor.DefaultConfig(), LogLevel: "info"}
	if file == "" {
		file = getenv("CDCSYNC_CONFIG")
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return wf, fmt.Errorf("--config: %w", err)
		}
		var keys map[string]any
		if yaml.Unmarshal(data, &keys) == nil {
			if err := checkNoSecrets(file, keys); err != nil {
				return wf, err
			}
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&wf); err != nil && !errors.Is(err, io.EOF) {
			return wf, fmt.Errorf("%s: %w", file, err)
		}
		if keys != nil {
			for k := range keys {
				wf.setOrigin(k, file)
			}
		}
	}
	env := func(name string, apply func(string) error) error {
		if v := getenv(name); v != "" {
			if err := apply(v); err != nil {
				return fmt.Errorf("%s=%q: %w", name, v, err)
			}
			wf.setOrigin(strings.ToLower(strings.TrimPrefix(name, "CDCSYNC_")), name)
		}
		return nil
	}
	dur := func(dst *time.Duration) func(string) error {
		return func(v string) (err error) { *dst, err = time.ParseDuration(v); return }
	}
	for _, e := range []struct {
		name  string
		apply func(string) error
	}{
		{"CDCSYNC_BROKERS", func(v string) error { wf.Brokers = splitAddrs(v); return nil }},
		{"CDCSYNC_TOPOLOGIES", func(v string) error { wf.Topologies = v; return nil }},
		{"CDCSYNC_HTTP_ADDR", func(v string) error { wf.HTTPAddr = v; return nil }},
		{"CDCSYNC_INGRESS_ADDR", func(v string) error { wf.IngressAddr = v; return nil }},
		{"CDCSYNC_CLIENT_ID", func(v string) error { wf.ClientID = v; return nil }},
		{"CDCSYNC_KAFKA_VERSION", func(v string) error { wf.KafkaVersion = v; return nil }},
		{"CDCSYNC_REGISTRY_URL", func(v string) error { wf.RegistryURL = v; return nil }},
		{"CDCSYNC_REGISTRY_TIMEOUT", dur(&wf.RegistryTimeout)},
		{"CDCSYNC_LOG_LEVEL", func(v string) error { wf.LogLevel = v; return nil }},
		{"CDCSYNC_MAX_IN_FLIGHT", func(v string) (err error) { wf.MaxInFlight, err = strconv.Atoi(v); return }},
		{"CDCSYNC_MAX_IN_FLIGHT_BYTES", func(v string) (err error) { wf.MaxInFlightBytes, err = strconv.Atoi(v); return }},
		{"CDCSYNC_MEMORY_BUDGET_BYTES", func(v string) (err error) { wf.MemoryBudgetBytes, err = strconv.ParseInt(v, 10, 64); return }},
		{"CDCSYNC_REPLICATION_FACTOR", func(v string) error {
			n, err := strconv.ParseInt(v, 10, 16)
			wf.ReplicationFactor = int16(n)
			return err
		}},
		{"CDCSYNC_SHUTDOWN_TIMEOUT", dur(&wf.ShutdownTimeout)},
		{"CDCSYNC_SESSION_TIMEOUT", dur(&wf.SessionTimeout)},
		{"CDCSYNC_HEARTBEAT", dur(&wf.Heartbeat)},
		{"CDCSYNC_COMMIT_INTERVAL", dur(&wf.CommitInterval)},
		{"CDCSYNC_TRANSACTION_TIMEOUT", dur(&wf.TransactionTimeout)},
		{"CDCSYNC_TXN_MAX_RECORDS", func(v string) (err error) { wf.TxnMaxRecords, err = strconv.Atoi(v); return }},
		{"CDCSYNC_CONTROL_TOPIC", func(v string) error { wf.ControlTopic = v; return nil }},
		{"CDCSYNC_API_TOKEN", func(v string) error { wf.APIToken = processor.Secret(v); return nil }},
		{"CDCSYNC_API_TOKEN_FILE", func(v string) error { wf.APITokenFile = v; return nil }},
		{"CDCSYNC_API_TOKEN_READ", func(v string) error { wf.APITokenRead = processor.Secret(v); return nil }},
		{"CDCSYNC_API_TOKEN_READ_FILE", func(v string) error { wf.APITokenReadFile = v; return nil }},
	} {
		if err := env(e.name, e.apply); err != nil {
			return wf, err
		}
	}
	applySecurityEnv(&wf, getenv)
	return wf, nil
}

// splitAddrs splits a comma-separated address list, trimming spaces but
// keeping empty entries ("a:1,,b:2"), so validation reports them instead
// of a worker silently running with fewer brokers than were written. An
// empty or blank s is no list at all.
func splitAddrs(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	out := strings.Split(s, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// checkBrokers refuses a malformed broker address (exit 2), naming the
// flag or variable and the entry: `--brokers[1]: "http://k:9092" is a
// URL; want host:port`.
func checkBrokers(src string, brokers []string) error {
	for i, b := range brokers {
		if err := processor.CheckBrokerAddr(b); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("%s[%d]: %w", src, i, err)}
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	if err := cfg.Level.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	enc := zapcore.NewJSONEncoder(cfg.EncoderConfig)
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), cfg.Level)), nil
}

// saramaLoggerOnce guards sarama's process-wide logger, the one piece of
// global state cdcsync sets, and only here in cmd/.
var saramaLoggerOnce sync.Once

func setSaramaLogger(l *zap.Logger) {
	saramaLoggerOnce.Do(func() { sarama.Logger = log.New(&zapWriter{l.Named("sarama")}, "", 0) })
}

// zapWriter adapts sarama's standard-library logger to zap at debug level.
type zapWriter struct{ l *zap.Logger }

func (z *zapWriter) Write(p []byte) (int, error) {
	z.l.Debug(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
