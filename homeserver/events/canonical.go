package events

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Canonical JSON, as defined in the appendices of the Matrix spec
// (https://spec.matrix.org/latest/appendices/#canonical-json): the shortest
// UTF-8 encoding, object keys sorted by code point, integers only, within
// [-(2^53)+1, 2^53-1], no exponent, no "-0". Room versions 6 and later
// require servers to enforce it strictly (rooms/fragments/v6-canonical-json).
//
// The implementation is a single-pass parser that writes the canonical form
// as it reads: scalars are copied or re-escaped in place, and an object's
// members are reordered only when they arrive out of order. Nothing is
// decoded into Go maps.

const (
	// maxSafeInt is 2^53-1, the largest integer canonical JSON allows.
	maxSafeInt = 1<<53 - 1

	// maxNesting bounds the depth of arrays and objects. The spec sets none;
	// Python's json (and so Synapse) fails at about 1000 levels, so anything
	// deeper cannot travel the federation anyway.
	maxNesting = 1000
)

// CanonicalJSON returns the canonical encoding of the JSON value b.
//
// It follows the spec's examples: a number written with a fraction or
// exponent is accepted when its value is an integer in range ("1e10" becomes
// 10000000000, "-0" becomes 0, "2.0" becomes 2); any other number is an
// error. Duplicate object keys, invalid UTF-8 and unpaired surrogate escapes
// are errors too. Every error wraps ErrBadJSON.
func CanonicalJSON(b []byte) ([]byte, error) {
	return canonicalize(b, false)
}

// canonicalize is CanonicalJSON with a choice of number syntax: strict
// accepts only the integer grammar of the spec's canonical JSON ("-0" aside,
// which JSON libraries read as 0), as Synapse does for events in room
// versions 6 and later.
func canonicalize(b []byte, strict bool) ([]byte, error) {
	c := scratch.Get().(*canonicalizer)
	defer c.release()
	c.in, c.pos, c.strict, c.depth = b, 0, strict, 0
	c.out = make([]byte, 0, len(b))
	if err := c.value(); err != nil {
		return nil, err
	}
	c.skipSpace()
	if c.pos != len(c.in) {
		return nil, c.errorf("unexpected data after top-level value")
	}
	return c.out, nil
}

// scratch recycles canonicalizers: their key, member and reordering buffers
// would otherwise be regrown for every event, and garbage collection was
// most of the cost of canonicalising a typical event.
var scratch = sync.Pool{New: func() any { return new(canonicalizer) }}

// maxScratch caps the buffers kept for reuse, so one huge input does not pin
// its memory.
const maxScratch = 64 << 10

func (c *canonicalizer) release() {
	c.in, c.out = nil, nil
	if cap(c.keys) > maxScratch || cap(c.tmp) > maxScratch || cap(c.members) > maxScratch/32 {
		return
	}
	c.keys, c.members, c.tmp = c.keys[:0], c.members[:0], c.tmp[:0]
	scratch.Put(c)
}

type canonicalizer struct {
	in     []byte
	pos    int
	out    []byte
	strict bool
	depth  int

	// keys holds the decoded keys of every object under construction, and
	// members their positions; both are used as stacks, one frame per open
	// object. tmp is scratch space for reordering one object's members.
	keys    []byte
	members []pendingMember
	tmp     []byte
}

// pendingMember locates one `"key":value` member of an object being built:
// its decoded key in keys and its canonical bytes in out.
type pendingMember struct {
	keyStart, keyEnd int
	start, end       int
}

func (c *canonicalizer) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrBadJSON, fmt.Sprintf(format, args...), c.pos)
}

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value() error {
	c.skipSpace()
	if c.pos >= len(c.in) {
		return c.errorf("unexpected end of input")
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object()
	case ch == '[':
		return c.array()
	case ch == '"':
		c.pos++
		return c.str(false)
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number()
	default:
		return c.errorf("unexpected character %q", ch)
	}
}

func (c *canonicalizer) literal(lit string) error {
	if !bytes.HasPrefix(c.in[c.pos:], []byte(lit)) {
		return c.errorf("invalid literal")
	}
	c.pos += len(lit)
	c.out = append(c.out, lit...)
	return nil
}

func (c *canonicalizer) enter() error {
	c.depth++
	if c.depth > maxNesting {
		return c.errorf("nesting deeper than %d", maxNesting)
	}
	return nil
}

func (c *canonicalizer) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++ // '['
	c.out = append(c.out, '[')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		c.depth--
		return nil
	}
	for {
		if err := c.value(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errorf("unterminated array")
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			c.depth--
			return nil
		default:
			return c.errorf("expected ',' or ']' in array")
		}
	}
}

