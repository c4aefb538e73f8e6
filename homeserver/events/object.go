package events

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// field is one member of a canonical JSON object: the decoded key and the
// canonical bytes of its value. Hashing, signing and redaction work on
// slices of fields so that removing or adding a member never re-parses the
// rest of the object.
type field struct {
	key   string
	value []byte
}

// objectFields splits canonical JSON (as produced by canonicalize) that must
// be an object into its members, in canonical (sorted) order. The values
// alias b.
func objectFields(b []byte) ([]field, error) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadEvent)
	}
	fields := make([]field, 0, 16)
	i := 1
	if b[i] == '}' {
		return fields, nil
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return nil, err
		}
		key, ok := decodeString(b[i:end])
		if !ok || end >= len(b) || b[end] != ':' {
			return nil, fmt.Errorf("%w: malformed canonical object", ErrBadJSON)
		}
		i = end + 1
		end, err = skipValue(b, i)
		if err != nil {
			return nil, err
		}
		if end == i {
			return nil, fmt.Errorf("%w: malformed canonical object", ErrBadJSON)
		}
		fields = append(fields, field{key: key, value: b[i:end]})
		if end >= len(b) {
			return nil, fmt.Errorf("%w: malformed canonical object", ErrBadJSON)
		}
		switch b[end] {
		case ',':
			i = end + 1
		case '}':
			if end != len(b)-1 {
				return nil, fmt.Errorf("%w: malformed canonical object", ErrBadJSON)
			}
			return fields, nil
		default:
			return nil, fmt.Errorf("%w: malformed canonical object", ErrBadJSON)
		}
	}
}

// skipValue returns the end of the canonical JSON value starting at b[i].
// Canonical JSON has no whitespace, which keeps this simple.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: truncated canonical JSON", ErrBadJSON)
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1, nil
			}
		}
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			case '"':
				end, err := skipValue(b, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			}
		}
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ':':
				return i, nil
			}
		}
		return i, nil
	}
	return 0, fmt.Errorf("%w: truncated canonical JSON", ErrBadJSON)
}

// decodeString decodes a canonical JSON string (quotes included). Canonical
// strings use only the escapes \" \\ \b \f \n \r \t and \u00XX, but any
// valid escape is accepted.
func decodeString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	s := v[1 : len(v)-1]
	if !slices.Contains(s, '\\') {
		return string(s), true
	}
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			sb.WriteByte(s[i])
			i++
			continue
		}
		r, n, problem := decodeEscape(s[i:])
		if problem != "" {
			return "", false
		}
		sb.WriteRune(r)
		i += n
	}
	return sb.String(), true
}

// joinObject writes fields as a canonical JSON object. It sorts fields in
// place; the values must already be canonical and the keys distinct.
func joinObject(dst []byte, fields []field) []byte {
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f.key)
		dst = append(dst, ':')
		dst = append(dst, f.value...)
	}
	return append(dst, '}')
}

// fieldsSize is the length of joinObject(nil, fields), to size buffers.
func fieldsSize(fields []field) int {
	n := 2
	for _, f := range fields {
		n += len(f.key) + len(f.value) + 4
	}
	return n
}

// lookup returns the value of key, if present.
func lookup(fields []field, key string) ([]byte, bool) {
	for _, f := range fields {
		if f.key == key {
			return f.value, true
		}
	}
	return nil, false
}

// without returns a copy of fields minus the given keys.
func without(fields []field, keys ...string) []field {
	out := make([]field, 0, len(fields))
	for _, f := range fields {
		if !slices.Contains(keys, f.key) {
			out = append(out, f)
		}
	}
	return out
}

// set returns fields with key set to value, replacing any existing member.
func set(fields []field, key string, value []byte) []field {
	for i, f := range fields {
		if f.key == key {
			fields[i].value = value
			return fields
		}
	}
	return append(fields, field{key: key, value: value})
}

// stringValue decodes a canonical JSON string value.
func stringValue(v []byte) (string, bool) {
	s, ok := decodeString(v)
	return s, ok && utf8.ValidString(s)
}

// intValue decodes a canonical JSON integer.
func intValue(v []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// stringArray decodes a canonical JSON array of strings.
func stringArray(v []byte) ([]string, bool) {
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return nil, false
	}
	out := []string{}
	if len(v) == 2 {
		return out, true
	}
	i := 1
	for {
		end, err := skipValue(v, i)
		if err != nil {
			return nil, false
		}
		s, ok := stringValue(v[i:end])
		if !ok || end >= len(v) {
			return nil, false
		}
		out = append(out, s)
		switch v[end] {
		case ',':
			i = end + 1
		case ']':
			return out, end == len(v)-1
		default:
			return nil, false
		}
	}
}

// appendStringArray writes ss as a canonical JSON array of strings.
func appendStringArray(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// jsonString returns s as canonical JSON string bytes.
func jsonString(s string) []byte { return appendString(nil, s) }

// jsonInt returns n as canonical JSON integer bytes.
func jsonInt(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

// arrayItems splits a canonical JSON array into its items.
func arrayItems(v []byte) ([][]byte, bool) {
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return nil, false
	}
	out := [][]byte{}
	if len(v) == 2 {
		return out, true
	}
	i := 1
	for {
		end, err := skipValue(v, i)
		if err != nil || end >= len(v) {
			return nil, false
		}
		out = append(out, v[i:end])
		switch v[end] {
		case ',':
			i = end + 1
		case ']':
			return out, end == len(v)-1
		default:
			return nil, false
		}
	}
}

// hashedRefArray decodes the v1/v2 form of prev_events and auth_events:
// an array of [event_id, {"sha256": hash}] pairs. It returns the event IDs
// and checks each pair's shape.
func hashedRefArray(v []byte) ([]string, bool) {
	items, ok := arrayItems(v)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		pair, ok := arrayItems(item)
		if !ok || len(pair) != 2 {
			return nil, false
		}
		id, ok := stringValue(pair[0])
		if !ok {
			return nil, false
		}
		hf, err := objectFields(pair[1])
		if err != nil {
			return nil, false
		}
		if h, ok := lookup(hf, "sha256"); ok {
			if _, ok := stringValue(h); !ok {
				return nil, false
			}
		}
		out = append(out, id)
	}
	return out, true
}

// appendHashedRefs writes ids as v1/v2 [event_id, {"sha256": hash}] pairs.
func appendHashedRefs(dst []byte, ids []string, hashes map[string]string) []byte {
	dst = append(dst, '[')
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendString(dst, id)
		dst = append(dst, `,{"sha256":`...)
		dst = appendString(dst, hashes[id])
		dst = append(dst, "}]"...)
	}
	return append(dst, ']')
}
