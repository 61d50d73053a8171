package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
)

// clawea job revoke and clawea connector deny|allow|status (issue #18, P9
// item 4): levers recorded with the operator's credential.
func TestJobRevokeAndConnectorCommands(t *testing.T) {
	data := t.TempDir()
	node, err := server.Open(context.Background(), server.Config{DataDir: keystore.Dir(data), Listen: "127.0.0.1:0", LocalBuses: []string{"sb-orders"}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := node.Listen()
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	t.Setenv("CLAWEA_DATA_DIR", data)
	t.Setenv("CLAWEA_SERVER", url)
	t.Setenv("CLAWEA_TOKEN", "")
	code, out, errs := run(t, "", "policy", "publish", examplePath("secrets-isolation.wpc.json"))
	if code != 0 {
		t.Fatalf("publish: %s", errs)
	}
	hash := strings.TrimSpace(out)
	_, out, _ = run(t, "", "agent", "create", "--name", "a")
	agent := strings.TrimSpace(out)
	code, out, errs = run(t, "", "job", "start", "--agent", agent, "--policy", hash, "--json")
	var started struct {
		Job struct {
			ID string `json:"id"`
		} `json:"job"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil || code != 0 {
		t.Fatalf("job start: %d %s %s", code, out, errs)
	}
	job, tok := started.Job.ID, started.Token

	if code, _, errs := run(t, "", "job", "revoke", job); code != 2 || !strings.Contains(errs, "--reason") {
		t.Errorf("revoke without a reason: %d %s", code, errs)
	}
	code, out, errs = run(t, "", "job", "revoke", job, "--reason", "incident 9", "--note", "alice", "--json")
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res["finish"] != "finished" || res["event_seq"] == nil {
		t.Fatalf("revoke: %d %s %s", code, out, errs)
	}
	if tokRes, _ := res["token"].(map[string]any); tokRes["status"] != "revoked" || tokRes["reason"] != "job revoked: incident 9" {
		t.Errorf("token: %v", res["token"])
	}
	if code, out, _ := run(t, "", "token", "introspect", tok, "--json"); code != 1 || !strings.Contains(out, "TOKEN_REVOKED") {
		t.Errorf("introspect after job revoke: %d %s", code, out)
	}
	if code, out, _ := run(t, "", "job", "events", job); code != 0 || !strings.Contains(out, "operator_revoke") {
		t.Errorf("no operator_revoke event: %s", out)
	}
	if code, out, _ := run(t, "", "job", "show", job); code != 0 || !strings.Contains(out, "finished") {
		t.Errorf("show after revoke: %s", out)
	}
	// Again: the token is already revoked, nothing else to do.
	if code, out, errs := run(t, "", "job", "revoke", job, "--reason", "again"); code != 0 || !strings.Contains(out, "already_revoked") || !strings.Contains(out, "already finished") {
		t.Errorf("revoke again: %d %s %s", code, out, errs)
	}
	if code, _, errs := run(t, "", "job", "revoke", "job_nope", "--reason", "x"); code != 1 || !strings.Contains(errs, "NOT_FOUND") {
		t.Errorf("revoke of an unknown job: %d %s", code, errs)
	}

	// Connector switches.
	if code, _, errs := run(t, "", "connector", "deny", "key vault", "--reason", "x"); code != 2 || !strings.Contains(errs, "connector name") {
		t.Errorf("bad name: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "connector", "deny", "keyvault"); code != 2 || !strings.Contains(errs, "--reason") {
		t.Errorf("no reason: %d %s", code, errs)
	}
	if code, out, errs := run(t, "", "connector", "deny", "MCP:Files", "--reason", "suspected exfiltration"); code != 0 || !strings.Contains(out, "connector mcp:files denied by admin-token") {
		t.Errorf("deny: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, "", "connector", "status"); code != 0 || !strings.Contains(out, "DENIED mcp:files") || !strings.Contains(out, "suspected exfiltration") {
		t.Errorf("status: %s", out)
	}
	if code, out, _ := run(t, "", "connector", "allow", "mcp:files", "--reason", "resolved", "--json"); code != 0 || !strings.Contains(out, `"state":"allowed"`) {
		t.Errorf("allow: %d %s", code, out)
	}
	if code, out, _ := run(t, "", "connector", "status"); code != 0 || !strings.Contains(out, "denied: none") || !strings.Contains(out, "connectors here: servicebus") {
		t.Errorf("status after allow: %s", out)
	}
}
