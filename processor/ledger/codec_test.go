package ledger

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

func TestCodecRoundTrip(t *testing.T) {
	id := cdc.ID{0: 0xde, 7: 0xad, 15: 0xff}
	k := EncodeKey(id)
	if len(k) != KeySize || !bytes.Equal(k, id[:]) {
		t.Fatalf("key = %x", k)
	}
	got, err := DecodeKey(k)
	if err != nil || got != id {
		t.Fatalf("DecodeKey = %v, %v", got, err)
	}
	for _, e := range []Entry{
		{FirstSeen: time.UnixMilli(1764244800123), SourceOffset: 42},
		{FirstSeen: time.UnixMilli(0), SourceOffset: 0},
		{FirstSeen: time.UnixMilli(-5), SourceOffset: -1},
		{FirstSeen: time.UnixMilli(1<<62 - 1), SourceOffset: 1<<63 - 1},
	} {
		v := EncodeValue(e)
		if len(v) != ValueSize || v[0] != ValueVersion {
			t.Fatalf("value = %x", v)
		}
		d, err := DecodeValue(v)
		if err != nil || !d.FirstSeen.Equal(e.FirstSeen) || d.SourceOffset != e.SourceOffset {
			t.Fatalf("round trip of %+v gave %+v, %v", e, d, err)
		}
	}
	// The layout is fixed: pin it.
	want := []byte{1, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 7}
	if v := EncodeValue(Entry{FirstSeen: time.UnixMilli(1000), SourceOffset: 7}); !bytes.Equal(v, want) {
		t.Fatalf("layout changed: %x, want %x", v, want)
	}
}

func TestCodecContentID(t *testing.T) {
	content := cdc.ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	v := EncodeValue(Entry{FirstSeen: t0, SourceOffset: 7, Content: content})
	if len(v) != ValueSizeContent || v[0] != ValueVersionContent {
		t.Fatalf("value %x: want version 2, %d bytes", v, ValueSizeContent)
	}
	e, err := DecodeValue(v)
	if err != nil || e.Content != content || e.SourceOffset != 7 || !e.FirstSeen.Equal(t0) {
		t.Fatalf("round trip: %+v, %v", e, err)
	}
	if v1 := EncodeValue(Entry{FirstSeen: t0, SourceOffset: 7}); len(v1) != ValueSize || v1[0] != ValueVersion {
		t.Fatalf("without a content ID the value stays version 1: %x", v1)
	}
}

func TestCodecErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"nil", nil}, {"short", make([]byte, 15)}, {"long", make([]byte, 17)}} {
		if _, err := DecodeKey(tc.key); !errors.Is(err, ErrBadKey) {
			t.Errorf("key %s: err = %v, want ErrBadKey", tc.name, err)
		}
	}
	good := EncodeValue(Entry{FirstSeen: t0, SourceOffset: 1})
	for _, tc := range []struct {
		name  string
		value []byte
		want  error
	}{
		{"nil is a tombstone", nil, ErrTombstone},
		{"empty is a tombstone", []byte{}, ErrTombstone},
		{"version 0", append([]byte{0}, good[1:]...), ErrUnknownVersion},
		{"version 4", append([]byte{4}, good[1:]...), ErrUnknownVersion},
		{"version 3 without its row", append([]byte{3}, good[1:]...), ErrBadValue},
		{"version 2 without its content ID", append([]byte{2}, good[1:]...), ErrBadValue},
		{"short", good[:16], ErrBadValue},
		{"version byte only", good[:1], ErrBadValue},
		{"trailing byte", append(append([]byte{}, good...), 0), ErrBadValue},
	} {
		if _, err := DecodeValue(tc.value); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestCodecRowState(t *testing.T) {
	row := cdc.ID{0: 0x11, 15: 0x22}
	content := cdc.ID{0: 0x33, 15: 0x44}
	for _, e := range []Entry{
		{FirstSeen: t0, SourceOffset: 7, Row: row, State: RowPresent, RowContent: content},
		{FirstSeen: t0, SourceOffset: 8, Row: row, State: RowPresent, RowContent: content, RowOnly: true},
		{FirstSeen: t0, SourceOffset: 9, Row: row, State: RowDeleted},
		{FirstSeen: t0, SourceOffset: 10, Row: row, State: RowUnknown},
	} {
		v := EncodeValue(e)
		if len(v) != ValueSizeRow || v[0] != ValueVersionRow {
			t.Fatalf("%+v: value %x, want version 3, %d bytes", e, v, ValueSizeRow)
		}
		d, err := DecodeValue(v)
		if err != nil || d.Row != e.Row || d.State != e.State || d.RowContent != e.RowContent ||
			d.RowOnly != e.RowOnly || d.SourceOffset != e.SourceOffset || !d.FirstSeen.Equal(e.FirstSeen) {
			t.Fatalf("round trip of %+v gave %+v, %v", e, d, err)
		}
	}
	// A deleted or unknown state writes no content even if one is given.
	if d, _ := DecodeValue(EncodeValue(Entry{FirstSeen: t0, Row: row, State: RowDeleted, RowContent: content})); !d.RowContent.IsZero() {
		t.Fatalf("deleted row kept content %v", d.RowContent)
	}
	// The layout is fixed: pin it.
	want := []byte{3, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 7, 0x81,
		0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x22,
		0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x44}
	if v := EncodeValue(Entry{FirstSeen: time.UnixMilli(1000), SourceOffset: 7, Row: row, State: RowPresent, RowContent: content, RowOnly: true}); !bytes.Equal(v, want) {
		t.Fatalf("layout changed: %x, want %x", v, want)
	}
	good := EncodeValue(Entry{FirstSeen: t0, Row: row, State: RowPresent, RowContent: content})
	mut := func(i int, b byte) []byte { v := append([]byte{}, good...); v[i] = b; return v }
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"unknown flag bit", mut(17, 0x41)},
		{"no state", mut(17, 0x80)},
		{"zero row key", append(append(append([]byte{}, good[:18]...), make([]byte, 16)...), good[34:]...)},
		{"content with a deleted state", mut(17, byte(RowDeleted))},
		{"short", good[:49]},
		{"trailing byte", append(append([]byte{}, good...), 0)},
	} {
		if _, err := DecodeValue(tc.value); !errors.Is(err, ErrBadValue) {
			t.Errorf("%s: err = %v, want ErrBadValue", tc.name, err)
		}
	}
}

func FuzzDecodeValue(f *testing.F) {
	f.Add(EncodeValue(Entry{FirstSeen: t0, SourceOffset: 9}))
	f.Add(EncodeValue(Entry{FirstSeen: t0, SourceOffset: 9, Row: cdc.ID{1}, State: RowPresent, RowContent: cdc.ID{2}, RowOnly: true}))
	f.Add([]byte{})
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := DecodeValue(v)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeValue(e), v) {
			t.Fatalf("re-encoding %x gave %x", v, EncodeValue(e))
		}
	})
}

func FuzzDecodeKey(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, k []byte) {
		id, err := DecodeKey(k)
		if err == nil && !bytes.Equal(EncodeKey(id), k) {
			t.Fatal("key round trip")
		}
	})
}
