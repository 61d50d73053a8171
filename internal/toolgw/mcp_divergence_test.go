package toolgw_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// oddMCPCases: requests an attacker holding the job token might send; each is
// posted to the direct handler and to the SDK-only handler and the answers
// compared. It also records whether the direct path took the request.
func oddMCPCases() []mcpRequest {
	V := vaultName
	call := func(id, params string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{` + params + `}}`
	}
	get := func(extra string) string {
		return `"name":"keyvault_get_secret","arguments":{"vault":"` + V + `","name":"agent/app/db-password"` + extra + `}`
	}
	deep := strings.Repeat(`[`, 1500) + strings.Repeat(`]`, 1500)
	old := oldProtoHeaders("2025-11-25")
	kv := newProtoHeaders("keyvault_get_secret")
	return []mcpRequest{
		{"deep nesting 1500 in arguments", old, call("1", get(`,"x":`+deep)), false},
		{"deep nesting 1500 in _meta", old, call("2", `"_meta":{"x":`+deep+`},`+get("")), false},
		{"nested duplicate key in arguments", old, call("3", get(`,"x":{"a":1,"a":2}`)), false},
		{"invalid utf8 in argument", old, call("4", get(`,"x":"`+"\xff\xfe"+`"`)), false},
		{"invalid utf8 in id", old, call(`"`+"\xff"+`"`, get("")), false},
		{"invalid utf8 in meta key", old, call("5", `"_meta":{"`+"\xff"+`":1},`+get("")), false},
		{"lone surrogate id", old, call(`"\ud800"`, get("")), false},
		{"escaped tool name", old, call("6", `"name":"keyvault\u005fget_secret","arguments":{"vault":"`+V+`","name":"agent/app/db-password"}`), false},
		{"escaped tool name new proto", kv, call("7", newMeta+`,"name":"keyvault\u005fget_secret","arguments":{"vault":"`+V+`","name":"agent/app/db-password"}`), false},
		{"progressToken object", old, call("8", `"_meta":{"progressToken":{"a":1}},`+get("")), false},
		{"progressToken null", old, call("9", `"_meta":{"progressToken":null},`+get("")), false},
		{"new proto capabilities wrong type", kv, call("10", `"_meta":{"io.modelcontextprotocol/clientCapabilities":{"roots":1},"io.modelcontextprotocol/protocolVersion":"2026-07-28"},`+get("")), false},
		{"new proto clientInfo extra", kv, call("11", `"_meta":{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1","x":[1]},"io.modelcontextprotocol/protocolVersion":"2026-07-28"},`+get("")), false},
		{"new proto clientInfo null", kv, call("12", `"_meta":{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":null,"io.modelcontextprotocol/protocolVersion":"2026-07-28"},`+get("")), false},
		{"new proto meta extra unknown", kv, call("13", `"_meta":{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/relatedTask":{"taskId":"x"}},`+get("")), false},
		{"old proto with clientCapabilities meta", old, call("14", `"_meta":{"io.modelcontextprotocol/clientCapabilities":{}},`+get("")), false},
		{"old proto meta protocolVersion null", old, call("15", `"_meta":{"io.modelcontextprotocol/protocolVersion":null},`+get("")), false},
		{"old proto meta protocolVersion empty", old, call("16", `"_meta":{"io.modelcontextprotocol/protocolVersion":""},`+get("")), false},
		{"_meta null", old, call("17", `"_meta":null,`+get("")), false},
		{"id -0", old, call("-0", get("")), false},
		{"id big", old, call("4503599627370495", get("")), false},
		{"id negative", old, call("-4503599627370496", get("")), false},
		{"id empty string", old, call(`""`, get("")), false},
		{"name null", old, call("18", `"name":null`), false},
		{"upstream form", old, call("19", `"name":"fs__read_file","arguments":{"path":"/etc/passwd"}`), false},
		{"case variant tool", old, call("20", `"name":"KeyVault_Get_Secret","arguments":{}`), false},
		{"session id header", withHeaders(old, "Mcp-Session-Id", "abc"), call("21", get("")), false},
		{"empty version header value", withHeaders(old, "Mcp-Protocol-Version", " "), call("22", get("")), false},
		{"new proto param header", withHeaders(kv, "Mcp-Param-Vault", "x"), call("23", newMeta+","+get("")), false},
		{"2024-11-05", oldProtoHeaders("2024-11-05"), call("24", get("")), false},
		{"new proto no clientInfo", kv, call("25", `"_meta":{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/protocolVersion":"2026-07-28"},`+get("")), false},
		{"arguments empty object", old, call("26", `"name":"keyvault_get_secret","arguments":{}`), false},
		{"whitespace body", old, "\n\t " + call("27", get("")) + " \n", false},
		{"big number arg", old, call("28", get(`,"x":1e999`)), false},
		{"secret name escaped", old, call("29", `"name":"keyvault_get_secret","arguments":{"vault":"`+V+`","name":"prod\/db-password"}`), false},
	}
}

func TestMCPDirectMatchesSDKOnOddRequests(t *testing.T) {
	e := start(t)
	_, tok := e.job(e.publish([]byte(fsPolicy)))
	g := e.node.Tools
	direct := httptest.NewServer(g.MCPHandler())
	defer direct.Close()
	sdk := httptest.NewServer(g.MCPHandlerSDK())
	defer sdk.Close()
	for _, c := range oddMCPCases() {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "http://127.0.0.1/mcp", strings.NewReader(c.body))
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}))
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			served := g.ServeToolCall(rec, req)
			got, want := postMCP(t, direct.URL, tok, c), postMCP(t, sdk.URL, tok, c)
			same := got.status == want.status && got.contentType == want.contentType && got.cache == want.cache && reflect.DeepEqual(got.body, want.body)
			t.Logf("direct took it: %v; same answer: %v", served, same)
			if !same {
				t.Errorf("DIVERGENCE\ndirect: %d %q\n%.400s\nSDK: %d %q\n%.400s", got.status, got.contentType, got.raw, want.status, want.contentType, want.raw)
			}
		})
	}
}
