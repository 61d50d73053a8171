package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestWriteTokenCommands: a read-only job, then its write token from
// clawea token issue --job JOB --scope write.
func TestWriteTokenCommands(t *testing.T) {
	_, url, data := startNode(t)
	t.Setenv("CLAWEA_DATA_DIR", data)
	t.Setenv("CLAWEA_SERVER", url)
	t.Setenv("CLAWEA_TOKEN", "")
	code, out, errs := run(t, "", "policy", "publish", examplePath("secrets-isolation.wpc.json"))
	if code != 0 {
		t.Fatalf("publish: %s", errs)
	}
	hash := strings.TrimSpace(out)
	_, out, _ = run(t, "", "agent", "create", "--name", "w")
	agent := strings.TrimSpace(out)
	if code, _, errs := run(t, "", "job", "start", "--agent", agent, "--policy", hash, "--write", "--read-only"); code != 2 || !strings.Contains(errs, "exclude") {
		t.Errorf("--write --read-only: %d %s", code, errs)
	}
	code, out, errs = run(t, "", "job", "start", "--agent", agent, "--policy", hash, "--read-only", "--label", "change_ticket=CHG-9", "--json")
	var started struct {
		Job struct {
			ID string `json:"id"`
		} `json:"job"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil || code != 0 {
		t.Fatalf("job start: %d %s %s", code, out, errs)
	}
	if _, out, _ := run(t, "", "token", "inspect", started.Token); strings.Contains(out, "tool:write") || !strings.Contains(out, "label:change_ticket=CHG-9") {
		t.Errorf("read-only token: %s", out)
	}
	if code, _, errs := run(t, "", "token", "issue", "--job", started.Job.ID, "--scope", "proxy:call"); code != 2 {
		t.Errorf("--job with another scope: %d %s", code, errs)
	}
	code, out, errs = run(t, "", "token", "issue", "--job", started.Job.ID, "--scope", "write", "--ttl", "2m")
	if code != 0 || !strings.Contains(errs, "write token for job "+started.Job.ID) {
		t.Fatalf("write token: %d %s %s", code, out, errs)
	}
	if _, insp, _ := run(t, "", "token", "inspect", strings.TrimSpace(out)); !strings.Contains(insp, "tool:write") || !strings.Contains(insp, started.Job.ID) {
		t.Errorf("write token: %s", insp)
	}
	if code, _, errs := run(t, "", "token", "issue", "--job", "job_nope", "--scope", "write"); code != 1 || !strings.Contains(errs, "JOB_NOT_FOUND") {
		t.Errorf("unknown job: %d %s", code, errs)
	}
}
