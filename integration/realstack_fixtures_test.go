//go:build realstack

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// TestRealStackCapturedRecords decodes the records captured from real
// Debezium 3.6.1 (integration/realstack/testdata): the forms the fixtures
// lack (sequence [null,"lsn"], snapshot "first"/"last", origin fields, a
// null before-image on update, a key-only before on delete, the TOAST
// placeholder, a null-key truncate, a keyless table) must decode.
func TestRealStackCapturedRecords(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("realstack", "testdata", "*.value.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured records: %v", err)
	}
	dec := cdc.NewJSONDecoder(cdc.Options{SourceSystem: "erp"})
	for _, vf := range files {
		name := strings.TrimSuffix(filepath.Base(vf), ".value.json")
		t.Run(name, func(t *testing.T) {
			value, _ := os.ReadFile(vf)
			key, _ := os.ReadFile(strings.TrimSuffix(vf, ".value.json") + ".key.json")
			value, key = trimNL(value), trimNL(key)
			if len(key) == 0 {
				key = nil
			}
			if len(value) == 0 {
				value = nil
			}
			table := strings.SplitN(name, "_", 2)[0]
			ev, err := dec.Decode("probe.public."+table, key, value)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			switch {
			case strings.Contains(name, "tombstone"):
				if !ev.Tombstone {
					t.Errorf("not a tombstone")
				}
			case strings.Contains(name, "truncate"):
				if ev.Op != cdc.OpTruncate || ev.Key != nil || ev.Position == nil {
					t.Errorf("truncate: op %c key %v position %v", ev.Op, ev.Key, ev.Position)
				}
			case strings.Contains(name, "toast_unavailable"):
				v, _ := ev.After.Get("big")
				if _, ok := v.(cdc.Unavailable); !ok {
					t.Errorf("big = %T %v, want cdc.Unavailable", v, v)
				}
				for _, c := range ev.Changed {
					if c == "big" {
						t.Errorf("the unavailable column counts as changed: %v", ev.Changed)
					}
				}
			case strings.Contains(name, "snapshot"):
				if ev.Op != cdc.OpRead || ev.After == nil {
					t.Errorf("snapshot: op %c after %v", ev.Op, ev.After)
				}
			}
			if strings.HasPrefix(name, "logs_") && ev.Key != nil {
				t.Errorf("keyless table: key %v, want nil", ev.Key)
			}
		})
	}
}

func trimNL(b []byte) []byte { return []byte(strings.TrimRight(string(b), "\n")) }
