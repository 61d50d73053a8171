package envelope

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrDuplicateKey is matched (errors.Is) by every *DuplicateKeyError.
var ErrDuplicateKey = errors.New("envelope: duplicate object key")

// DuplicateKeyError reports a key written twice in one JSON object.
// JSON.parse, canon.Parse and encoding/json keep the last value, other
// parsers the first, so such a document can mean two things (a second
// signer_did or payload, say); signed documents with one are refused.
type DuplicateKeyError struct {
	// Path locates the object, as verify's schema paths do ("" is the
	// document itself, then .key and [index] steps).
	Path string
	// Key is the repeated key, decoded.
	Key string
}

func (e *DuplicateKeyError) Error() string {
	where := e.Path
	if where == "" {
		where = "the top-level object"
	}
	return "duplicate key " + strconv.Quote(e.Key) + " in " + where
}

func (e *DuplicateKeyError) Is(target error) bool { return target == ErrDuplicateKey }

// errDupSyntax is returned by CheckDuplicateKeys for input that is not
// JSON; callers parse the document anyway and report syntax errors there.
var errDupSyntax = errors.New("envelope: not JSON")

// CheckDuplicateKeys scans a JSON document and returns a
// *DuplicateKeyError for the first object, at any depth, that holds a key
// twice. Keys are compared decoded, as canon.Parse decodes them (escapes
// resolved, lone surrogates kept distinct), so "a" and "\u0061" are the
// same key. It returns a non-nil error other than a *DuplicateKeyError
// when data is not JSON. It does not build the document: it keeps only
// the keys of the objects open at the current position.
func CheckDuplicateKeys(data []byte) error {
	s := dupScanner{data: data}
	return s.run()
}

type dupFrame struct {
	obj  bool
	base int                 // first key of this object in keys
	set  map[string]struct{} // for objects with many keys
	n    int                 // items seen (arrays)
	key  []byte              // current key (objects)
}

type dupScanner struct {
	data  []byte
	pos   int
	stack []dupFrame
	keys  [][]byte // keys of the open objects, frame by frame
}

func (s *dupScanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *dupScanner) run() error {
	s.space()
	if err := s.value(); err != nil {
		return err
	}
	for len(s.stack) > 0 {
		top := &s.stack[len(s.stack)-1]
		s.space()
		if s.pos >= len(s.data) {
			return errDupSyntax
		}
		c := s.data[s.pos]
		s.pos++
		closer := byte(']')
		if top.obj {
			closer = '}'
		}
		switch c {
		case closer:
			s.pop()
			continue
		case ',':
		default:
			return errDupSyntax
		}
		s.space()
		if top.obj {
			if err := s.member(); err != nil {
				return err
			}
		} else {
			top.n++
			if err := s.value(); err != nil {
				return err
			}
		}
	}
	s.space()
	if s.pos != len(s.data) {
		return errDupSyntax
	}
	return nil
}

func (s *dupScanner) pop() {
	top := s.stack[len(s.stack)-1]
	if top.obj {
		clear(s.keys[top.base:])
		s.keys = s.keys[:top.base]
	}
	s.stack = s.stack[:len(s.stack)-1]
}

// value reads one value. For an object or array it reads the opening
// bracket and the first member or item (or the closing bracket) and
// leaves the rest to run's loop.
func (s *dupScanner) value() error {
	if s.pos >= len(s.data) {
		return errDupSyntax
	}
	switch c := s.data[s.pos]; c {
	case '{', '[':
		s.pos++
		s.stack = append(s.stack, dupFrame{obj: c == '{', base: len(s.keys)})
		s.space()
		if s.pos < len(s.data) && (s.data[s.pos] == '}' && c == '{' || s.data[s.pos] == ']' && c == '[') {
			s.pos++
			s.pop()
			return nil
		}
		if c == '{' {
			return s.member()
		}
		return s.value()
	case '"':
		_, err := s.str(false)
		return err
	default:
		start := s.pos
		for s.pos < len(s.data) && scalarByte(s.data[s.pos]) {
			s.pos++
		}
		if s.pos == start {
			return errDupSyntax
		}
		return nil
	}
}

func scalarByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// member reads `"key": value` of the innermost object.
func (s *dupScanner) member() error {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return errDupSyntax
	}
	key, err := s.str(true)
	if err != nil {
		return err
	}
	top := &s.stack[len(s.stack)-1]
	own := s.keys[top.base:]
	dup := false
	if top.set != nil {
		_, dup = top.set[string(key)]
	} else {
		for _, k := range own {
			if string(k) == string(key) {
				dup = true
				break
			}
		}
	}
	if dup {
		return &DuplicateKeyError{Path: s.path(), Key: string(key)}
	}
	s.keys = append(s.keys, key)
	if top.set != nil {
		top.set[string(key)] = struct{}{}
	} else if len(own)+1 > 16 {
		top.set = make(map[string]struct{}, 64)
		for _, k := range s.keys[top.base:] {
			top.set[string(k)] = struct{}{}
		}
	}
	top.key = key
	s.space()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return errDupSyntax
	}
	s.pos++
	s.space()
	return s.value()
}

// path names the innermost object from the open frames.
func (s *dupScanner) path() string {
	var b strings.Builder
	for i := range len(s.stack) - 1 {
		f := &s.stack[i]
		if f.obj {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.Write(f.key)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.n))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// str reads a string at the opening quote. With decode it returns the
// decoded text (a slice of data when there is no escape); without, nil.
func (s *dupScanner) str(decode bool) ([]byte, error) {
	d := s.data
	s.pos++
	start := s.pos
	for s.pos < len(d) && d[s.pos] != '"' && d[s.pos] != '\\' && d[s.pos] >= 0x20 {
		s.pos++
	}
	if s.pos < len(d) && d[s.pos] == '"' {
		s.pos++
		if decode {
			return d[start : s.pos-1], nil
		}
		return nil, nil
	}
	var buf []byte
	if decode {
		buf = append(buf, d[start:s.pos]...)
	}
	for {
		if s.pos >= len(d) {
			return nil, errDupSyntax
		}
		c := d[s.pos]
		switch {
		case c == '"':
			s.pos++
			return buf, nil
		case c < 0x20:
			return nil, errDupSyntax
		case c == '\\':
			if s.pos+1 >= len(d) {
				return nil, errDupSyntax
			}
			e := d[s.pos+1]
			s.pos += 2
			var r rune
			switch e {
			case '"', '\\', '/':
				r = rune(e)
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				var ok bool
				if r, ok = s.hex4(); !ok {
					return nil, errDupSyntax
				}
				if r >= 0xD800 && r <= 0xDBFF && s.pos+6 <= len(d) && d[s.pos] == '\\' && d[s.pos+1] == 'u' {
					save := s.pos
					s.pos += 2
					if lo, ok := s.hex4(); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					} else {
						s.pos = save
					}
				}
			default:
				return nil, errDupSyntax
			}
			if decode {
				if r >= 0xD800 && r <= 0xDFFF { // a lone surrogate, kept as WTF-8
					buf = append(buf, 0xED, byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
				} else {
					buf = utf8.AppendRune(buf, r)
				}
			}
		default:
			if decode {
				buf = append(buf, c)
			}
			s.pos++
		}
	}
}

func (s *dupScanner) hex4() (rune, bool) {
	if s.pos+4 > len(s.data) {
		return 0, false
	}
	var r rune
	for _, c := range s.data[s.pos : s.pos+4] {
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
	s.pos += 4
	return r, true
}
