package push

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// An event is read once, in a single pass over its JSON, into a fixed set of
// slots: one for each property path the compiled rules look at. Paths form a
// tree; members outside it are validated and skipped without being decoded
// or copied, and recorded strings are slices of the event's own bytes unless
// they hold escapes. Evaluation then reads slots by index and never parses
// again.

// valueKind is the JSON type of a recorded property, with integers apart
// from other numbers because only they can equal a condition's value.
type valueKind uint8

const (
	kindAbsent valueKind = iota
	kindString
	kindInt
	kindBool
	kindNull
	kindOtherNumber // a fraction, an exponent, or beyond ±(2^53-1)
	kindObject
	kindArray
)

// value is a recorded property. str holds a string's decoded bytes, or an
// array's raw JSON text; num an integer; b a boolean.
type value struct {
	kind valueKind
	b    bool
	num  int64
	str  []byte
}

// equal reports whether two scalars are the same JSON value, as
// event_property_is and event_property_contains compare them: exactly, with
// no type conversion and strings case-sensitive.
func (v value) equal(w value) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case kindString:
		return bytes.Equal(v.str, w.str)
	case kindInt:
		return v.num == w.num
	case kindBool:
		return v.b == w.b
	case kindNull:
		return true
	}
	return false
}

// maxSafeInteger is 2^53-1, the bound of canonical JSON integers.
const maxSafeInteger = 1<<53 - 1

// maxDepth bounds nesting as encoding/json does, so that both accept the
// same documents.
const maxDepth = 10000

// pathNode is one property name of the tree of wanted paths.
type pathNode struct {
	name string
	// slot is where the property at this path is recorded, -1 when only
	// paths below it are wanted.
	slot int
	// lo and hi bound the slots of this node and of every node below it.
	// They are contiguous, so a repeated member clears them in one go.
	lo, hi   int
	children []*pathNode
}

func (n *pathNode) child(name []byte) *pathNode {
	for _, c := range n.children {
		if c.name == string(name) {
			return c
		}
	}
	return nil
}

// pathTree builds the tree of wanted paths and gives each a slot.
type pathTree struct {
	root  pathNode
	slots int
	keys  map[string]int // key as written (escaped) → slot, once numbered
}

func newPathTree() *pathTree {
	return &pathTree{root: pathNode{slot: -1}, keys: map[string]int{}}
}

// add wants the property at the dot-separated path key.
func (t *pathTree) add(key string) {
	if _, ok := t.keys[key]; ok {
		return
	}
	t.keys[key] = -1
	n := &t.root
	for _, name := range splitPath(key) {
		c := n.child([]byte(name))
		if c == nil {
			c = &pathNode{name: name, slot: -1}
			n.children = append(n.children, c)
		}
		n = c
	}
	n.slot = 0 // wanted; numbered by number
}

// number gives slots in depth-first order, so each subtree's are contiguous,
// and resolves the keys added.
func (t *pathTree) number() {
	var walk func(n *pathNode)
	walk = func(n *pathNode) {
		n.lo = t.slots
		if n.slot >= 0 {
			n.slot = t.slots
			t.slots++
		}
		for _, c := range n.children {
			walk(c)
		}
		n.hi = t.slots
	}
	t.root.slot = -1
	walk(&t.root)
	for key := range t.keys {
		n := &t.root
		for _, name := range splitPath(key) {
			n = n.child([]byte(name))
		}
		t.keys[key] = n.slot
	}
}

