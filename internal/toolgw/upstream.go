package toolgw

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/mcpproxy"
)

// Proxied MCP tools (docs/mcp-proxy.md). Every tool of a configured
// upstream MCP server is a tool here named <server>__<tool>, with action
// mcp:call on mcp://<server>/<tool>, and goes through Call like the
// built-in tools: token, policy decision, egress guard, lockdown,
// approvals, redaction of the result, signed receipt.

// ActionMCPCall is the policy action of a proxied MCP tool call.
const ActionMCPCall = "mcp:call"

// Context keys of proxied calls (policy.KnownKeys, KnownKeyPrefixes).
const (
	KeyMCPServer = "MCP:Server"
	KeyMCPTool   = "MCP:Tool"
	KeyMCPArg    = "MCP:Arg."
)

// maxUpstreamResult bounds an upstream tool's answer.
const maxUpstreamResult = 8 << 20

// proxy is what a proxied tool adds to a tool.
type proxy struct {
	up     *mcpproxy.Upstream
	server string // canonical server name
	tool   string // canonical tool name (in the resource)
	remote string // the tool's name upstream
	schema map[string]any
}

// MCPResource is the resource of a proxied tool.
func MCPResource(server, tool string) string { return "mcp://" + server + "/" + tool }

// addUpstreams lists the tools of every upstream and adds them to the
// catalog. A server that cannot be reached or listed fails New: its tools
// would otherwise be silently missing.
func (g *Gateway) addUpstreams(ups []*mcpproxy.Upstream, timeout time.Duration) error {
	seen := map[string]bool{}
	for _, up := range ups {
		if seen[up.Name()] {
			return fmt.Errorf("toolgw: mcp upstream %s is configured twice", up.Name())
		}
		seen[up.Name()] = true
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		tools, err := up.Tools(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("toolgw: %w", err)
		}
		// Names that differ only in case would be one tool here: both are
		// left out rather than guess.
		count := map[string]int{}
		for _, t := range tools {
			if n, ok := mcpproxy.CanonicalTool(t.Name); ok {
				count[n]++
			}
		}
		for _, mt := range tools {
			name, ok := mcpproxy.CanonicalTool(mt.Name)
			if !ok || count[name] > 1 {
				g.opt.Log.Warn("mcp upstream tool left out (name outside [A-Za-z0-9_.-] or ambiguous)", "server", up.Name(), "tool", mt.Name)
				continue
			}
			t := g.proxiedTool(up, name, mt)
			if t == nil {
				g.opt.Log.Warn("mcp upstream tool left out (its input schema is not an object)", "server", up.Name(), "tool", mt.Name)
				continue
			}
			if g.byName[t.name] != nil {
				return fmt.Errorf("toolgw: tool %s is defined twice", t.name)
			}
			g.tools = append(g.tools, t)
			g.byName[t.name] = t
		}
		g.upstreams = append(g.upstreams, up)
	}
	return nil
}

func (g *Gateway) proxiedTool(up *mcpproxy.Upstream, name string, mt *mcp.Tool) *tool {
	p := &proxy{up: up, server: up.Name(), tool: name, remote: mt.Name}
	if raw, err := json.Marshal(mt.InputSchema); err == nil {
		json.Unmarshal(raw, &p.schema)
	}
	if p.schema == nil {
		p.schema = map[string]any{"type": "object"}
	}
	if p.schema["type"] != "object" {
		return nil // MCP requires an object schema; such a tool is left out
	}
	// A tool is a write unless its server says it only reads: lockdown
	// refuses it and a success leaves a side-effect record.
	readOnly := mt.Annotations != nil && mt.Annotations.ReadOnlyHint
	desc := mt.Description
	if len(desc) > 4096 {
		desc = desc[:4096]
	}
	t := &tool{name: up.Name() + mcpproxy.Separator + name, description: desc, action: ActionMCPCall, mutating: !readOnly, proxy: p}
	t.prepare = func(g *Gateway, a *args) (*call, *Error) { return g.prepareProxied(t, a) }
	return t
}

// prepareProxied builds a proxied call: the resource, the context keys
// (the arguments' top-level string values as MCP:Arg.<name>, names in
// lower case) and the upstream call.
func (g *Gateway) prepareProxied(t *tool, a *args) (*call, *Error) {
	p := t.proxy
	c := &call{tool: t, resource: MCPResource(p.server, p.tool), ctx: map[string]string{KeyMCPServer: p.server, KeyMCPTool: p.tool}}
	for _, m := range a.v.Members {
		if !m.Value.IsString() {
			continue
		}
		k := KeyMCPArg + lowerASCII(m.Key)
		if _, dup := c.ctx[k]; dup {
			return nil, badArg("arguments %q and another differ only in case", m.Key)
		}
		c.ctx[k] = m.Value.Str
	}
	raw := canon.AppendCompact(nil, &a.v)
	c.run = func(ctx context.Context) (any, error) {
		res, err := p.up.Call(ctx, p.remote, raw)
		if err != nil {
			return nil, err
		}
		out, err := json.Marshal(res)
		if err != nil {
			return nil, err
		}
		if len(out) > maxUpstreamResult {
			return nil, fmt.Errorf("the answer of %s exceeds %d bytes", t.name, maxUpstreamResult)
		}
		c.upstreamError = res.IsError
		return json.RawMessage(out), nil
	}
	return c, nil
}

// lowerASCII lowers ASCII letters only, as the policy compiles the names
// of MCP:Arg.<name> keys (U+212A KELVIN SIGN stays itself, not k).
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

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

// Close stops the upstream MCP servers.
func (g *Gateway) Close() error {
	for _, up := range g.upstreams {
		up.Close()
	}
	return nil
}
