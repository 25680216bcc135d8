package cdc

import "bytes"

// envelope holds the raw spans of a JSON converter {schema, payload}
// document. The spans alias the record bytes.
type envelope struct {
	schema     []byte
	payload    []byte
	hasSchema  bool
	hasPayload bool
	// tentative: payload was assumed to be the last member and runs to
	// the closing brace unscanned. Only the parser can confirm it; if it
	// fails, the caller scans again with splitEnvelope(b, known, false).
	tentative bool
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// splitEnvelope finds the top-level "schema" and "payload" values without
// parsing them. ok is false when b is not an object whose only keys are
// schema and payload, or when the scan fails; the caller then parses the
// whole document, which also reports any syntax error properly. The
// scanner checks structure only: the spans are validated later, the
// payload by the parser and the schema by the parser or by being
// byte-identical to a schema that was.
//
// known is a schema text already validated; when the schema value starts
// with it, it is taken without scanning (a complete JSON object ends at
// the same byte whatever follows it). With guess set, a payload member is
// assumed to be the last and returned tentatively, sparing its scan.
func splitEnvelope(b, known []byte, guess bool) (env envelope, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return env, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return env, false
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return env, false
		}
		end := skipString(b, i)
		if end < 0 {
			return env, false
		}
		key := b[i+1 : end-1]
		if string(key) != "schema" && string(key) != "payload" {
			return env, false // a bare document: do not scan it
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return env, false
		}
		i = skipWS(b, i+1)
		if guess && string(key) == "payload" {
			e := len(b)
			for e > i && isWS(b[e-1]) {
				e--
			}
			if e > i+1 && b[e-1] == '}' {
				e--
				for e > i && isWS(b[e-1]) {
					e--
				}
				env.payload, env.hasPayload, env.tentative = b[i:e], true, true
				return env, true
			}
		}
		var vend int
		if string(key) == "schema" && len(known) > 0 && bytes.HasPrefix(b[i:], known) {
			vend = i + len(known)
		} else if vend = skipValue(b, i); vend < 0 {
			return env, false
		}
		if string(key) == "schema" {
			env.schema, env.hasSchema = b[i:vend], true
		} else {
			env.payload, env.hasPayload = b[i:vend], true
		}
		i = skipWS(b, vend)
		if i >= len(b) {
			return env, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return env, false
		}
		i = skipWS(b, i+1)
	}
	if skipWS(b, i+1) != len(b) {
		return env, false
	}
	return env, true
}

// skipString returns the index just past the string starting at b[i]=='"',
// or -1 if it is not terminated.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// skipValue returns the index just past the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	j := i
	for j < len(b) {
		c := b[j]
		if c == ',' || c == '}' || c == ']' || isWS(c) {
			break
		}
		j++
	}
	if j == i {
		return -1
	}
	return j
}
