package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/token"
	"github.com/clawea/clawea/verify"
)

// publishWritePolicy publishes the Service Bus send policy (which allows
// sends) with model calls, job:start requiring a change ticket and
// token:issue for the write scope gated on a human's approval.
func (g *gwNode) publishWritePolicy() string {
	g.t.Helper()
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", "servicebus-send-only.wpc.json"))
	if err != nil {
		g.t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	doc["policy_id"] = "servicebus-orders-change-gated"
	doc["statements"] = append(doc["statements"].([]any),
		map[string]any{"sid": "AllowLocalModel", "effect": "Allow", "actions": []string{"model:invoke"}, "resources": []string{"model://local/" + localmodel.ModelName}},
		map[string]any{"sid": "AllowStartWithTicket", "effect": "Allow", "actions": []string{"job:start"}, "resources": []string{"job://*"},
			"conditions": map[string]any{"StringLike": map[string]string{"Job:Label.change_ticket": "CHG-*"}}},
		map[string]any{"sid": "AllowWriteTokenWithApproval", "effect": "Allow", "actions": []string{"token:issue"}, "resources": []string{"job://*"},
			"conditions": map[string]any{"Bool": map[string]string{"Request:HasHumanApproval": "true"}, "NumericLessThan": map[string]string{"Job:TTL": "121"}}})
	wpc, _ := json.Marshal(doc)
	var out map[string]any
	if st := g.call("POST", "/v1/wpc", g.admin, map[string]json.RawMessage{"wpc": wpc}, &out); st != 201 && st != 200 {
		g.t.Fatalf("publish: %d %v", st, out)
	}
	return out["policy_hash_b64u"].(string)
}

// TestReadTokenCannotWrite: a job under a policy that governs job:start
// gets a read token; a mutating call is refused with
// TOKEN_WRITE_SCOPE_REQUIRED although the policy allows it (tool API, HTTP
// and the decision API); a write token issued with approval writes; the
// labels are in the receipts and the bundle, which verifies strictly.
func TestReadTokenCannotWrite(t *testing.T) {
	g := startGateways(t, 0, time.Minute)
	hash := g.publishWritePolicy()
	ctx := context.Background()
	agent, err := g.node.Jobs.CreateAgent(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	var started map[string]any
	if st := g.call("POST", "/v1/jobs", g.admin, map[string]any{"agent_did": agent.DID, "policy_hash_b64u": hash,
		"labels": map[string]string{"change_ticket": "CHG-77"}}, &started); st != 201 {
		t.Fatalf("start: %d %v", st, started)
	}
	id, readTok := started["job"].(map[string]any)["id"].(string), started["token"].(string)
	rj, e := g.node.Tools.Authorize(ctx, readTok)
	if e != nil {
		t.Fatal(e)
	}
	if e := g.send(rj, "orders-staging"); e == nil || e.Code != token.CodeWriteScopeRequired || e.ReceiptID == "" {
		t.Fatalf("send with the read token: %+v", e)
	}
	// The same over HTTP, and through the decision API.
	var out map[string]any
	args := map[string]any{"namespace": "sb-orders", "entity": "orders-staging", "body": `{"order":1}`,
		"application_properties": map[string]any{"schema_version": "2", "correlation_id": "c-1"}}
	if st := g.call("POST", "/v1/tools/call", readTok, map[string]any{"tool": "servicebus_send", "arguments": args}, &out); st != 403 || errCode(out) != token.CodeWriteScopeRequired {
		t.Fatalf("HTTP send with the read token: %d %v", st, out)
	}
	var ans map[string]any
	if st := g.call("POST", "/v1/decide", readTok, map[string]any{"tool": map[string]string{"runtime": "openclaw", "name": "exec"}, "params": map[string]any{}}, &ans); st != 200 || ans["decision"] != "deny" || ans["code"] != token.CodeWriteScopeRequired {
		t.Fatalf("decide with the read token: %d %v", st, ans)
	}
	// And over MCP (tools/call at /mcp).
	argsJSON, _ := json.Marshal(args)
	mcpBody := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"servicebus_send","arguments":` + string(argsJSON) + `}}`
	req, _ := http.NewRequest("POST", g.url+"/mcp", strings.NewReader(mcpBody))
	req.Header.Set("Authorization", "Bearer "+readTok)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	mraw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(mraw), `"isError":true`) || !strings.Contains(string(mraw), token.CodeWriteScopeRequired) {
		t.Fatalf("MCP send with the read token: %d %s", resp.StatusCode, mraw)
	}
	g.modelCall(readTok)

	// The write token: approval required, then granted by a named operator.
	if st := g.call("POST", "/v1/jobs/"+id+"/tokens", g.admin, map[string]any{"scope": "write", "ttl_sec": 120}, &out); st != 403 || errCode(out) != jobs.CodeApprovalRequired {
		t.Fatalf("write token without approval: %d %v", st, out)
	}
	if st := g.call("POST", "/v1/jobs/"+id+"/tokens", g.admin, map[string]any{"scope": "write", "ttl_sec": 300, "approved_by": "alice"}, &out); st != 403 || errCode(out) != jobs.CodeTokenIssueDenied {
		t.Fatalf("write token over the policy's TTL: %d %v", st, out)
	}
	var wt jobs.Started
	if st := g.call("POST", "/v1/jobs/"+id+"/tokens", g.admin, map[string]any{"scope": "write", "ttl_sec": 120, "approved_by": "alice", "reason": "CHG-77 rollout"}, &wt); st != 201 {
		t.Fatalf("write token: %d %+v", st, wt)
	}
	scopes := tokenScopes(t, wt.Token)
	if !slices.Contains(scopes, jobs.ScopeWrite) || !slices.Contains(scopes, "label:change_ticket=CHG-77") {
		t.Fatalf("write token scopes: %v", scopes)
	}
	if exp, _ := time.Parse(time.RFC3339, wt.ExpiresAt); time.Until(exp) > 121*time.Second {
		t.Fatalf("write token lives until %s", wt.ExpiresAt)
	}
	wj, e := g.node.Tools.Authorize(ctx, wt.Token)
	if e != nil {
		t.Fatalf("authorize the write token: %v", e)
	}
	if e := g.send(wj, "orders-staging"); e != nil {
		t.Fatalf("send with the write token: %v", e)
	}
	// The read token still cannot write.
	if e := g.send(rj, "orders-staging"); e == nil || e.Code != token.CodeWriteScopeRequired {
		t.Fatalf("send with the read token after the write token: %+v", e)
	}
	var fin jobs.FinishResult
	if st := g.call("POST", "/v1/jobs/"+id+"/finish", g.admin, nil, &fin); st != 200 || len(fin.Bundles) != 1 {
		t.Fatalf("finish: %d %+v", st, fin)
	}
	b := fin.Bundles[0]
	opt := verify.Options{Strict: true, Now: time.Now().Add(time.Minute), URM: b.URM,
		Config: verify.Config{GatewayReceiptSigners: []string{g.node.Models.DID()}}}
	if res := verify.Check(b.Envelope, verify.KindProofBundle, opt); res.Status != verify.StatusPass {
		t.Fatalf("bundle: %s %s", res.ReasonCode, res.Reason)
	}
	var env struct {
		Payload struct {
			Receipts []struct {
				Payload struct {
					Metadata map[string]any `json:"metadata"`
				} `json:"payload"`
			} `json:"receipts"`
			Metadata struct {
				Labels map[string]any `json:"clawea_labels"`
			} `json:"metadata"`
		} `json:"payload"`
	}
	json.Unmarshal(b.Envelope, &env)
	if env.Payload.Metadata.Labels["change_ticket"] != "CHG-77" || len(env.Payload.Receipts) == 0 {
		t.Fatalf("bundle labels %v, %d receipts", env.Payload.Metadata.Labels, len(env.Payload.Receipts))
	}
	for _, r := range env.Payload.Receipts {
		if l, _ := r.Payload.Metadata["clawea_job_labels"].(map[string]any); l["change_ticket"] != "CHG-77" {
			t.Errorf("receipt metadata: %v", r.Payload.Metadata)
		}
	}
	if !strings.Contains(string(b.Envelope), jobs.EventWriteTokenIssued) {
		t.Error("the bundle has no write_token_issued event")
	}
	// After the job finished its write token is refused.
	if _, e := g.node.Tools.Authorize(ctx, wt.Token); e == nil {
		t.Error("write token accepted after the job finished")
	}
}
