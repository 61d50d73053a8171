package toolgw_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/toolgw"
)

// fuzzPolicy allows most tools on the test's vault and local queue, so
// that fuzzed arguments reach the connectors.
const fuzzPolicy = `{"policy_version":"2","policy_id":"fuzz","issuer_did":"did:web:test.example","statements":[
	{"sid":"KV","effect":"Allow","actions":["keyvault:secrets.get","keyvault:secrets.reveal","keyvault:secrets.list_versions","keyvault:secrets.delete","keyvault:secrets.recover","keyvault:secrets.purge"],"resources":["kv://*/secrets/agent/**"]},
	{"sid":"Set","effect":"Allow","actions":["keyvault:secrets.set"],"resources":["kv://*/secrets/agent/app/**"]},
	{"sid":"SB","effect":"Allow","actions":["servicebus:*"],"resources":["sb://sb-orders/**"]},
	{"sid":"Write","effect":"Allow","actions":["keyvault:secrets.set"],"resources":["kv://*/secrets/agent/approved/**"],
	 "conditions":{"Bool":{"Request:HasHumanApproval":"true"}}}]}`

// fuzzJob starts a node and a job under fuzzPolicy whose canary secret has
// been fetched (so it is registered for redaction).
func fuzzJob(f *testing.F) (*env, *toolgw.Job, string) {
	e := start(f)
	_, tok := e.job(e.publish([]byte(fuzzPolicy)))
	j, ae := e.node.Tools.Authorize(context.Background(), tok)
	if ae != nil {
		f.Fatal(ae)
	}
	if _, ce := e.node.Tools.Call(context.Background(), j, "keyvault_get_secret", []byte(`{"vault":"`+vaultName+`","name":"agent/app/db-password"}`)); ce != nil {
		f.Fatal(ce)
	}
	return e, j, tok
}

var fuzzCalls = []struct{ tool, args string }{
	{"keyvault_get_secret", `{"vault":"kv-prod-finance-001","name":"agent/app/db-password"}`},
	{"keyvault_reveal_secret", `{"vault":"kv-prod-finance-001","name":"agent/app/db-password","version":"x"}`},
	{"keyvault_set_secret", `{"vault":"kv-prod-finance-001","name":"agent/app/x","value":"v","content_type":"text/plain"}`},
	{"keyvault_set_secret", `{"vault":"kv-prod-finance-001","name":"agent/approved/x","value":"v"}`},
	{"keyvault_delete_secret", `{"vault":"kv-prod-finance-001","name":"agent/app/x"}`},
	{"keyvault_list_secrets", `{"vault":"kv-prod-finance-001"}`},
	{"keyvault_list_versions", `{"vault":"nope","name":"agent//x"}`},
	{"servicebus_send", `{"namespace":"sb-orders","entity":"q","body":"Tr0ub4dor&3-correct-horse","application_properties":{"a":1,"b":true,"c":"x"}}`},
	{"servicebus_peek", `{"namespace":"sb-orders","entity":"q","max":5}`},
	{"servicebus_receive", `{"namespace":"sb-orders","entity":"q","mode":"peek_lock","max":2,"wait_seconds":0}`},
	{"servicebus_complete", `{"namespace":"sb-orders","entity":"q","lock_token":"00000000-0000-0000-0000-000000000000"}`},
	{"servicebus_deadletter", `{"namespace":"sb-orders","entity":"t/subscriptions/s","lock_token":"x","reason":"r"}`},
	{"servicebus_deadletter_purge", `{"namespace":"sb-orders","entity":"q$"}`},
	{"nope", `[]`},
	{"servicebus_send", `{"namespace":"sb-orders","entity":"q","body":"x","application_properties":{"a":{"b":1}}}`},
	{"keyvault_get_secret", `{"vault":1e400,"name":"\ud800"}`},
}

