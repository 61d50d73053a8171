package toolgw_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/config"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/toolgw"
)

// The MCP proxy is tested against MCP servers nobody here wrote, from npm
// (pinned in scripts/test-deps, installed into CLAWEA_MCP_SERVERS_DIR).

// mcpServers returns the directory holding node_modules/@modelcontextprotocol,
// or skips (fails with CLAWEA_REQUIRE_NODE=1) when node or the servers are
// missing.
func mcpServers(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CLAWEA_MCP_SERVERS_DIR")
	if dir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".cache", "clawea-npm")
		}
	}
	_, nodeErr := exec.LookPath("node")
	for _, p := range []string{"server-filesystem", "server-everything"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", p, "package.json")); err != nil || nodeErr != nil {
			msg := fmt.Sprintf("node or @modelcontextprotocol/%s not found under %s (run scripts/test-deps; set CLAWEA_MCP_SERVERS_DIR)", p, dir)
			if os.Getenv("CLAWEA_REQUIRE_NODE") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

func serverJS(dir, pkg string) string {
	return filepath.Join(dir, "node_modules", "@modelcontextprotocol", pkg, "dist", "index.js")
}

// startProxy starts a node whose tool gateway has the vault and the MCP
// upstreams of cfg (a clawea configuration file).
func startProxy(t testing.TB, cfg string) *env {
	t.Helper()
	f, err := config.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	vault := &memVault{name: vaultName, m: map[string]keyvault.Secret{}}
	vault.Set(context.Background(), "agent/app/db-password", dbPassword, "text/plain")
	opt := toolgw.Options{Vaults: []keyvault.Client{vault}}
	if _, err := f.ToolGateway.Apply(&opt); err != nil {
		t.Fatal(err)
	}
	e := startWith(t, opt, nil)
	e.vault = vault
	return e
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

const fsPolicy = `{
  "policy_version": "2", "policy_id": "mcp-fs", "issuer_did": "did:web:security.example.com",
  "statements": [
    {"sid": "ReadAgentSecrets", "effect": "Allow", "actions": ["keyvault:secrets.get"], "resources": ["kv://kv-prod-finance-001/secrets/agent/**"]},
    {"sid": "ReadFiles", "effect": "Allow", "actions": ["mcp:call"], "resources": ["mcp://fs/read_text_file", "mcp://fs/list_allowed_directories"]},
    {"sid": "WriteFiles", "effect": "Allow", "actions": ["mcp:call"], "resources": ["mcp://fs/write_file"]},
    {"sid": "NoPrivate", "effect": "Deny", "actions": ["mcp:call"], "resources": ["mcp://fs/**"],
     "conditions": {"StringLike": {"MCP:Arg.path": "**/private/**"}}},
    {"sid": "NoWrites", "effect": "Deny", "actions": ["mcp:call"], "resources": ["mcp://fs/write_file"],
     "conditions": {"StringEquals": {"MCP:Server": "fs"}}}
  ]
}`

func TestMCPProxyFilesystemStdio(t *testing.T) {
	dir := mcpServers(t)
	root := t.TempDir()
	root, _ = filepath.EvalSymlinks(root)
	os.WriteFile(filepath.Join(root, "notes.txt"), []byte("hello from the upstream"), 0o600)
	os.WriteFile(filepath.Join(root, "db.env"), []byte("DB_PASSWORD="+dbPassword+"\n"), 0o600)
	os.Mkdir(filepath.Join(root, "private"), 0o700)
	os.WriteFile(filepath.Join(root, "private", "plan.txt"), []byte("private plan"), 0o600)
	e := startProxy(t, `{"mcp": {"upstreams": [{"name": "FS", "command": "node", "args": [`+quote(serverJS(dir, "server-filesystem"))+`, `+quote(root)+`]}]}}`)
	jobID, tok := e.job(e.publish([]byte(fsPolicy)))
	cs := e.mcpSession(tok)

	// tools/list: only the proxied tools the policy could allow, with the
	// upstream's schemas (write_file is listed: its deny is conditional);
	// list_directory and the rest are not.
	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
		if tl.Name == "fs__read_text_file" {
			raw, _ := json.Marshal(tl.InputSchema)
			if !strings.Contains(string(raw), `"path"`) || !strings.Contains(string(raw), `"head"`) {
				t.Errorf("read_text_file schema: %s", raw)
			}
		}
	}
	slices.Sort(names)
	if got := strings.Join(names, ","); got != "fs__list_allowed_directories,fs__read_text_file,fs__write_file,keyvault_get_secret" {
		t.Errorf("tools/list: %s", got)
	}

	// An allowed read works, with a receipt.
	a := call(t, cs, "fs__read_text_file", map[string]any{"path": filepath.Join(root, "notes.txt")})
	if a.isError || !strings.Contains(a.text, "hello from the upstream") || a.receipt == "" {
		t.Fatalf("read: %+v", a)
	}
	// The job reads its secret; the file holding it comes back redacted,
	// in the text and in the structured content.
	if a := call(t, cs, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password"}); a.isError {
		t.Fatalf("get secret: %+v", a)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "fs__read_text_file", Arguments: map[string]any{"path": filepath.Join(root, "db.env")}})
	if err != nil || res.IsError {
		t.Fatalf("read db.env: %v %+v", err, res)
	}
	raw, _ := json.Marshal(res)
	if strings.Contains(string(raw), dbPassword) || !strings.Contains(string(raw), "[REDACTED:"+vaultName+"/agent/app/db-password]") {
		t.Fatalf("read db.env not redacted: %s", raw)
	}
	// A condition on an argument: a path under private/ is denied.
	a = call(t, cs, "fs__read_text_file", map[string]any{"path": filepath.Join(root, "private", "plan.txt")})
	if !a.isError || a.code() != toolgw.CodePolicyDenied || !strings.Contains(a.text, "NoPrivate") || strings.Contains(a.text, "private plan") {
		t.Fatalf("private read: %+v", a)
	}
	// A denied tool is refused with a receipt, and never reaches the server.
	a = call(t, cs, "fs__write_file", map[string]any{"path": filepath.Join(root, "new.txt"), "content": "x"})
	if !a.isError || a.code() != toolgw.CodePolicyDenied || !strings.Contains(a.text, "NoWrites") || a.errObj["receipt_id"] == nil {
		t.Fatalf("write: %+v", a)
	}
	if _, err := os.Stat(filepath.Join(root, "new.txt")); !os.IsNotExist(err) {
		t.Fatalf("the denied write reached the server: %v", err)
	}
	// The egress guard: an argument carrying the job's secret is refused.
	a = call(t, cs, "fs__read_text_file", map[string]any{"path": filepath.Join(root, dbPassword)})
	if !a.isError || a.code() != toolgw.CodeEgressSecret {
		t.Fatalf("egress: %+v", a)
	}
	// A tool the policy can never allow is unknown to the job.
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "fs__list_directory", Arguments: map[string]any{"path": root}}); err == nil {
		t.Errorf("unlisted tool answered")
	}
	// An upstream tool failure (a path outside the root) comes back as a
	// tool error from the server, recorded.
	a = call(t, cs, "fs__read_text_file", map[string]any{"path": "/etc/hostname"})
	if !a.isError || a.receipt == "" {
		t.Fatalf("outside the root: %+v", a)
	}

	// Lockdown refuses the tools not annotated read-only, and only them.
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/lockdown", map[string]any{"on": true, "reason": "test"}, nil); err != nil {
		t.Fatal(err)
	}
	if a := call(t, cs, "fs__write_file", map[string]any{"path": filepath.Join(root, "new.txt"), "content": "x"}); a.code() != toolgw.CodeLockdown {
		t.Errorf("write under lockdown: %+v", a)
	}
	if a := call(t, cs, "fs__read_text_file", map[string]any{"path": filepath.Join(root, "notes.txt")}); a.isError {
		t.Errorf("read under lockdown: %+v", a)
	}
	e.admin.Do(context.Background(), "POST", "/v1/lockdown", map[string]any{"on": false, "reason": "done"}, nil)

	// The JSON API reaches the same tools.
	var out toolgw.Result
	if _, _, err := client.New(e.url, tok).Do(context.Background(), "POST", "/v1/tools/call", toolgw.CallRequest{Tool: "fs__read_text_file", Arguments: json.RawMessage(`{"path":` + quote(filepath.Join(root, "notes.txt")) + `}`)}, &out); err != nil || !out.Proxied || !strings.Contains(string(out.Output), "hello from the upstream") {
		t.Fatalf("JSON API: %v %+v", err, out)
	}

	bundle, _ := e.finish(jobID)
	if strings.Contains(string(bundle), dbPassword) {
		t.Fatal("the bundle holds the secret")
	}
	for _, want := range []string{"fs__read_text_file", "fs__write_file"} {
		if !strings.Contains(string(bundle), want) {
			t.Errorf("bundle lacks %s", want)
		}
	}
}

