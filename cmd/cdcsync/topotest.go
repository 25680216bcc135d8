package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/cdcsync/cdcsync/processor"
	"github.com/cdcsync/cdcsync/schemas"
	"github.com/cdcsync/cdcsync/topology"
)

// A fixture file, in the directory NAME_test beside the topology
// NAME.yaml, lists cases: one source record each and what the topology must make of it.
// docs/cli.md describes the format; the shipped fixtures are examples.
type fixtureFile struct {
	// Topology is the topology file, relative to the fixture file;
	// default: ../NAME.yaml for a fixture in NAME_test/.
	Topology string `yaml:"topology"`
	// SinkPartitions is the partition count sink topics are taken to
	// have (a truncate goes to each); default 1.
	SinkPartitions int32 `yaml:"sink_partitions"`
	// Schemas are the writer schemas (.avsc files, relative to the
	// fixture file) of the inputs of a debezium-avro topology; an input's
	// key_schema and value_schema override them.
	Schemas struct {
		Key   string `yaml:"key"`
		Value string `yaml:"value"`
	} `yaml:"schemas"`
	Cases []fixtureCase `yaml:"cases"`
}

type fixtureCase struct {
	Name   string        `yaml:"name"`
	Input  fixtureInput  `yaml:"input"`
	Expect fixtureExpect `yaml:"expect"`
	line   int
}

// fixtureInput is one source record. Key and value are JSON written as
// YAML (a mapping, a list, a number), or a YAML string taken byte for
// byte (to write bytes that are not JSON); absent or null is a null key
// or value. KeyFile and ValueFile read the bytes from a file instead,
// relative to the fixture file.
type fixtureInput struct {
	Topic     string            `yaml:"topic"` // default: the topology's first source topic
	Partition int32             `yaml:"partition"`
	Key       yaml.Node         `yaml:"key"`
	KeyFile   string            `yaml:"key_file"`
	Value     yaml.Node         `yaml:"value"`
	ValueFile string            `yaml:"value_file"`
	Headers   map[string]string `yaml:"headers"`
	// KeySchema and ValueSchema override the file's schemas.
	KeySchema   string `yaml:"key_schema"`
	ValueSchema string `yaml:"value_schema"`
}

// fixtureExpect is the outcome: exactly one of its fields is set.
type fixtureExpect struct {
	Sink          []fixtureSink `yaml:"sink"`
	DLQ           *fixtureDLQ   `yaml:"dlq"`
	Duplicate     bool          `yaml:"duplicate"`
	AuthorityDrop bool          `yaml:"authority_drop"`
	Drop          string        `yaml:"drop"` // tombstone or truncate
}

// fixtureSink is one expected sink record. Key and value are compared as
// JSON (key order and spacing do not matter) when both sides are JSON,
// else byte for byte; an absent key or value is not compared, null is a
// null key or value (a tombstone). Only the headers listed are compared.
type fixtureSink struct {
	Topic     string            `yaml:"topic"`
	Key       yaml.Node         `yaml:"key"`
	Value     yaml.Node         `yaml:"value"`
	ValueFile string            `yaml:"value_file"`
	Headers   map[string]string `yaml:"headers"`
}

type fixtureDLQ struct {
	Stage   string `yaml:"stage"`
	Message string `yaml:"message"` // a substring of the error message; optional
}

// testReport is what `topology test --output json` prints.
type testReport struct {
	OK     bool             `json:"ok"`
	Passed int              `json:"passed"`
	Failed int              `json:"failed"`
	Files  []testFileReport `json:"files"`
}

type testFileReport struct {
	File     string           `json:"file"`
	Topology string           `json:"topology"`
	Cases    []testCaseReport `json:"cases"`
}

type testCaseReport struct {
	Name    string   `json:"name"`
	Line    int      `json:"line"`
	OK      bool     `json:"ok"`
	Outcome string   `json:"outcome"`         // what the stages decided
	Stage   string   `json:"stage,omitempty"` // outcome dlq
	Diffs   []string `json:"diffs,omitempty"` // one per mismatch, each a readable diff
}

func cmdTopologyTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topology test", stdout)
	asJSON := outputFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	js, err := asJSON()
	if err != nil {
		return err
	}
	files, err := fixtureFiles(fs.Args())
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	rep := testReport{Files: []testFileReport{}}
	for _, f := range files {
		fr, err := runFixtureFile(f)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		for _, c := range fr.Cases {
			if c.OK {
				rep.Passed++
			} else {
				rep.Failed++
			}
		}
		rep.Files = append(rep.Files, fr)
	}
	rep.OK = rep.Failed == 0
	if js {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		writeTestReport(stdout, rep)
	}
	if !rep.OK {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d case(s) failed", rep.Failed, rep.Passed+rep.Failed)}
	}
	return nil
}

// fixtureFiles resolves the arguments to fixture files. Fixtures of the
// topology DIR/NAME.yaml live in the directory DIR/NAME_test/, one or more
// *.yaml files there (a topology directory's subdirectories are not
// loaded as topologies). An argument may be a fixture file, a NAME_test
// directory, a topology file (its NAME_test directory is taken), or a
// topology directory (every NAME_test directory in it is taken).
func fixtureFiles(args []string) ([]string, error) {
	var out []string
	yamls := func(dir string) ([]string, error) {
		var fs []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, err := filepath.Glob(filepath.Join(dir, pat))
			if err != nil {
				return nil, err
			}
			fs = append(fs, m...)
		}
		if len(fs) == 0 {
			return nil, fmt.Errorf("%s: no fixture files (*.yaml)", dir)
		}
		sort.Strings(fs)
		return fs, nil
	}
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		switch {
		case st.IsDir() && strings.HasSuffix(filepath.Base(absPath(a)), "_test"):
			fs, err := yamls(a)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
		case st.IsDir():
			dirs, err := filepath.Glob(filepath.Join(a, "*_test"))
			if err != nil {
				return nil, err
			}
			n := len(out)
			for _, d := range dirs {
				if fi, err := os.Stat(d); err == nil && fi.IsDir() {
					fs, err := yamls(d)
					if err != nil {
						return nil, err
					}
					out = append(out, fs...)
				}
			}
			if len(out) == n {
				return nil, fmt.Errorf("%s: no fixture directories (NAME_test/ beside NAME.yaml)", a)
			}
		case strings.HasSuffix(filepath.Base(filepath.Dir(absPath(a))), "_test"):
			out = append(out, a)
		default:
			d := strings.TrimSuffix(strings.TrimSuffix(a, ".yaml"), ".yml") + "_test"
			fs, err := yamls(d)
			if err != nil {
				return nil, fmt.Errorf("%s: not a fixture file, and it has no fixtures: %w", a, err)
			}
			out = append(out, fs...)
		}
	}
	return out, nil
}

