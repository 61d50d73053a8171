package toolgw_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/internal/redact"
	"github.com/clawea/clawea/internal/store"
)

// TestToolResultRedactedDecoded: a tool result is JSON-encoded by
// encoding/json, which writes '&', '<' and '>' as \u0026, \u003c, \u003e;
// the job's secret in it is still found (by the decoded string) and
// redacted, in what the MCP client receives.
func TestToolResultRedactedDecoded(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish([]byte(`{"policy_version":"2","policy_id":"redact-json","issuer_did":"did:web:test.example","statements":[
		{"sid":"Read","effect":"Allow","actions":["keyvault:secrets.get"],"resources":["kv://*/secrets/agent/**"]},
		{"sid":"Peek","effect":"Allow","actions":["servicebus:peek"],"resources":["sb://sb-orders/*"]}]}`)))
	cs := e.mcpSession(tok)
	if a := call(t, cs, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password"}); a.isError {
		t.Fatalf("get: %+v", a)
	}
	// dbPassword holds '&': its encoding/json form is Tr0ub4dor\u00263-...
	if !strings.Contains(dbPassword, "&") {
		t.Fatal("the canary needs a character encoding/json escapes")
	}
	e.node.Store.BusSend(context.Background(), store.BusMessage{Namespace: "sb-orders", Entity: "finance-reports", MessageID: "m1",
		Body: []byte("password=" + dbPassword), Properties: []byte(`{}`), EnqueuedAt: time.Now()})
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "servicebus_peek", Arguments: map[string]any{"namespace": "sb-orders", "entity": "finance-reports"}})
	if err != nil || res.IsError {
		t.Fatalf("peek: %v %+v", err, res)
	}
	raw, _ := json.Marshal(res)
	check := redact.New()
	check.Add("c", dbPassword, "x")
	var texts []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			texts = append(texts, v)
			var inner any
			if json.Unmarshal([]byte(v), &inner) == nil {
				walk(inner)
			}
		case map[string]any:
			for k, x := range v {
				texts = append(texts, k)
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var decoded any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	walk(decoded)
	marked := false
	for _, s := range texts {
		if label, ok := check.Find("c", s); ok {
			t.Errorf("a form of the secret (%s) reached the client: %q", label, s)
		}
		marked = marked || strings.Contains(s, redact.Marker(vaultName+"/agent/app/db-password"))
	}
	if !marked {
		t.Errorf("no marker in the peek result: %s", raw)
	}
	e.finish(jobID)
}
