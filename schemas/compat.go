package schemas

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// IncompatibleError says why a schema may not be registered under a
// subject. It wraps ErrIncompatible.
type IncompatibleError struct {
	Subject string
	Level   string // the subject's compatibility level
	Version int    // the existing version it conflicts with, 0 if unknown
	Reason  string
}

func (e *IncompatibleError) Error() string {
	s := fmt.Sprintf("%v: subject %s", ErrIncompatible, e.Subject)
	if e.Level != "" {
		s += " (" + e.Level + ")"
	}
	if e.Version != 0 {
		s += fmt.Sprintf(" version %d", e.Version)
	}
	return s + ": " + e.Reason
}

// Unwrap returns ErrIncompatible.
func (e *IncompatibleError) Unwrap() error { return ErrIncompatible }

// CheckCompatibility checks candidate against a subject's existing
// schemas (texts, oldest first, with their versions) under a Confluent
// compatibility level: BACKWARD (the default; the new schema reads data
// of the latest), FORWARD (the latest reads data of the new), FULL (both),
// their _TRANSITIVE forms (against every version), or NONE. It returns an
// *IncompatibleError naming the version and the reason.
func CheckCompatibility(subject, level, candidate string, versions []int, texts []string) error {
	level = strings.ToUpper(level)
	if level == "" {
		level = "BACKWARD"
	}
	if level == "NONE" || len(texts) == 0 {
		return nil
	}
	cand, err := parse(candidate)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	base, transitive := strings.CutSuffix(level, "_TRANSITIVE")
	first := len(texts) - 1
	if transitive {
		first = 0
	}
	sc := avro.NewSchemaCompatibility()
	for i := len(texts) - 1; i >= first; i-- {
		old, err := parse(texts[i])
		if err != nil {
			return fmt.Errorf("%s version %d: %w: %v", subject, versions[i], ErrInvalidSchema, err)
		}
		var cerr error
		switch base {
		case "BACKWARD":
			cerr = sc.Compatible(cand, old)
		case "FORWARD":
			cerr = sc.Compatible(old, cand)
		case "FULL":
			if cerr = sc.Compatible(cand, old); cerr == nil {
				cerr = sc.Compatible(old, cand)
			}
		default:
			return fmt.Errorf("subject %s: unknown compatibility level %q", subject, level)
		}
		if cerr != nil {
			return &IncompatibleError{Subject: subject, Level: level, Version: versions[i], Reason: cerr.Error()}
		}
	}
	return nil
}

// parse parses a schema with a private name cache: hamba's default cache
// is global, and two versions of one record must not meet in it.
func parse(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}
