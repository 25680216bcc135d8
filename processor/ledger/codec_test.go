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
		{"version 3", append([]byte{3}, good[1:]...), ErrUnknownVersion},
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

func FuzzDecodeValue(f *testing.F) {
	f.Add(EncodeValue(Entry{FirstSeen: t0, SourceOffset: 9}))
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
