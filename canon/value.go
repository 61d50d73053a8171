// Package canon parses JSON into an order-preserving tree and writes it back
// in the two canonical forms the Clawsig protocol hashes:
//
//   - Compact: what ECMAScript's JSON.stringify(JSON.parse(doc)) produces.
//     Object keys keep document order (array-index keys first, as in
//     JavaScript), strings and numbers use the ECMAScript rules. Envelope
//     payloads, event headers and URM documents are hashed in this form.
//   - JCS: RFC 8785, keys sorted by UTF-16 code units, the same string and
//     number rules. Policy hashes, token scope hashes, export and aggregate
//     manifests and m1 signatures use this form.
//
// Strings are held as WTF-8 so that a lone UTF-16 surrogate written as a
// \uXXXX escape survives a round trip exactly as it would in JavaScript.
// Raw input must be valid UTF-8; nesting deeper than MaxDepth is refused.
package canon

import (
	"math"
)

// Kind is the JSON type of a Value.
type Kind uint8

// The JSON kinds.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// String returns the JavaScript typeof-style name of the kind, with "null"
// and "array" told apart as the protocol's selective disclosure does.
func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "invalid"
}

// Value is one node of a parsed JSON document. Only the fields that belong
// to its Kind are meaningful. A Value must not be copied after its address
// has been taken for span recording (see Encoder).
type Value struct {
	Kind    Kind
	Boolean bool
	Num     float64
	Str     string // WTF-8
	Items   []Value
	Members []Member
}

// Member is one key/value pair of an object, in document order.
type Member struct {
	Key   string // WTF-8
	Value Value
}

// Get returns the value of key in an object, or nil when v is not an object
// or has no such key.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Object {
		return nil
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			return &v.Members[i].Value
		}
	}
	return nil
}

// Has reports whether v is an object with key.
func (v *Value) Has(key string) bool { return v.Get(key) != nil }

// StringOf returns the string held by key and whether key holds a string.
func (v *Value) StringOf(key string) (string, bool) {
	m := v.Get(key)
	if m == nil || m.Kind != String {
		return "", false
	}
	return m.Str, true
}

// IsObject reports whether v is a non-nil object.
func (v *Value) IsObject() bool { return v != nil && v.Kind == Object }

// IsArray reports whether v is a non-nil array.
func (v *Value) IsArray() bool { return v != nil && v.Kind == Array }

// IsString reports whether v is a non-nil string.
func (v *Value) IsString() bool { return v != nil && v.Kind == String }

// IsNumber reports whether v is a non-nil number.
func (v *Value) IsNumber() bool { return v != nil && v.Kind == Number }

// IsInteger reports whether v is a finite number with no fractional part.
func (v *Value) IsInteger() bool {
	return v != nil && v.Kind == Number && !math.IsInf(v.Num, 0) && v.Num == math.Trunc(v.Num)
}

// Set replaces the value of key, or appends key at the end when it is absent,
// which is where JavaScript would put a new property.
func (v *Value) Set(key string, val Value) {
	for i := range v.Members {
		if v.Members[i].Key == key {
			v.Members[i].Value = val
			return
		}
	}
	v.Members = append(v.Members, Member{Key: key, Value: val})
}

// Delete removes key from an object, keeping the order of the others.
func (v *Value) Delete(key string) {
	for i := range v.Members {
		if v.Members[i].Key == key {
			v.Members = append(v.Members[:i:i], v.Members[i+1:]...)
			return
		}
	}
}

// Clone returns a deep copy of v.
func (v *Value) Clone() Value {
	out := *v
	if v.Items != nil {
		out.Items = make([]Value, len(v.Items))
		for i := range v.Items {
			out.Items[i] = v.Items[i].Clone()
		}
	}
	if v.Members != nil {
		out.Members = make([]Member, len(v.Members))
		for i := range v.Members {
			out.Members[i] = Member{Key: v.Members[i].Key, Value: v.Members[i].Value.Clone()}
		}
	}
	return out
}

// NewString returns a string Value.
func NewString(s string) Value { return Value{Kind: String, Str: s} }

// NewNumber returns a number Value.
func NewNumber(f float64) Value { return Value{Kind: Number, Num: f} }

// NewBool returns a boolean Value.
func NewBool(b bool) Value { return Value{Kind: Bool, Boolean: b} }
