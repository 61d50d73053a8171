package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/signer"
)

func TestPolicyLifecycleCommands(t *testing.T) {
	data := t.TempDir()
	op, _ := signer.Generate()
	opFile := filepath.Join(t.TempDir(), "operator.key.json")
	if err := signer.WriteFile(opFile, op, false); err != nil {
		t.Fatal(err)
	}
	stranger, _ := signer.Generate()
	strangerFile := filepath.Join(t.TempDir(), "stranger.key.json")
	signer.WriteFile(strangerFile, stranger, false)
	node, err := server.Open(context.Background(), server.Config{DataDir: keystore.Dir(data), Listen: "127.0.0.1:0",
		Policy: server.PolicyLifecycle{RequireApproval: true, Operators: []string{op.DID()}}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := node.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	t.Setenv("CLAWEA_DATA_DIR", data)
	t.Setenv("CLAWEA_OPERATOR_KEY", "")

	_, out, _ := run(t, "", "policy", "publish", examplePath("kv-boundary.wpc.json"), "--server", url)
	h1 := strings.TrimSpace(out)
	_, out, _ = run(t, "", "policy", "publish", examplePath("demo-job.wpc.json"), "--server", url)
	h2 := strings.TrimSpace(out)

	if code, out, _ := run(t, "", "policy", "status", h1, "--server", url); code != 0 || !strings.Contains(out, "published") || !strings.Contains(out, "can start jobs: false") {
		t.Errorf("status before approval: %d %s", code, out)
	}
	if code, _, errs := run(t, "", "policy", "approve", h1, "--server", url); code != 2 || !strings.Contains(errs, "--key is required") {
		t.Errorf("approve without a key: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "policy", "approve", h1, "--server", url, "--key", strangerFile); code != 1 || !strings.Contains(errs, "OPERATOR_NOT_ALLOWED") {
		t.Errorf("approve by a stranger: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "policy", "approve", "nothash", "--server", url, "--key", opFile); code != 2 {
		t.Errorf("approve a non-hash: %d %s", code, errs)
	}
	if code, out, errs := run(t, "", "policy", "approve", h1, "--server", url, "--key", opFile, "--reason", "CAB-7"); code != 0 || !strings.Contains(out, "approved by "+op.DID()) {
		t.Fatalf("approve: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, "", "policy", "status", h1, "--server", url); code != 0 || !strings.Contains(out, "approved") || !strings.Contains(out, "can start jobs: true") || !strings.Contains(out, "CAB-7") {
		t.Errorf("status after approval: %d %s", code, out)
	}
	if code, out, errs := run(t, "", "policy", "freeze", h2, "--server", url, "--key", opFile); code != 0 || !strings.Contains(out, "frozen to 1") {
		t.Errorf("freeze: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(t, "", "policy", "status", "--server", url); code != 0 || !strings.Contains(out, "frozen to: "+h2) {
		t.Errorf("status of the deployment: %d %s", code, out)
	}
	if code, out, errs := run(t, "", "policy", "unfreeze", "--server", url, "--key", opFile); code != 0 || !strings.Contains(out, "unfrozen") {
		t.Errorf("unfreeze: %d %s %s", code, out, errs)
	}
	if code, out, errs := run(t, "", "policy", "retire", h1, "--superseded-by", h2, "--server", url, "--key", opFile); code != 0 || !strings.Contains(out, "retired") {
		t.Errorf("retire: %d %s %s", code, out, errs)
	}
	if code, _, errs := run(t, "", "policy", "approve", h1, "--server", url, "--key", opFile); code != 1 || !strings.Contains(errs, "POLICY_RETIRED") {
		t.Errorf("approve a retired hash: %d %s", code, errs)
	}
	code, out, _ := run(t, "", "policy", "status", h1, "--server", url, "--json")
	var sv struct {
		Status       string `json:"status"`
		SupersededBy string `json:"superseded_by_b64u"`
		Approval     struct {
			Statement json.RawMessage `json:"statement"`
			Signature string          `json:"signature_b64u"`
		} `json:"approval"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &sv) != nil || sv.Status != "retired" || sv.SupersededBy != h2 || sv.Approval.Signature == "" || len(sv.Approval.Statement) == 0 {
		t.Errorf("status --json: %d %s", code, out)
	}
	// The exported approval is the signed statement.
	code, out, _ = run(t, "", "policy", "status", "--server", url, "--json")
	var log struct {
		Changes []struct {
			Actor     string          `json:"actor"`
			Statement json.RawMessage `json:"statement"`
			Signature string          `json:"signature_b64u"`
		} `json:"changes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &log) != nil || len(log.Changes) != 4 {
		t.Fatalf("log export: %d %s", code, out)
	}
	for i, c := range log.Changes {
		if c.Actor != op.DID() || c.Signature == "" || len(c.Statement) == 0 {
			t.Errorf("change %d: %+v", i, c)
		}
	}
}

// A policy operator that is not a did:key stops clawea serve before it
// opens anything.
func TestServeRefusesABadPolicyOperator(t *testing.T) {
	code, _, errs := run(t, "", "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--policy-operator", "did:key:nope")
	if code != 2 || !strings.Contains(errs, "policy operator") {
		t.Errorf("serve with a bad operator: %d %s", code, errs)
	}
}
