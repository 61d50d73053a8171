package canon

import (
	"bytes"
	"unicode/utf8"
)

// Valid reports whether Parse would accept data, without building the
// value and without allocating: one JSON document, valid UTF-8 in its
// strings, nesting no deeper than MaxDepth. Stores use it to check JSON
// they keep as bytes; it is several times faster than encoding/json's
// Valid, which also accepts invalid UTF-8 (FuzzValid holds it to Parse).
func Valid(data []byte) bool { return valid(data, nil) }

// Members checks data as Valid does and, when it is a JSON object, returns
// the raw bytes of its members named by keys, in that order (nil for one
// it lacks; of a repeated key, the last, whose value Parse keeps). It lets
// a caller that needs a few members of a large document parse only those.
// ok is false when data is not valid or not an object.
func Members(data []byte, keys ...string) (vals [][]byte, ok bool) {
	vals = make([][]byte, len(keys))
	isObject := false
	ok = valid(data, func(key, val []byte) {
		isObject = true
		for i, k := range keys {
			if keyIs(key, k) {
				vals[i] = val
			}
		}
	})
	if !ok {
		return nil, false
	}
	if !isObject {
		// An empty object has no members to report.
		i := skipBlank(data, 0)
		if data[i] != '{' {
			return nil, false
		}
	}
	return vals, true
}

// keyIs reports whether a member's key, as written (with its quotes), is k.
func keyIs(raw []byte, k string) bool {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == k
	}
	v, err := Parse(raw)
	return err == nil && v.Str == k
}

// valid is Valid; member, when not nil, is given each member of a
// top-level object as it is checked: its key (with quotes) and its value.
func valid(data []byte, member func(key, val []byte)) bool {
	var objects [MaxDepth / 64]uint64 // bit d: the container at depth d is an object
	depth := 0
	n := len(data)
	i := 0
	ok := false
	keyAt, keyEnd, valAt := -1, 0, 0 // the top-level member being checked
	for {
		// A value starts at i.
		i = skipBlank(data, i)
		if i >= n {
			return false
		}
		if keyAt >= 0 && depth == 1 {
			valAt = i
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			if depth >= MaxDepth {
				return false
			}
			obj := c == '{'
			if obj {
				objects[depth/64] |= 1 << (depth % 64)
			} else {
				objects[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipBlank(data, i+1)
			if i < n && (data[i] == '}' && obj || data[i] == ']' && !obj) {
				depth--
				i++
				break // an empty container is a whole value
			}
			if obj {
				if i, ok = checkKey(data, i, depth == 1 && member != nil, &keyAt, &keyEnd); !ok {
					return false
				}
			}
			continue // its first item or member value
		case c == '"':
			if i, ok = validString(data, i); !ok {
				return false
			}
		case c == '-' || c >= '0' && c <= '9':
			if i, ok = validNumber(data, i); !ok {
				return false
			}
		case c == 't':
			if i, ok = validWord(data, i, "true"); !ok {
				return false
			}
		case c == 'f':
			if i, ok = validWord(data, i, "false"); !ok {
				return false
			}
		case c == 'n':
			if i, ok = validWord(data, i, "null"); !ok {
				return false
			}
		default:
			return false
		}
		// A value ended at i: close containers until one goes on.
		for {
			if depth == 1 && keyAt >= 0 {
				member(data[keyAt:keyEnd], data[valAt:i])
				keyAt = -1
			}
			i = skipBlank(data, i)
			if depth == 0 {
				return i == n
			}
			if i >= n {
				return false
			}
			obj := objects[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			c := data[i]
			if c == '}' && obj || c == ']' && !obj {
				depth--
				i++
				continue
			}
			if c != ',' {
				return false
			}
			i = skipBlank(data, i+1)
			if obj {
				if i, ok = checkKey(data, i, depth == 1 && member != nil, &keyAt, &keyEnd); !ok {
					return false
				}
			}
			break
		}
	}
}

func skipBlank(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// checkKey is validKey noting, when top, where the key starts and ends.
func checkKey(data []byte, i int, top bool, keyAt, keyEnd *int) (int, bool) {
	next, end, ok := validKey(data, i)
	if top {
		*keyAt, *keyEnd = i, end
	}
	return next, ok
}

// validKey checks a member's key and its colon at i; it returns where the
// member's value may start and where the key ended.
func validKey(data []byte, i int) (next, keyEnd int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return i, i, false
	}
	if i, ok = validString(data, i); !ok {
		return i, i, false
	}
	keyEnd = i
	i = skipBlank(data, i)
	if i >= len(data) || data[i] != ':' {
		return i, keyEnd, false
	}
	return i + 1, keyEnd, true
}

// validString checks the string whose opening quote is at i.
func validString(data []byte, i int) (int, bool) {
	i++
	for i < len(data) {
		c := data[i]
		switch {
		case plainASCII[c]:
			i++
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(data) {
				return i, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) {
					return i, false
				}
				for _, h := range data[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return i, false
					}
				}
				i += 6
			default:
				return i, false
			}
		case c < 0x20:
			return i, false
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				return i, false
			}
			i += size
		}
	}
	return i, false
}

// validNumber checks the number starting at i, as Parse's grammar has it.
func validNumber(data []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		return i
	}
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return i, false
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		i = digits(i)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func validWord(data []byte, i int, word string) (int, bool) {
	if len(data)-i < len(word) || string(data[i:i+len(word)]) != word {
		return i, false
	}
	return i + len(word), true
}
