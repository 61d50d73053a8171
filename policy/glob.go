package policy

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Glob rules for actions, resources and StringLike values, as the
// reference evaluator applies them:
//
//   - a pattern that is exactly "*" or "**" matches everything;
//   - otherwise "*" matches any run of characters except '/';
//   - "**" matches any run of characters, and a '/' right after "**" is
//     absorbed into it ("a/**/b" matches "a/b" and "a/x/y/b");
//   - "?" matches one character except '/';
//   - matching is anchored and case-sensitive, with no escapes; like a
//     JavaScript regular expression's ".", "**" inside a longer pattern does
//     not cross line terminators (\n, \r, U+2028, U+2029).

const maxGlobTokens = 512

// checkGlob reports patterns clawea refuses: empty ones and runs of three
// or more '*', which have no meaning beyond "**".
func checkGlob(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if strings.Contains(p, "***") {
		return errors.New("three or more '*' in a row; use * (within a segment) or ** (across '/')")
	}
	if utf8.RuneCountInString(p) > maxGlobTokens {
		return errors.New("pattern too long")
	}
	for _, r := range p {
		if r < 0x20 {
			return errors.New("control character in pattern")
		}
	}
	return nil
}

type tokKind uint8

const (
	tLit   tokKind = iota // one literal rune
	tStar                 // *  : any run without '/'
	tDStar                // ** : any run without line terminators
	tQ                    // ?  : one rune except '/'
)

type tok struct {
	kind tokKind
	r    rune
}

type globKind uint8

const (
	gAll         globKind = iota // matches everything
	gExact                       // literal
	gPrefixDS                    // literal prefix + **
	gPrefixS                     // literal prefix + *
	gSuffixS                     // * + literal suffix
	gPrefixSSuff                 // prefix + * + suffix
	gNFA                         // general
)

// glob is a compiled pattern. Matching allocates nothing.
type glob struct {
	src       string
	kind      globKind
	lit, lit2 string // exact / prefix / suffix texts
	nfa       *nfa
}

func compileGlob(p string) glob {
	g := glob{src: p}
	if p == "*" || p == "**" {
		g.kind = gAll
		return g
	}
	var toks []tok
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == '*' && strings.HasPrefix(p[i:], "**"):
			toks = append(toks, tok{kind: tDStar})
			i += 2
			if i < len(p) && p[i] == '/' {
				i++ // "**/" absorbs the slash
			}
			continue
		case r == '*':
			toks = append(toks, tok{kind: tStar})
		case r == '?':
			toks = append(toks, tok{kind: tQ})
		default:
			toks = append(toks, tok{kind: tLit, r: r})
		}
		i += n
	}
	var wild []int
	for i, t := range toks {
		if t.kind != tLit {
			wild = append(wild, i)
		}
	}
	last := len(toks) - 1
	switch {
	case len(wild) == 0:
		g.kind, g.lit = gExact, p
	case len(wild) == 1 && wild[0] == last && toks[last].kind == tDStar:
		g.kind, g.lit = gPrefixDS, literal(toks[:last])
	case len(wild) == 1 && wild[0] == last && toks[last].kind == tStar:
		g.kind, g.lit = gPrefixS, literal(toks[:last])
	case len(wild) == 1 && wild[0] == 0 && toks[0].kind == tStar:
		g.kind, g.lit = gSuffixS, literal(toks[1:])
	case len(wild) == 1 && toks[wild[0]].kind == tStar:
		g.kind, g.lit, g.lit2 = gPrefixSSuff, literal(toks[:wild[0]]), literal(toks[wild[0]+1:])
	default:
		g.kind, g.nfa = gNFA, newNFA(toks)
	}
	return g
}

func literal(ts []tok) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteRune(t.r)
	}
	return b.String()
}

func isLineTerminator(r rune) bool { return r == '\n' || r == '\r' || r == 0x2028 || r == 0x2029 }

func hasLineTerminator(s string) bool {
	return strings.ContainsAny(s, "\n\r\u2028\u2029")
}

func (g *glob) match(s string) bool {
	switch g.kind {
	case gAll:
		return true
	case gExact:
		return s == g.lit
	case gPrefixDS:
		return strings.HasPrefix(s, g.lit) && !hasLineTerminator(s[len(g.lit):])
	case gPrefixS:
		return strings.HasPrefix(s, g.lit) && strings.IndexByte(s[len(g.lit):], '/') < 0
	case gSuffixS:
		return strings.HasSuffix(s, g.lit) && strings.IndexByte(s[:len(s)-len(g.lit)], '/') < 0
	case gPrefixSSuff:
		return len(s) >= len(g.lit)+len(g.lit2) && strings.HasPrefix(s, g.lit) && strings.HasSuffix(s, g.lit2) &&
			strings.IndexByte(s[len(g.lit):len(s)-len(g.lit2)], '/') < 0
	}
	return g.nfa.match(s)
}

