package toolgw_test

// Issue #18 (P9 item 4): restoring a prior Key Vault version goes through
// the real azsecrets client against the dev vault, is gated on approval by
// the policy, and its receipt discloses both version ids and never the
// value; every read and write discloses its version id.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/verify"
)

const restorePolicy = `{
  "policy_version": "2", "policy_id": "restore", "issuer_did": "did:web:security.example.com",
  "statements": [
    {"sid": "ReadWrite", "effect": "Allow", "actions": ["keyvault:secrets.get", "keyvault:secrets.set", "keyvault:secrets.list_versions"], "resources": ["kv://*/secrets/agent/**"]},
    {"sid": "RestoreWithApproval", "effect": "Allow", "actions": ["keyvault:secrets.restore"], "resources": ["kv://*/secrets/agent/**"],
     "conditions": {"Bool": {"Request:HasHumanApproval": "true"}}}
  ]}`

// callOut calls a tool over the JSON API and returns the answer's output,
// receipt id, and error code and approval id.
func callOut(t *testing.T, url, tok, tool string, args map[string]any) (out map[string]any, receiptID, code, approvalID string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"tool": tool, "arguments": args})
	req, _ := http.NewRequest("POST", url+"/v1/tools/call", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var res struct {
		Output    map[string]any `json:"output"`
		ReceiptID string         `json:"receipt_id"`
		Error     *toolgw.Error  `json:"error"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("%s: %s", tool, raw)
	}
	if res.Error != nil {
		return nil, res.Error.ReceiptID, res.Error.Code, res.Error.ApprovalID
	}
	return res.Output, res.ReceiptID, "", ""
}

// disclosedResult returns a stored, verified tool receipt's raw JSON and
// its disclosed result leaves.
func disclosedResult(t *testing.T, e *env, jobID, id string) (string, map[string]string) {
	t.Helper()
	items, err := e.node.Store.ListItems(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Kind != evidence.KindToolReceipt || it.ItemID != id {
			continue
		}
		if out := verify.Check(it.JSON, verify.KindToolReceipt, verify.Options{}); out.Status != verify.StatusPass {
			t.Fatalf("receipt %s does not verify: %s %s", id, out.ReasonCode, out.Reason)
		}
		var env struct {
			Payload receipt.ToolV2 `json:"payload"`
		}
		if err := json.Unmarshal(it.JSON, &env); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		if env.Payload.ResultDisclosure != nil {
			for k, l := range env.Payload.ResultDisclosure.DisclosedLeaves {
				got[k] = l.Value.Str
			}
		}
		return string(it.JSON), got
	}
	t.Fatalf("no stored tool receipt %s", id)
	return "", nil
}

func TestRestoreSecretVersionThroughAzsecrets(t *testing.T) {
	srv, err := devvault.New(devvault.Options{Vault: canonVault})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	kv, err := keyvault.NewAzure(srv.Vault(), srv.URL(), srv.Credential(),
		keyvault.AzureOptions{Transport: srv.Client(), DisableChallengeResourceVerification: true, Retry: policy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	e := startWith(t, toolgw.Options{Vaults: []keyvault.Client{kv}}, nil)
	jobID, tok := e.job(e.publish([]byte(restorePolicy)))
	const name = "agent/app/rotating"
	const good, bad = "good-value-7f3a91", "bad-value-0c44d2"

	// Two writes: each receipt discloses its new version id.
	set := func(value string) string {
		out, rid, code, _ := callOut(t, e.url, tok, "keyvault_set_secret", map[string]any{"vault": canonVault, "name": name, "value": value, "content_type": "text/plain"})
		if code != "" {
			t.Fatalf("set: %s", code)
		}
		ver, _ := out["version"].(string)
		raw, leaves := disclosedResult(t, e, jobID, rid)
		if ver == "" || leaves["result.version"] != ver {
			t.Fatalf("set: version %q, disclosed %v", ver, leaves)
		}
		if strings.Contains(raw, value) {
			t.Fatal("a set receipt holds the value")
		}
		return ver
	}
	v1 := set(good)
	v2 := set(bad)
	if v1 == v2 {
		t.Fatal("two writes, one version")
	}

	// A read discloses the version it read.
	out, rid, code, _ := callOut(t, e.url, tok, "keyvault_get_secret", map[string]any{"vault": canonVault, "name": name})
	if code != "" || out["version"] != v2 {
		t.Fatalf("get: %s %v", code, out)
	}
	if _, leaves := disclosedResult(t, e, jobID, rid); leaves["result.version"] != v2 || len(leaves) != 1 {
		t.Fatalf("get: disclosed %v", leaves)
	}

	// The restore needs an approval, then restores v1 as a new version.
	args := map[string]any{"vault": canonVault, "name": name, "version": strings.ToUpper(v1)}
	_, _, code, apID := callOut(t, e.url, tok, "keyvault_restore_secret_version", args)
	if code != toolgw.CodeApprovalRequired || apID == "" {
		t.Fatalf("restore without approval: %s", code)
	}
	if st, c := e.decide(apID, "allow"); st != http.StatusOK {
		t.Fatalf("approve: %d %s", st, c)
	}
	out, rid, code, _ = callOut(t, e.url, tok, "keyvault_restore_secret_version", args)
	if code != "" {
		t.Fatalf("restore: %s", code)
	}
	v3, _ := out["version"].(string)
	if out["restored_from_version"] != v1 || v3 == "" || v3 == v1 || v3 == v2 {
		t.Fatalf("restore answer: %v", out)
	}
	if _, has := out["value"]; has {
		t.Fatalf("the restore answer carries a value: %v", out)
	}
	raw, leaves := disclosedResult(t, e, jobID, rid)
	if leaves["result.version"] != v3 || leaves["result.restored_from_version"] != v1 {
		t.Fatalf("restore receipt discloses %v", leaves)
	}
	if strings.Contains(raw, good) || strings.Contains(raw, bad) {
		t.Fatal("the restore receipt holds a value")
	}

	// The vault's current value is the restored one, read by a separate
	// azsecrets client.
	cur, err := kv.Get(context.Background(), name, "")
	if err != nil || cur.Value != good || cur.Version != v3 || cur.ContentType != "text/plain" {
		t.Fatalf("current: %v %+v", err, cur)
	}

	// A restore of a version that does not exist is NOT_FOUND and writes
	// nothing.
	missing := map[string]any{"vault": canonVault, "name": name, "version": "0123456789abcdef0123456789abcdef"}
	_, _, code, apID = callOut(t, e.url, tok, "keyvault_restore_secret_version", missing)
	if code == toolgw.CodeApprovalRequired {
		e.decide(apID, "allow")
		_, _, code, _ = callOut(t, e.url, tok, "keyvault_restore_secret_version", missing)
	}
	if code != toolgw.CodeNotFound {
		t.Fatalf("restore of a missing version: %s", code)
	}
	if list, _ := kv.ListVersions(context.Background(), name); len(list) != 3 {
		t.Fatalf("%d versions after a failed restore", len(list))
	}
	// The version is required.
	if _, _, code, _ = callOut(t, e.url, tok, "keyvault_restore_secret_version", map[string]any{"vault": canonVault, "name": name}); code != "INVALID_ARGUMENTS" {
		t.Fatalf("restore without a version: %s", code)
	}
	e.finish(jobID)
}
