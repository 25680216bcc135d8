package apply

import (
	"testing"

	"github.com/cdcsync/cdcsync/processor/cdc"
	"github.com/cdcsync/cdcsync/topology"
)

// fixedSchemas serves the event schema under ID 1.
type fixedSchemas struct{}

func (fixedSchemas) WriterSchema(int) (string, error) {
	return `{"type":"record","name":"Event","namespace":"io.cdcsync","fields":[{"name":"id"},{"name":"type"},{"name":"op"},{"name":"entity"},{"name":"source_system"},{"name":"key"},{"name":"fields"},{"name":"before"},{"name":"position"},{"name":"occurred_at"},{"name":"schema_version"},{"name":"message"}]}`, nil
}

// FuzzReader: a sync record reader may refuse any bytes, never panic.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"id":"a7852133417c9d6d5b8df8d81cb75b35","type":"contacts.updated","op":"u","entity":"contacts","source_system":"erp","key":{"id":1},"fields":{"phone":"+49"},"before":{"phone":null}}`), false)
	f.Add(append(cdc.AppendWireHeader(nil, 1), 64, 'a', 2, 'u'), true)
	f.Add(append(cdc.AppendWireHeader(nil, 1), 0, 0, 0, 0, 0, 2, 2, 'i', 2, 0x20, 0x80, 0), true)
	js, _ := NewReader(topology.CdcsyncJSON, nil)
	av, _ := NewReader(topology.CdcsyncAvro, fixedSchemas{})
	f.Fuzz(func(t *testing.T, b []byte, avro bool) {
		r := js
		if avro {
			r = av
		}
		_, _ = r.Read("t", 0, 0, b)
	})
}
