package toolgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
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
// the job's policy could ever allow. A single tools/call request is
// answered directly (serveToolCall); everything else goes through the MCP
// SDK's handler.
func (g *Gateway) MCPHandler() http.Handler { return g.mcpHandler(true) }

func (g *Gateway) mcpHandler(direct bool) http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		j, _ := r.Context().Value(jobKey{}).(*Job)
		if j == nil {
			return nil
		}
		return g.mcpServer(j.Policy).server
	}, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, MaxRequestBodyBytes: mcpMaxBody})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j, e := g.authorizeRequest(r.Context(), r.Header)
		if e != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clawea", error="invalid_token"`)
			writeError(w, r, e)
			return
		}
		if direct && g.serveToolCall(w, r, j) {
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
var mcpServers sync.Map // *Gateway + policy hash -> *mcpPolicyServer

// mcpPolicyServer is the MCP server of one policy and the tools
// serveToolCall may answer directly (those whose input schema binds no
// argument to an Mcp-Param-* header: the SDK checks such headers).
type mcpPolicyServer struct {
	server *mcp.Server
	direct map[string]bool
}

// mcpImpl is the server's identity in MCP answers.
func mcpImpl() *mcp.Implementation {
	return &mcp.Implementation{Name: "clawea-tool-gateway", Version: Version}
}

type serverKey struct {
	g    *Gateway
	hash string
}

func (g *Gateway) mcpServer(p *policycache.Entry) *mcpPolicyServer {
	key := serverKey{g, p.Doc.Hash()}
	if s, ok := mcpServers.Load(key); ok {
		return s.(*mcpPolicyServer)
	}
	s := mcp.NewServer(mcpImpl(), &mcp.ServerOptions{
		Instructions: "Tools of the clawea tool gateway. Every call is checked against the job's policy and leaves a signed receipt; secrets come back redacted.",
	})
	ps := &mcpPolicyServer{server: s, direct: map[string]bool{}}
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
			return g.mcpCall(ctx, j, name, req.Params.Arguments), nil
		})
		if !bindsHeaders(t.InputSchema) {
			ps.direct[name] = true
		}
	}
	actual, _ := mcpServers.LoadOrStore(key, ps)
	return actual.(*mcpPolicyServer)
}

// bindsHeaders reports whether a tool's input schema may hold an
// x-mcp-header annotation (or cannot be read): the schema is decoded and
// encoded again so that no escape hides the name, then searched in any
// case.
func bindsHeaders(schema any) bool {
	raw, err := json.Marshal(schema)
	if err != nil {
		return true
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return true
	}
	if raw, err = json.Marshal(v); err != nil {
		return true
	}
	return bytes.Contains(bytes.ToLower(raw), []byte("x-mcp-header"))
}

// mcpCall calls a tool for an MCP client: the result, or the refusal as a
// tool error.
func (g *Gateway) mcpCall(ctx context.Context, j *Job, name string, args json.RawMessage) *mcp.CallToolResult {
	res, e := g.Call(ctx, j, name, args)
	if e != nil {
		return toolError(e)
	}
	return toolResult(res)
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

// mcpMaxBody bounds an MCP request body.
const mcpMaxBody = 4 << 20

// Protocol versions serveToolCall answers: the new one (requests carry
// their version in _meta, results a resultType and the server's identity)
// and the older ones the stateless SDK handler serves after a synthesized
// initialize ("" is the SDK's default, 2025-03-26).
const mcpNewProtocol = "2026-07-28"

var mcpOldProtocols = map[string]bool{"": true, "2025-11-25": true, "2025-06-18": true, "2025-03-26": true, "2024-11-05": true}

const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientInfo         = "io.modelcontextprotocol/clientInfo"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
)

