package topology

import (
	"fmt"
	"strings"
)

// CheckTopicName returns nil if t is a legal Kafka topic name: 1 to 249
// bytes of a-z A-Z 0-9 . _ -, and not "." or "..". Otherwise the error wraps
// ErrInvalidTopicName and says why. The runtime calls it on every expanded
// sink topic before it creates or writes one.
func CheckTopicName(t string) error {
	if reason := checkTopic(t); reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidTopicName, reason)
	}
	return nil
}

// TopicsCollide reports whether Kafka treats a and b as colliding names:
// different names that are equal once '.' is replaced by '_' (metric
// names cannot tell them apart, so the broker refuses the second one).
func TopicsCollide(a, b string) bool {
	if a == b || len(a) != len(b) {
		return false
	}
	return strings.ReplaceAll(a, ".", "_") == strings.ReplaceAll(b, ".", "_")
}
