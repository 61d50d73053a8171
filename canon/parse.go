package canon

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is the deepest nesting of arrays and objects Parse accepts.
const MaxDepth = 512

// SyntaxError reports malformed JSON and where it was found.
type SyntaxError struct {
	Offset int    // byte offset into the input
	Msg    string // what was wrong
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("canon: invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// ErrTooDeep is wrapped by the SyntaxError returned for over-deep documents.
var ErrTooDeep = errors.New("nesting too deep")

// Parse parses one JSON document with JSON.parse semantics: a repeated key
// keeps its first position and takes its last value, numbers become IEEE
// 754 doubles (out-of-range magnitudes become infinities, which serialise as
// null), and \u escapes may produce lone surrogates. Unlike JSON.parse it
// refuses input that is not valid UTF-8 and nesting deeper than MaxDepth.
func Parse(data []byte) (Value, error) {
	// Strings without escapes are views into this private copy of the
	// input, which is never written after this point.
	own := make([]byte, len(data))
	copy(own, data)
	sc := scratchPool.Get().(*scratch)
	p := parser{data: own, members: sc.members[:0], items: sc.items[:0], buf: sc.buf[:0]}
	defer sc.put(&p)
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return Value{}, p.errf("unexpected data after the document")
	}
	return v, nil
}

// scratch is a parser's reusable working space: finished objects and arrays
// are copied out of it, so it holds nothing a result refers to.
type scratch struct {
	members []Member
	items   []Value
	buf     []byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{members: make([]Member, 0, 16), items: make([]Value, 0, 16)}
}}

// put returns the parser's working space to the pool, cleared so that it
// keeps no document alive; very large spaces are left to the collector.
func (sc *scratch) put(p *parser) {
	if cap(p.members) > 4096 || cap(p.items) > 4096 || cap(p.buf) > 1<<16 {
		return
	}
	clear(p.members[:cap(p.members)])
	clear(p.items[:cap(p.items)])
	sc.members, sc.items, sc.buf = p.members[:0], p.items[:0], p.buf[:0]
	scratchPool.Put(sc)
}

type parser struct {
	data    []byte
	pos     int
	buf     []byte   // scratch for unescaping
	items   []Value  // scratch stack of array items being built
	members []Member // scratch stack of object members being built
}

func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) value(depth int) (Value, error) {
	if p.pos >= len(p.data) {
		return Value{}, p.errf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		if depth >= MaxDepth {
			return Value{}, &SyntaxError{Offset: p.pos, Msg: ErrTooDeep.Error()}
		}
		return p.object(depth + 1)
	case c == '[':
		if depth >= MaxDepth {
			return Value{}, &SyntaxError{Offset: p.pos, Msg: ErrTooDeep.Error()}
		}
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: String, Str: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", Value{Kind: Bool, Boolean: true})
	case c == 'f':
		return p.literal("false", Value{Kind: Bool})
	case c == 'n':
		return p.literal("null", Value{Kind: Null})
	default:
		return Value{}, p.errf("unexpected character %q", c)
	}
}

func (p *parser) literal(word string, v Value) (Value, error) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return Value{}, p.errf("invalid literal")
	}
	p.pos += len(word)
	return v, nil
}

func (p *parser) object(depth int) (Value, error) {
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return Value{Kind: Object, Members: []Member{}}, nil
	}
	// Members are collected on a shared stack and copied out at the end,
	// so each object costs one exact-size allocation.
	base := len(p.members)
	defer func() { p.members = p.members[:base] }()
	var index map[string]int // built only for large objects
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.errf("expected a string key")
		}
		key, err := p.str()
		if err != nil {
			return Value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.errf("expected ':' after key")
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		// JSON.parse: a repeated key keeps its first slot, last value wins.
		own := p.members[base:]
		dup := -1
		if index != nil {
			if i, ok := index[key]; ok {
				dup = i
			}
		} else {
			for i := range own {
				if own[i].Key == key {
					dup = i
					break
				}
			}
		}
		if dup >= 0 {
			own[dup].Value = val
		} else {
			p.members = append(p.members, Member{Key: key, Value: val})
			n := len(p.members) - base
			if index != nil {
				index[key] = n - 1
			} else if n > 32 {
				index = make(map[string]int, 64)
				for i, m := range p.members[base:] {
					index[m.Key] = i
				}
			}
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errf("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return Value{Kind: Object, Members: append([]Member(nil), p.members[base:]...)}, nil
		default:
			return Value{}, p.errf("expected ',' or '}' in object")
		}
	}
}