func (c *canonicalizer) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++ // '{'
	objStart := len(c.out)
	c.out = append(c.out, '{')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		c.depth--
		return nil
	}
	memberBase, keyBase := len(c.members), len(c.keys)
	sorted := true
	for {
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return c.errorf("expected string key in object")
		}
		c.pos++
		m := pendingMember{keyStart: len(c.keys), start: len(c.out)}
		if err := c.str(true); err != nil {
			return err
		}
		m.keyEnd = len(c.keys)
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return c.errorf("expected ':' after object key")
		}
		c.pos++
		c.out = append(c.out, ':')
		if err := c.value(); err != nil {
			return err
		}
		m.end = len(c.out)
		if n := len(c.members); n > memberBase {
			prev := c.members[n-1]
			switch bytes.Compare(c.keys[prev.keyStart:prev.keyEnd], c.keys[m.keyStart:m.keyEnd]) {
			case 0:
				return c.errorf("duplicate key %q", c.keys[m.keyStart:m.keyEnd])
			case 1:
				sorted = false
			}
		}
		c.members = append(c.members, m)
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errorf("unterminated object")
		}
		if c.in[c.pos] == ',' {
			c.pos++
			c.out = append(c.out, ',')
			continue
		}
		if c.in[c.pos] == '}' {
			c.pos++
			break
		}
		return c.errorf("expected ',' or '}' in object")
	}
	if !sorted {
		if err := c.reorder(objStart+1, c.members[memberBase:]); err != nil {
			return err
		}
	}
	c.out = append(c.out, '}')
	c.members = c.members[:memberBase]
	c.keys = c.keys[:keyBase]
	c.depth--
	return nil
}

// reorder sorts ms by key (byte order of UTF-8 is code point order) and
// rewrites out[base:] with the members in that order.
func (c *canonicalizer) reorder(base int, ms []pendingMember) error {
	key := func(m pendingMember) []byte { return c.keys[m.keyStart:m.keyEnd] }
	slices.SortFunc(ms, func(a, b pendingMember) int { return bytes.Compare(key(a), key(b)) })
	for i := 1; i < len(ms); i++ {
		if bytes.Equal(key(ms[i-1]), key(ms[i])) {
			return c.errorf("duplicate key %q", key(ms[i]))
		}
	}
	c.tmp = append(c.tmp[:0], c.out[base:]...)
	c.out = c.out[:base]
	for i, m := range ms {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.tmp[m.start-base:m.end-base]...)
	}
	return nil
}

// str reads a string whose opening quote has been consumed and writes its
// canonical form; for an object key it also appends the decoded bytes to
// c.keys.
func (c *canonicalizer) str(isKey bool) error {
	// Work on local copies of the buffers: storing into c on every append
	// costs a GC write barrier each time.
	in, out, keys := c.in, c.out, c.keys
	out = append(out, '"')
	i := c.pos
	start := i
	for {
		// Scan the longest run of bytes that are copied as they are.
		for i < len(in) {
			b := in[i]
			if b >= 0x20 && b != '"' && b != '\\' && b < utf8.RuneSelf {
				i++
				continue
			}
			if b >= utf8.RuneSelf {
				r, size := utf8.DecodeRune(in[i:])
				if r == utf8.RuneError && size <= 1 {
					c.pos = i
					return c.errorf("invalid UTF-8 in string")
				}
				i += size
				continue
			}
			break
		}
		out = append(out, in[start:i]...)
		if isKey {
			keys = append(keys, in[start:i]...)
		}
		if i >= len(in) {
			c.pos = i
			return c.errorf("unterminated string")
		}
		switch b := in[i]; {
		case b == '"':
			c.out, c.keys, c.pos = append(out, '"'), keys, i+1
			return nil
		case b < 0x20:
			c.pos = i
			return c.errorf("unescaped control character in string")
		default: // backslash
			r, n, problem := decodeEscape(in[i:])
			if problem != "" {
				c.pos = i
				return c.errorf("%s", problem)
			}
			i += n
			start = i
			out = appendStringRune(out, r)
			if isKey {
				keys = utf8.AppendRune(keys, r)
			}
		}
	}
}

