package redact

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/clawea/clawea/canon"
)

// MaxDepth is the deepest nesting of arrays and objects JSON and FindJSON
// scan, counting the levels of JSON documents held in strings.
const MaxDepth = 256

// maxNested bounds how many JSON documents held in strings (a tool call's
// "arguments", say) are scanned inside one another.
const maxNested = 4

// ErrNotScannable wraps every error of JSON and FindJSON: the input is not
// JSON that decodes one way only, so it must not be forwarded.
var ErrNotScannable = errors.New("redact: not scannable JSON")

type scanError struct {
	off int
	msg string
	// ambiguous: the text is JSON-like but decodes more than one way
	// (a lone surrogate) or cannot be scanned fully (too deep); a string
	// holding such a document is refused, not taken as plain text.
	ambiguous bool
}

func (e *scanError) Error() string {
	return fmt.Sprintf("redact: cannot scan JSON at byte %d: %s", e.off, e.msg)
}

func (e *scanError) Unwrap() error { return ErrNotScannable }

// JSON redacts a job's secrets in a JSON document by its decoded string
// values: every string token, object keys included, is decoded (whatever
// its escapes) and its secret forms are replaced by markers; a string that
// changed is written back re-encoded, and everything else — numbers,
// literals, whitespace, untouched strings — is copied byte for byte. A
// string that itself holds a JSON document (a tool call's arguments) is
// scanned the same way, up to a few levels.
//
// Input that is not valid JSON, not valid UTF-8, holds a \u escape of a
// lone surrogate or nests deeper than MaxDepth is an error wrapping
// ErrNotScannable: such bytes could decode differently upstream, and the
// caller must refuse them. When the job has no secrets the input is
// returned at once, unscanned. When nothing matched, the input slice is
// returned as is.
func (r *Registry) JSON(jobID string, raw []byte) (out []byte, n int, err error) {
	sec := r.lookup(jobID)
	if sec == nil {
		return raw, 0, nil
	}
	sc := scanner{data: raw, sec: sec, redact: true}
	if err := sc.document(0); err != nil {
		return nil, 0, err
	}
	if sc.n == 0 {
		return raw, 0, nil
	}
	sc.out = append(sc.out, raw[sc.copied:]...)
	return sc.out, sc.n, nil
}

// Find reports whether the decoded text s contains any form of any of the
// job's secrets, and the label of one it contains.
func (r *Registry) Find(jobID, s string) (label string, ok bool) {
	sec := r.lookup(jobID)
	if sec == nil {
		return "", false
	}
	return sec.find(s)
}

// FindJSON is Find over every decoded string (object keys included) of a
// JSON document, and of the JSON documents held in its strings. It fails
// as JSON does on input that cannot be scanned, unless the job has no
// secrets: then it answers at once.
func (r *Registry) FindJSON(jobID string, raw []byte) (label string, ok bool, err error) {
	sec := r.lookup(jobID)
	if sec == nil {
		return "", false, nil
	}
	sc := scanner{data: raw, sec: sec}
	if err := sc.document(0); err != nil {
		return "", false, err
	}
	return sc.label, sc.label != "", nil
}

func (r *Registry) lookup(jobID string) *secrets {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.jobs[jobID]
}

// find returns the label of a form found in text, as it is or behind
// escapes (hidden.go).
func (s *secrets) find(text string) (string, bool) {
	if l, ok := s.findPlain(text); ok {
		return l, true
	}
	return s.hidden(text)
}

// scanner walks one JSON document. With redact set it builds out from the
// input and the re-encoded strings that changed; otherwise it stops at the
// first string holding a secret form (label).
type scanner struct {
	data   []byte
	pos    int
	sec    *secrets
	redact bool
	nested int // levels of JSON-in-a-string above this document

	out    []byte
	copied int // data[:copied] is accounted for in out
	n      int
	label  string
	buf    []byte // decoding scratch
}

func (sc *scanner) fail(msg string) error { return &scanError{off: sc.pos, msg: msg} }

func (sc *scanner) ambiguous(msg string) error {
	return &scanError{off: sc.pos, msg: msg, ambiguous: true}
}