func (p *parser) array(depth int) (Value, error) {
	p.pos++ // '['
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return Value{Kind: Array, Items: []Value{}}, nil
	}
	base := len(p.items)
	defer func() { p.items = p.items[:base] }()
	for {
		p.skipSpace()
		item, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.items = append(p.items, item)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return Value{Kind: Array, Items: append([]Value(nil), p.items[base:]...)}, nil
		default:
			return Value{}, p.errf("expected ',' or ']' in array")
		}
	}
}

func (p *parser) number() (Value, error) {
	start := p.pos
	d := p.data
	if p.pos < len(d) && d[p.pos] == '-' {
		p.pos++
	}
	if p.pos >= len(d) {
		return Value{}, p.errf("truncated number")
	}
	switch {
	case d[p.pos] == '0':
		p.pos++
	case d[p.pos] >= '1' && d[p.pos] <= '9':
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	default:
		return Value{}, p.errf("invalid number")
	}
	simple := true
	if p.pos < len(d) && d[p.pos] == '.' {
		simple = false
		p.pos++
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return Value{}, p.errf("missing digits after decimal point")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		simple = false
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return Value{}, p.errf("missing exponent digits")
		}
	}
	text := d[start:p.pos]
	if simple && len(text) <= 15 {
		// Fits an int64 exactly and converts to float64 without rounding.
		var n int64
		neg := text[0] == '-'
		digits := text
		if neg {
			digits = text[1:]
		}
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		if neg {
			if n == 0 {
				return Value{Kind: Number, Num: negZero}, nil
			}
			n = -n
		}
		return Value{Kind: Number, Num: float64(n)}, nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		var ne *strconv.NumError
		if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
			return Value{}, p.errf("invalid number")
		}
		// Out of range: ParseFloat returns ±Inf or ±0 like JavaScript.
	}
	return Value{Kind: Number, Num: f}, nil
}

// str parses a JSON string starting at the opening quote and returns it as
// WTF-8.
func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	d := p.data
	start := p.pos
	// Fast path: no escapes, ASCII only.
	for p.pos < len(d) && plainASCII[d[p.pos]] {
		p.pos++
	}
	if p.pos < len(d) && d[p.pos] == '"' {
		var s string
		if n := p.pos - start; n > 0 {
			s = unsafe.String(&d[start], n)
		}
		p.pos++
		return s, nil
	}
	buf := append(p.buf[:0], d[start:p.pos]...)
	for {
		if p.pos >= len(d) {
			return "", p.errf("unterminated string")
		}
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.buf = buf
			return string(buf), nil
		case c < 0x20:
			return "", p.errf("control character in string")
		case c == '\\':
			p.pos++
			if p.pos >= len(d) {
				return "", p.errf("unterminated escape")
			}
			e := d[p.pos]
			p.pos++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errf("invalid \\u escape")
				}
				if r >= 0xD800 && r <= 0xDBFF && p.pos+6 <= len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					lo, ok := p.hex4()
					if ok && lo >= 0xDC00 && lo <= 0xDFFF {
						buf = utf8.AppendRune(buf, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
						continue
					}
					p.pos = save
				}
				buf = appendWTF8(buf, r)
			default:
				return "", p.errf("invalid escape character %q", e)
			}
		case c < 0x80:
			buf = append(buf, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(d[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.errf("invalid UTF-8 in string")
			}
			buf = append(buf, d[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// plainASCII marks bytes that can appear unescaped in a string and end
// nothing: printable ASCII except '"' and '\\'.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendWTF8 appends r, which may be a lone surrogate, in generalised UTF-8.
func appendWTF8(b []byte, r rune) []byte {
	if r >= 0xD800 && r <= 0xDFFF {
		return append(b, 0xED, byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
	}
	return utf8.AppendRune(b, r)
}
