package mcpproxy

import (
	"context"
	"strings"
	"testing"
)

func TestCanonicalServer(t *testing.T) {
	for in, want := range map[string]string{"fs": "fs", "FS": "fs", "my-server_2": "my-server_2", strings.Repeat("a", 32): strings.Repeat("a", 32)} {
		if got, err := CanonicalServer(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"", "a__b", "a/b", "a.b", "a b", "é", strings.Repeat("a", 33), "fs\x00", "K\u212a"} {
		if _, err := CanonicalServer(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestCanonicalTool(t *testing.T) {
	if got, ok := CanonicalTool("Read_File.v2-x"); !ok || got != "read_file.v2-x" {
		t.Errorf("%q %v", got, ok)
	}
	for _, in := range []string{"", "a/b", "a b", "a:b", "ä", strings.Repeat("a", 129)} {
		if _, ok := CanonicalTool(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []Config{
		{Name: "x"},
		{Name: "x", Command: "node", URL: "http://h/mcp"},
		{Name: "a__b", Command: "node"},
		{Name: "x", URL: "ftp://h/mcp"},
		{Name: "x", URL: "/mcp"},
		{Name: "x", URL: "http://h/mcp", Env: map[string]string{"A": "b"}},
		{Name: "x", Command: "node", Headers: map[string]string{"A": "b"}},
		{Name: "x", Command: "node", Env: map[string]string{"A=B": "c"}},
		{Name: "x", Command: "node", Env: map[string]string{"A": "b"}, EnvFrom: map[string]string{"A": "B"}},
		{Name: "x", Command: "node", EnvFrom: map[string]string{"A": ""}},
	}
	for i, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("%d: %+v accepted", i, c)
		}
	}
	if _, err := New(Config{Name: "x", URL: "https://h.example/mcp", Headers: map[string]string{"Authorization": "Bearer t"}}); err != nil {
		t.Error(err)
	}
}

// The child's environment is exactly the configured one: never nil (nil
// would be clawea's own), never anything of clawea's not named.
func TestEnviron(t *testing.T) {
	t.Setenv("CLAWEA_TEST_SOURCE", "v1")
	t.Setenv("CLAWEA_TEST_OTHER", "leak")
	c := Config{Name: "x", Command: "node"}
	env, err := c.Environ()
	if err != nil || env == nil || len(env) != 0 {
		t.Fatalf("empty config: %#v %v", env, err)
	}
	c.Env = map[string]string{"B": "2", "A": "1"}
	c.EnvFrom = map[string]string{"TOKEN": "CLAWEA_TEST_SOURCE"}
	env, err = c.Environ()
	if err != nil || strings.Join(env, ";") != "A=1;B=2;TOKEN=v1" {
		t.Fatalf("%v %v", env, err)
	}
	c.EnvFrom["MISSING"] = "CLAWEA_TEST_NOT_SET"
	if _, err := c.Environ(); err == nil {
		t.Fatal("a missing env_from variable was accepted")
	}
}

// A stdio server that cannot start is an error, not a silent empty list.
func TestUnreachable(t *testing.T) {
	u, _ := New(Config{Name: "x", Command: "/nonexistent/clawea-mcp-server"})
	if _, err := u.Tools(context.Background()); err == nil {
		t.Fatal("no error")
	}
	u, _ = New(Config{Name: "y", URL: "http://127.0.0.1:1/mcp"})
	if _, err := u.Call(context.Background(), "t", nil); err == nil {
		t.Fatal("no error")
	}
}

// FuzzNames checks the name grammar on untrusted names (an upstream's
// tool names, the config's server names): what is accepted is canonical,
// stable, and cannot break the <server>__<tool> and mcp://<server>/<tool>
// forms.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"fs", "read_file", "A__B", "a/b", "get-env", "K\u212a", "a.b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := CanonicalServer(s); err == nil {
			if strings.Contains(n, "__") || strings.ContainsAny(n, "/.:") || n != strings.ToLower(n) || n == "" {
				t.Fatalf("server %q -> %q", s, n)
			}
			if again, err := CanonicalServer(n); err != nil || again != n {
				t.Fatalf("server %q not stable", n)
			}
		}
		if n, ok := CanonicalTool(s); ok {
			for i := 0; i < len(n); i++ {
				c := n[i]
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
					t.Fatalf("tool %q -> %q", s, n)
				}
			}
			if again, ok := CanonicalTool(n); !ok || again != n {
				t.Fatalf("tool %q not stable", n)
			}
		}
	})
}