// absPath is p made absolute, or p when that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// runFixtureFile runs the cases of one fixture file. An error is a bad
// fixture or topology (exit 2); failed cases are in the report.
func runFixtureFile(file string) (testFileReport, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return testFileReport{}, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return testFileReport{}, fmt.Errorf("%s: %w", file, err)
	}
	var ff fixtureFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&ff); err != nil {
		return testFileReport{}, fmt.Errorf("%s: %w", file, err)
	}
	caseLines(&root, ff.Cases)
	if len(ff.Cases) == 0 {
		return testFileReport{}, fmt.Errorf("%s: no cases", file)
	}
	dir := filepath.Dir(file)
	topo := ff.Topology
	if topo == "" {
		// NAME_test/*.yaml tests NAME.yaml (or NAME.yml) beside NAME_test.
		name := strings.TrimSuffix(filepath.Base(absPath(dir)), "_test")
		topo = filepath.Join("..", name+".yaml")
		if _, err := os.Stat(filepath.Join(dir, topo)); err != nil {
			if _, err := os.Stat(filepath.Join(dir, "..", name+".yml")); err == nil {
				topo = filepath.Join("..", name+".yml")
			}
		}
	}
	topo = filepath.Join(dir, topo)
	plans, err := topology.Load(topo)
	if err != nil {
		return testFileReport{}, fmt.Errorf("%s: topology %s refused:\n%w", file, topo, err)
	}
	if len(plans) != 1 {
		return testFileReport{}, fmt.Errorf("%s: topology %s: want one topology file, got %d topologies", file, topo, len(plans))
	}
	plan := plans[0]
	var av *avroFixtures
	if plan.Format() == topology.DebeziumAvro || plan.SinkFormat() == topology.SinkAvro {
		av = newAvroFixtures(dir)
		defer av.close()
	}
	off, err := processor.NewOffline(plan, ff.SinkPartitions, av.client(), zap.NewNop())
	if err != nil {
		return testFileReport{}, fmt.Errorf("%s: %w", file, err)
	}
	fr := testFileReport{File: file, Topology: plan.Name(), Cases: []testCaseReport{}}
	offsets := map[string]int64{}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range ff.Cases {
		c := &ff.Cases[i]
		where := fmt.Sprintf("%s:%d: case %q", file, c.line, c.Name)
		msg, err := c.Input.record(dir, plan)
		if err == nil && plan.Format() == topology.DebeziumAvro {
			err = av.encodeInput(msg, &c.Input, &ff)
		}
		if err != nil {
			return fr, fmt.Errorf("%s: input: %w", where, err)
		}
		if err := c.Expect.check(dir); err != nil {
			return fr, fmt.Errorf("%s: expect: %w", where, err)
		}
		pk := fmt.Sprintf("%s/%d", msg.Topic, msg.Partition)
		msg.Offset = offsets[pk]
		offsets[pk]++
		msg.Timestamp = ts.Add(time.Duration(i) * time.Second)
		res := off.Process(msg)
		cr := testCaseReport{Name: c.Name, Line: c.line, Outcome: res.Outcome, Stage: res.Stage}
		if plan.SinkFormat() == topology.SinkAvro && res.Outcome == processor.OutcomeSink {
			if err := av.decodeOutputs(res.Records); err != nil {
				return fr, fmt.Errorf("%s: reading the Avro sink records: %w", where, err)
			}
		}
		cr.Diffs = c.Expect.compare(dir, res)
		cr.OK = len(cr.Diffs) == 0
		fr.Cases = append(fr.Cases, cr)
	}
	return fr, nil
}

// caseLines sets each case's line from the YAML tree.
func caseLines(root *yaml.Node, cases []fixtureCase) {
	if len(root.Content) == 0 {
		return
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "cases" {
			for j, n := range m.Content[i+1].Content {
				if j < len(cases) {
					cases[j].line = n.Line
				}
			}
		}
	}
}

// record builds the source record of the input.
func (in *fixtureInput) record(dir string, plan *topology.Plan) (*sarama.ConsumerMessage, error) {
	topic := in.Topic
	if topic == "" {
		ts := plan.SourceTopics()
		if len(ts) == 0 {
			return nil, errors.New("topic: required, the topology has a topic pattern")
		}
		topic = string(ts[0])
	}
	if !plan.MatchesTopic(topic) {
		return nil, fmt.Errorf("topic %s: not a source topic of topology %s", topic, plan.Name())
	}
	key, err := nodeBytes(&in.Key, in.KeyFile, dir, "key")
	if err != nil {
		return nil, err
	}
	value, err := nodeBytes(&in.Value, in.ValueFile, dir, "value")
	if err != nil {
		return nil, err
	}
	msg := &sarama.ConsumerMessage{Topic: topic, Partition: in.Partition, Key: key, Value: value}
	names := make([]string, 0, len(in.Headers))
	for k := range in.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		msg.Headers = append(msg.Headers, &sarama.RecordHeader{Key: []byte(k), Value: []byte(in.Headers[k])})
	}
	return msg, nil
}