// serveToolCall answers a request that is one tools/call of a known tool
// without the SDK's per-request session (its JSON decoding, goroutines and
// channels cost about 0.5 ms a call; docs/benchmarks.md). It answers what
// the SDK's stateless JSON-response handler would (the same JSON-RPC
// response, result, headers and status) and takes only requests whose
// every part it checks as the SDK does: anything else (another method, a
// batch, an unknown tool, an unusual header, field or protocol version, a
// tool that binds arguments to Mcp-Param-* headers) returns false, with
// the body restored, for the SDK to answer. The job j was authorized from
// the request's headers; the call is the SDK path's (Gateway.Call) and is
// cancelled when the client goes away, as on the JSON API.
func (g *Gateway) serveToolCall(w http.ResponseWriter, r *http.Request, j *Job) bool {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		!acceptsJSONAndSSE(r.Header.Values("Accept")) || len(r.Header.Values("Last-Event-ID")) > 0 ||
		!hostAllowed(r) {
		return false
	}
	version := r.Header.Get("Mcp-Protocol-Version")
	newProto := version == mcpNewProtocol
	if !newProto && !mcpOldProtocols[version] {
		return false
	}
	if len(r.Header.Values("Mcp-Protocol-Version")) > 1 {
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, mcpMaxBody))
	r.Body.Close()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, mcpStatusCodes[http.StatusRequestEntityTooLarge])
		} else {
			writeError(w, r, mcpStatusCodes[http.StatusBadRequest])
		}
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	call, ok := parseToolCall(body, newProto)
	if !ok {
		return false
	}
	ps := g.mcpServer(j.Policy)
	if !ps.direct[call.name] {
		return false
	}
	if newProto && (headerOnce(r.Header, "Mcp-Method") != "tools/call" || headerOnce(r.Header, "Mcp-Name") != call.name) {
		return false
	}
	// As the SDK's stateless handler: the client going away does not
	// cancel a call under way (CallTimeout still bounds it).
	res := g.mcpCall(context.WithoutCancel(r.Context()), j, call.name, call.args)
	if res.Content == nil {
		res.Content = []mcp.Content{} // as the SDK: no "null"
	}
	if newProto {
		if res.Meta == nil {
			res.Meta = mcp.Meta{}
		}
		if _, ok := res.Meta[mcp.MetaKeyServerInfo]; !ok {
			res.Meta[mcp.MetaKeyServerInfo] = mcpImpl()
		}
	}
	out, err := mcpResponse(call.id, res, newProto)
	if err != nil {
		// The call ran and left its receipt; only its answer cannot be
		// written (a result that does not encode).
		id, _ := jsonrpc.MakeID(call.id)
		out, _ = jsonrpc.EncodeMessage(&jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the tool's result cannot be encoded"}})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(out)
		return true
	}
	w.Header().Set("Cache-Control", "no-cache, no-transform")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return true
}

// mcpResponse encodes the JSON-RPC response holding res; under the new
// protocol the result says it is complete (the SDK sets this field itself,
// it is not settable from outside).
func mcpResponse(id any, res *mcp.CallToolResult, newProto bool) ([]byte, error) {
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	if newProto {
		if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' || topLevelHas(raw, "resultType") {
			return nil, errors.New("toolgw: unexpected CallToolResult encoding")
		}
		if len(raw) == 2 {
			raw = []byte(`{"resultType":"complete"}`)
		} else {
			raw = append(raw[:len(raw)-1:len(raw)-1], `,"resultType":"complete"}`...)
		}
	}
	rid, err := jsonrpc.MakeID(id)
	if err != nil {
		return nil, err
	}
	return jsonrpc.EncodeMessage(&jsonrpc.Response{ID: rid, Result: json.RawMessage(raw)})
}

func topLevelHas(raw []byte, key string) bool {
	if !bytes.Contains(raw, []byte(key)) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return true
	}
	_, ok := m[key]
	return ok
}

// headerOnce is a header's value when it is given exactly once.
func headerOnce(h http.Header, name string) string {
	if v := h.Values(name); len(v) == 1 {
		return v[0]
	}
	return ""
}

