package toolgw

import (
	"testing"

	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/internal/mcpproxy"
)

// Every tool belongs to the connector its switch names: an upstream MCP
// server's tools to mcp:<server>, the others to their action's prefix.
func TestConnectorOf(t *testing.T) {
	for want, d := range map[string]*connector.Tool{
		"keyvault":   {Name: "keyvault_restore_secret_version", Action: "keyvault:secrets.restore"},
		"servicebus": {Name: "servicebus_peek", Action: "servicebus:peek"},
		"mcp:files":  {Name: "files__read", Action: mcpproxy.ActionMCPCall, Resource: mcpproxy.Resource("files", "read")},
	} {
		if got := connectorOf(toolOf(d)); got != want {
			t.Errorf("%s: %q, want %q", d.Name, got, want)
		}
		if c, err := CanonicalConnector(want); err != nil || c != want {
			t.Errorf("%s is not a canonical switch name: %v", want, err)
		}
	}
}