// FuzzCall drives Gateway.Call with arbitrary tool names and argument
// bytes: it must answer with a coded error or a JSON result, and never let
// the job's registered secret out.
func FuzzCall(f *testing.F) {
	e, j, _ := fuzzJob(f)
	for _, c := range fuzzCalls {
		f.Add(c.tool, []byte(c.args))
	}
	f.Fuzz(func(t *testing.T, tool string, args []byte) {
		res, ce := e.node.Tools.Call(context.Background(), j, tool, args)
		if ce != nil {
			if ce.Code == "" || ce.Status < 400 || ce.Status > 599 {
				t.Fatalf("error without a code or status: %+v", ce)
			}
			if strings.Contains(ce.Msg, dbPassword) {
				t.Fatalf("the secret is in an error: %s", ce.Msg)
			}
			return
		}
		if !json.Valid(res.Output) || res.ReceiptID == "" {
			t.Fatalf("result: %+v", res)
		}
		if tool != "keyvault_reveal_secret" && strings.Contains(string(res.Output), dbPassword) {
			t.Fatalf("the secret is in the output of %s: %s", tool, res.Output)
		}
	})
}

// FuzzHTTP sends arbitrary bodies to the gateway's JSON routes that take
// one: a tool call with the job's token, an approval decision without
// credentials, and a lockdown change with the job's token (not an admin).
// None may succeed where it must not, and every refusal is coded JSON.
func FuzzHTTP(f *testing.F) {
	e, _, tok := fuzzJob(f)
	// A pending approval to aim decisions at.
	if _, ce := e.node.Tools.Call(context.Background(), mustJob(f, e, tok), "keyvault_set_secret",
		[]byte(`{"vault":"`+vaultName+`","name":"agent/approved/x","value":"v"}`)); ce == nil || ce.Code != toolgw.CodeApprovalRequired {
		f.Fatalf("no approval asked: %v", ce)
	}
	var list struct {
		Approvals []toolgw.ApprovalView `json:"approvals"`
	}
	if _, _, err := e.admin.Do(context.Background(), "GET", "/v1/approvals?status=pending", nil, &list); err != nil || len(list.Approvals) == 0 {
		f.Fatalf("approvals: %v %d", err, len(list.Approvals))
	}
	approval := list.Approvals[0].ID
	for _, c := range fuzzCalls {
		body, _ := json.Marshal(map[string]any{"tool": c.tool, "arguments": json.RawMessage(c.args)})
		f.Add(uint8(0), body)
	}
	f.Add(uint8(1), []byte(`{"decision":"allow","co_signature":{"signature_b64u":"AAAA","algorithm":"Ed25519","signer_did":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","issued_at":"2026-11-22T00:00:00Z","role":"approver"},"note":"n"}`))
	f.Add(uint8(1), []byte(`{"decision":"deny"}`))
	f.Add(uint8(2), []byte(`{"on":true,"reason":"x"}`))
	routes := []string{"/v1/tools/call", "/v1/approvals/" + approval + "/decision", "/v1/lockdown"}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := int(route) % len(routes)
		req, _ := http.NewRequest("POST", e.url+routes[r], strings.NewReader(string(body)))
		if r != 1 {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !json.Valid(raw) {
			t.Fatalf("%s: not JSON: %q", routes[r], raw)
		}
		if strings.Contains(string(raw), dbPassword) {
			t.Fatalf("%s: the secret is in the answer: %s", routes[r], raw)
		}
		switch {
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusGatewayTimeout:
			t.Fatalf("%s: %d %s", routes[r], resp.StatusCode, raw)
		case resp.StatusCode >= 400 && resp.Header.Get("X-Clawea-Error") == "":
			t.Fatalf("%s: refusal without a code: %d %s", routes[r], resp.StatusCode, raw)
		case r > 0 && resp.StatusCode < 400:
			t.Fatalf("%s accepted %q: %s", routes[r], body, raw)
		}
	})
}

func mustJob(f *testing.F, e *env, tok string) *toolgw.Job {
	j, ae := e.node.Tools.Authorize(context.Background(), tok)
	if ae != nil {
		f.Fatal(ae)
	}
	return j
}
