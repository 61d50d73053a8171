package toolgw_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

const finishingWritePolicy = `{"policy_version":"2","policy_id":"rt-write","issuer_did":"did:web:test.example","statements":[
	{"sid":"RW","effect":"Allow","actions":["keyvault:secrets.get","keyvault:secrets.set"],"resources":["kv://*/secrets/agent/**"]}]}`

// TestFinishingJobTakesNoCalls (red team): the agent of a job it signs
// itself moves the job to finishing with its own token (a finish awaiting
// its signature) and never signs. The token must then be refused for
// every call — a write would take effect with no receipt, since the chain
// takes no more events — while the job's finish route still takes the
// agent's signatures.
func TestFinishingJobTakesNoCalls(t *testing.T) {
	e := start(t)
	hash := e.publish([]byte(finishingWritePolicy))
	k, _ := signer.FromSeed(testkit.Seed(77))
	var st jobs.Started
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/jobs", jobs.StartRequest{AgentDID: k.DID(), PolicyHash: hash}, &st); err != nil {
		t.Fatal(err)
	}
	tok := st.Token
	if code, msg := e.jsonCall(t, tok, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password"}); code != "" {
		t.Fatalf("get: %s %s", code, msg)
	}
	var fin jobs.FinishResult
	if _, _, err := client.New(e.url, tok).Do(context.Background(), "POST", "/v1/jobs/"+st.Job.ID+"/finish", map[string]any{}, &fin); err != nil || fin.Status != "awaiting_signature" {
		t.Fatalf("first finish: %v %+v", err, fin)
	}
	code, _ := e.jsonCall(t, tok, "keyvault_set_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password", "value": "attacker-value"})
	if got, _ := e.vault.Get(context.Background(), "agent/app/db-password", ""); got.Value == "attacker-value" || code != "TOKEN_JOB_CLOSED" {
		t.Errorf("a finishing job's token wrote (code %q, vault value %q)", code, got.Value)
	}
	if out := decideAs(t, e, tok, openclaw("read", nil, nil)); out.status == 200 || out.code != "TOKEN_JOB_CLOSED" {
		t.Errorf("decide while finishing: %d %s", out.status, out.code)
	}
	// The job's own read and finish routes still take the token: the agent
	// signs the prepared payloads and the job finishes.
	var view jobs.View
	if _, _, err := client.New(e.url, tok).Do(context.Background(), "GET", "/v1/jobs/"+st.Job.ID, nil, &view); err != nil || view.Status != "finishing" {
		t.Fatalf("read while finishing: %v %+v", err, view)
	}
	signed := signPayloads(t, k, fin.Payloads)
	var done jobs.FinishResult
	if _, _, err := client.New(e.url, tok).Do(context.Background(), "POST", "/v1/jobs/"+st.Job.ID+"/finish", map[string]any{"signed": signed}, &done); err != nil || done.Status != "finished" {
		t.Fatalf("signed finish: %v %+v", err, done)
	}
}

// signPayloads signs prepared bundle payloads as the job's agent.
func signPayloads(t *testing.T, k signer.Signer, payloads []json.RawMessage) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	for _, p := range payloads {
		v, err := canon.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		env, err := envelope.Sign(k, envelope.TypeBundle, v, envelope.Options{})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}
