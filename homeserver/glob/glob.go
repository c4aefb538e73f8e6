// Package glob is the one implementation of Matrix glob-style matching
// (https://spec.matrix.org/latest/appendices/#glob-style-matching): '*'
// matches zero or more characters and '?' exactly one; every other
// character matches itself, with no escapes. Push rules (event_match) and
// server ACLs compare case-insensitively under Unicode simple case folding,
// the folding of strings.EqualFold and of regexp's (?i) (CompileFold);
// event filters' types compare exactly (Compile). Matching runs in
// O(len(s) * len(pattern)) whatever the pattern.
//
// It imports no other package of the project.
package glob

import (
	"math/bits"
	"unicode"
	"unicode/utf8"
)

// Pattern tokens standing for the wildcards; literal characters are their
// own (non-negative) runes.
const (
	tokStar rune = -1
	tokAny  rune = -2
)

// Pattern is a compiled pattern. The zero Pattern is the exact pattern "".
type Pattern struct {
	// lit is the pattern itself when it has no wildcard, matched by the
	// faster literal paths; toks is nil then.
	lit string
	// toks holds the pattern's characters and wildcards; state i of the
	// automaton means "toks[:i] matched".
	toks []rune
	// stars lists the indexes of tokStar in toks, ascending.
	stars []int
	// fold: characters compare under simple case folding.
	fold bool
}

// Compile compiles a pattern whose characters compare exactly (event
// filters' types).
func Compile(pattern string) Pattern { return compile(pattern, false) }

// CompileFold compiles a pattern whose characters compare
// case-insensitively (push rules' event_match, server ACLs).
func CompileFold(pattern string) Pattern { return compile(pattern, true) }

// Match reports whether pattern matches all of s, comparing exactly; for
// a pattern used once.
// It does not allocate for patterns of up to 32 characters.
func Match(pattern, s string) bool {
	var toks [32]rune
	var stars [8]int
	g := compileInto(pattern, false, toks[:0], stars[:0])
	return g.MatchString(s)
}

func compile(pattern string, fold bool) Pattern {
	return compileInto(pattern, fold, nil, nil)
}

// compileInto compiles into the given (empty) slices, so that a pattern
// matched once may live on the caller's stack.
func compileInto(pattern string, fold bool, toks []rune, stars []int) Pattern {
	g := Pattern{lit: pattern, fold: fold}
	for _, r := range pattern {
		if r == '*' || r == '?' {
			g.toks, g.stars = toks, stars
			if g.toks == nil {
				g.toks = []rune{}
			}
			break
		}
	}
	if g.toks == nil {
		return g
	}
	for _, r := range pattern {
		switch r {
		case '*':
			if n := len(g.toks); n > 0 && g.toks[n-1] == tokStar {
				continue // "**" is "*"
			}
			g.stars = append(g.stars, len(g.toks))
			g.toks = append(g.toks, tokStar)
		case '?':
			g.toks = append(g.toks, tokAny)
		default:
			g.toks = append(g.toks, r)
		}
	}
	return g
}

// MatchString reports whether the pattern matches all of s.
func (g *Pattern) MatchString(s string) bool {
	if g.toks == nil && !g.fold {
		return s == g.lit
	}
	return g.Match([]byte(s))
}

// Match reports whether the pattern matches all of s.
func (g *Pattern) Match(s []byte) bool {
	if g.toks == nil {
		end, ok := prefixFold(s, g.lit, g.fold)
		return ok && end == len(s)
	}
	return g.run(s, false)
}

// MatchWords reports whether the pattern matches a substring of s that
// starts and ends at a word boundary, the rule for push rules'
// content.body.
func (g *Pattern) MatchWords(s []byte) bool {
	if g.toks == nil {
		return containsWord(s, g.lit, g.fold)
	}
	return g.run(s, true)
}

