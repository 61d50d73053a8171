package toolgw

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseToolCall feeds untrusted /mcp bodies to the direct tools/call
// path's parser: it never panics, and what it takes is one valid JSON
// object with no member twice, a tools/call with a non-empty tool name,
// arguments that are an object (or absent), an id that is a string or an
// integer, and under the new protocol the protocol version in _meta.
func FuzzParseToolCall(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"t"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","name":"u"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}]`,
		`{"jsonrpc":"2.0","id":1e3,"method":"tools/call","params":{"name":"t"}} {}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":null}}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, newProto bool) {
		c, ok := parseToolCall(body, newProto)
		if !ok {
			return
		}
		if !json.Valid(body) || bytes.TrimSpace(body)[0] != '{' {
			t.Fatalf("took %q", body)
		}
		if c.name == "" {
			t.Fatal("empty tool name")
		}
		if c.args != nil {
			if _, ok := strictObject(c.args); !ok {
				t.Fatalf("arguments %q", c.args)
			}
		}
		switch id := c.id.(type) {
		case string:
		case float64:
			if id != float64(int64(id)) {
				t.Fatalf("id %v", id)
			}
		default:
			t.Fatalf("id %T", c.id)
		}
		top, ok := strictObject(body)
		if !ok || len(top) != 4 {
			t.Fatalf("members of %q", body)
		}
		var p struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
		json.Unmarshal(top["params"], &p)
		_, hasPV := p.Meta[metaProtocolVersion]
		if hasPV != newProto {
			t.Fatalf("protocol version in _meta: %v, new protocol: %v", hasPV, newProto)
		}
	})
}