// nodeBytes turns a key or value of a fixture into bytes: nil for absent
// or null, a string as is, anything else as JSON; or the file's bytes.
func nodeBytes(n *yaml.Node, file, dir, what string) ([]byte, error) {
	if file != "" {
		if n.Kind != 0 {
			return nil, fmt.Errorf("%s and %s_file: give one", what, what)
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return nil, fmt.Errorf("%s_file: %w", what, err)
		}
		return bytes.TrimRight(b, "\n"), nil
	}
	switch {
	case n.Kind == 0:
		return nil, nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil, nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		return []byte(n.Value), nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s (line %d): %w", what, n.Line, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s (line %d): %w", what, n.Line, err)
	}
	return b, nil
}

// check refuses an expectation that is not exactly one outcome.
func (e *fixtureExpect) check(dir string) error {
	n := 0
	for _, set := range []bool{len(e.Sink) > 0, e.DLQ != nil, e.Duplicate, e.AuthorityDrop, e.Drop != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("give exactly one of sink, dlq, duplicate, authority_drop, drop")
	}
	if e.Drop != "" && e.Drop != "tombstone" && e.Drop != "truncate" {
		return fmt.Errorf("drop %q: want tombstone or truncate", e.Drop)
	}
	if e.DLQ != nil && e.DLQ.Stage == "" {
		return errors.New("dlq.stage: required")
	}
	for i, s := range e.Sink {
		if s.Topic == "" {
			return fmt.Errorf("sink[%d].topic: required", i)
		}
		if _, err := nodeBytes(&s.Value, s.ValueFile, dir, "value"); err != nil {
			return fmt.Errorf("sink[%d].%w", i, err)
		}
	}
	return nil
}

// want names the expected outcome.
func (e *fixtureExpect) want() string {
	switch {
	case len(e.Sink) > 0:
		return processor.OutcomeSink
	case e.DLQ != nil:
		return processor.OutcomeDLQ
	case e.Duplicate:
		return processor.OutcomeDuplicate
	case e.AuthorityDrop:
		return processor.OutcomeAuthorityDrop
	case e.Drop == "truncate":
		return processor.OutcomeTruncateDrop
	}
	return processor.OutcomeTombstoneDrop
}

// compare returns one readable diff per mismatch between e and res.
func (e *fixtureExpect) compare(dir string, res processor.OfflineResult) []string {
	if w := e.want(); w != res.Outcome {
		got := res.Outcome
		switch {
		case res.Outcome == processor.OutcomeDLQ:
			got += fmt.Sprintf(" (stage %s: %v)", res.Stage, res.Err)
		case res.Err != nil:
			got += fmt.Sprintf(" (%v)", res.Err)
		case res.Outcome == processor.OutcomeSink:
			got += fmt.Sprintf(" (%d record(s), the first to %s)", len(res.Records), res.Records[0].Topic)
		}
		return []string{fmt.Sprintf("outcome:\n- %s\n+ %s", w, got)}
	}
	var diffs []string
	switch {
	case e.DLQ != nil:
		if res.Stage != e.DLQ.Stage {
			diffs = append(diffs, fmt.Sprintf("dlq stage:\n- %s\n+ %s (%v)", e.DLQ.Stage, res.Stage, res.Err))
		}
		if e.DLQ.Message != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), e.DLQ.Message)) {
			diffs = append(diffs, fmt.Sprintf("dlq message:\n- (contains) %s\n+ %v", e.DLQ.Message, res.Err))
		}
	case len(e.Sink) > 0:
		if len(e.Sink) != len(res.Records) {
			diffs = append(diffs, fmt.Sprintf("sink records:\n- %d\n+ %d", len(e.Sink), len(res.Records)))
		}
		for i := range min(len(e.Sink), len(res.Records)) {
			diffs = append(diffs, compareSink(fmt.Sprintf("sink[%d]", i), dir, &e.Sink[i], res.Records[i])...)
		}
	}
	return diffs
}

