package config

import (
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/toolgw"
)

// The mcp section builds the tool gateway's upstreams, even without a
// tool_gateway section; a bad upstream fails the parse.
func TestMCPUpstreams(t *testing.T) {
	f, err := Parse([]byte(`{"mcp": {"upstreams": [
		{"name": "FS", "command": "node", "args": ["server.js", "/srv"], "env": {"A": "b"}},
		{"name": "web", "url": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer t"}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var o toolgw.Options
	if _, err := f.ToolGateway.Apply(&o); err != nil {
		t.Fatal(err)
	}
	if len(o.Upstreams) != 2 || o.Upstreams[0].Name() != "fs" || !o.Upstreams[0].Stdio() || o.Upstreams[1].Stdio() {
		t.Fatalf("upstreams: %+v", o.Upstreams)
	}
	for _, bad := range []string{
		`{"mcp": {"upstreams": [{"name": "a__b", "command": "node"}]}}`,
		`{"mcp": {"upstreams": [{"name": "x", "command": "node", "url": "http://h/mcp"}]}}`,
		`{"mcp": {"upstreams": [{"name": "x", "command": "node", "enviroment": {}}]}}`,
		`{"mcp": {"upstream": []}}`,
	} {
		if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "config") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
