package canon

import (
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

var negZero = math.Copysign(0, -1)

// Compact parses data and returns its order-preserving compact form, the
// bytes JSON.stringify(JSON.parse(data)) would produce.
func Compact(data []byte) ([]byte, error) {
	v, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return AppendCompact(nil, &v), nil
}

// JCS parses data and returns its RFC 8785 canonical form.
func JCS(data []byte) ([]byte, error) {
	v, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return AppendJCS(nil, &v), nil
}

// AppendCompact appends the compact form of v to dst.
func AppendCompact(dst []byte, v *Value) []byte {
	var e Encoder
	return e.AppendCompact(dst, v)
}

// AppendJCS appends the RFC 8785 form of v to dst.
func AppendJCS(dst []byte, v *Value) []byte {
	var e Encoder
	e.sorted = true
	return e.append(dst, v)
}

// Span is a byte range [Start, End) of an encoder's output.
type Span struct{ Start, End int }

// Encoder writes the compact form and can record where chosen sub-values
// landed in the output, so that a verifier hashes a nested payload straight
// from its parent's serialisation instead of encoding it twice (the compact
// form is compositional: a sub-value's bytes are a slice of the parent's).
type Encoder struct {
	// Track lists values, in document order, whose output ranges are wanted.
	Track []*Value
	// Spans[i] is filled for Track[i]; an entry left at {-1,-1} means the
	// value was not met in order and must be encoded on its own.
	Spans []Span
	// Pre maps arrays to the already-encoded compact bytes of each of their
	// items, which are copied instead of encoded again. Callers use it to
	// encode the items of large arrays in parallel.
	Pre map[*Value][][]byte

	next   int
	sorted bool
	w      io.Writer // set by WriteCompact
	werr   error
}

// WriteCompact writes the compact form of v to w. Pre-encoded array items
// are written straight from their buffers, so the whole document is never
// held in memory at once (a verifier hashes a large bundle this way). No
// spans are recorded: Track must be empty.
func (e *Encoder) WriteCompact(w io.Writer, v *Value) error {
	if len(e.Track) > 0 {
		return errors.New("canon: WriteCompact cannot record spans")
	}
	e.sorted, e.next, e.w, e.werr = false, 0, w, nil
	defer func() { e.w = nil }()
	rest := e.append(make([]byte, 0, 4096), v)
	e.write(rest)
	return e.werr
}

func (e *Encoder) write(b []byte) {
	if e.werr == nil && len(b) > 0 {
		_, e.werr = e.w.Write(b)
	}
}

// AppendCompact appends the compact form of v to dst, recording spans for
// the tracked values.
func (e *Encoder) AppendCompact(dst []byte, v *Value) []byte {
	e.sorted = false
	e.next = 0
	if len(e.Track) > 0 {
		e.Spans = slices.Grow(e.Spans[:0], len(e.Track))[:len(e.Track)]
		for i := range e.Spans {
			e.Spans[i] = Span{-1, -1}
		}
	}
	return e.append(dst, v)
}

func (e *Encoder) append(dst []byte, v *Value) []byte {
	if e.next < len(e.Track) && v == e.Track[e.next] {
		i := e.next
		e.next++
		start := len(dst)
		dst = e.appendValue(dst, v)
		e.Spans[i] = Span{start, len(dst)}
		return dst
	}
	return e.appendValue(dst, v)
}

func (e *Encoder) appendValue(dst []byte, v *Value) []byte {
	switch v.Kind {
	case Null:
		return append(dst, "null"...)
	case Bool:
		if v.Boolean {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		return AppendNumber(dst, v.Num)
	case String:
		return AppendString(dst, v.Str)
	case Array:
		dst = append(dst, '[')
		if pre, ok := e.Pre[v]; ok && len(pre) == len(v.Items) && !e.sorted {
			if e.w != nil {
				e.write(dst)
				for i, b := range pre {
					if i > 0 {
						e.write([]byte{','})
					}
					e.write(b)
				}
				return append(dst[:0], ']')
			}
			for i, b := range pre {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, b...)
			}
			return append(dst, ']')
		}
		for i := range v.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.append(dst, &v.Items[i])
		}
		return append(dst, ']')
	case Object:
		return e.appendObject(dst, v)
	}
	return append(dst, "null"...)
}

func (e *Encoder) appendObject(dst []byte, v *Value) []byte {
	dst = append(dst, '{')
	order := e.memberOrder(v.Members)
	for i := range v.Members {
		m := &v.Members[i]
		if order != nil {
			m = &v.Members[order[i]]
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, m.Key)
		dst = append(dst, ':')
		dst = e.append(dst, &m.Value)
	}
	return append(dst, '}')
}

