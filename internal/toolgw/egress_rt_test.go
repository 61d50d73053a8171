package toolgw_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/toolgw"
)

// Regressions from the red-team review of the egress guard and the
// evidence gate: each case was a way out for a secret the job read, or a
// way for the agent to stop its own evidence.

const egressPolicy = `{"policy_version":"2","policy_id":"egress-rt","issuer_did":"did:web:test.example","statements":[
	{"sid":"Vault","effect":"Allow","actions":["keyvault:secrets.reveal","keyvault:secrets.get","keyvault:secrets.set"],"resources":["kv://*/secrets/agent/**"]},
	{"sid":"Send","effect":"Allow","actions":["servicebus:send","servicebus:peek"],"resources":["sb://sb-orders/*"]}]}`

// egressCode runs a call and returns its error code ("" when it ran).
func egressCode(t *testing.T, e *env, tok, tool string, args map[string]any) string {
	t.Helper()
	out, ok := toolCall(t, e, tok, tool, args)
	if ok {
		return ""
	}
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal([]byte(out), &body)
	if body.Error.Code == "" {
		t.Fatalf("%s: no code in %s", tool, out)
	}
	return body.Error.Code
}

func TestEgressGuardClosesTheReviewedChannels(t *testing.T) {
	e := start(t)
	e.vault.Set(context.Background(), "agent/app/pw", "passw0rd", "")
	e.vault.Set(context.Background(), "agent/app/pin", "48151623", "")
	_, tok := e.job(e.publish([]byte(egressPolicy)))
	for _, n := range []string{"agent/app/db-password", "agent/app/pw", "agent/app/pin"} {
		if out, ok := toolCall(t, e, tok, "keyvault_reveal_secret", map[string]any{"vault": vaultName, "name": n}); !ok {
			t.Fatal(out)
		}
	}
	goEsc, _ := json.Marshal(dbPassword) // "Tr0ub4dor\u00263-correct-horse"
	inner := string(goEsc[1 : len(goEsc)-1])
	var numbers map[string]any
	json.Unmarshal([]byte(`{"pin":48151623,"pwhex":7061737377307264}`), &numbers)
	send := func(body string, props map[string]any) map[string]any {
		return map[string]any{"namespace": "sb-orders", "entity": "q1", "body": body, "application_properties": props}
	}
	for name, args := range map[string]map[string]any{
		"escape inside a plain body":     send("pw="+inner, nil),
		"escape inside a property value": send("x", map[string]any{"pw": inner}),
		"JSON document in the body":      send(`{"pw":"\u0054r0ub4dor\u00263-correct-horse"}`, nil),
		"numbers in properties":          send("x", numbers),
		"lower-case percent-escapes":     send("pw="+strings.NewReplacer("&", "%26").Replace(dbPassword), nil),
	} {
		if got := egressCode(t, e, tok, "servicebus_send", args); got != toolgw.CodeEgressSecret {
			t.Errorf("%s: %q, want %s", name, got, toolgw.CodeEgressSecret)
		}
	}
	// A Key Vault write may not carry another secret, even overlapping a
	// form of the written secret's own value.
	if got := egressCode(t, e, tok, "keyvault_set_secret", map[string]any{"vault": vaultName, "name": "agent/app/exfil", "value": "zzz" + dbPassword[:1]}); got != "" {
		t.Fatalf("step 1: %q", got)
	}
	if got := egressCode(t, e, tok, "keyvault_set_secret", map[string]any{"vault": vaultName, "name": "agent/app/exfil", "value": "zzz" + dbPassword}); got != toolgw.CodeEgressSecret {
		t.Errorf("overlapping write: %q", got)
	}
	b := base64.StdEncoding.EncodeToString([]byte(dbPassword))
	egressCode(t, e, tok, "keyvault_set_secret", map[string]any{"vault": vaultName, "name": "agent/app/exfil2", "value": "qqq" + b[:1]})
	if got := egressCode(t, e, tok, "keyvault_set_secret", map[string]any{"vault": vaultName, "name": "agent/app/exfil2", "value": "qqq" + b}); got != toolgw.CodeEgressSecret {
		t.Errorf("overlapping base64 write: %q", got)
	}
	if s, _ := e.vault.Get(context.Background(), "agent/app/exfil", ""); strings.Contains(s.Value, dbPassword) {
		t.Fatal("the secret was copied into another secret")
	}
	// Nothing left: the queue holds no message.
	_, tok2 := e.job(e.publish([]byte(strings.Replace(egressPolicy, "egress-rt", "egress-rt-peek", 1))))
	out, _ := toolCall(t, e, tok2, "servicebus_peek", map[string]any{"namespace": "sb-orders", "entity": "q1", "max": 10})
	if strings.Contains(out, "correct-horse") || strings.Contains(out, "48151623") || strings.Contains(out, "7061737377307264") {
		t.Fatalf("a secret left through Service Bus: %s", out)
	}
}

// TestSecretsThatLookLikeRecordsDoNotStopEvidence: an agent that stores
// record text ("tool_call", its job id, a status) as a secret and reads it
// back must not stop its job's evidence: later calls are recorded, and the
// job finishes with its earlier denials bundled.
func TestSecretsThatLookLikeRecordsDoNotStopEvidence(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish([]byte(egressPolicy)))
	toolCall(t, e, tok, "keyvault_reveal_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password"})
	if got := egressCode(t, e, tok, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "q3", "body": dbPassword}); got != toolgw.CodeEgressSecret {
		t.Fatalf("exfiltration attempt: %q", got)
	}
	for i, v := range []string{"tool_call", jobID, "success", "2026", vaultName, "job_"} {
		name := "agent/app/p" + string(rune('a'+i))
		if got := egressCode(t, e, tok, "keyvault_set_secret", map[string]any{"vault": vaultName, "name": name, "value": v}); got != "" {
			t.Fatalf("set %q: %s", v, got)
		}
		if got := egressCode(t, e, tok, "keyvault_reveal_secret", map[string]any{"vault": vaultName, "name": name}); got != "" {
			t.Fatalf("read %q back: %s", v, got)
		}
	}
	if got := egressCode(t, e, tok, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "q3", "body": "recorded side effect"}); got != "" {
		t.Fatalf("a later send: %s", got)
	}
	var fin jobs.FinishResult
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/jobs/"+jobID+"/finish", map[string]any{}, &fin); err != nil || fin.Status != "finished" {
		t.Fatalf("finish: %v %+v", err, fin)
	}
	raw, _ := json.Marshal(fin)
	if n := strings.Count(string(raw), "tool_receipt"); n < 15 {
		t.Fatalf("only %d tool receipts in the bundle", n)
	}
}