// acceptsJSONAndSSE: the Accept header lists application/json and
// text/event-stream by name (the SDK also takes wildcards; such requests
// go to the SDK).
func acceptsJSONAndSSE(values []string) bool {
	var jsonOK, sseOK bool
	for _, v := range values {
		for _, tok := range strings.Split(v, ",") {
			base, _, _ := strings.Cut(tok, ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json":
				jsonOK = true
			case "text/event-stream":
				sseOK = true
			}
		}
	}
	return jsonOK && sseOK
}

// hostAllowed mirrors the SDK's DNS-rebinding check: on a loopback
// listener the Host must be a loopback name or address.
func hostAllowed(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil || !isLoopback(local.String()) {
		return ok && local != nil
	}
	return isLoopback(r.Host)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

type toolCall struct {
	id   any // string or float64, as jsonrpc.MakeID takes it
	name string
	args json.RawMessage
}

// parseToolCall reads a single JSON-RPC tools/call request strictly: an
// object with exactly the members jsonrpc "2.0", id (a string or an
// integer), method and params; params with name, optional arguments (an
// object) and optional _meta (an object); no member twice. Under the new
// protocol _meta must carry the protocol version and the client's
// capabilities (and may carry its identity) as the SDK requires; under an
// older one it must not carry a protocol version.
func parseToolCall(body []byte, newProto bool) (toolCall, bool) {
	var c toolCall
	// What the SDK's decoder refuses (nesting over its depth bound, ...)
	// is left to the SDK.
	if _, err := jsonrpc.DecodeMessage(body); err != nil {
		return c, false
	}
	top, ok := strictObject(body)
	if !ok || len(top) != 4 {
		return c, false
	}
	var version, method string
	if json.Unmarshal(top["jsonrpc"], &version) != nil || version != "2.0" ||
		json.Unmarshal(top["method"], &method) != nil || method != "tools/call" {
		return c, false
	}
	id := top["id"]
	switch {
	case len(id) > 0 && id[0] == '"':
		var s string
		if json.Unmarshal(id, &s) != nil {
			return c, false
		}
		c.id = s
	default:
		n, err := strconv.ParseInt(string(id), 10, 53)
		if err != nil {
			return c, false
		}
		c.id = float64(n)
	}
	params, ok := strictObject(top["params"])
	if !ok {
		return c, false
	}
	for k := range params {
		if k != "name" && k != "arguments" && k != "_meta" {
			return c, false
		}
	}
	if json.Unmarshal(params["name"], &c.name) != nil || c.name == "" {
		return c, false
	}
	if a, ok := params["arguments"]; ok {
		if _, ok := strictObject(a); !ok {
			return c, false
		}
		c.args = a
	}
	var meta map[string]json.RawMessage
	if m, ok := params["_meta"]; ok {
		if meta, ok = strictObject(m); !ok {
			return c, false
		}
	}
	pv, hasPV := meta[metaProtocolVersion]
	if !newProto {
		return c, !hasPV
	}
	var v string
	if json.Unmarshal(pv, &v) != nil || v != mcpNewProtocol {
		return c, false
	}
	if _, ok := strictObject(meta[metaClientCapabilities]); !ok {
		return c, false
	}
	var caps struct {
		mcp.ClientCapabilities
		Roots *mcp.RootCapabilities `json:"roots,omitempty"`
	}
	if json.Unmarshal(meta[metaClientCapabilities], &caps) != nil {
		return c, false
	}
	if ci, ok := meta[metaClientInfo]; ok {
		var impl struct {
			Name    string `json:"name"`
			Title   string `json:"title"`
			Version string `json:"version"`
		}
		if _, ok := strictObject(ci); !ok || json.Unmarshal(ci, &impl) != nil {
			return c, false
		}
	}
	return c, true
}

// strictObject splits a JSON object into its members, refusing anything
// else: another JSON value, a member given twice, trailing data.
func strictObject(raw []byte) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, ok := t.(string)
		if !ok {
			return nil, false
		}
		if _, dup := out[k]; dup {
			return nil, false
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return nil, false
		}
		out[k] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return out, true
}
