package verify

import (
	"fmt"
	"math"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
)

// This file is a small structural validator. The protocol's artifacts are
// described by JSON Schema documents in the reference repository; clawea
// expresses the same constraints as Go values (see schemas*.go) and checks
// them with this code, which covers the keywords those schemas use: type,
// const, enum, pattern (as Go predicates), minLength/maxLength,
// minimum/maximum, format date-time and uri, properties, required,
// additionalProperties (false or a schema), items, minItems/maxItems,
// oneOf, anyOf (of required sets) and propertyNames limits.

// parallelItems is the array length from which items are validated in
// parallel.
const parallelItems = 64

type jtype uint8

const (
	tString jtype = 1 << iota
	tNumber
	tInteger
	tBool
	tNull
	tObject
	tArray
)

type format uint8

const (
	fmtNone format = iota
	fmtDateTime
	fmtURI
)

type prop struct {
	name string
	s    *schema
}

type schema struct {
	name    string // for messages, e.g. "tool_receipt.v1"
	types   jtype  // 0: any
	hasCnst bool
	cnst    canon.Value
	enum    []string
	pattern func(string) bool
	patDesc string
	minLen  int
	maxLen  int // -1: none
	hasMin  bool
	min     float64
	hasMax  bool
	max     float64
	exclMin bool
	format  format

	props    []prop
	required []string
	closed   bool    // additionalProperties: false
	addl     *schema // additionalProperties: schema
	maxProps int     // -1: none
	keyMax   int     // propertyNames maxLength; 0: none

	items    *schema
	minItems int
	maxItems int // -1: none
	unique   bool

	oneOf       []*schema
	anyOfReq    [][]string // anyOf: [{required: [...]}, ...]
	anyOf       []*schema
	ref         func() *schema // late-bound reference, to allow cycles
	describeRef string
}

func newSchema(t jtype) *schema { return &schema{types: t, maxLen: -1, maxItems: -1, maxProps: -1} }

// Constructors.
func anyv() *schema    { return newSchema(0) }
func str() *schema     { return newSchema(tString) }
func num() *schema     { return newSchema(tNumber) }
func integer() *schema { return newSchema(tInteger) }
func boolean() *schema { return newSchema(tBool) }
func object() *schema  { return newSchema(tObject) }
func array(items *schema) *schema {
	s := newSchema(tArray)
	s.items = items
	return s
}
func constStr(v string) *schema {
	s := newSchema(0)
	s.hasCnst = true
	s.cnst = canon.NewString(v)
	return s
}
func constBool(v bool) *schema {
	s := newSchema(0)
	s.hasCnst = true
	s.cnst = canon.NewBool(v)
	return s
}
func enum(vals ...string) *schema {
	s := str()
	s.enum = vals
	return s
}
func oneOf(ss ...*schema) *schema { s := newSchema(0); s.oneOf = ss; return s }
func anyOf(ss ...*schema) *schema { s := newSchema(0); s.anyOf = ss; return s }
func ref(name string, f func() *schema) *schema {
	s := newSchema(0)
	s.ref = f
	s.describeRef = name
	return s
}

// Common field shapes.
func b64uField() *schema { return str().pat(b64u.IsValid, "base64url").minLength(8) }
func didField() *schema  { return str().pat(hasDIDPrefix, "^did:") }
func dateTime() *schema  { return str().fmt(fmtDateTime) }
func nonEmpty() *schema  { return str().minLength(1) }
func nonNeg() *schema    { return num().minimum(0) }

func hasDIDPrefix(s string) bool { return strings.HasPrefix(s, "did:") }

// Modifiers (each returns the schema for chaining).
func (s *schema) as(name string) *schema    { s.name = name; return s }
func (s *schema) minLength(n int) *schema   { s.minLen = n; return s }
func (s *schema) maxLength(n int) *schema   { s.maxLen = n; return s }
func (s *schema) minimum(f float64) *schema { s.hasMin, s.min = true, f; return s }
func (s *schema) maximum(f float64) *schema { s.hasMax, s.max = true, f; return s }
func (s *schema) exclusiveMinimum(f float64) *schema {
	s.hasMin, s.min, s.exclMin = true, f, true
	return s
}
func (s *schema) fmt(f format) *schema { s.format = f; return s }
func (s *schema) pat(f func(string) bool, desc string) *schema {
	s.pattern, s.patDesc = f, desc
	return s
}
func (s *schema) orNull() *schema { s.types |= tNull; return s }
func (s *schema) with(ps ...prop) *schema {
	s.types |= tObject
	s.props = append(s.props, ps...)
	return s
}
func (s *schema) req(names ...string) *schema  { s.required = append(s.required, names...); return s }
func (s *schema) closedObj() *schema           { s.closed = true; return s }
func (s *schema) additional(a *schema) *schema { s.addl = a; return s }
func (s *schema) maxProperties(n int) *schema  { s.maxProps = n; return s }
func (s *schema) keyMaxLength(n int) *schema   { s.keyMax = n; return s }
func (s *schema) minItemsN(n int) *schema      { s.minItems = n; return s }
func (s *schema) maxItemsN(n int) *schema      { s.maxItems = n; return s }
func (s *schema) uniqueItems() *schema         { s.unique = true; return s }
func (s *schema) anyOfRequired(sets ...[]string) *schema {
	s.anyOfReq = append(s.anyOfReq, sets...)
	return s
}

