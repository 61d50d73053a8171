package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/testkit"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestConformanceCommand(t *testing.T) {
	root := testkit.ProtocolDir(t)
	manifest := filepath.Join(root, "packages/schema/fixtures/protocol-conformance/manifest.v1.json")
	code, out, errs := run(t, "", "verify", "conformance", "--root", root, manifest)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || lines[len(lines)-1] != "40 passed, 0 failed" {
		t.Fatalf("exit %d, last line %q\n%s%s", code, lines[len(lines)-1], out, errs)
	}
	// Root found without --root; --at today makes six aggregate vectors expire.
	code, out, _ = run(t, "", "verify", "conformance", "--at", "2026-11-22T00:00:00Z", manifest)
	if code != 1 || !strings.Contains(out, "34 passed, 6 failed") || !strings.Contains(out, "EXPIRED_TTL") {
		t.Fatalf("at a later time: exit %d\n%s", code, out)
	}
}

func TestVerifyExitCodesAndJSON(t *testing.T) {
	dir := filepath.Join(testkit.ProtocolDir(t), "packages/schema/fixtures/protocol-conformance")
	cfg := filepath.Join(dir, "clawverify.config.conformance.v1.json")
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		status string
		reason string
	}{
		{"pass", []string{"--config", cfg, filepath.Join(dir, "proof_bundle_pass.v1.json")}, "", 0, "PASS", "OK"},
		{"fail", []string{"--config", cfg, filepath.Join(dir, "proof_bundle_fail_invalid_signature.v1.json")}, "", 1, "FAIL", "SIGNATURE_INVALID"},
		{"no allowlist", []string{filepath.Join(dir, "proof_bundle_pass.v1.json")}, "", 1, "FAIL", "DEPENDENCY_NOT_CONFIGURED"},
		{"not json", []string{"-"}, "{nope", 2, "ERROR", "INPUT_INVALID"},
		{"unknown artifact", []string{"-"}, `{"hello":"world"}`, 2, "ERROR", "INPUT_INVALID"},
		{"missing file", []string{"/nonexistent/file.json"}, "", 2, "ERROR", "INPUT_INVALID"},
		{"bad kind", []string{"--kind", "nonsense", "-"}, "{}", 2, "ERROR", "INPUT_INVALID"},
		{"strict refuses unsigned", []string{"--strict", "-"}, `{"bundle_version":"1","bundle_id":"b","agent_did":"did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7","event_chain":[]}`, 1, "FAIL", "UNSIGNED_PAYLOAD"},
		{"forced kind", []string{"--kind", "commit-sig", filepath.Join(dir, "commit_sig_pass.v1.json")}, "", 0, "PASS", "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, tt.stdin, append([]string{"verify", "--json"}, tt.args...)...)
			var got struct {
				Status     string `json:"status"`
				ReasonCode string `json:"reason_code"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s%s", err, out, errs)
			}
			if code != tt.code || got.Status != tt.status || got.ReasonCode != tt.reason {
				t.Errorf("exit %d status %s code %s, want %d %s %s", code, got.Status, got.ReasonCode, tt.code, tt.status, tt.reason)
			}
		})
	}
	// Human output names the verdict and a hint.
	code, out, _ := run(t, "", "verify", filepath.Join(dir, "proof_bundle_fail_invalid_signature.v1.json"))
	if code != 1 || !strings.HasPrefix(out, "FAIL  proof_bundle  SIGNATURE_INVALID") || !strings.Contains(out, "hint:") {
		t.Errorf("human output:\n%s", out)
	}
	if code, _, errs := run(t, "", "verify"); code != 2 || !strings.Contains(errs, "accepts 1 arg") {
		t.Errorf("usage error: %d %s", code, errs)
	}
	if code, _, errs := run(t, "", "verify", "--bogus", "x"); code != 2 || !strings.Contains(errs, "unknown flag") {
		t.Errorf("unknown flag: %d %s", code, errs)
	}
}

func TestKeysNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "agent.key.json")
	code, out, errs := run(t, "", "keys", "new", "--out", path)
	if code != 0 || !strings.HasPrefix(out, "did:key:z6Mk") {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode().Perm(), err)
	}
	if code, _, errs := run(t, "", "keys", "new", "--out", path); code != 2 || !strings.Contains(errs, "--force") {
		t.Errorf("overwrite without --force: %d %s", code, errs)
	}
	code, shown, _ := run(t, "", "keys", "show", path)
	if code != 0 || shown != out {
		t.Errorf("show: %q vs %q", shown, out)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, "", "keys", "show", path); code != 2 || !strings.Contains(errs, "chmod 600") {
		t.Errorf("world-readable key: %d %s", code, errs)
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "", "demo", "--data-dir", dir, "--json")
	var s struct {
		Status        string `json:"status"`
		Events        int    `json:"events"`
		JobID         string `json:"job_id"`
		PolicyHash    string `json:"policy_hash_b64u"`
		TokenAfter    string `json:"token_after_finish"`
		BundlePath    string `json:"bundle_path"`
		ConfigPath    string `json:"config_path"`
		VerifyCommand string `json:"verify_command"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || code != 0 || s.Status != "PASS" || s.Events < 4 {
		t.Fatalf("exit %d %v\n%s\n%s", code, err, out, errs)
	}
	if s.TokenAfter != "TOKEN_JOB_CLOSED" || len(s.PolicyHash) != 43 || !strings.HasPrefix(s.JobID, "job_") {
		t.Errorf("summary: %s", out)
	}
	var calls struct {
		Receipts int `json:"gateway_receipts"`
		Calls    []struct {
			Code      string `json:"code"`
			ReceiptID string `json:"receipt_id"`
			Stream    bool   `json:"stream"`
		} `json:"model_calls"`
	}
	json.Unmarshal([]byte(out), &calls)
	if calls.Receipts != 2 || len(calls.Calls) != 3 || calls.Calls[1].ReceiptID == "" || !calls.Calls[1].Stream || calls.Calls[2].Code != "POLICY_DENIED" {
		t.Errorf("model calls: %s", out)
	}
	var tools struct {
		Tools []struct {
			Tool    string `json:"tool"`
			Outcome string `json:"outcome"`
		} `json:"tool_calls"`
		Redacted    bool `json:"model_body_redacted"`
		SideEffects int  `json:"side_effect_records"`
		Approvals   int  `json:"human_approval_records"`
		ToolRcpts   int  `json:"tool_receipts"`
	}
	json.Unmarshal([]byte(out), &tools)
	var outcomes []string
	for _, tc := range tools.Tools {
		outcomes = append(outcomes, tc.Tool+"="+tc.Outcome)
	}
	want := "keyvault_get_secret=ok keyvault_get_secret=POLICY_DENIED keyvault_set_secret=APPROVAL_REQUIRED keyvault_set_secret=ok " +
		"servicebus_send=ok servicebus_send=POLICY_DENIED servicebus_send=POLICY_DENIED"
	if strings.Join(outcomes, " ") != want || !tools.Redacted || tools.SideEffects != 2 || tools.Approvals != 1 || tools.ToolRcpts != 7 {
		t.Errorf("tool calls: %v\n%s", outcomes, out)
	}
	for _, want := range []string{"policy ", "job ", "model ", "refused POLICY_DENIED", "NOTICE: the demo's approver", "finish ", "verify       PASS OK", "proof tier gateway"} {
		if !strings.Contains(errs, want) {
			t.Errorf("narration lacks %q:\n%s", want, errs)
		}
	}
	// The printed command verifies the files again.
	code, vout, _ := run(t, "", "verify", "--strict", "--config", s.ConfigPath, s.BundlePath)
	if code != 0 || !strings.HasPrefix(vout, "PASS") {
		t.Fatalf("re-verify: %d\n%s", code, vout)
	}
	// A second run on the same data directory reuses keys and policy.
	if code, out, errs := run(t, "", "demo", "--data-dir", dir, "--json"); code != 0 || !strings.Contains(out, s.PolicyHash) {
		t.Fatalf("second run: %d\n%s\n%s", code, out, errs)
	}
}

// TestDemoInteractiveDeny answers "n" to the approval prompt: the write is
// denied, and the job's evidence still verifies.
func TestDemoInteractiveDeny(t *testing.T) {
	code, out, errs := run(t, "n\n", "demo", "--data-dir", t.TempDir(), "--interactive", "--json")
	if code != 0 || !strings.Contains(errs, "allow it as did:key:") || !strings.Contains(out, `"APPROVAL_DENIED"`) || !strings.Contains(out, `"status": "PASS"`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}
