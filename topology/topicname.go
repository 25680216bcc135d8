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

// CheckSinkTopic returns nil if t, a sink topic expanded from the
// template, may be written by this topology: a legal topic name (see
// CheckTopicName) that neither is nor collides with the topology's DLQ
// topic, its ledger topic or a topic it consumes. Otherwise the error
// wraps ErrInvalidTopicName and says why. Load refuses these clashes for a
// sink.topic without placeholders; for a template they depend on the
// table, so the runtime checks each expanded topic with this.
func (p *Plan) CheckSinkTopic(t string) error {
	if err := CheckTopicName(t); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidTopicName, fmt.Sprintf(format, args...))
	}
	if how := topicClash(t, string(p.DLQTopic())); how != "" {
		return bad("sink topic %q %s the DLQ topic %q%s", t, how, p.DLQTopic(), collideNote(how))
	}
	if how := topicClash(t, string(p.LedgerTopic())); how != "" {
		return bad("sink topic %q %s the ledger topic %q%s", t, how, p.LedgerTopic(), collideNote(how))
	}
	if p.MatchesTopic(t) {
		return bad("sink topic %q is also a source topic of topology %q: it would consume its own output", t, p.Name())
	}
	for _, s := range p.cfg.Source.Topics {
		if TopicsCollide(t, string(s)) {
			return bad("sink topic %q collides with source topic %q%s", t, s, collideNote("collides with"))
		}
	}
	return nil
}