func compareSink(where, dir string, want *fixtureSink, got *sarama.ProducerMessage) []string {
	var diffs []string
	if want.Topic != got.Topic {
		diffs = append(diffs, fmt.Sprintf("%s topic:\n- %s\n+ %s", where, want.Topic, got.Topic))
	}
	enc := func(e sarama.Encoder) []byte {
		if e == nil {
			return nil
		}
		b, _ := e.Encode()
		return b
	}
	if want.Key.Kind != 0 {
		wk, _ := nodeBytes(&want.Key, "", dir, "key")
		if d := diffPayload(wk, enc(got.Key)); d != "" {
			diffs = append(diffs, where+" key:\n"+d)
		}
	}
	if want.Value.Kind != 0 || want.ValueFile != "" {
		wv, _ := nodeBytes(&want.Value, want.ValueFile, dir, "value")
		if d := diffPayload(wv, enc(got.Value)); d != "" {
			diffs = append(diffs, where+" value:\n"+d)
		}
	}
	names := make([]string, 0, len(want.Headers))
	for k := range want.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, ok := "", false
		for _, h := range got.Headers {
			if string(h.Key) == k {
				v, ok = string(h.Value), true
			}
		}
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s header %s:\n- %s\n+ (absent)", where, k, want.Headers[k]))
		case v != want.Headers[k]:
			diffs = append(diffs, fmt.Sprintf("%s header %s:\n- %s\n+ %s", where, k, want.Headers[k], v))
		}
	}
	return diffs
}

// diffPayload compares two keys or values: as JSON when both are JSON
// (the diff is of the indented, key-sorted forms), else byte for byte.
// It returns "" when they are equal.
func diffPayload(want, got []byte) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil || got == nil:
		return "- " + showBytes(want) + "\n+ " + showBytes(got)
	}
	var wv, gv any
	if json.Unmarshal(want, &wv) == nil && json.Unmarshal(got, &gv) == nil {
		if reflect.DeepEqual(wv, gv) {
			return ""
		}
		wi, _ := json.MarshalIndent(wv, "", "  ")
		gi, _ := json.MarshalIndent(gv, "", "  ")
		return lineDiff(strings.Split(string(wi), "\n"), strings.Split(string(gi), "\n"))
	}
	if bytes.Equal(want, got) {
		return ""
	}
	return "- " + showBytes(want) + "\n+ " + showBytes(got)
}

func showBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	return fmt.Sprintf("%q", b)
}

// lineDiff is a line diff of a and b (longest common subsequence):
// common lines start with two spaces, removed ones with "- ", added ones
// with "+ ".
func lineDiff(a, b []string) string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, "  "+a[i])
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, "- "+a[i])
			i++
		default:
			out = append(out, "+ "+b[j])
			j++
		}
	}
	return strings.Join(out, "\n")
}

// writeTestReport writes the report as text: per file, one line per case,
// the diffs of failed cases under them, and the totals.
func writeTestReport(w io.Writer, rep testReport) {
	for _, f := range rep.Files {
		fmt.Fprintf(w, "%s (topology %s)\n", f.File, f.Topology)
		for _, c := range f.Cases {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s  line %d: %s\n", mark, c.Line, c.Name)
			for _, d := range c.Diffs {
				fmt.Fprintf(w, "        %s\n", strings.ReplaceAll(d, "\n", "\n        "))
			}
		}
	}
	fmt.Fprintf(w, "%d case(s): %d passed, %d failed\n", rep.Passed+rep.Failed, rep.Passed, rep.Failed)
}

// avroFixtures is the in-process schema registry (srfake) of an Avro
// topology's fixtures. Avro keys and values are written in fixtures in
// the Avro JSON encoding (unions as {"type": value}), the form
// kafka-avro-console-producer reads and kafka-avro-console-consumer
// prints: inputs are encoded with their writer schema, registered under
// TOPIC-key and TOPIC-value; Avro sink values are decoded to it before
// they are compared.
type avroFixtures struct {
	dir    string
	reg    *srfake.Registry
	c      *schemas.Client
	codecs map[string]*goavro.Codec // by schema text
}

