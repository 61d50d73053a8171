package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/testkit"
)

func examplePath(name string) string {
	return filepath.Join(testkit.RepoRoot(), "examples", "policies", name)
}

func TestPolicyCommands(t *testing.T) {
	kv := examplePath("kv-boundary.wpc.json")
	code, out, errs := run(t, "", "policy", "hash", kv)
	hash := strings.TrimSpace(out)
	if code != 0 || len(hash) != 43 {
		t.Fatalf("hash: %d %q %s", code, out, errs)
	}
	if code, out, _ := run(t, "", "policy", "lint", "--json", kv); code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Errorf("lint: %d %s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"policy_version":"2","policy_id":"p","issuer_did":"did:key:z","statements":[{"sid":"s","effect":"Allow","actions":["a"],"resources":["r"],"conditions":{"Regex":{"k":"v"}}}]}`), 0o644)
	if code, _, errs := run(t, "", "policy", "lint", bad); code != 1 || !strings.Contains(errs, "WPC_UNKNOWN_OPERATOR at statements[0].conditions.Regex") {
		t.Errorf("lint bad: %d %s", code, errs)
	}
	// Every problem at once.
	many := filepath.Join(t.TempDir(), "many.json")
	os.WriteFile(many, []byte(`{"policy_version":"2","policy_id":"","issuer_did":"nope","statements":[
	  {"sid":"A","effect":"Maybe","actions":["a:b"],"resources":["r://x"]},{"sid":"B","effect":"Allow","actions":[],"resources":["r://x"]}]}`), 0o644)
	if code, _, errs := run(t, "", "policy", "lint", many); code != 1 || !strings.Contains(errs, "at issuer_did") || !strings.Contains(errs, "at statements[0].effect") ||
		!strings.Contains(errs, "at statements[1].actions") || !strings.Contains(errs, "at policy_id") {
		t.Errorf("lint with many problems: %d %s", code, errs)
	}
	if code, out, _ := run(t, "", "policy", "lint", "--json", many); code != 1 || strings.Count(out, `"path"`) != 5 {
		t.Errorf("lint --json with many problems: %d %s", code, out)
	}
	for _, name := range []string{"kv-boundary", "secrets-isolation", "servicebus-send-only"} {
		code, out, _ := run(t, "", "policy", "test", examplePath(name+".wpc.json"), examplePath(name+".cases.json"))
		if code != 0 || !strings.Contains(out, " 0 failed") {
			t.Errorf("test %s: %d\n%s", name, code, out)
		}
	}
	code, out, _ = run(t, "", "policy", "eval", "--policy", kv, "--action", "keyvault:secrets.set",
		"--resource", "kv://kv-prod-finance-001/secrets/agent/app/x", "--context", "Request:HasHumanApproval=true", "--json")
	var d struct {
		Decision   string   `json:"decision"`
		Statements []string `json:"statements"`
		Reason     string   `json:"reason"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != 0 || d.Decision != "allow" || len(d.Statements) != 1 {
		t.Errorf("eval: %d %s", code, out)
	}
	code, out, _ = run(t, "", "policy", "explain", "--policy", kv, "--action", "keyvault:secrets.list", "--resource", "kv://kv-prod-finance-001/secrets")
	if code != 0 || !strings.Contains(out, "decision: deny") || !strings.Contains(out, "DenyListing (Deny): applies") {
		t.Errorf("explain: %s", out)
	}
	if code, _, errs := run(t, "", "policy", "eval", "--policy", kv, "--action", "x"); code != 2 || !strings.Contains(errs, "required") {
		t.Errorf("missing flags: %d %s", code, errs)
	}

	// Sign and verify locally.
	dir := t.TempDir()
	key := filepath.Join(dir, "reg.key.json")
	_, did, _ := run(t, "", "keys", "new", "--out", key)
	did = strings.TrimSpace(did)
	env := filepath.Join(dir, "kv.env.json")
	if code, _, errs := run(t, "", "policy", "sign", kv, "--key", key, "--out", env); code != 0 {
		t.Fatalf("sign: %s", errs)
	}
	if code, out, _ := run(t, "", "policy", "verify", env, "--signer", did); code != 0 || !strings.Contains(out, hash) {
		t.Errorf("verify: %d %s", code, out)
	}
	if code, _, errs := run(t, "", "policy", "verify", env); code != 1 || !strings.Contains(errs, "WPC_SIGNER_ALLOWLIST_REQUIRED") {
		t.Errorf("verify without allowlist: %d %s", code, errs)
	}
	if code, out, _ := run(t, "", "policy", "eval", "--policy", env, "--action", "keyvault:secrets.get", "--resource", "kv://kv-prod-finance-001/secrets/agent/app/db"); code != 0 || !strings.HasPrefix(out, "allow") {
		t.Errorf("eval on an envelope: %s", out)
	}
}

// startNode runs a node with every role on a temporary data directory
// until the test ends.
func startNode(t *testing.T) (node *server.Node, url, data string) {
	t.Helper()
	data = t.TempDir()
	node, err := server.Open(context.Background(), server.Config{DataDir: keystore.Dir(data), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	url, err = node.Listen()
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	return node, url, data
}

func TestPublishAndGetAgainstServe(t *testing.T) {
	node, url, data := startNode(t)
	for _, f := range []string{filepath.Join(data, "admin.token"), filepath.Join(data, "keys", "registry.key.json")} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	t.Setenv("CLAWEA_DATA_DIR", data)
	kv := examplePath("kv-boundary.wpc.json")
	code, out, errs := run(t, "", "policy", "publish", kv, "--server", url)
	if code != 0 || strings.TrimSpace(out) == "" || !strings.Contains(errs, "published") {
		t.Fatalf("publish: %d %s %s", code, out, errs)
	}
	hash := strings.TrimSpace(out)
	if code, _, errs := run(t, "", "policy", "publish", kv, "--server", url); code != 0 || !strings.Contains(errs, "already published") {
		t.Errorf("republish: %s", errs)
	}
	if code, _, errs := run(t, "", "policy", "publish", kv, "--server", url, "--token", "wrong"); code != 1 || !strings.Contains(errs, "UNAUTHORIZED") {
		t.Errorf("wrong token: %d %s", code, errs)
	}
	regDID := node.DIDs["registry"]
	code, out, _ = run(t, "", "policy", "get", hash, "--server", url, "--signer", regDID)
	if code != 0 || !strings.Contains(out, `"policy_id": "kv-boundary-finance"`) {
		t.Errorf("get: %d %s", code, out)
	}
	if code, _, errs := run(t, "", "policy", "get", hash, "--server", url, "--signer", "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"); code != 1 || !strings.Contains(errs, "WPC_SIGNER_NOT_ALLOWED") {
		t.Errorf("get with another signer: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "policy", "get", strings.Repeat("A", 43), "--server", url, "--any-signer"); code != 1 || !strings.Contains(errs, "WPC_NOT_FOUND") {
		t.Errorf("get missing: %d %s", code, errs)
	}
}