// memberOrder returns nil when members are emitted in slice order, or the
// permutation to use: UTF-16 order for JCS, and for the compact form the
// JavaScript property order, where array-index keys come first ascending.
func (e *Encoder) memberOrder(ms []Member) []int {
	if e.sorted {
		if len(ms) < 2 {
			return nil
		}
		order := make([]int, len(ms))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return CompareUTF16(ms[a].Key, ms[b].Key) })
		return order
	}
	hasIndex := false
	for i := range ms {
		if _, ok := arrayIndex(ms[i].Key); ok {
			hasIndex = true
			break
		}
	}
	if !hasIndex {
		return nil
	}
	var idx, rest []int
	for i := range ms {
		if _, ok := arrayIndex(ms[i].Key); ok {
			idx = append(idx, i)
		} else {
			rest = append(rest, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int {
		x, _ := arrayIndex(ms[a].Key)
		y, _ := arrayIndex(ms[b].Key)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return append(idx, rest...)
}

// arrayIndex reports whether key is a JavaScript array index: the canonical
// decimal form of an integer in [0, 2^32-2].
func arrayIndex(key string) (uint64, bool) {
	if key == "" || len(key) > 10 || key[0] < '0' || key[0] > '9' {
		return 0, false
	}
	if key[0] == '0' && len(key) > 1 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n <= 1<<32-2
}

// CompareUTF16 compares two WTF-8 strings by their UTF-16 code units, the
// order JavaScript's default sort and RFC 8785 use.
func CompareUTF16(a, b string) int {
	i, j := 0, 0
	var pa, pb rune // pending low surrogates
	for {
		var ua, ub rune
		endA, endB := false, false
		if pa != 0 {
			ua, pa = pa, 0
		} else if i < len(a) {
			r, n := decodeWTF8(a[i:])
			i += n
			ua, pa = utf16Units(r)
		} else {
			endA = true
		}
		if pb != 0 {
			ub, pb = pb, 0
		} else if j < len(b) {
			r, n := decodeWTF8(b[j:])
			j += n
			ub, pb = utf16Units(r)
		} else {
			endB = true
		}
		switch {
		case endA && endB:
			return 0
		case endA:
			return -1
		case endB:
			return 1
		case ua < ub:
			return -1
		case ua > ub:
			return 1
		}
	}
}

// utf16Units splits r into its first UTF-16 unit and, for supplementary
// characters, the trailing low surrogate (else 0).
func utf16Units(r rune) (rune, rune) {
	if r < 0x10000 {
		return r, 0
	}
	r -= 0x10000
	return 0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF
}

// decodeWTF8 decodes one character, accepting encoded surrogates; invalid
// bytes decode as U+FFFD one byte at a time.
func decodeWTF8(s string) (rune, int) {
	c := s[0]
	if c < 0x80 {
		return rune(c), 1
	}
	if c == 0xED && len(s) >= 3 && s[1] >= 0xA0 && s[1] <= 0xBF && s[2]&0xC0 == 0x80 {
		return rune(0xD000) | rune(s[1]&0x3F)<<6 | rune(s[2]&0x3F), 3
	}
	r, n := utf8.DecodeRuneInString(s)
	return r, n
}

const hexDigits = "0123456789abcdef"

// AppendString appends s (WTF-8) as a JSON string the way JSON.stringify
// quotes it: only '"', '\\' and control characters are escaped (the five
// short escapes, else \u00xx in lowercase hex), lone surrogates become
// \udxxx, everything else, U+2028 and U+2029 included, is written raw.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c < 0x80 {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, n := decodeWTF8(s[i:])
		switch {
		case r >= 0xD800 && r <= 0xDFFF:
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', hexDigits[r>>12], hexDigits[(r>>8)&0xF], hexDigits[(r>>4)&0xF], hexDigits[r&0xF])
			i += n
			start = i
		case r == utf8.RuneError && n == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
		default:
			i += n
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendNumber appends f formatted by ECMAScript Number::toString, which
// JSON.stringify uses; non-finite values are written as null.
func AppendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == 0 {
		return append(dst, '0') // also -0
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		if math.Abs(f) < 1<<53 {
			return strconv.AppendInt(dst, int64(f), 10)
		}
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits d1.d2d3...e±x from strconv.
	var tmp [32]byte
	b := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	ePos := 0
	for ePos < len(b) && b[ePos] != 'e' {
		ePos++
	}
	mant := b[:ePos]
	var digits [24]byte
	k := 0
	for _, c := range mant {
		if c != '.' {
			digits[k] = c
			k++
		}
	}
	exp, _ := strconv.Atoi(string(b[ePos+1:]))
	n := exp + 1 // position of the decimal point relative to the digits
	ds := digits[:k]
	switch {
	case k <= n && n <= 21:
		dst = append(dst, ds...)
		for i := 0; i < n-k; i++ {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, ds[:n]...)
		dst = append(dst, '.')
		dst = append(dst, ds[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for i := 0; i < -n; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, ds...)
	default:
		dst = append(dst, ds[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, ds[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		} else {
			dst = append(dst, '-')
		}
		e := n - 1
		if e < 0 {
			e = -e
		}
		dst = strconv.AppendInt(dst, int64(e), 10)
	}
	return dst
}

// AppendIndent appends v in the layout of JSON.stringify(v, null, indent):
// one member or item per line, ": " after keys, empty containers kept as
// {} and []. Key order and escaping are those of the compact form.
func AppendIndent(dst []byte, v *Value, indent string) []byte {
	var e Encoder
	return e.appendIndent(dst, v, indent, 0)
}

func (e *Encoder) appendIndent(dst []byte, v *Value, indent string, depth int) []byte {
	newline := func(d []byte, n int) []byte {
		d = append(d, '\n')
		for i := 0; i < n; i++ {
			d = append(d, indent...)
		}
		return d
	}
	switch v.Kind {
	case Array:
		if len(v.Items) == 0 {
			return append(dst, "[]"...)
		}
		dst = append(dst, '[')
		for i := range v.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = newline(dst, depth+1)
			dst = e.appendIndent(dst, &v.Items[i], indent, depth+1)
		}
		dst = newline(dst, depth)
		return append(dst, ']')
	case Object:
		if len(v.Members) == 0 {
			return append(dst, "{}"...)
		}
		dst = append(dst, '{')
		order := e.memberOrder(v.Members)
		for i := range v.Members {
			m := &v.Members[i]
			if order != nil {
				m = &v.Members[order[i]]
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = newline(dst, depth+1)
			dst = AppendString(dst, m.Key)
			dst = append(dst, ':', ' ')
			dst = e.appendIndent(dst, &m.Value, indent, depth+1)
		}
		dst = newline(dst, depth)
		return append(dst, '}')
	}
	return e.appendValue(dst, v)
}
