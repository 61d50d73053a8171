package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenScopeHashCommand(t *testing.T) {
	const a = "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"
	const g = "did:key:z6MkfF4ykuxdK3Cea9xDqWgLLgMBvxcypy6Tv1K45Eahxy3m"
	// The worked example of PROTOCOL.md §3.3, with claims outside the hash
	// (of odd shapes) that must not count.
	claims := `{"token_version":"1","sub":"` + a + `","aud":"clawproxy.com","scope":[" proxy:call","proxy:call"],
		"owner_did":"` + g + `","controller_did":"` + g + `","agent_did":"` + a + `",
		"iat":1.5,"exp":"soon","jti":"j","nonce":7,"token_lane":"legacy","token_scope_hash_b64u":"x"}`
	code, out, errs := run(t, claims, "token", "scope-hash", "-")
	if code != 0 || out != "XZR8LHTwUXOZ0fuVu7HS0c5HFVZ1tNO-DW89BrdIvF4\n" {
		t.Fatalf("scope-hash: %d %q %s", code, out, errs)
	}
	if code, _, errs := run(t, `[1]`, "token", "scope-hash", "-"); code != 2 || !strings.Contains(errs, "JSON object") {
		t.Errorf("not an object: %d %s", code, errs)
	}
	if code, _, errs := run(t, `{"sub":"x"}`, "token", "scope-hash", "-"); code != 2 || !strings.Contains(errs, "need sub and scope") {
		t.Errorf("no scope: %d %s", code, errs)
	}
}

