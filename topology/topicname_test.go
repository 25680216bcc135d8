package topology

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckTopicName(t *testing.T) {
	for _, name := range []string{"sync.contacts", "a", "A-b_c.9", strings.Repeat("x", 249)} {
		if err := CheckTopicName(name); err != nil {
			t.Errorf("CheckTopicName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "bad/name", "has space", "ünï", strings.Repeat("x", 250)} {
		if err := CheckTopicName(name); !errors.Is(err, ErrInvalidTopicName) {
			t.Errorf("CheckTopicName(%q) = %v, want ErrInvalidTopicName", name, err)
		}
	}
}

func TestTopicsCollide(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"sync.col_x", "sync.col.x", true},
		{"a.b", "a_b", true},
		{"a.b", "a.b", false}, // the same topic does not collide with itself
		{"a.b", "a.c", false},
		{"a.b", "a.bb", false},
	} {
		if got := TopicsCollide(c.a, c.b); got != c.want {
			t.Errorf("TopicsCollide(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
