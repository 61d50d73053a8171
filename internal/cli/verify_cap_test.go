package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/testkit"
)

// TestVerifyMaxBytes: --max-bytes refuses a file or standard input over
// the limit with INPUT_TOO_LARGE (exit 2) before parsing; the same input
// at the limit is verified.
func TestVerifyMaxBytes(t *testing.T) {
	dir := filepath.Join(testkit.ProtocolDir(t), "packages/schema/fixtures/protocol-conformance")
	cfg := filepath.Join(dir, "clawverify.config.conformance.v1.json")
	file := filepath.Join(dir, "proof_bundle_pass.v1.json")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	n := len(data)
	type verdict struct {
		Status     string `json:"status"`
		ReasonCode string `json:"reason_code"`
		Reason     string `json:"reason"`
	}
	for _, tc := range []struct {
		name   string
		limit  int
		stdin  string
		arg    string
		code   int
		reason string
	}{
		{"file at the limit", n, "", file, 0, "OK"},
		{"file over the limit", n - 1, "", file, 2, "INPUT_TOO_LARGE"},
		{"stdin at the limit", n, string(data), "-", 0, "OK"},
		{"stdin over the limit", n - 1, string(data), "-", 2, "INPUT_TOO_LARGE"},
		{"not JSON, over the limit", 4, "{{{{{{{{", "-", 2, "INPUT_TOO_LARGE"},
	} {
		code, out, errs := run(t, tc.stdin, "verify", "--json", "--config", cfg, "--max-bytes", strconv.Itoa(tc.limit), tc.arg)
		var v verdict
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%s: %v\n%s%s", tc.name, err, out, errs)
		}
		if code != tc.code || v.ReasonCode != tc.reason {
			t.Errorf("%s: exit %d %s (%s), want %d %s", tc.name, code, v.ReasonCode, v.Reason, tc.code, tc.reason)
		}
	}
	// Without --json the code is in the error.
	code, _, errs := run(t, "", "verify", "--max-bytes", "10", file)
	if code != 2 || !strings.Contains(errs, "INPUT_TOO_LARGE") {
		t.Errorf("text: exit %d, %q", code, errs)
	}
}