func (sc *scanner) done() bool { return !sc.redact && sc.label != "" }

// document scans a whole document: one value and only whitespace after.
func (sc *scanner) document(depth int) error {
	if err := sc.value(depth); err != nil {
		return err
	}
	sc.space()
	if sc.done() {
		return nil
	}
	if sc.pos != len(sc.data) {
		return sc.fail("data after the value")
	}
	return nil
}

func (sc *scanner) space() {
	for sc.pos < len(sc.data) {
		switch sc.data[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

func (sc *scanner) value(depth int) error {
	sc.space()
	if sc.pos >= len(sc.data) {
		return sc.fail("unexpected end of input")
	}
	switch c := sc.data[sc.pos]; {
	case c == '{':
		return sc.object(depth + 1)
	case c == '[':
		return sc.array(depth + 1)
	case c == '"':
		return sc.str(depth)
	case c == 't':
		return sc.literal("true")
	case c == 'f':
		return sc.literal("false")
	case c == 'n':
		return sc.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return sc.number()
	}
	return sc.fail("unexpected character")
}

func (sc *scanner) literal(word string) error {
	if !strings.HasPrefix(string(sc.data[sc.pos:min(len(sc.data), sc.pos+len(word))]), word) {
		return sc.fail("invalid literal")
	}
	sc.pos += len(word)
	return nil
}

func (sc *scanner) number() error {
	d, p := sc.data, sc.pos
	digits := func() int {
		s := p
		for p < len(d) && d[p] >= '0' && d[p] <= '9' {
			p++
		}
		return p - s
	}
	if p < len(d) && d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case digits() == 0:
		sc.pos = p
		return sc.fail("invalid number")
	}
	if p < len(d) && d[p] == '.' {
		p++
		if digits() == 0 {
			sc.pos = p
			return sc.fail("invalid number")
		}
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		if digits() == 0 {
			sc.pos = p
			return sc.fail("invalid number")
		}
	}
	sc.pos = p
	return nil
}

func (sc *scanner) object(depth int) error {
	if depth > MaxDepth {
		return sc.ambiguous("nesting too deep")
	}
	sc.pos++ // {
	sc.space()
	if sc.pos < len(sc.data) && sc.data[sc.pos] == '}' {
		sc.pos++
		return nil
	}
	for {
		sc.space()
		if sc.pos >= len(sc.data) || sc.data[sc.pos] != '"' {
			return sc.fail("expected a member name")
		}
		if err := sc.str(depth); err != nil || sc.done() {
			return err
		}
		sc.space()
		if sc.pos >= len(sc.data) || sc.data[sc.pos] != ':' {
			return sc.fail("expected ':'")
		}
		sc.pos++
		if err := sc.value(depth); err != nil || sc.done() {
			return err
		}
		sc.space()
		if sc.pos >= len(sc.data) {
			return sc.fail("unexpected end of input")
		}
		switch sc.data[sc.pos] {
		case ',':
			sc.pos++
		case '}':
			sc.pos++
			return nil
		default:
			return sc.fail("expected ',' or '}'")
		}
	}
}

func (sc *scanner) array(depth int) error {
	if depth > MaxDepth {
		return sc.ambiguous("nesting too deep")
	}
	sc.pos++ // [
	sc.space()
	if sc.pos < len(sc.data) && sc.data[sc.pos] == ']' {
		sc.pos++
		return nil
	}
	for {
		if err := sc.value(depth); err != nil || sc.done() {
			return err
		}
		sc.space()
		if sc.pos >= len(sc.data) {
			return sc.fail("unexpected end of input")
		}
		switch sc.data[sc.pos] {
		case ',':
			sc.pos++
		case ']':
			sc.pos++
			return nil
		default:
			return sc.fail("expected ',' or ']'")
		}
	}
}

// str scans a string token, decodes it and redacts (or searches) the
// decoded value.
func (sc *scanner) str(depth int) error {
	start := sc.pos
	sc.pos++ // "
	d := sc.data
	plainStart := sc.pos
	escaped := false
	sc.buf = sc.buf[:0]
	for {
		if sc.pos >= len(d) {
			return sc.fail("unterminated string")
		}
		c := d[sc.pos]
		switch {
		case c == '"':
			var s string
			if escaped {
				sc.buf = append(sc.buf, d[plainStart:sc.pos]...)
				s = string(sc.buf)
			} else {
				s = string(d[plainStart:sc.pos])
			}
			sc.pos++
			return sc.decoded(start, s, depth)
		case c < 0x20:
			return sc.fail("control character in a string")
		case c == '\\':
			escaped = true
			sc.buf = append(sc.buf, d[plainStart:sc.pos]...)
			if err := sc.escape(); err != nil {
				return err
			}
			plainStart = sc.pos
		case c < utf8.RuneSelf:
			sc.pos++
		default:
			r, size := utf8.DecodeRune(d[sc.pos:])
			if r == utf8.RuneError && size == 1 {
				return sc.fail("invalid UTF-8")
			}
			sc.pos += size
		}
	}
}

// escape decodes the escape at sc.pos into sc.buf.
func (sc *scanner) escape() error {
	d := sc.data
	if sc.pos+1 >= len(d) {
		return sc.fail("unterminated escape")
	}
	switch d[sc.pos+1] {
	case '"', '\\', '/':
		sc.buf = append(sc.buf, d[sc.pos+1])
	case 'b':
		sc.buf = append(sc.buf, '\b')
	case 'f':
		sc.buf = append(sc.buf, '\f')
	case 'n':
		sc.buf = append(sc.buf, '\n')
	case 'r':
		sc.buf = append(sc.buf, '\r')
	case 't':
		sc.buf = append(sc.buf, '\t')
	case 'u':
		r, ok := hex4(d[sc.pos+2:])
		if !ok {
			return sc.fail("invalid \\u escape")
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			lo, ok := rune(0), false
			if sc.pos+11 < len(d) && d[sc.pos+6] == '\\' && d[sc.pos+7] == 'u' {
				lo, ok = hex4(d[sc.pos+8:])
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return sc.ambiguous("lone surrogate in a \\u escape")
			}
			sc.buf = utf8.AppendRune(sc.buf, utf16.DecodeRune(r, lo))
			sc.pos += 12
			return nil
		case utf16.IsSurrogate(r):
			return sc.ambiguous("lone surrogate in a \\u escape")
		}
		sc.buf = utf8.AppendRune(sc.buf, r)
		sc.pos += 6
		return nil
	default:
		return sc.fail("invalid escape")
	}
	sc.pos += 2
	return nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// decoded handles the decoded value s of the string token at
// data[start:sc.pos].
func (sc *scanner) decoded(start int, s string, depth int) error {
	red, n, err := sc.inner(s, depth)
	if err != nil {
		return err
	}
	if !sc.redact {
		if red == s {
			sc.label, _ = sc.sec.find(s)
		}
		return nil
	}
	if out, k := sc.sec.scrub(red); out != red {
		n += k
		red = out
	}
	if red == s {
		return nil
	}
	sc.out = append(sc.out, sc.data[sc.copied:start]...)
	sc.out = canon.AppendString(sc.out, red)
	sc.copied = sc.pos
	sc.n += max(n, 1)
	return nil
}

// inner scans a string that holds a JSON object or array. It returns the
// string redacted (or s itself), or, when searching, sets sc.label. A
// string that merely looks like JSON is left to the text pass.
func (sc *scanner) inner(s string, depth int) (string, int, error) {
	t := strings.TrimLeft(s, " \t\r\n")
	if t == "" || t[0] != '{' && t[0] != '[' || sc.nested >= maxNested {
		return s, 0, nil
	}
	in := scanner{data: []byte(s), sec: sc.sec, redact: sc.redact, nested: sc.nested + 1}
	if err := in.document(depth); err != nil {
		var se *scanError
		if errors.As(err, &se) && se.ambiguous {
			return "", 0, err
		}
		return s, 0, nil // not JSON: plain text
	}
	if !sc.redact {
		sc.label = in.label
		if in.label != "" {
			return "", 0, nil
		}
		return s, 0, nil
	}
	if in.n == 0 {
		return s, 0, nil
	}
	in.out = append(in.out, in.data[in.copied:]...)
	return string(in.out), in.n, nil
}
