package canon

import (
	"encoding/json"
	"fmt"
)

// Marshal encodes a Go value with encoding/json (struct fields in
// declaration order, which fixes the key order) and returns its compact
// canonical form. Producers build typed payloads this way so that what they
// hash is exactly what a verifier re-serialises.
func Marshal(v any) ([]byte, error) {
	val, err := ValueOf(v)
	if err != nil {
		return nil, err
	}
	return AppendCompact(nil, &val), nil
}

// ValueOf encodes a Go value with encoding/json and parses the result.
func ValueOf(v any) (Value, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return Value{}, fmt.Errorf("canon: %w", err)
	}
	return Parse(raw)
}

// MarshalJCS encodes a Go value and returns its RFC 8785 form.
func MarshalJCS(v any) ([]byte, error) {
	val, err := ValueOf(v)
	if err != nil {
		return nil, err
	}
	return AppendJCS(nil, &val), nil
}

// MarshalJSON lets a Value be embedded in Go structs; it writes the compact
// form.
func (v Value) MarshalJSON() ([]byte, error) { return AppendCompact(nil, &v), nil }

// UnmarshalJSON parses JSON into v, preserving key order.
func (v *Value) UnmarshalJSON(data []byte) error {
	p, err := Parse(data)
	if err != nil {
		return err
	}
	*v = p
	return nil
}
