package toolgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpRequest is one POST to /mcp: headers beyond the token and the body.
type mcpRequest struct {
	name    string
	headers map[string]string
	body    string
	direct  bool // the direct tools/call path must answer it
}

func newProtoHeaders(tool string) map[string]string {
	return map[string]string{"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
		"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}
}

func oldProtoHeaders(version string) map[string]string {
	h := map[string]string{"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
	if version != "" {
		h["Mcp-Protocol-Version"] = version
	}
	return h
}

func withHeaders(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

const newMeta = `"_meta":{"io.modelcontextprotocol/clientCapabilities":{"roots":{"listChanged":true}},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`

func mcpDirectCases() []mcpRequest {
	get := `"name":"keyvault_get_secret","arguments":{"vault":"` + vaultName + `","name":"agent/app/db-password"}`
	denied := `"name":"keyvault_get_secret","arguments":{"vault":"` + vaultName + `","name":"prod/db-password"}`
	call := func(id, params string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{` + params + `}}`
	}
	kv := newProtoHeaders("keyvault_get_secret")
	return []mcpRequest{
		{"new protocol", kv, call("7", newMeta+","+get), true},
		{"new protocol, string id, meta last", kv, call(`"abc"`, get+","+newMeta), true},
		{"new protocol, denied", kv, call("8", newMeta+","+denied), true},
		{"2025-11-25", oldProtoHeaders("2025-11-25"), call("9", get), true},
		{"2025-06-18 with _meta", oldProtoHeaders("2025-06-18"), call("10", `"_meta":{"progressToken":1},`+get), true},
		{"2025-03-26 denied", oldProtoHeaders("2025-03-26"), call("11", denied), true},
		{"no version header", oldProtoHeaders(""), call("12", get), true},
		{"no arguments", oldProtoHeaders("2025-11-25"), call("13", `"name":"keyvault_get_secret"`), true},
		// Left to the SDK.
		{"unknown tool", kv, call("20", newMeta+`,"name":"nope","arguments":{}`), false},
		{"Mcp-Name mismatch", withHeaders(kv, "Mcp-Name", "other"), call("21", newMeta+","+get), false},
		{"Mcp-Method missing", withHeaders(kv, "Mcp-Method", ""), call("22", newMeta+","+get), false},
		{"meta version mismatch", withHeaders(kv, "Mcp-Protocol-Version", "2025-11-25"), call("23", newMeta+","+get), false},
		{"new protocol without _meta", kv, call("24", get), false},
		{"new protocol without capabilities", kv, call("25", `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},`+get), false},
		{"unsupported version", oldProtoHeaders("2024-01-01"), call("26", get), false},
		{"future version", withHeaders(kv, "Mcp-Protocol-Version", "2027-01-01"), call("27", newMeta+","+get), false},
		{"duplicate member", oldProtoHeaders("2025-11-25"), call("28", get+`,"name":"nope"`), false},
		{"null arguments", oldProtoHeaders("2025-11-25"), call("29", `"name":"keyvault_get_secret","arguments":null`), false},
		{"array arguments", oldProtoHeaders("2025-11-25"), call("30", `"name":"keyvault_get_secret","arguments":[]`), false},
		{"fractional id", oldProtoHeaders("2025-11-25"), call("1.5", get), false},
		{"null id", oldProtoHeaders("2025-11-25"), call("null", get), false},
		{"extra params member", oldProtoHeaders("2025-11-25"), call("31", get+`,"task":{}`), false},
		{"extra top member", oldProtoHeaders("2025-11-25"), `{"jsonrpc":"2.0","id":32,"method":"tools/call","params":{` + get + `},"x":1}`, false},
		{"batch", oldProtoHeaders("2025-03-26"), `[` + call("33", get) + `]`, false},
		{"notification", oldProtoHeaders("2025-11-25"), `{"jsonrpc":"2.0","method":"tools/call","params":{` + get + `}}`, false},
		{"tools/list", oldProtoHeaders("2025-11-25"), `{"jsonrpc":"2.0","id":34,"method":"tools/list"}`, false},
		{"wildcard Accept", withHeaders(oldProtoHeaders("2025-11-25"), "Accept", "*/*"), call("35", get), false},
		{"charset", withHeaders(oldProtoHeaders("2025-11-25"), "Content-Type", "application/json; charset=utf-8"), call("36", get), false},
		{"no Accept", withHeaders(oldProtoHeaders("2025-11-25"), "Accept", ""), call("37", get), false},
		{"Last-Event-ID", withHeaders(oldProtoHeaders("2025-11-25"), "Last-Event-ID", "x"), call("38", get), false},
		{"jsonrpc 1.0", oldProtoHeaders("2025-11-25"), `{"jsonrpc":"1.0","id":39,"method":"tools/call","params":{` + get + `}}`, false},
		{"trailing data", oldProtoHeaders("2025-11-25"), call("40", get) + `{}`, false},
		{"not JSON", oldProtoHeaders("2025-11-25"), `{"jsonrpc":`, false},
	}
}

var receiptID = regexp.MustCompile(`tool_[0-9a-f]{32}`)

type mcpAnswer struct {
	status             int
	contentType, cache string
	body               any
	raw                string
}

func postMCP(t *testing.T, url, tok string, c mcpRequest) mcpAnswer {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(c.body))
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := mcpAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), cache: resp.Header.Get("Cache-Control")}
	norm := receiptID.ReplaceAll(raw, []byte("tool_RECEIPT"))
	a.raw = string(norm)
	if json.Unmarshal(norm, &a.body) != nil {
		a.body = strings.TrimSpace(string(norm)) // a plain-text or empty answer
	}
	return a
}

// TestMCPDirectToolCall: the direct tools/call path answers exactly what
// the MCP SDK's handler answers (status, headers, JSON-RPC response), for
// the requests it takes, and leaves every other request to the SDK.
func TestMCPDirectToolCall(t *testing.T) {
	e := start(t)
	_, tok := e.job(e.publish([]byte(fsPolicy)))
	g := e.node.Tools
	direct := httptest.NewServer(g.MCPHandler())
	defer direct.Close()
	sdk := httptest.NewServer(g.MCPHandlerSDK())
	defer sdk.Close()
	for _, c := range mcpDirectCases() {
		t.Run(c.name, func(t *testing.T) {
			got, want := postMCP(t, direct.URL, tok, c), postMCP(t, sdk.URL, tok, c)
			if got.status != want.status || got.contentType != want.contentType || got.cache != want.cache || !reflect.DeepEqual(got.body, want.body) {
				t.Fatalf("direct path: %d %q %q\n%s\nSDK: %d %q %q\n%s", got.status, got.contentType, got.cache, got.raw, want.status, want.contentType, want.cache, want.raw)
			}
			req := httptest.NewRequest("POST", "http://127.0.0.1/mcp", strings.NewReader(c.body))
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}))
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			if served := g.ServeToolCall(rec, req); served != c.direct {
				t.Fatalf("direct path answered: %v, want %v (%d %s)", served, c.direct, rec.Code, rec.Body)
			}
			if !c.direct {
				if b, _ := io.ReadAll(req.Body); string(b) != c.body {
					t.Fatalf("the body left to the SDK is %q", b)
				}
			}
			if c.direct && c.name != "no arguments" { // a refusal of the arguments has no receipt
				if !strings.Contains(want.raw, `tool_RECEIPT`) {
					t.Fatalf("no receipt in %s", want.raw)
				}
			}
		})
	}
}

// TestMCPDirectRefusals: the direct path keeps the handler's checks: a
// request for another host on a loopback listener (DNS rebinding) and a body
// over the limit are not served.
func TestMCPDirectRefusals(t *testing.T) {
	e := start(t)
	_, tok := e.job(e.publish([]byte(fsPolicy)))
	direct := httptest.NewServer(e.node.Tools.MCPHandler())
	defer direct.Close()
	c := mcpDirectCases()[0]
	req, _ := http.NewRequest("POST", direct.URL, strings.NewReader(c.body))
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("rebinding Host: %d", resp.StatusCode)
	}

	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"keyvault_get_secret","arguments":{"pad":"` + strings.Repeat("a", 4<<20) + `"}}}`
	a := postMCP(t, direct.URL, tok, mcpRequest{headers: oldProtoHeaders("2025-11-25"), body: big})
	if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.raw, "REQUEST_TOO_LARGE") {
		t.Fatalf("oversized body: %d %s", a.status, a.raw)
	}
}

// TestMCPTypeScriptClient: the official TypeScript SDK's streamable HTTP
// client (the one OpenClaw uses) lists and calls the gateway's tools over
// /mcp. It runs each copy of @modelcontextprotocol/sdk found (the pinned
// test servers' and OpenClaw's).
func TestMCPTypeScriptClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found")
	}
	var dirs []string
	if d := os.Getenv("CLAWEA_MCP_SERVERS_DIR"); d != "" {
		dirs = append(dirs, filepath.Join(d, "node_modules"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "clawea-npm", "node_modules"), filepath.Join(home, ".cache", "clawea-openclaw", "node_modules"))
	}
	seen := map[string]bool{}
	e := start(t)
	_, tok := e.job(e.publish([]byte(fsPolicy)))
	ran := 0
	for _, d := range dirs {
		sdk := filepath.Join(d, "@modelcontextprotocol", "sdk")
		if seen[sdk] {
			continue
		}
		seen[sdk] = true
		pkg, err := os.ReadFile(filepath.Join(sdk, "package.json"))
		if err != nil {
			continue
		}
		var meta struct{ Version string }
		json.Unmarshal(pkg, &meta)
		ran++
		t.Run(meta.Version, func(t *testing.T) {
			script := `
const { Client } = await import(process.argv[1] + "/dist/esm/client/index.js");
const { StreamableHTTPClientTransport } = await import(process.argv[1] + "/dist/esm/client/streamableHttp.js");
const c = new Client({ name: "ts-agent", version: "1" });
await c.connect(new StreamableHTTPClientTransport(new URL(process.argv[2]), { requestInit: { headers: { Authorization: "Bearer " + process.argv[3] } } }));
const tools = await c.listTools();
const ok = await c.callTool({ name: "keyvault_get_secret", arguments: { vault: process.argv[4], name: "agent/app/db-password" } });
const denied = await c.callTool({ name: "keyvault_get_secret", arguments: { vault: process.argv[4], name: "prod/db-password" } });
await c.close();
console.log(JSON.stringify({ tools: tools.tools.map((t) => t.name), ok, denied }));
`
			cmd := exec.Command(node, "--input-type=module", "-e", script, sdk, e.url+"/mcp", tok, vaultName)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			var got struct {
				Tools  []string
				OK     mcp.CallToolResult
				Denied mcp.CallToolResult
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !strings.Contains(strings.Join(got.Tools, ","), "keyvault_get_secret") {
				t.Fatalf("tools: %v", got.Tools)
			}
			if got.OK.IsError || got.OK.Meta["clawea/receipt_id"] == nil || len(got.OK.Content) == 0 {
				t.Fatalf("call: %s", out)
			}
			if strings.Contains(string(out), dbPassword) {
				t.Fatalf("the secret reached the agent: %s", out)
			}
			if !got.Denied.IsError || !strings.Contains(string(out), "POLICY_DENIED") {
				t.Fatalf("denied call: %s", out)
			}
		})
	}
	if ran == 0 {
		t.Skip("no copy of @modelcontextprotocol/sdk found")
	}
}
