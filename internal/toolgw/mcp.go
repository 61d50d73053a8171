package toolgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/policycache"
)

// Version is reported to MCP clients.
var Version = "dev"

type jobKey struct{}

// MCPHandler serves MCP over streamable HTTP (stateless: every request
// carries the job's token and is checked). tools/list shows only the tools
// the job's policy could ever allow.
func (g *Gateway) MCPHandler() http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		j, _ := r.Context().Value(jobKey{}).(*Job)
		if j == nil {
			return nil
		}
		return g.mcpServer(j.Policy)
	}, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, MaxRequestBodyBytes: 4 << 20})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j, e := g.authorizeRequest(r.Context(), r.Header)
		if e != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clawea", error="invalid_token"`)
			writeError(w, r, e)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), jobKey{}, j))
		h.ServeHTTP(&mcpErrorWriter{ResponseWriter: w, r: r}, r)
	})
}

// mcpErrorWriter rewrites the MCP SDK's own HTTP-level refusals (plain
// text, holding Go error text such as a JSON decoder's) into the one error
// shape with a stable code. JSON-RPC answers pass through untouched.
type mcpErrorWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

var mcpStatusCodes = map[int]*Error{
	http.StatusBadRequest:            errf(http.StatusBadRequest, CodeInvalidRequest, "the body is not a valid MCP (JSON-RPC 2.0) request"),
	http.StatusNotFound:              errf(http.StatusNotFound, httpapi.CodeNotFound, "no such MCP session"),
	http.StatusMethodNotAllowed:      errf(http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed, "this MCP endpoint is stateless: POST JSON-RPC requests"),
	http.StatusNotAcceptable:         errf(http.StatusNotAcceptable, "NOT_ACCEPTABLE", "Accept must allow application/json and text/event-stream"),
	http.StatusRequestEntityTooLarge: errf(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "the MCP request is too large"),
	http.StatusUnsupportedMediaType:  errf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json"),
}

func (m *mcpErrorWriter) WriteHeader(status int) {
	if status >= 400 && !strings.HasPrefix(m.Header().Get("Content-Type"), "application/json") {
		e, ok := mcpStatusCodes[status]
		if !ok {
			e = errf(status, "MCP_REQUEST_FAILED", "the MCP request failed")
		}
		m.replaced = true
		m.Header().Del("Content-Length")
		writeError(m.ResponseWriter, m.r, e)
		return
	}
	m.ResponseWriter.WriteHeader(status)
}

func (m *mcpErrorWriter) Write(b []byte) (int, error) {
	if m.replaced {
		return len(b), nil // the SDK's text is dropped
	}
	return m.ResponseWriter.Write(b)
}

func (m *mcpErrorWriter) Flush() {
	if f, ok := m.ResponseWriter.(http.Flusher); ok && !m.replaced {
		f.Flush()
	}
}

func (m *mcpErrorWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// mcpServers caches one MCP server per policy (the tool list depends on
// the policy only; each call checks its own token).
var mcpServers sync.Map // *Gateway + policy hash -> *mcp.Server

type serverKey struct {
	g    *Gateway
	hash string
}

func (g *Gateway) mcpServer(p *policycache.Entry) *mcp.Server {
	key := serverKey{g, p.Doc.Hash()}
	if s, ok := mcpServers.Load(key); ok {
		return s.(*mcp.Server)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "clawea-tool-gateway", Version: Version}, &mcp.ServerOptions{
		Instructions: "Tools of the clawea tool gateway. Every call is checked against the job's policy and leaves a signed receipt; secrets come back redacted.",
	})
	for _, t := range g.Tools(&Job{Policy: p}) {
		name := t.Name
		s.AddTool(&mcp.Tool{Name: name, Description: t.Description, InputSchema: t.InputSchema}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			h := http.Header{}
			if req.Extra != nil && req.Extra.Header != nil {
				h = req.Extra.Header
			}
			j, e := g.authorizeRequest(ctx, h)
			if e != nil {
				return toolError(e), nil
			}
			res, e := g.Call(ctx, j, name, req.Params.Arguments)
			if e != nil {
				return toolError(e), nil
			}
			return toolResult(res), nil
		})
	}
	actual, _ := mcpServers.LoadOrStore(key, s)
	return actual.(*mcp.Server)
}

// toolError is a refusal as an MCP tool error the agent can read: the
// code, the public message and the deciding statements. The private cause
// is not sent (nor logged here: the gateway logs connector failures
// itself, redacted).
func toolError(e *Error) *mcp.CallToolResult {
	text := e.Code + ": " + e.Msg
	if len(e.Statements) > 0 {
		text += " [statements: " + strings.Join(e.Statements, ", ") + "]"
	}
	if e.ApprovalID != "" {
		text += " [approval: " + e.ApprovalID + "]"
	}
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text}},
		StructuredContent: map[string]any{"error": e}}
}

func toolResult(res *Result) *mcp.CallToolResult {
	if res.Proxied {
		if out, err := proxiedResult(res); err == nil {
			return out
		}
	}
	out := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(res.Output)}},
		Meta: mcp.Meta{"clawea/receipt_id": res.ReceiptID}}
	var structured any
	if json.Unmarshal(res.Output, &structured) == nil {
		out.StructuredContent = structured
	}
	if res.ApprovalID != "" {
		out.Meta["clawea/approval_id"] = res.ApprovalID
	}
	return out
}

// Stdio serves MCP on in/out for a runtime that launches tools as a
// process (clawea mcp): tools are listed and called through the gateway's
// JSON API at base with the job's token, so the checks, receipts and
// redaction are the gateway's.
func Stdio(ctx context.Context, base, tok string, in io.ReadCloser, out io.WriteCloser) error {
	c := client.New(base, tok)
	var list struct {
		Tools []ToolInfo `json:"tools"`
	}
	if _, _, err := c.Do(ctx, "GET", "/v1/tools", nil, &list); err != nil {
		return fmt.Errorf("cannot list the job's tools at %s: %w", base, err)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "clawea-tool-gateway", Version: Version}, nil)
	for _, t := range list.Tools {
		name := t.Name
		s.AddTool(&mcp.Tool{Name: name, Description: t.Description, InputSchema: t.InputSchema}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var res Result
			_, raw, err := c.Do(ctx, "POST", "/v1/tools/call", CallRequest{Tool: name, Arguments: req.Params.Arguments}, &res)
			if err != nil {
				var ce *client.Error
				if errors.As(err, &ce) {
					var body struct {
						Error Error `json:"error"`
					}
					if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
						body.Error.Status = ce.Status
						return toolError(&body.Error), nil
					}
					return toolError(&Error{Status: ce.Status, Code: ce.Code, Msg: ce.Message}), nil
				}
				return toolError(errf(http.StatusBadGateway, CodeConnectorError, "the tool gateway could not be reached").Wrap(err)), nil
			}
			return toolResult(&res), nil
		})
	}
	return s.Run(ctx, &mcp.IOTransport{Reader: in, Writer: out})
}
