package toolgw

import (
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// FuzzParseToolCallVsSDK: whatever the direct tools/call path takes, the
// SDK's own JSON-RPC decoder takes too, as a tools/call request (the
// direct path must never answer what the SDK would refuse).
func FuzzParseToolCallVsSDK(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}}`), false)
	f.Add([]byte(`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"t"}}`), true)
	deep := strings.Repeat(`[`, 1100) + strings.Repeat(`]`, 1100)
	f.Add([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"_meta":{"x":`+deep+`},"name":"t","arguments":{}}}`), false)
	f.Add([]byte(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"a":`+deep+`}}}`), false)
	f.Fuzz(func(t *testing.T, body []byte, newProto bool) {
		c, ok := parseToolCall(body, newProto)
		if !ok {
			return
		}
		msg, err := jsonrpc.DecodeMessage(body)
		if err != nil {
			t.Fatalf("the direct path takes %q; the SDK refuses it: %v", body, err)
		}
		req, isReq := msg.(*jsonrpc.Request)
		if !isReq || req.Method != "tools/call" || !req.ID.IsValid() {
			t.Fatalf("the direct path takes %q as a tools/call; the SDK reads %T %+v", body, msg, msg)
		}
		if c.name == "" {
			t.Fatalf("the direct path takes %q without a tool name", body)
		}
	})
}

// TestParseToolCallDepthAsSDK: nesting past the SDK decoder's bound is
// left to the SDK (which refuses it), in _meta and in arguments.
func TestParseToolCallDepthAsSDK(t *testing.T) {
	deep := strings.Repeat(`[`, 1500) + strings.Repeat(`]`, 1500)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"_meta":{"x":` + deep + `},"name":"keyvault_get_secret","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"keyvault_get_secret","arguments":{"a":` + deep + `}}}`,
	} {
		if _, err := jsonrpc.DecodeMessage([]byte(body)); err == nil {
			t.Fatal("the SDK's decoder now takes this depth; update the test")
		}
		if _, ok := parseToolCall([]byte(body), false); ok {
			t.Error("the direct path takes a body the SDK refuses")
		}
	}
}
