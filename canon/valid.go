package canon

import "unicode/utf8"

// Valid reports whether Parse would accept data, without building the
// value and without allocating: one JSON document, valid UTF-8 in its
// strings, nesting no deeper than MaxDepth. Stores use it to check JSON
// they keep as bytes; it is several times faster than encoding/json's
// Valid, which also accepts invalid UTF-8 (FuzzValid holds it to Parse).
func Valid(data []byte) bool {
	var objects [MaxDepth / 64]uint64 // bit d: the container at depth d is an object
	depth := 0
	n := len(data)
	i := 0
	ok := false
	for {
		// A value starts at i.
		i = skipBlank(data, i)
		if i >= n {
			return false
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
				if i, ok = validKey(data, i); !ok {
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
			i++
			if obj {
				if i, ok = validKey(data, skipBlank(data, i)); !ok {
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

// validKey checks a member's key and its colon at i; it returns where the
// member's value may start.
func validKey(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return i, false
	}
	i, ok := validString(data, i)
	if !ok {
		return i, false
	}
	i = skipBlank(data, i)
	if i >= len(data) || data[i] != ':' {
		return i, false
	}
	return i + 1, true
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
