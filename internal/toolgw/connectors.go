package toolgw

// The connector switches (clawea connector deny|allow): a denied
// connector's tools are refused (CONNECTOR_DENIED) by every gateway sharing
// the store, within the switch cache's lifetime (a quarter of a second, as
// the lockdown). Each change is kept in the store's log with the
// authenticated operator.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/mcpproxy"
	"github.com/clawea/clawea/internal/store"
)

// CodeConnectorDenied refuses a call to a connector an operator denied.
const CodeConnectorDenied = "CONNECTOR_DENIED"

// CodeInvalidConnector refuses a connector name outside the grammar.
const CodeInvalidConnector = "INVALID_CONNECTOR_NAME"

// ErrBadConnector: a connector name outside the grammar.
var ErrBadConnector = errors.New("toolgw: a connector name is keyvault, servicebus, mcp:<server> (an upstream MCP server), or 1-32 characters of [a-z0-9_-]")

// CanonicalConnector returns a connector switch name in canonical form:
// "keyvault", "servicebus", "mcp:<server>" (the server name as
// mcpproxy.CanonicalServer folds it) or another connector's action prefix
// (1-32 of [a-z0-9_-]), ASCII letters folded to lower case. Anything else
// is ErrBadConnector.
func CanonicalConnector(name string) (string, error) {
	if server, ok := strings.CutPrefix(strings.ToLower(name), "mcp:"); ok && len(name) > 4 {
		s, err := mcpproxy.CanonicalServer(name[4:])
		if err != nil || s != server {
			return "", ErrBadConnector
		}
		return "mcp:" + s, nil
	}
	s, err := mcpproxy.CanonicalServer(name) // the same grammar
	if err != nil {
		return "", ErrBadConnector
	}
	return s, nil
}

// connectorOf names the connector a tool belongs to: an upstream MCP
// server's tools are mcp:<server>; others are their action's prefix
// (keyvault, servicebus).
func connectorOf(t *tool) string {
	if t.def != nil && t.action == mcpproxy.ActionMCPCall {
		if rest, ok := strings.CutPrefix(t.def.Resource, "mcp://"); ok {
			server, _, _ := strings.Cut(rest, "/")
			return "mcp:" + server
		}
		return "mcp"
	}
	prefix, _, _ := strings.Cut(t.action, ":")
	return prefix
}

// Connectors are the switch names of this gateway's connectors, sorted.
func (g *Gateway) Connectors() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range g.tools {
		if n := connectorOf(t); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// connectorDenied reads the switches (cached for a quarter of a second)
// and returns the change that denies the tool's connector, if any.
func (g *Gateway) connectorDenied(ctx context.Context, t *tool) (*store.ConnectorSwitch, error) {
	g.denyMu.Lock()
	if g.denyAt.IsZero() || time.Since(g.denyAt) >= g.lockTTL {
		g.denyMu.Unlock()
		list, err := g.opt.Store.DeniedConnectors(ctx)
		if err != nil {
			return nil, err
		}
		m := make(map[string]store.ConnectorSwitch, len(list))
		for _, c := range list {
			m[c.Name] = c
		}
		g.denyMu.Lock()
		g.denied, g.denyAt = m, time.Now()
	}
	c, ok := g.denied[connectorOf(t)]
	g.denyMu.Unlock()
	if !ok {
		return nil, nil
	}
	return &c, nil
}

// SetConnector denies or allows a connector, records the change in the
// store's log, and takes effect here at once.
func (g *Gateway) SetConnector(ctx context.Context, name string, denied bool, by, reason string) (store.ConnectorSwitch, error) {
	c, err := g.opt.Store.SetConnectorSwitch(ctx, store.ConnectorSwitch{Name: name, Denied: denied, By: by, Reason: reason, At: g.opt.Now()})
	if err != nil {
		return c, err
	}
	g.denyMu.Lock()
	g.denyAt = time.Time{} // read again on the next call
	g.denyMu.Unlock()
	g.opt.Log.WarnContext(ctx, "connector switch changed", "connector", name, "denied", denied, "by", by, "reason", reason, "seq", c.Seq)
	return c, nil
}

func connectorView(c store.ConnectorSwitch) map[string]any {
	state := "allowed"
	if c.Denied {
		state = "denied"
	}
	return map[string]any{"seq": c.Seq, "connector": c.Name, "state": state, "by": c.By, "reason": c.Reason, "at": envelope.FormatTime(c.At)}
}

func connectorViews(cs []store.ConnectorSwitch) []any {
	out := make([]any, 0, len(cs))
	for _, c := range cs {
		out = append(out, connectorView(c))
	}
	return out
}

// getConnectors: GET /v1/connectors (admin).
func (g *Gateway) getConnectors(w http.ResponseWriter, r *http.Request) {
	denied, err := g.opt.Store.DeniedConnectors(r.Context())
	if err != nil {
		writeError(w, r, httpapi.StoreUnavailable(err))
		return
	}
	log, err := g.opt.Store.ConnectorSwitchLog(r.Context(), 20)
	if err != nil {
		writeError(w, r, httpapi.StoreUnavailable(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"connectors": g.Connectors(), "denied": connectorViews(denied), "log": connectorViews(log)})
}

// setConnector: POST /v1/connectors/{name}/deny|allow (admin) with
// {"reason": "..."}; the actor recorded is the authenticated credential.
func (g *Gateway) setConnector(denied bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, err := CanonicalConnector(r.PathValue("name"))
		if err != nil {
			writeError(w, r, errf(http.StatusBadRequest, CodeInvalidConnector, "%v", ErrBadConnector))
			return
		}
		var req struct {
			Reason string `json:"reason"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Reason) == "" {
			writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "the body must be {\"reason\": \"...\"}"))
			return
		}
		by := httpapi.Actor(r.Context())
		if by == "" {
			writeError(w, r, errf(http.StatusUnauthorized, CodeUnauthorized, "the admin token is required"))
			return
		}
		reason := strings.TrimSpace(req.Reason)
		if len(reason) > 512 {
			reason = strings.ToValidUTF8(reason[:512], "")
		}
		c, err := g.SetConnector(context.WithoutCancel(r.Context()), name, denied, by, reason)
		if err != nil {
			writeError(w, r, httpapi.StoreUnavailable(err))
			return
		}
		known := false
		for _, n := range g.Connectors() {
			known = known || n == name
		}
		writeJSON(w, http.StatusOK, map[string]any{"current": connectorView(c), "configured_here": known})
	}
}