// nfa matches a general pattern with a bit-parallel simulation (shift-and):
// bit i of the state means the first i tokens are matched. Patterns have
// at most maxGlobTokens tokens, so a state is a few machine words.
type nfa struct {
	// segments are the literal runs between wildcards, in order; a match
	// must contain them all in that order, which rejects most inputs
	// before the simulation runs.
	prefix   string
	segments []string
	n        int // tokens; accepting bit is n
	words    int
	ascii    [128][]uint64 // per ASCII rune: literal tokens accepting it
	lits     []tok         // non-ASCII literal tokens, checked one by one
	q        []uint64      // '?' tokens
	star     []uint64      // '*' tokens
	dstar    []uint64      // '**' tokens
	starry   []uint64      // star | dstar: epsilon edges i -> i+1
}

const maxWords = (maxGlobTokens + 64) / 64

func newNFA(toks []tok) *nfa {
	m := &nfa{n: len(toks), words: len(toks)/64 + 1}
	var seg strings.Builder
	flush := func() {
		if seg.Len() > 0 {
			m.segments = append(m.segments, seg.String())
			seg.Reset()
		}
	}
	for _, t := range toks {
		if t.kind == tLit {
			seg.WriteRune(t.r)
			continue
		}
		if len(m.segments) == 0 && seg.Len() > 0 && toks[0].kind == tLit {
			m.prefix = seg.String() // the run before the first wildcard
		}
		flush()
	}
	flush()
	alloc := func() []uint64 { return make([]uint64, m.words) }
	m.q, m.star, m.dstar, m.starry = alloc(), alloc(), alloc(), alloc()
	for i, t := range toks {
		w, b := i>>6, uint64(1)<<(i&63)
		switch t.kind {
		case tLit:
			if t.r < 128 {
				if m.ascii[t.r] == nil {
					m.ascii[t.r] = alloc()
				}
				m.ascii[t.r][w] |= b
			} else {
				m.lits = append(m.lits, tok{kind: tLit, r: rune(i)<<21 | t.r})
			}
		case tQ:
			m.q[w] |= b
		case tStar:
			m.star[w] |= b
			m.starry[w] |= b
		case tDStar:
			m.dstar[w] |= b
			m.starry[w] |= b
		}
	}
	return m
}

// match1 is match for patterns of at most 63 tokens: one word of state.
func (m *nfa) match1(s string) bool {
	q, star, dstar, starry := m.q[0], m.star[0], m.dstar[0], m.starry[0]
	close1 := func(x uint64) uint64 {
		for {
			y := x | (x&starry)<<1
			if y == x {
				return x
			}
			x = y
		}
	}
	cur := close1(1)
	for _, r := range s {
		var adv uint64
		if r < 128 {
			if lm := m.ascii[r]; lm != nil {
				adv = cur & lm[0]
			}
		} else {
			for _, t := range m.lits {
				i := int(t.r >> 21)
				if t.r&(1<<21-1) == r && cur&(1<<i) != 0 {
					adv |= 1 << i
				}
			}
		}
		var stay uint64
		if r != '/' {
			adv |= cur & q
			stay = cur & star
		}
		if !isLineTerminator(r) {
			stay |= cur & dstar
		}
		cur = close1(adv<<1 | stay)
		if cur == 0 {
			return false
		}
	}
	return cur&(1<<m.n) != 0
}

// closure follows epsilon edges: a star may match nothing.
func (m *nfa) closure(cur *[maxWords]uint64) {
	for {
		changed := false
		var carry uint64
		for w := 0; w < m.words; w++ {
			add := (cur[w]&m.starry[w])<<1 | carry
			carry = (cur[w] & m.starry[w]) >> 63
			if add&^cur[w] != 0 {
				cur[w] |= add
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

// plausible checks the literal prefix and segments.
func (m *nfa) plausible(s string) bool {
	if !strings.HasPrefix(s, m.prefix) {
		return false
	}
	rest := s
	for _, seg := range m.segments {
		i := strings.Index(rest, seg)
		if i < 0 {
			return false
		}
		rest = rest[i+len(seg):]
	}
	return true
}

func (m *nfa) match(s string) bool {
	if !m.plausible(s) {
		return false
	}
	if m.words == 1 {
		return m.match1(s)
	}
	var cur [maxWords]uint64
	cur[0] = 1
	m.closure(&cur)
	for _, r := range s {
		var adv [maxWords]uint64 // tokens consuming r and advancing
		if r < 128 {
			if lm := m.ascii[r]; lm != nil {
				for w := 0; w < m.words; w++ {
					adv[w] = cur[w] & lm[w]
				}
			}
		} else {
			for _, t := range m.lits {
				i := int(t.r >> 21)
				if t.r&(1<<21-1) == r && cur[i>>6]&(1<<(i&63)) != 0 {
					adv[i>>6] |= 1 << (i & 63)
				}
			}
		}
		var next [maxWords]uint64
		var carry uint64
		any := false
		for w := 0; w < m.words; w++ {
			a := adv[w]
			stay := uint64(0)
			if r != '/' {
				a |= cur[w] & m.q[w]
				stay |= cur[w] & m.star[w]
			}
			if !isLineTerminator(r) {
				stay |= cur[w] & m.dstar[w]
			}
			next[w] = a<<1 | carry | stay
			carry = a >> 63
			if next[w] != 0 {
				any = true
			}
		}
		if !any {
			return false
		}
		m.closure(&next)
		cur = next
	}
	return cur[m.n>>6]&(1<<(m.n&63)) != 0
}
