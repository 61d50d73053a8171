package toolgw_test

// Issue #18 (P9 item 4): clawea connector deny|allow. A denied connector's
// tools are refused (CONNECTOR_DENIED, with a receipt) on every path while
// the other connectors go on; each change is logged with the operator.

import (
	"context"
	"net/http"
	"testing"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/toolgw"
)

const switchPolicy = `{
  "policy_version": "2", "policy_id": "switches", "issuer_did": "did:web:security.example.com",
  "statements": [
    {"sid": "Read", "effect": "Allow", "actions": ["keyvault:secrets.get"], "resources": ["kv://*/secrets/**"]},
    {"sid": "Bus", "effect": "Allow", "actions": ["servicebus:send", "servicebus:peek"], "resources": ["sb://*/*"]}
  ]}`

func TestConnectorDenyAllow(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish([]byte(switchPolicy)))
	get := map[string]any{"vault": vaultName, "name": "agent/app/db-password"}
	send := map[string]any{"namespace": "sb-orders", "entity": "q", "body": "m"}
	if code, msg := e.jsonCall(t, tok, "keyvault_get_secret", get); code != "" {
		t.Fatalf("get before: %s %s", code, msg)
	}
	var view struct {
		Current    map[string]any `json:"current"`
		Configured bool           `json:"configured_here"`
	}
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/connectors/KeyVault/deny", map[string]any{"reason": "incident 7"}, &view); err != nil {
		t.Fatal(err)
	}
	if view.Current["connector"] != "keyvault" || view.Current["state"] != "denied" || view.Current["by"] != "admin-token" || !view.Configured {
		t.Fatalf("deny answer: %+v", view)
	}
	// Reads are refused too, on the JSON API and over MCP.
	if code, _ := e.jsonCall(t, tok, "keyvault_get_secret", get); code != toolgw.CodeConnectorDenied {
		t.Fatalf("get while denied: %q", code)
	}
	cs := e.mcpSession(tok)
	if a := call(t, cs, "keyvault_get_secret", get); a.code() != toolgw.CodeConnectorDenied {
		t.Fatalf("MCP get while denied: %+v", a)
	}
	if code, msg := e.jsonCall(t, tok, "servicebus_send", send); code != "" {
		t.Fatalf("another connector is refused: %s %s", code, msg)
	}
	// A job token cannot flip a switch.
	if _, _, err := client.New(e.url, tok).Do(context.Background(), "POST", "/v1/connectors/keyvault/allow", map[string]any{"reason": "x"}, nil); err == nil {
		t.Fatal("a job token allowed a connector")
	}
	// Bad names and bodies.
	for path, body := range map[string]any{
		"/v1/connectors/key%20vault/deny": map[string]any{"reason": "x"},
		"/v1/connectors/mcp:a__b/deny":    map[string]any{"reason": "x"},
		"/v1/connectors/servicebus/deny":  map[string]any{},
	} {
		if st, _, err := e.admin.Do(context.Background(), "POST", path, body, nil); err == nil || st != http.StatusBadRequest {
			t.Errorf("%s: %d %v", path, st, err)
		}
	}
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/connectors/keyvault/allow", map[string]any{"reason": "resolved"}, nil); err != nil {
		t.Fatal(err)
	}
	if code, msg := e.jsonCall(t, tok, "keyvault_get_secret", get); code != "" {
		t.Fatalf("get after allow: %s %s", code, msg)
	}
	var list struct {
		Connectors []string         `json:"connectors"`
		Denied     []map[string]any `json:"denied"`
		Log        []map[string]any `json:"log"`
	}
	if _, _, err := e.admin.Do(context.Background(), "GET", "/v1/connectors", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Denied) != 0 || len(list.Log) != 2 || list.Log[0]["state"] != "allowed" || list.Log[1]["reason"] != "incident 7" ||
		len(list.Connectors) != 2 || list.Connectors[0] != "keyvault" || list.Connectors[1] != "servicebus" {
		t.Fatalf("connectors: %+v", list)
	}
	// The refusals are in the job's evidence, and the bundle verifies.
	e.finish(jobID)
}

func TestCanonicalConnector(t *testing.T) {
	for in, want := range map[string]string{"keyvault": "keyvault", "ServiceBus": "servicebus", "mcp:FS": "mcp:fs", "MCP:my-server_1": "mcp:my-server_1"} {
		if got, err := toolgw.CanonicalConnector(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "mcp:", "mcp:a__b", "key vault", "mcp:a/b", "a:b", "K\u212aV", "mcp:\u212a", "x/../y"} {
		if got, err := toolgw.CanonicalConnector(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

// FuzzCanonicalConnector: a name from the URL is either refused or
// canonical (folding it again changes nothing) and within the grammar.
func FuzzCanonicalConnector(f *testing.F) {
	for _, s := range []string{"keyvault", "mcp:fs", "MCP:X", "mcp:", "a__b", "\u212a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := toolgw.CanonicalConnector(s)
		if err != nil {
			return
		}
		again, err := toolgw.CanonicalConnector(c)
		if err != nil || again != c || len(c) > 36 {
			t.Fatalf("%q -> %q -> %q %v", s, c, again, err)
		}
		for i := 0; i < len(c); i++ {
			if b := c[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == ':') {
				t.Fatalf("%q -> %q", s, c)
			}
		}
	})
}