func p(name string, s *schema) prop { return prop{name: name, s: s} }

// schemaError is the first violation found, with a JSON path.
type schemaError struct {
	Path string
	Msg  string
	segs []string // innermost first, until validate renders Path
}

func (e *schemaError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// validate checks v against s and returns the first violation; prefix
// names v in the error path.
func validate(s *schema, v *canon.Value, prefix string) *schemaError {
	err := validateAt(s, v)
	if err == nil {
		return nil
	}
	// Segments were collected innermost first while unwinding.
	path := prefix
	for i := len(err.segs) - 1; i >= 0; i-- {
		seg := err.segs[i]
		switch {
		case strings.HasPrefix(seg, "["):
			path += seg
		case path == "":
			path = seg
		default:
			path += "." + seg
		}
	}
	err.Path = path
	return err
}

// at records one path segment of an error on its way out; nothing is
// allocated for paths unless a violation is found.
func (e *schemaError) at(seg string) *schemaError {
	e.segs = append(e.segs, seg)
	return e
}

func validateAt(s *schema, v *canon.Value) *schemaError {
	if s.ref != nil {
		return validateAt(s.ref(), v)
	}
	fail := func(format string, args ...any) *schemaError {
		return &schemaError{Msg: fmt.Sprintf(format, args...)}
	}
	if s.types != 0 && !typeMatches(s.types, v) {
		return fail("must be %s", typeNames(s.types))
	}
	if s.hasCnst && !sameJSON(&s.cnst, v) {
		return fail("must equal %s", canon.AppendCompact(nil, &s.cnst))
	}
	if len(s.enum) > 0 {
		ok := false
		if v.Kind == canon.String {
			for _, e := range s.enum {
				if v.Str == e {
					ok = true
					break
				}
			}
		}
		if !ok {
			return fail("must be one of %s", strings.Join(s.enum, ", "))
		}
	}
	switch v.Kind {
	case canon.String:
		if s.minLen > 0 || s.maxLen >= 0 {
			n := utf16Len(v.Str)
			if n < s.minLen {
				return fail("must be at least %d characters", s.minLen)
			}
			if s.maxLen >= 0 && n > s.maxLen {
				return fail("must be at most %d characters", s.maxLen)
			}
		}
		if s.pattern != nil && !s.pattern(v.Str) {
			return fail("must match %s", s.patDesc)
		}
		switch s.format {
		case fmtDateTime:
			if !isRFC3339(v.Str) {
				return fail("must be an RFC 3339 date-time")
			}
		case fmtURI:
			if !isURI(v.Str) {
				return fail("must be an absolute URI")
			}
		}
	case canon.Number:
		if s.hasMin && (v.Num < s.min || s.exclMin && v.Num == s.min) {
			return fail("must be >= %v", s.min)
		}
		if s.hasMax && v.Num > s.max {
			return fail("must be <= %v", s.max)
		}
	case canon.Object:
		for _, r := range s.required {
			if v.Get(r) == nil {
				return fail("missing required property %q", r)
			}
		}
		if s.maxProps >= 0 && len(v.Members) > s.maxProps {
			return fail("must have at most %d properties", s.maxProps)
		}
		if len(s.anyOfReq) > 0 {
			ok := false
			for _, set := range s.anyOfReq {
				all := true
				for _, r := range set {
					if v.Get(r) == nil {
						all = false
						break
					}
				}
				if all {
					ok = true
					break
				}
			}
			if !ok {
				return fail("must have at least one of the evidence properties")
			}
		}
		next := 0 // instances usually list keys in schema order
		for i := range v.Members {
			m := &v.Members[i]
			if s.keyMax > 0 && utf16Len(m.Key) > s.keyMax {
				return fail("property name %q too long", m.Key)
			}
			var ps *schema
			if next < len(s.props) && s.props[next].name == m.Key {
				ps = s.props[next].s
				next++
			} else {
				for j := range s.props {
					if s.props[j].name == m.Key {
						ps, next = s.props[j].s, j+1
						break
					}
				}
			}
			switch {
			case ps != nil:
				if err := validateAt(ps, &m.Value); err != nil {
					return err.at(m.Key)
				}
			case s.closed:
				return (&schemaError{Msg: "unknown property"}).at(m.Key)
			case s.addl != nil:
				if err := validateAt(s.addl, &m.Value); err != nil {
					return err.at(m.Key)
				}
			}
		}
	case canon.Array:
		if len(v.Items) < s.minItems {
			return fail("must have at least %d items", s.minItems)
		}
		if s.maxItems >= 0 && len(v.Items) > s.maxItems {
			return fail("must have at most %d items", s.maxItems)
		}
		if s.items != nil {
			if len(v.Items) >= parallelItems {
				// Large arrays (receipts, events) are checked on all cores;
				// the first failing index is reported, as in a serial walk.
				errs := make([]*schemaError, len(v.Items))
				parallel(len(v.Items), runtime.GOMAXPROCS(0), func(i int) {
					errs[i] = validateAt(s.items, &v.Items[i])
				})
				for i, err := range errs {
					if err != nil {
						return err.at("[" + strconv.Itoa(i) + "]")
					}
				}
			} else {
				for i := range v.Items {
					if err := validateAt(s.items, &v.Items[i]); err != nil {
						return err.at("[" + strconv.Itoa(i) + "]")
					}
				}
			}
		}
		if s.unique {
			for i := range v.Items {
				for j := 0; j < i; j++ {
					if sameJSON(&v.Items[i], &v.Items[j]) {
						return fail("items must be unique")
					}
				}
			}
		}
	}
	if len(s.oneOf) > 0 {
		matched := 0
		for _, alt := range s.oneOf {
			if validateAt(alt, v) == nil {
				matched++
			}
		}
		if matched != 1 {
			if matched == 0 {
				return fail("matches none of the allowed forms")
			}
			return fail("matches more than one allowed form")
		}
	}
	if len(s.anyOf) > 0 {
		ok := false
		for _, alt := range s.anyOf {
			if validateAt(alt, v) == nil {
				ok = true
				break
			}
		}
		if !ok {
			return fail("matches none of the allowed forms")
		}
	}
	return nil
}

func typeMatches(t jtype, v *canon.Value) bool {
	switch v.Kind {
	case canon.String:
		return t&tString != 0
	case canon.Number:
		if t&tNumber != 0 {
			return !math.IsInf(v.Num, 0)
		}
		return t&tInteger != 0 && v.IsInteger()
	case canon.Bool:
		return t&tBool != 0
	case canon.Null:
		return t&tNull != 0
	case canon.Object:
		return t&tObject != 0
	case canon.Array:
		return t&tArray != 0
	}
	return false
}

func typeNames(t jtype) string {
	var n []string
	for _, x := range []struct {
		t    jtype
		name string
	}{{tString, "a string"}, {tNumber, "a number"}, {tInteger, "an integer"}, {tBool, "a boolean"}, {tNull, "null"}, {tObject, "an object"}, {tArray, "an array"}} {
		if t&x.t != 0 {
			n = append(n, x.name)
		}
	}
	return strings.Join(n, " or ")
}

// sameJSON reports deep equality of two JSON values (object key order is
// irrelevant, as in JSON Schema).
func sameJSON(a, b *canon.Value) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case canon.Null:
		return true
	case canon.Bool:
		return a.Boolean == b.Boolean
	case canon.Number:
		return a.Num == b.Num
	case canon.String:
		return a.Str == b.Str
	case canon.Array:
		if len(a.Items) != len(b.Items) {
			return false
		}
		for i := range a.Items {
			if !sameJSON(&a.Items[i], &b.Items[i]) {
				return false
			}
		}
		return true
	case canon.Object:
		if len(a.Members) != len(b.Members) {
			return false
		}
		for i := range a.Members {
			o := b.Get(a.Members[i].Key)
			if o == nil || !sameJSON(&a.Members[i].Value, o) {
				return false
			}
		}
		return true
	}
	return false
}

// utf16Len counts UTF-16 code units, which is how JSON Schema validators in
// JavaScript measure string length.
func utf16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c < 0x80:
			i++
		case c < 0xE0:
			i += 2
		case c < 0xF0:
			i += 3
		default:
			i += 4
			n++ // supplementary: two units
		}
		n++
	}
	return n
}

// isURI approximates the JSON Schema uri format: an absolute URI with a
// scheme and no spaces.
func isURI(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n\"<>\\^`{|}") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Opaque != "" || u.Host != "" || u.Path != "")
}
