package mcpproxy

import (
	"testing"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/connector"
)

// FuzzProxiedArgs feeds untrusted argument objects to prepareProxied: it
// never panics, the resource is fixed by the tool (never by an argument),
// and every top-level string argument is in the context under its name in
// ASCII lower case (as the policy compiles the key), or the call is refused as ambiguous.
func FuzzProxiedArgs(f *testing.F) {
	for _, s := range []string{`{"path":"/r/a"}`, `{"\u212a":"x","k":"y"}`, `{"Path":"a","path":"b"}`, `{"a":1,"b":{"c":"d"},"e":["f"]}`, `{"MCP:Server":"x"}`, `{}`} {
		f.Add(s)
	}
	up, _ := New(Config{Name: "fs", Command: "node"})
	f.Fuzz(func(tt *testing.T, raw string) {
		v, err := canon.Parse([]byte(raw))
		if err != nil || !v.IsObject() {
			return
		}
		c, e := prepareProxied(up, "fs__read", "read", "Read", connector.NewArgs(v))
		if e != nil {
			if e.Code != connector.CodeInvalidArguments {
				tt.Fatalf("code %s", e.Code)
			}
			return
		}
		if c.Resource != "mcp://fs/read" || c.Context[KeyMCPServer] != "fs" || c.Context[KeyMCPTool] != "read" {
			tt.Fatalf("resource %s ctx %v", c.Resource, c.Context)
		}
		n := 0
		for _, m := range v.Members {
			if m.Value.IsString() {
				n++
				if c.Context[KeyMCPArg+lowerASCII(m.Key)] != m.Value.Str {
					tt.Fatalf("argument %q missing", m.Key)
				}
			}
		}
		if _, ok := c.Context[KeyMCPArg+"k"]; ok && v.Get("k") == nil && v.Get("K") == nil {
			tt.Fatalf("a name other than k/K became MCP:Arg.k: %s", raw)
		}
		if len(c.Context) != n+2 {
			tt.Fatalf("context %v for %s", c.Context, raw)
		}
	})
}
