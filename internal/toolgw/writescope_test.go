package toolgw_test

// Issue #18 (P9 item 3): a read token cannot write through the real
// azsecrets client against the dev vault, even under a policy that allows
// the write; the job's write token can.

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/token"
)

func TestReadTokenCannotWriteThroughAzsecrets(t *testing.T) {
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
	hash := e.publish([]byte(restorePolicy)) // allows get and set on agent/**
	var agent struct {
		DID string `json:"did"`
	}
	ctx := context.Background()
	e.admin.Do(ctx, "POST", "/v1/agents", map[string]string{"name": "t"}, &agent)
	no := false
	var st jobs.Started
	if _, _, err := e.admin.Do(ctx, "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: hash, Write: &no}, &st); err != nil {
		t.Fatal(err)
	}
	const name = "agent/app/ws"
	setArgs := map[string]any{"vault": canonVault, "name": name, "value": "v-1", "content_type": "text/plain"}
	_, rid, code, _ := callOut(t, e.url, st.Token, "keyvault_set_secret", setArgs)
	if code != token.CodeWriteScopeRequired || rid == "" {
		t.Fatalf("set with the read token: %q, receipt %q", code, rid)
	}
	if _, err := kv.Get(ctx, name, ""); err == nil {
		t.Fatal("the refused write reached the vault")
	}
	var wt jobs.Started
	if _, _, err := e.admin.Do(ctx, "POST", "/v1/jobs/"+st.Job.ID+"/tokens", map[string]any{"scope": "write", "ttl_sec": 60}, &wt); err != nil {
		t.Fatal(err)
	}
	if _, _, code, _ := callOut(t, e.url, wt.Token, "keyvault_set_secret", setArgs); code != "" {
		t.Fatalf("set with the write token: %s", code)
	}
	if s, err := kv.Get(ctx, name, ""); err != nil || s.Value != "v-1" {
		t.Fatalf("the write did not reach the vault: %v", err)
	}
	// Reads work with the read token.
	if out, _, code, _ := callOut(t, e.url, st.Token, "keyvault_get_secret", map[string]any{"vault": canonVault, "name": name}); code != "" || out == nil {
		t.Fatalf("get with the read token: %s", code)
	}
}