// TestJobLifecycleCommands drives agent, job and token commands against a
// running node: a custodial job and an agent-signed one, end to end, and
// the exported evidence verifies offline in strict mode.
func TestJobLifecycleCommands(t *testing.T) {
	node, url, data := startNode(t)
	t.Setenv("CLAWEA_DATA_DIR", data)
	t.Setenv("CLAWEA_SERVER", url)
	t.Setenv("CLAWEA_TOKEN", "")

	code, out, errs := run(t, "", "policy", "publish", examplePath("secrets-isolation.wpc.json"))
	if code != 0 {
		t.Fatalf("publish: %s", errs)
	}
	hash := strings.TrimSpace(out)

	code, out, errs = run(t, "", "agent", "create", "--name", "demo-agent")
	agent := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(agent, "did:key:z6Mk") {
		t.Fatalf("agent create: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, "", "agent", "list"); code != 0 || !strings.Contains(out, agent) || !strings.Contains(out, "demo-agent") {
		t.Errorf("agent list: %s", out)
	}

	code, out, errs = run(t, "", "job", "start", "--agent", agent, "--policy", hash, "--label", "change_ticket=CHG-1", "--json")
	var started struct {
		Job struct {
			ID string `json:"id"`
		} `json:"job"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil || code != 0 || started.Token == "" {
		t.Fatalf("job start: %d %s %s", code, out, errs)
	}
	job, tok := started.Job.ID, started.Token
	if code, _, errs := run(t, "", "job", "start", "--agent", agent, "--policy", strings.Repeat("A", 43)); code != 1 || !strings.Contains(errs, "POLICY_NOT_FOUND") {
		t.Errorf("start on an unknown policy: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "job", "start", "--agent", agent); code != 2 || !strings.Contains(errs, "required") {
		t.Errorf("start without --policy: %d %s", code, errs)
	}

	// The token: offline views and the issuer's.
	if code, out, _ := run(t, "", "token", "inspect", tok); code != 0 || !strings.Contains(out, "job         "+job) || !strings.Contains(out, "matches claims: true") {
		t.Errorf("inspect: %s", out)
	}
	if code, out, errs := run(t, tok, "token", "verify", "-", "--jwks", url, "--json"); code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Errorf("verify: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, "", "token", "introspect", tok); code != 0 || !strings.HasPrefix(out, "active") {
		t.Errorf("introspect: %d %s", code, out)
	}
	tampered := tok[:len(tok)-4] + "AAAA"
	if tampered == tok {
		tampered = tok[:len(tok)-4] + "BBBB"
	}
	if code, out, _ := run(t, tampered, "token", "verify", "-", "--jwks", url, "--json"); code != 1 || !strings.Contains(out, `"code": "TOKEN_`) {
		t.Errorf("verify tampered: %d %s", code, out)
	}

	// Events with the job's token; show and list.
	for i := 0; i < 3; i++ {
		if code, out, errs := run(t, "", "job", "events", job, "--job-token", tok, "--append", "step", "--payload", `{"tool":"storage.readonly"}`); code != 0 || !strings.Contains(out, "step") {
			t.Fatalf("append: %d %s %s", code, out, errs)
		}
	}
	if code, _, errs := run(t, "", "job", "events", job, "--append", "x", "--payload", "{"); code != 2 || !strings.Contains(errs, "--payload") {
		t.Errorf("bad payload: %d %s", code, errs)
	}
	if code, out, _ := run(t, "", "job", "events", job); code != 0 || strings.Count(out, "step") != 3 {
		t.Errorf("events: %s", out)
	}
	if code, out, _ := run(t, "", "job", "show", job); code != 0 || !strings.Contains(out, "(open)") || !strings.Contains(out, "(custodial)") {
		t.Errorf("show: %s", out)
	}
	if code, out, _ := run(t, "", "job", "list", "--status", "open"); code != 0 || !strings.Contains(out, job) {
		t.Errorf("list: %s", out)
	}

	// Finish: the custodial key signs, the token is revoked.
	dir := t.TempDir()
	code, out, errs = run(t, "", "job", "finish", job, "--out", dir)
	if code != 0 || !strings.Contains(out, "1 bundle(s)") {
		t.Fatalf("finish: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, "", "token", "introspect", tok); code != 1 || !strings.Contains(out, "inactive") {
		t.Errorf("introspect after finish: %d %s", code, out)
	}
	if code, _, errs := run(t, "", "job", "events", job, "--job-token", tok, "--append", "late"); code != 1 || !strings.Contains(errs, "TOKEN_") {
		t.Errorf("append after finish: %d %s", code, errs)
	}

	// Export, then verify offline with the written trust file.
	exp := t.TempDir()
	if code, out, errs := run(t, "", "job", "export", job, "--out", exp); code != 0 || !strings.Contains(out, "wrote 1 bundle(s)") {
		t.Fatalf("export: %d %s %s", code, out, errs)
	}
	bundle := filepath.Join(exp, job+"-bundle.json")
	for _, f := range []string{bundle, filepath.Join(exp, job+"-urm.json"), filepath.Join(exp, job+"-trust-pulse.json"), filepath.Join(exp, job+"-export.json"), filepath.Join(exp, "trust.json")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("export wrote no %s", filepath.Base(f))
		}
	}
	if code, out, errs := run(t, "", "verify", "--strict", "--json", "--config", filepath.Join(exp, "trust.json"), bundle); code != 0 || !strings.Contains(out, `"PASS"`) {
		t.Errorf("verify exported bundle: %d %s %s", code, out, errs)
	}
	// One event removed: the chain breaks.
	raw, _ := os.ReadFile(bundle)
	var env map[string]any
	json.Unmarshal(raw, &env)
	payload := env["payload"].(map[string]any)
	chain := payload["event_chain"].([]any)
	payload["event_chain"] = append(chain[:1:1], chain[2:]...)
	cut, _ := json.Marshal(env)
	if code, out, _ := run(t, string(cut), "verify", "--strict", "--json", "-"); code != 1 || !strings.Contains(out, `"FAIL"`) {
		t.Errorf("bundle with an event removed: %d %s", code, out)
	}

	// An agent that keeps its own key signs with --key.
	key := filepath.Join(t.TempDir(), "agent.key.json")
	_, did, _ := run(t, "", "keys", "new", "--out", key)
	did = strings.TrimSpace(did)
	code, out, errs = run(t, "", "job", "start", "--agent", did, "--policy", hash)
	if code != 0 {
		t.Fatalf("start own-key job: %s", errs)
	}
	job2 := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "job ")
	if code, _, errs := run(t, "", "job", "finish", job2); code != 1 || !strings.Contains(errs, "JOB_EMPTY") {
		t.Errorf("finish an empty job: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "job", "events", job2, "--append", "note"); code != 0 {
		t.Fatalf("append: %s", errs)
	}
	if code, _, errs := run(t, "", "job", "finish", job2); code != 2 || !strings.Contains(errs, "pass its key with --key") {
		t.Errorf("finish without key: %d %s", code, errs)
	}
	other := filepath.Join(t.TempDir(), "other.key.json")
	run(t, "", "keys", "new", "--out", other)
	if code, _, errs := run(t, "", "job", "finish", job2, "--key", other); code != 2 || !strings.Contains(errs, "but the job's agent is") {
		t.Errorf("finish with another key: %d %s", code, errs)
	}
	code, out, errs = run(t, "", "job", "finish", job2, "--key", key, "--out", dir)
	if code != 0 || !strings.Contains(out, "verification") {
		t.Fatalf("finish with key: %d %s %s", code, out, errs)
	}
	if code, out, errs := run(t, "", "verify", "--strict", "--json", "--config", filepath.Join(exp, "trust.json"), filepath.Join(dir, job2+"-bundle.json")); code != 0 {
		t.Errorf("verify agent-signed bundle: %d %s %s", code, out, errs)
	}
	_ = node
}

func TestTokenRevokeAndRotate(t *testing.T) {
	_, url, data := startNode(t)
	t.Setenv("CLAWEA_DATA_DIR", data)
	t.Setenv("CLAWEA_SERVER", url)
	const sub = "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"
	code, out, errs := run(t, "", "token", "issue", "--sub", sub, "--scope", "proxy:call", "--ttl", "5m")
	tok := strings.TrimSpace(out)
	if code != 0 || strings.Count(tok, ".") != 2 {
		t.Fatalf("issue: %d %s %s", code, out, errs)
	}
	if code, _, errs := run(t, "", "token", "issue", "--sub", sub, "--scope", "proxy:call", "--ttl", "2h"); code != 1 || !strings.Contains(errs, "TTL_TOO_LONG") {
		t.Errorf("issue too long: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "token", "issue", "--sub", sub, "--scope", "proxy:*"); code != 1 || !strings.Contains(errs, "SCOPE_") {
		t.Errorf("issue wildcard: %d %s", code, errs)
	}
	if code, out, _ := run(t, tok, "token", "revoke", "-", "--reason", "test"); code != 0 || !strings.HasPrefix(out, "revoked ") {
		t.Errorf("revoke: %d %s", code, out)
	}
	if code, out, _ := run(t, tok, "token", "revoke", "-"); code != 0 || !strings.HasPrefix(out, "already_revoked ") {
		t.Errorf("revoke again: %d %s", code, out)
	}
	if code, out, _ := run(t, "", "token", "introspect", tok, "--json"); code != 1 || !strings.Contains(out, "TOKEN_REVOKED") {
		t.Errorf("introspect revoked: %d %s", code, out)
	}
	if code, _, errs := run(t, "", "token", "revoke", "--hash", "nothex"); code != 1 || !strings.Contains(errs, "INVALID_TOKEN_HASH") {
		t.Errorf("revoke bad hash: %d %s", code, errs)
	}

	// Rotation: the old key keeps verifying during the overlap, and the
	// server signs with the new one on its next issue.
	code, out, errs = run(t, "", "keys", "rotate", "--data-dir", data, "--overlap", "30m")
	if code != 0 || !strings.Contains(out, "issuer key rotated") {
		t.Fatalf("rotate: %d %s %s", code, out, errs)
	}
	code, out, _ = run(t, "", "token", "issue", "--sub", sub, "--scope", "proxy:call", "--json")
	var issued struct {
		Token string `json:"token"`
		Kid   string `json:"kid"`
	}
	json.Unmarshal([]byte(out), &issued)
	if code != 0 || issued.Kid == "" || strings.Contains(tok, issued.Kid) {
		t.Fatalf("issue after rotate: %d %s", code, out)
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	_, raw, _ := httpGet(context.Background(), url+"/v1/jwks")
	os.WriteFile(jwks, raw, 0o644)
	if code, out, errs := run(t, issued.Token, "token", "verify", "-", "--jwks", jwks); code != 0 || !strings.Contains(out, issued.Kid) {
		t.Errorf("verify new-key token offline: %d %s %s", code, out, errs)
	}
	if !strings.Contains(string(raw), `"not_after_unix"`) {
		t.Errorf("JWKS after rotation names no overlap end: %s", raw)
	}
}
