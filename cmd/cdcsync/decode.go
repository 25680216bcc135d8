package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

func cmdDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("decode", stdout)
	format := fs.String("format", "debezium-json", "record format: debezium-json")
	keyFile := fs.String("key", "", "file holding the record key (optional)")
	valueFile := fs.String("value", "", "file holding the record value (default: stdin)")
	topic := fs.String("topic", "", "the record's topic, prefix.schema.table (used for tombstones)")
	connector := fs.String("connector", "", "the Debezium connector that wrote the topic (postgresql, mysql, sqlserver, mongodb, ...): the shape a tombstone's topic is read in; default: learnt from the record, else PostgreSQL's")
	system := fs.String("system", "", "source system to stamp on the event")
	idMode := fs.String("id", "position", "event ID mode: position, content, or field:NAME")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *format != "debezium-json" {
		return &exitError{code: 2, err: fmt.Errorf("--format %q: only debezium-json is supported by decode", *format)}
	}
	opts := cdc.Options{SourceSystem: *system, Connector: *connector}
	switch {
	case *idMode == "position":
	case *idMode == "content":
		opts.IDMode = cdc.IDContent
	case len(*idMode) > 6 && (*idMode)[:6] == "field:":
		opts.IDMode, opts.IDField = cdc.IDField, (*idMode)[6:]
	default:
		return &exitError{code: 2, err: fmt.Errorf("--id %q: want position, content or field:NAME", *idMode)}
	}
	var key, value []byte
	var err error
	if *keyFile != "" {
		if key, err = os.ReadFile(*keyFile); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	if *valueFile != "" {
		value, err = os.ReadFile(*valueFile)
	} else {
		value, err = io.ReadAll(stdin)
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	value = trimSpace(value)
	if value == nil && *topic == "" {
		return &exitError{code: 2, err: errors.New("--topic is required to decode a tombstone (an empty value): it names the table, prefix.schema.table")}
	}
	ev, err := cdc.NewJSONDecoder(opts).Decode(*topic, key, value)
	if err != nil {
		var de *cdc.DecodeError
		if errors.As(err, &de) {
			return &exitError{code: 1, err: fmt.Errorf("decode failed: %w", err)}
		}
		return &exitError{code: 1, err: err}
	}
	out, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// trimSpace drops surrounding whitespace, so a file with a trailing
// newline, or an empty stdin (a tombstone), decodes as expected.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == '\n' || b[j-1] == '\r' || b[j-1] == '\t') {
		j--
	}
	if i == j {
		return nil
	}
	return b[i:j]
}
