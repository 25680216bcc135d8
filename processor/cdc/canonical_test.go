package cdc

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// TestCanonIntegerMatchesGeneral: the integer shortcut of a Number's
// canonical encoding writes the bytes of the general encoding, or
// declines; IDs are persisted (TestIDsPinned), so one differing byte
// would re-emit or drop changes.
func TestCanonIntegerMatchesGeneral(t *testing.T) {
	in := []string{"", "-", "0", "-0", "00", "01", "-01", "1", "-1", "9", "10", "-10", "100", "1200",
		"1004", "-1004", "1718012345678901", "1718012345678000000", "9223372036854775807",
		"-9223372036854775808", "18446744073709551616", "1e3", "1E3", "1.5", "1.0", "10.", "+1",
		"1-2", "12a", " 1", "1 ", "1x0", "١٢"}
	in = append(in, "1"+strings.Repeat("0", 9), "1"+strings.Repeat("0", 10), "1"+strings.Repeat("0", 39),
		"1"+strings.Repeat("0", 40), "-"+strings.Repeat("9", 40), strings.Repeat("9", 41), "10000000000000000000000000000000000000001")
	for i := 0; i < 100000; i++ {
		n := int64(i) * 7919
		in = append(in, strconv.FormatInt(n, 10), strconv.FormatInt(-n, 10), strconv.FormatInt(n*1000, 10))
	}
	taken := 0
	for _, s := range in {
		want := appendCanonNumberText([]byte("prefix"), Number(s))
		got, ok := appendCanonInteger([]byte("prefix"), s)
		if !ok {
			if string(got) != "prefix" {
				t.Fatalf("%q: declined but wrote %q", s, got)
			}
			continue
		}
		taken++
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: the integer shortcut wrote %q, the general encoding %q", s, got, want)
		}
	}
	if taken < 290000 {
		t.Fatalf("the shortcut took %d of %d integers", taken, len(in))
	}
}