// splitPath splits a dot-separated property path into property names. "\."
// stands for a literal dot and "\\" for a literal backslash; any other
// backslash is itself
// (https://spec.matrix.org/latest/appendices/#dot-separated-property-paths).
func splitPath(key string) []string {
	var names []string
	var cur strings.Builder
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '\\' && i+1 < len(key) && (key[i+1] == '.' || key[i+1] == '\\'):
			cur.WriteByte(key[i+1])
			i++
		case c == '.':
			names = append(names, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(names, cur.String())
}

// scanner is a validating recursive-descent JSON reader that records the
// wanted properties into slots. It accepts exactly what encoding/json
// accepts; a duplicated member replaces the earlier one, as there.
//
// slots is a parameter rather than a field so that escape analysis can keep
// the caller's slot array on its stack.
type scanner struct {
	data  []byte
	pos   int
	depth int
}

// readEvent records the properties of event wanted by tree into slots
// (which must be zero and tree.slots long). It reports false for invalid
// JSON, leaving slots in an unspecified state.
func readEvent(event []byte, root *pathNode, slots []value) bool {
	s := scanner{data: event}
	if _, ok := s.value(root, false, slots); !ok {
		return false
	}
	s.space()
	return s.pos == len(s.data)
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value reads one value. It records it into n's slot if n has one; it
// decodes a string if it records it or keep is set. Objects and arrays come
// back without their members, an array with its raw text.
func (s *scanner) value(n *pathNode, keep bool, slots []value) (value, bool) {
	s.space()
	if s.pos >= len(s.data) {
		return value{}, false
	}
	record := n != nil && n.slot >= 0
	start := s.pos
	var v value
	switch c := s.data[s.pos]; {
	case c == '{':
		if !s.object(n, slots) {
			return value{}, false
		}
		v.kind = kindObject
	case c == '[':
		if !s.array() {
			return value{}, false
		}
		v = value{kind: kindArray, str: s.data[start:s.pos]}
	case c == '"':
		str, ok := s.string(record || keep)
		if !ok {
			return value{}, false
		}
		v = value{kind: kindString, str: str}
	case c == 't':
		if !s.literal("true") {
			return value{}, false
		}
		v = value{kind: kindBool, b: true}
	case c == 'f':
		if !s.literal("false") {
			return value{}, false
		}
		v = value{kind: kindBool}
	case c == 'n':
		if !s.literal("null") {
			return value{}, false
		}
		v = value{kind: kindNull}
	default:
		if !s.number() {
			return value{}, false
		}
		v = numberValue(s.data[start:s.pos])
	}
	if record {
		slots[n.slot] = v
	}
	return v, true
}

func (s *scanner) object(n *pathNode, slots []value) bool {
	s.pos++ // '{'
	if s.depth++; s.depth > maxDepth {
		return false
	}
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return true
	}
	descend := n != nil && len(n.children) > 0
	for {
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		name, ok := s.string(descend)
		if !ok {
			return false
		}
		var c *pathNode
		if descend {
			c = n.child(name)
		}
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		if c != nil {
			clear(slots[c.lo:c.hi]) // a repeated member replaces the earlier
		}
		if _, ok := s.value(c, false, slots); !ok {
			return false
		}
		s.space()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array() bool {
	s.pos++ // '['
	if s.depth++; s.depth > maxDepth {
		return false
	}
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return true
	}
	for {
		if _, ok := s.value(nil, false, nil); !ok {
			return false
		}
		s.space()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// string reads a string. When decode is set it returns its decoded bytes:
// a slice of the event when the string is plain, else a fresh decoding by
// encoding/json, which also turns invalid UTF-8 into U+FFFD as the rest of
// the server sees it.
func (s *scanner) string(decode bool) ([]byte, bool) {
	start := s.pos
	s.pos++ // '"'
	plain := true
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			s.pos++ // the common case, kept out of the switch
			continue
		}
		switch {
		case c == '"':
			s.pos++
			if !decode {
				return nil, true
			}
			raw := s.data[start+1 : s.pos-1]
			if plain {
				return raw, true
			}
			var str string
			if json.Unmarshal(s.data[start:s.pos], &str) != nil {
				return nil, false
			}
			return []byte(str), true
		case c == '\\':
			plain = false
			if s.pos+1 >= len(s.data) {
				return nil, false
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.data) {
					return nil, false
				}
				for _, h := range s.data[s.pos+2 : s.pos+6] {
					if !isHex(h) {
						return nil, false
					}
				}
				s.pos += 6
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			s.pos += size
		}
	}
	return nil, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return false
	}
	s.pos += len(word)
	return true
}

// number reads a number of the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	d := s.data
	if s.pos < len(d) && d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && '1' <= d[s.pos] && d[s.pos] <= '9':
		s.digits()
	default:
		return false
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if !s.digits() {
			return false
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits reads [0-9]+.
func (s *scanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// numberValue classifies a valid number token: an integer within
// ±(2^53-1), written without fraction or exponent, is kindInt.
func numberValue(tok []byte) value {
	neg := tok[0] == '-'
	digits := tok
	if neg {
		digits = tok[1:]
	}
	if len(digits) > 16 || slices.ContainsFunc(digits, func(c byte) bool { return c < '0' || c > '9' }) {
		return value{kind: kindOtherNumber}
	}
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	if n > maxSafeInteger {
		return value{kind: kindOtherNumber}
	}
	if neg {
		n = -n
	}
	return value{kind: kindInt, num: n}
}

// parseScalar reads a condition's value: a string, an integer within
// ±(2^53-1), a boolean or null, and nothing else.
func parseScalar(raw json.RawMessage) (value, bool) {
	s := scanner{data: raw}
	v, ok := s.value(nil, true, nil)
	if !ok {
		return value{}, false
	}
	if s.space(); s.pos != len(s.data) {
		return value{}, false
	}
	switch v.kind {
	case kindString, kindInt, kindBool, kindNull:
		return v, true
	}
	return value{}, false
}

// arrayContains reports whether the raw JSON array holds an element equal
// to want. Elements that are not scalars never match.
func arrayContains(raw []byte, want value) bool {
	s := scanner{data: raw, pos: 1} // past '['; raw was validated
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		return false
	}
	for {
		v, ok := s.value(nil, want.kind == kindString, nil)
		if !ok {
			return false
		}
		if v.equal(want) {
			return true
		}
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ',' {
			return false
		}
		s.pos++
	}
}
