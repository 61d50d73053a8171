package redact

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A secret can sit in a string behind escapes that whoever reads the string
// next will undo: JSON escapes written inside a plain string (a message
// body holding `pw="Tr0ub4dor\u00263…"`, as Go's encoding/json writes it),
// or percent-escapes with lower-case hex. The forms are matched in the text
// as it is and, when it holds a backslash or a percent sign, in the text
// with those escapes undone. A form found only behind escapes cannot be
// cut out of the text, so the whole string is replaced by the marker.

// findPlain returns the label of the first form found in text as it is.
func (s *secrets) findPlain(text string) (string, bool) {
	for _, f := range s.order {
		if strings.Contains(text, f) {
			return s.labels[f], true
		}
	}
	return "", false
}

// hidden returns the label of a form that text holds behind escapes.
func (s *secrets) hidden(text string) (string, bool) {
	if strings.IndexByte(text, '\\') < 0 && strings.IndexByte(text, '%') < 0 {
		return "", false
	}
	for _, v := range unescapedVariants(text) {
		if l, ok := s.findPlain(v); ok {
			return l, true
		}
	}
	return "", false
}

// scrub redacts text: the forms found as they are replaced by their
// markers, and, when a form is still found behind escapes, the whole text
// replaced by that form's marker. n counts replacements.
func (s *secrets) scrub(text string) (string, int) {
	out := s.rep.Replace(text)
	n := 0
	if out != text {
		n = strings.Count(out, "[REDACTED:") - strings.Count(text, "[REDACTED:")
	}
	if l, ok := s.hidden(out); ok {
		return Marker(l), n + 1
	}
	return out, n
}

// unescapedVariants returns text with JSON escapes undone, with percent
// escapes undone, and with both, each only when it differs from text.
func unescapedVariants(text string) []string {
	var out []string
	base := []string{text}
	if strings.IndexByte(text, '\\') >= 0 {
		if u := unescapeJSONText(text); u != text {
			out = append(out, u)
			base = append(base, u)
		}
	}
	for _, b := range base {
		if strings.IndexByte(b, '%') >= 0 {
			if p := percentDecode(b, false); p != b {
				out = append(out, p)
			}
			if p := percentDecode(b, true); p != b {
				out = append(out, p)
			}
		}
	}
	return out
}

// unescapeJSONText undoes JSON string escapes found anywhere in text,
// leaving anything that is not a valid escape as it is. A lone surrogate
// becomes U+FFFD.
func unescapeJSONText(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); {
		c := text[i]
		if c != '\\' || i+1 >= len(text) {
			b.WriteByte(c)
			i++
			continue
		}
		switch e := text[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4([]byte(text[i+2 : min(len(text), i+6)]))
			if !ok {
				b.WriteByte(c)
				i++
				continue
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r < 0xDC00 && i+6 <= len(text) && text[i] == '\\' && text[i+1] == 'u' {
					if lo, ok := hex4([]byte(text[i+2 : i+6])); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						b.WriteRune(utf16.DecodeRune(r, lo))
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
			continue
		default:
			b.WriteByte(c)
			i++
			continue
		}
		i += 2
	}
	return b.String()
}

// percentDecode undoes %XX escapes (hex digits in either case) found
// anywhere in text, leaving anything else as it is; with plus, '+' is a
// space as in a query string.
func percentDecode(text string, plus bool) string {
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '%' && i+2 < len(text) && unhex(text[i+1]) >= 0 && unhex(text[i+2]) >= 0:
			b.WriteByte(byte(unhex(text[i+1])<<4 | unhex(text[i+2])))
			i += 2
		case c == '+' && plus:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