// decodeEscape decodes the escape sequence at the start of s (which begins
// with a backslash) and reports the rune and the number of bytes consumed,
// or why the sequence is invalid.
func decodeEscape(s []byte) (r rune, n int, problem string) {
	if len(s) < 2 {
		return 0, 0, "unterminated escape"
	}
	switch s[1] {
	case '"', '\\', '/':
		return rune(s[1]), 2, ""
	case 'b':
		return '\b', 2, ""
	case 'f':
		return '\f', 2, ""
	case 'n':
		return '\n', 2, ""
	case 'r':
		return '\r', 2, ""
	case 't':
		return '\t', 2, ""
	case 'u':
		r, ok := hex4(s[2:])
		if !ok {
			return 0, 0, "invalid \\u escape"
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return 0, 0, "unpaired surrogate escape"
		case r >= 0xD800 && r <= 0xDBFF:
			if len(s) < 12 || s[6] != '\\' || s[7] != 'u' {
				return 0, 0, "unpaired surrogate escape"
			}
			lo, ok := hex4(s[8:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0, 0, "unpaired surrogate escape"
			}
			return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12, ""
		}
		return r, 6, ""
	default:
		return 0, 0, "invalid escape"
	}
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, b := range s[:4] {
		var d byte
		switch {
		case b >= '0' && b <= '9':
			d = b - '0'
		case b >= 'a' && b <= 'f':
			d = b - 'a' + 10
		case b >= 'A' && b <= 'F':
			d = b - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

const hexDigits = "0123456789abcdef"

// appendStringRune appends r as it appears inside a canonical JSON string:
// only '"', '\\' and control characters are escaped, with the short forms
// where JSON has them and lower-case \u00XX otherwise.
func appendStringRune(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		return append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xF])
	}
	return utf8.AppendRune(dst, r)
}

// appendString appends s, which must be valid UTF-8, as a canonical JSON
// string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b == '"' || b == '\\' {
			dst = append(dst, s[start:i]...)
			dst = appendStringRune(dst, rune(b))
			start = i + 1
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// number reads a JSON number and writes it as a canonical integer.
func (c *canonicalizer) number() error {
	in, i := c.in, c.pos
	neg := false
	if in[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && in[i] >= '1' && in[i] <= '9':
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
	default:
		c.pos = i
		return c.errorf("invalid number")
	}
	intDigits := in[intStart:i]
	var frac []byte
	if i < len(in) && in[i] == '.' {
		i++
		fracStart := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		if i == fracStart {
			c.pos = i
			return c.errorf("invalid number")
		}
		frac = in[fracStart:i]
	}
	hasExp, exp := false, 0
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		hasExp = true
		i++
		expNeg := false
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			expNeg = in[i] == '-'
			i++
		}
		expStart := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			// Saturate: any exponent this large puts the value out of
			// range or below 1, whatever the digits say.
			if exp < 1e9 {
				exp = exp*10 + int(in[i]-'0')
			}
			i++
		}
		if i == expStart {
			c.pos = i
			return c.errorf("invalid number")
		}
		if expNeg {
			exp = -exp
		}
	}
	numStart := c.pos
	c.pos = i
	if frac == nil && !hasExp {
		// The common case: a plain integer.
		if len(intDigits) > 16 {
			c.pos = numStart
			return c.errorf("integer out of range")
		}
		v, _ := strconv.ParseUint(string(intDigits), 10, 64)
		if v > maxSafeInt {
			c.pos = numStart
			return c.errorf("integer out of range")
		}
		if v != 0 && neg {
			c.out = append(c.out, '-')
		}
		c.out = append(c.out, intDigits...)
		return nil
	}
	if c.strict {
		c.pos = numStart
		return c.errorf("number with fraction or exponent")
	}
	v, err := integerValue(intDigits, frac, exp)
	if err != "" {
		c.pos = numStart
		return c.errorf("%s", err)
	}
	if neg && v != 0 {
		c.out = append(c.out, '-')
	}
	c.out = strconv.AppendUint(c.out, v, 10)
	return nil
}

// integerValue is the value of the decimal intDigits.frac × 10^exp when it
// is an integer no larger than maxSafeInt; otherwise it says why not.
func integerValue(intDigits, frac []byte, exp int) (uint64, string) {
	n := len(intDigits) + len(frac)
	digit := func(k int) byte {
		if k < len(intDigits) {
			return intDigits[k]
		}
		return frac[k-len(intDigits)]
	}
	first := 0
	for first < n && digit(first) == '0' {
		first++
	}
	if first == n {
		return 0, ""
	}
	last := n - 1
	for digit(last) == '0' {
		last--
	}
	// The value is digits[first..last] × 10^scale.
	scale := exp - len(frac) + (n - 1 - last)
	if scale < 0 {
		return 0, "number is not an integer"
	}
	if last-first+1+scale > 16 {
		return 0, "integer out of range"
	}
	var v uint64
	for k := first; k <= last; k++ {
		v = v*10 + uint64(digit(k)-'0')
	}
	for ; scale > 0; scale-- {
		v *= 10
	}
	if v > maxSafeInt {
		return 0, "integer out of range"
	}
	return v, ""
}
