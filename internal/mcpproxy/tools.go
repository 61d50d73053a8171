package mcpproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/connector"
)

// The proxied tools (docs/mcp-proxy.md). Every tool of a configured
// upstream MCP server is a tool of the gateway named <server>__<tool>,
// with action mcp:call on mcp://<server>/<tool>, and goes through the
// gateway's checks like the built-in tools: token, policy decision, egress
// guard, lockdown, approvals, redaction of the result, signed receipt.

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

// Resource is the resource of a proxied tool.
func Resource(server, tool string) string { return "mcp://" + server + "/" + tool }

// Tools is the connector of the upstream MCP servers: their tools, listed
// once when it is made.
type Tools struct {
	ups   []*Upstream
	tools []*connector.Tool
}

// NewTools lists the tools of every upstream (each within timeout). A
// server that cannot be reached or listed is an error: its tools would
// otherwise be silently missing. On an error the servers listed so far
// are closed.
func NewTools(ups []*Upstream, timeout time.Duration, log *slog.Logger) (*Tools, error) {
	if log == nil {
		log = slog.Default()
	}
	x := &Tools{}
	seen := map[string]bool{}
	for _, up := range ups {
		if seen[up.Name()] {
			x.Close()
			return nil, fmt.Errorf("mcp upstream %s is configured twice", up.Name())
		}
		seen[up.Name()] = true
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		tools, err := up.Tools(ctx)
		cancel()
		if err != nil {
			x.Close()
			return nil, err
		}
		// Names that differ only in case would be one tool here: both are
		// left out rather than guess.
		count := map[string]int{}
		for _, t := range tools {
			if n, ok := CanonicalTool(t.Name); ok {
				count[n]++
			}
		}
		for _, mt := range tools {
			name, ok := CanonicalTool(mt.Name)
			if !ok || count[name] > 1 {
				log.Warn("mcp upstream tool left out (name outside [A-Za-z0-9_.-] or ambiguous)", "server", up.Name(), "tool", mt.Name)
				continue
			}
			t := proxiedTool(up, name, mt)
			if t == nil {
				log.Warn("mcp upstream tool left out (its input schema is not an object)", "server", up.Name(), "tool", mt.Name)
				continue
			}
			x.tools = append(x.tools, t)
		}
		x.ups = append(x.ups, up)
	}
	return x, nil
}

// Tools are the proxied tools, server by server in configuration order.
func (x *Tools) Tools() []*connector.Tool { return x.tools }

// Names is empty: a server's name is in its tools' names.
func (x *Tools) Names() []string { return nil }

// Close stops the upstream servers.
func (x *Tools) Close() error {
	for _, up := range x.ups {
		up.Close()
	}
	return nil
}

func proxiedTool(up *Upstream, name string, mt *mcp.Tool) *connector.Tool {
	var schema map[string]any
	if raw, err := json.Marshal(mt.InputSchema); err == nil {
		json.Unmarshal(raw, &schema)
	}
	if schema == nil {
		schema = map[string]any{"type": "object"}
	}
	if schema["type"] != "object" {
		return nil // MCP requires an object schema; such a tool is left out
	}
	// A tool is a write unless its server says it only reads: lockdown
	// refuses it and a success leaves a side-effect record.
	readOnly := mt.Annotations != nil && mt.Annotations.ReadOnlyHint
	desc := mt.Description
	if len(desc) > 4096 {
		desc = desc[:4096]
	}
	t := &connector.Tool{Name: up.Name() + Separator + name, Description: desc, Action: ActionMCPCall, Mutating: !readOnly,
		Schema: schema, Resource: Resource(up.Name(), name), MCPResult: true}
	remote := mt.Name
	t.Prepare = func(a *connector.Args) (*connector.Call, *connector.Error) {
		return prepareProxied(up, t.Name, name, remote, a)
	}
	return t
}

// prepareProxied builds a proxied call: the resource, the context keys
// (the arguments' top-level string values as MCP:Arg.<name>, names in
// lower case) and the upstream call. The arguments are otherwise the
// upstream server's to check.
func prepareProxied(up *Upstream, fullName, tool, remote string, a *connector.Args) (*connector.Call, *connector.Error) {
	server := up.Name()
	c := &connector.Call{Resource: Resource(server, tool), Context: map[string]string{KeyMCPServer: server, KeyMCPTool: tool}}
	for _, m := range a.V.Members {
		if !m.Value.IsString() {
			continue
		}
		k := KeyMCPArg + lowerASCII(m.Key)
		if _, dup := c.Context[k]; dup {
			return nil, connector.BadArg("arguments %q and another differ only in case", m.Key)
		}
		c.Context[k] = m.Value.Str
	}
	raw := canon.AppendCompact(nil, &a.V)
	c.Run = func(ctx context.Context) (any, error) {
		res, err := up.Call(ctx, remote, raw)
		if err != nil {
			return nil, err
		}
		out, err := json.Marshal(res)
		if err != nil {
			return nil, err
		}
		if len(out) > maxUpstreamResult {
			return nil, fmt.Errorf("the answer of %s exceeds %d bytes", fullName, maxUpstreamResult)
		}
		c.UpstreamError = res.IsError
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
