package cdc

import (
	"os"
	"testing"
)

// Regression: a tombstone's ID depended on the shape its topic was read
// in. A MySQL tombstone that was the first record of its topic since the
// decoder started was read in the fallback shape (prefix.schema.table);
// after a value record of the topic it was read as prefix.database.table.
// The two got different IDs, so the ledger did not recognise a tombstone
// redelivered after a restart (and TestAvroConcurrent failed under load).
func TestTombstoneIDIndependentOfTopicShape(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/decode/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	topic := string(read("tombstone_mysql.bare.topic"))
	key := read("tombstone_mysql.bare.key.json")

	cold := NewJSONDecoder(Options{})
	first, err := cold.Decode(topic, key, nil)
	if err != nil {
		t.Fatal(err)
	}

	warm := NewJSONDecoder(Options{})
	if _, err := warm.Decode(string(read("mysql_delete.bare.topic")), read("mysql_delete.bare.key.json"), read("mysql_delete.bare.value.json")); err != nil {
		t.Fatal(err)
	}
	after, err := warm.Decode(topic, key, nil)
	if err != nil {
		t.Fatal(err)
	}

	declared := NewJSONDecoder(Options{Connector: ConnectorMySQL})
	decl, err := declared.Decode(topic, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Source.Database == after.Source.Database {
		t.Fatalf("the test needs the two shapes to differ: database %q both times", first.Source.Database)
	}
	if first.ID != after.ID || first.ID != decl.ID {
		t.Errorf("tombstone IDs differ by topic shape: cold %s (%+v), learned %s (%+v), declared %s",
			first.ID, first.Source, after.ID, after.Source, decl.ID)
	}
}