const everythingPolicy = `{
  "policy_version": "2", "policy_id": "mcp-everything", "issuer_did": "did:web:security.example.com",
  "statements": [
    {"sid": "Env", "effect": "Allow", "actions": ["mcp:call"], "resources": ["mcp://every/get-env", "mcp://web/echo"]},
    {"sid": "SumWithApproval", "effect": "Allow", "actions": ["mcp:call"], "resources": ["mcp://web/get-sum"],
     "conditions": {"Bool": {"Request:HasHumanApproval": "true"}}}
  ]
}`

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEverythingHTTP runs server-everything over streamable HTTP.
func startEverythingHTTP(t testing.TB, dir string) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command("node", serverJS(dir, "server-everything"), "streamableHttp")
	cmd.Env = []string{fmt.Sprintf("PORT=%d", port), "PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return url
		}
	}
	t.Fatal("server-everything did not start")
	return ""
}

func TestMCPProxyEverything(t *testing.T) {
	dir := mcpServers(t)
	t.Setenv("CLAWEA_PROXY_MARKER", "clawea-own-environment")
	t.Setenv("UPSTREAM_TOKEN_SOURCE", "forwarded-by-name")
	url := startEverythingHTTP(t, dir)
	e := startProxy(t, `{"mcp": {"upstreams": [
	  {"name": "every", "command": "node", "args": [`+quote(serverJS(dir, "server-everything"))+`, "stdio"],
	   "env": {"GREETING": "set-in-config"}, "env_from": {"UPSTREAM_TOKEN": "UPSTREAM_TOKEN_SOURCE"}},
	  {"name": "web", "url": `+quote(url)+`, "headers": {"X-Upstream-Key": "k"}}]}}`)
	jobID, tok := e.job(e.publish([]byte(everythingPolicy)))
	cs := e.mcpSession(tok)

	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if got := strings.Join(names, ","); got != "every__get-env,web__echo,web__get-sum" {
		t.Errorf("tools/list: %s", got)
	}

	// The stdio child's environment is the configured one, not clawea's.
	a := call(t, cs, "every__get-env", nil)
	if a.isError {
		t.Fatalf("get-env: %+v", a)
	}
	var childEnv map[string]string
	if err := json.Unmarshal([]byte(a.text), &childEnv); err != nil {
		t.Fatalf("get-env: %v %q", err, a.text)
	}
	if childEnv["GREETING"] != "set-in-config" || childEnv["UPSTREAM_TOKEN"] != "forwarded-by-name" {
		t.Errorf("child env lacks the configured variables: %v", childEnv)
	}
	for _, k := range []string{"CLAWEA_PROXY_MARKER", "UPSTREAM_TOKEN_SOURCE", "HOME", "PATH"} {
		if _, ok := childEnv[k]; ok {
			t.Errorf("child env holds clawea's %s", k)
		}
	}

	// Streamable HTTP upstream.
	a = call(t, cs, "web__echo", map[string]any{"message": "ping through clawea"})
	if a.isError || !strings.Contains(a.text, "ping through clawea") || a.receipt == "" {
		t.Fatalf("echo: %+v", a)
	}
	// Approvals: get-sum needs a human.
	args := map[string]any{"a": 2, "b": 3}
	a = call(t, cs, "web__get-sum", args)
	id, _ := a.errObj["approval_id"].(string)
	if a.code() != toolgw.CodeApprovalRequired || id == "" {
		t.Fatalf("get-sum without approval: %+v", a)
	}
	if status, code := e.decide(id, "allow"); status != http.StatusOK {
		t.Fatalf("decide: %d %s", status, code)
	}
	a = call(t, cs, "web__get-sum", args)
	if a.isError || !strings.Contains(a.text, "5") {
		t.Fatalf("get-sum after approval: %+v", a)
	}
	e.finish(jobID)
}