// run simulates the pattern's automaton over s, one rune at a time, in
// O(len(s) * len(pattern)) whatever the pattern: no backtracking, so a
// hostile pattern cannot make a long body expensive. In words mode a new
// match may start at every word boundary and may end at any boundary.
func (g *Pattern) run(s []byte, words bool) bool {
	n := len(g.toks)
	w := (n + 1 + 63) / 64
	var buf [8]uint64
	var cur, next []uint64
	if 2*w <= len(buf) {
		cur, next = buf[:w], buf[w:2*w]
	} else {
		cur, next = make([]uint64, w), make([]uint64, w)
	}
	if !words {
		g.enter(cur)
	}
	prevWord := false
	for i := 0; ; {
		if words && !prevWord {
			g.enter(cur)
		}
		if cur[n/64]&(1<<(n%64)) != 0 {
			if i == len(s) || (words && !isWordByte(s[i])) {
				return true
			}
		}
		if i == len(s) {
			return false
		}
		r, size := utf8.DecodeRune(s[i:])
		clear(next)
		live := false
		for wi, word := range cur {
			for word != 0 {
				p := wi*64 + bits.TrailingZeros64(word)
				word &= word - 1
				if p >= n {
					continue
				}
				switch t := g.toks[p]; {
				case t == tokStar:
					next[p/64] |= 1 << (p % 64)
					live = true
				case t == tokAny || t == r || g.fold && foldEq(t, r):
					next[(p+1)/64] |= 1 << ((p + 1) % 64)
					live = true
				}
			}
		}
		g.close(next)
		cur, next = next, cur
		prevWord = size == 1 && isWordByte(s[i])
		i += size
		if !live && !words {
			return false
		}
	}
}

// enter adds the start state, and what the stars after it reach, to set.
func (g *Pattern) enter(set []uint64) {
	set[0] |= 1
	g.close(set)
}

// close adds to set the states reachable by letting a star match nothing.
// Stars are visited in order, so a run of them is followed in one pass.
func (g *Pattern) close(set []uint64) {
	for _, p := range g.stars {
		if set[p/64]&(1<<(p%64)) != 0 {
			set[(p+1)/64] |= 1 << ((p + 1) % 64)
		}
	}
}

// ContainsWord reports whether s holds lit, compared case-insensitively,
// starting and ending at word boundaries (push rules'
// contains_display_name). lit is taken literally: the display name "a*b"
// matches only "a*b".
func ContainsWord(s []byte, lit string) bool { return containsWord(s, lit, true) }

// containsWord is ContainsWord, comparing case-insensitively or exactly.
func containsWord(s []byte, lit string, fold bool) bool {
	// When lit starts with an ASCII byte, only an equal byte (either case)
	// or a non-ASCII character, which may fold to it, can start a match.
	var first byte
	quick := lit != "" && lit[0] < utf8.RuneSelf
	if quick {
		first = lowerASCII(lit[0])
	}
	if !fold {
		// Exactly: only the same byte starts a match.
		quick = lit != ""
		if quick {
			first = lit[0]
		}
	}
	prevWord := false
	for i := 0; i <= len(s); {
		if !prevWord && (!quick || i < len(s) && startsMatch(s[i], first, fold)) {
			if end, ok := prefixFold(s[i:], lit, fold); ok {
				if end += i; end == len(s) || !isWordByte(s[end]) {
					return true
				}
			}
		}
		if i == len(s) {
			return false
		}
		if c := s[i]; c < utf8.RuneSelf {
			prevWord = isWordByte(c)
			i++
			continue
		}
		_, size := utf8.DecodeRune(s[i:])
		prevWord = false
		i += size
	}
	return false
}

// startsMatch reports whether a match of a literal whose first byte is
// first may start at byte c: an equal byte, or with folding the other
// case or a non-ASCII character, which may fold to it.
func startsMatch(c, first byte, fold bool) bool {
	if !fold {
		return c == first
	}
	return c >= utf8.RuneSelf || lowerASCII(c) == first
}

// prefixFold reports whether s starts with lit, under simple case folding
// when fold is set, and where in s the match ends (folded runes may differ
// in length).
func prefixFold(s []byte, lit string, fold bool) (end int, ok bool) {
	if !fold {
		if len(s) >= len(lit) && string(s[:len(lit)]) == lit {
			return len(lit), true
		}
		return 0, false
	}
	i := 0
	for j := 0; j < len(lit); {
		if i == len(s) {
			return 0, false
		}
		a, b := s[i], lit[j]
		if a < utf8.RuneSelf && b < utf8.RuneSelf {
			if a != b && lowerASCII(a) != lowerASCII(b) {
				return 0, false
			}
			i++
			j++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		t, m := utf8.DecodeRuneInString(lit[j:])
		if !foldEq(t, r) {
			return 0, false
		}
		i += n
		j += m
	}
	return i, true
}

// foldEq reports whether a and b are equal under simple case folding.
func foldEq(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return lowerASCII(byte(a)) == lowerASCII(byte(b))
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isWordByte reports whether c is in [A-Za-z0-9_]. Every other character,
// including every non-ASCII one, is a word boundary for content.body.
func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