func newAvroFixtures(dir string) *avroFixtures {
	reg := srfake.New()
	return &avroFixtures{dir: dir, reg: reg, c: schemas.NewClient(reg.URL(), schemas.ClientOptions{}), codecs: map[string]*goavro.Codec{}}
}

// client is the registry client; nil for a nil a (a JSON topology).
func (a *avroFixtures) client() *schemas.Client {
	if a == nil {
		return nil
	}
	return a.c
}

func (a *avroFixtures) close() { a.reg.Close() }

func (a *avroFixtures) codec(text string) (*goavro.Codec, error) {
	if c := a.codecs[text]; c != nil {
		return c, nil
	}
	c, err := goavro.NewCodec(text)
	if err != nil {
		return nil, err
	}
	a.codecs[text] = c
	return c, nil
}

// encodeInput encodes the JSON key and value of msg with their writer
// schemas, in the registry's wire format. A key or value given as a YAML
// string is left as it is, so a fixture can give bytes that are not Avro.
func (a *avroFixtures) encodeInput(msg *sarama.ConsumerMessage, in *fixtureInput, ff *fixtureFile) error {
	for _, part := range []struct {
		what, schema string
		node         *yaml.Node
		file         string
		b            *[]byte
	}{
		{"key", cmp.Or(in.KeySchema, ff.Schemas.Key), &in.Key, in.KeyFile, &msg.Key},
		{"value", cmp.Or(in.ValueSchema, ff.Schemas.Value), &in.Value, in.ValueFile, &msg.Value},
	} {
		if *part.b == nil || (part.node.Kind == yaml.ScalarNode && part.node.Tag == "!!str") || part.file != "" {
			continue
		}
		if part.schema == "" {
			return fmt.Errorf("%s: an Avro topology needs its writer schema: schemas.%s or %s_schema", part.what, part.what, part.what)
		}
		text, err := os.ReadFile(filepath.Join(a.dir, part.schema))
		if err != nil {
			return fmt.Errorf("%s_schema: %w", part.what, err)
		}
		codec, err := a.codec(string(text))
		if err != nil {
			return fmt.Errorf("%s_schema %s: %w", part.what, part.schema, err)
		}
		native, _, err := codec.NativeFromTextual(*part.b)
		if err != nil {
			return fmt.Errorf("%s: not the Avro JSON encoding of %s: %w", part.what, part.schema, err)
		}
		id, _, err := a.reg.RegisterSchema(msg.Topic+"-"+part.what, sr.Schema{Schema: string(text)})
		if err != nil {
			return fmt.Errorf("%s_schema %s: registering: %w", part.what, part.schema, err)
		}
		hdr := []byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
		if *part.b, err = codec.BinaryFromNative(hdr, native); err != nil {
			return fmt.Errorf("%s: encoding with %s: %w", part.what, part.schema, err)
		}
	}
	return nil
}

// decodeOutputs replaces each Avro sink value by its Avro JSON encoding,
// read with the schema its wire-format header names.
func (a *avroFixtures) decodeOutputs(recs []*sarama.ProducerMessage) error {
	for _, m := range recs {
		if m.Value == nil {
			continue
		}
		b, err := m.Value.Encode()
		if err != nil {
			return err
		}
		if len(b) < 5 || b[0] != 0 {
			return fmt.Errorf("value %x: no registry wire-format header", b[:min(len(b), 5)])
		}
		id := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		text, err := a.c.WriterSchema(id)
		if err != nil {
			return err
		}
		codec, err := a.codec(text)
		if err != nil {
			return err
		}
		native, _, err := codec.NativeFromBinary(b[5:])
		if err != nil {
			return fmt.Errorf("schema %d: %w", id, err)
		}
		js, err := codec.TextualFromNative(nil, native)
		if err != nil {
			return err
		}
		m.Value = sarama.ByteEncoder(js)
	}
	return nil
}
