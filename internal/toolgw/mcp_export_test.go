package toolgw

import "net/http"

// MCPHandlerSDK is /mcp without the direct tools/call path: every request
// goes through the MCP SDK's handler (tests compare the two).
func (g *Gateway) MCPHandlerSDK() http.Handler { return g.mcpHandler(false) }

// ServeToolCall authorizes r and reports whether the direct tools/call
// path answered it.
func (g *Gateway) ServeToolCall(w http.ResponseWriter, r *http.Request) bool {
	j, e := g.authorizeRequest(r.Context(), r.Header)
	if e != nil {
		return false
	}
	return g.serveToolCall(w, r, j)
}
