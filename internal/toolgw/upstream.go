package toolgw

import (
	"encoding/json"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/internal/mcpproxy"
)

// Proxied MCP tools (docs/mcp-proxy.md). The tools of the configured
// upstream MCP servers are the mcpproxy connector's (mcpproxy.Tools); they
// go through Call like the built-in tools: token, policy decision, egress
// guard, lockdown, approvals, redaction of the result, signed receipt.

// ActionMCPCall is the policy action of a proxied MCP tool call.
const ActionMCPCall = mcpproxy.ActionMCPCall

// Context keys of proxied calls (policy.KnownKeys, KnownKeyPrefixes).
const (
	KeyMCPServer = mcpproxy.KeyMCPServer
	KeyMCPTool   = mcpproxy.KeyMCPTool
	KeyMCPArg    = mcpproxy.KeyMCPArg
)

// MCPResource is the resource of a proxied tool.
func MCPResource(server, tool string) string { return mcpproxy.Resource(server, tool) }

// proxiedResult turns a proxied call's output (the upstream's
// CallToolResult, redacted) back into an MCP result.
func proxiedResult(res *Result) (*mcp.CallToolResult, error) {
	var out mcp.CallToolResult
	if err := json.Unmarshal(res.Output, &out); err != nil {
		return nil, err
	}
	if out.Meta == nil {
		out.Meta = mcp.Meta{}
	}
	// The clawea/ keys are clawea's: an upstream cannot name a receipt or
	// an approval.
	for k := range out.Meta {
		if strings.HasPrefix(k, "clawea/") {
			delete(out.Meta, k)
		}
	}
	out.Meta["clawea/receipt_id"] = res.ReceiptID
	if res.ApprovalID != "" {
		out.Meta["clawea/approval_id"] = res.ApprovalID
	}
	return &out, nil
}

// Close stops the connectors that hold resources (the upstream MCP
// servers).
func (g *Gateway) Close() error {
	for _, c := range g.conns {
		if cl, ok := c.(interface{ Close() error }); ok {
			cl.Close()
		}
	}
	return nil
}
