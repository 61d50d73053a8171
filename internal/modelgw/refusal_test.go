package modelgw_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/token"
)

type answer struct {
	status int
	code   string
	raw    []byte
	header http.Header
}

// post sends a raw request to the gateway.
func (e *env) post(path string, headers map[string]string, body string) answer {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(raw, &eb)
	return answer{status: resp.StatusCode, code: eb.Error.Code, raw: raw, header: resp.Header}
}

func chat(model string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":"hello there"}]}`
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// events lists a job's event types and payloads.
func (e *env) events(jobID string) []map[string]any {
	e.t.Helper()
	var out struct {
		Events []struct {
			Type    string `json:"event_type"`
			Payload map[string]any
		} `json:"events"`
	}
	evs, err := e.node.Store.ListEvents(context.Background(), jobID)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = out
	var list []map[string]any
	for _, ev := range evs {
		var pl map[string]any
		json.Unmarshal(ev.Payload, &pl)
		pl["_type"] = ev.EventType
		list = append(list, pl)
	}
	return list
}

func TestRefusals(t *testing.T) {
	e := start(t, nil)
	hash := e.publish(testPolicy)
	jobID, tok := e.job(hash, nil)
	otherJob, _ := e.job(hash, nil)

	// A token that expired, signed by the real issuer key.
	issuerKey, err := signer.LoadFile(e.dataDir.KeyPath("issuer"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := token.Parse(tok)
	old := p.Claims
	old.Iat, old.Exp = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	expired, err := token.Sign(&old, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	// A token for a job that finished.
	doneJob, doneTok := e.job(hash, nil)
	if a := e.post("/v1/chat/completions", bearer(doneTok), chat("gpt-4o-mini")); a.status != 200 {
		t.Fatalf("call before finish: %d %s", a.status, a.raw)
	}
	e.finish(doneJob)
	// A revoked token.
	_, revTok := e.job(hash, nil)
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/tokens/revoke", map[string]string{"token": revTok, "reason": "test"}, nil); err != nil {
		t.Fatal(err)
	}
	// A job pinned to a v1 policy that allows only one model.
	v1Hash := e.publish(`{"policy_version":"1","policy_id":"v1-test","issuer_did":"did:web:test.example","allowed_providers":["openai"],"allowed_models":["gpt-4o-*"]}`)
	_, v1Tok := e.job(v1Hash, nil)

	big := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 70<<10) + `"}]}`
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		body    string
		status  int
		code    string
	}{
		{"no token", "/v1/chat/completions", nil, chat("gpt-4o-mini"), 401, token.CodeRequired},
		{"provider key instead of a token", "/v1/chat/completions", bearer("sk-live-abc"), chat("gpt-4o-mini"), 401, modelgw.CodeProviderKeyRefused},
		{"two different tokens", "/v1/chat/completions", map[string]string{"X-CST": tok, "Authorization": "Bearer " + expired}, chat("gpt-4o-mini"), 400, modelgw.CodeStrictAuthHeaders},
		{"expired", "/v1/chat/completions", bearer(expired), chat("gpt-4o-mini"), 401, token.CodeExpired},
		{"revoked", "/v1/chat/completions", bearer(revTok), chat("gpt-4o-mini"), 401, token.CodeRevoked},
		{"finished job", "/v1/chat/completions", bearer(doneTok), chat("gpt-4o-mini"), 401, token.CodeJobClosed},
		{"another job's run id", "/v1/chat/completions", map[string]string{"X-CST": tok, "X-Run-Id": otherJob}, chat("gpt-4o-mini"), 403, token.CodeJobMismatch},
		{"tampered", "/v1/chat/completions", bearer(tok[:len(tok)-3] + "AAA"), chat("gpt-4o-mini"), 401, token.CodeSignatureInvalid},
		{"model not allowed (v2)", "/v1/chat/completions", bearer(tok), chat("gpt-4.1"), 403, modelgw.CodePolicyDenied},
		{"model not allowed (v1)", "/v1/chat/completions", bearer(v1Tok), chat("o3"), 403, modelgw.CodeModelNotAllowed},
		{"provider not allowed (v1)", "/v1/proxy/local/v1/chat/completions", bearer(v1Tok), chat("gpt-4o-mini"), 403, modelgw.CodeProviderNotAllowed},
		{"policy hash mismatch", "/v1/chat/completions", map[string]string{"X-CST": tok, "X-Policy-Hash": v1Hash}, chat("gpt-4o-mini"), 403, modelgw.CodePolicyHashMismatch},
		{"unknown provider", "/v1/proxy/mistral/v1/chat/completions", bearer(tok), chat("m"), 400, modelgw.CodeUnknownProvider},
		{"unknown API path", "/v1/proxy/local/v1/embeddings", bearer(tok), chat("m"), 404, modelgw.CodeUnknownRoute},
		{"anthropic API on an OpenAI provider", "/v1/proxy/local/v1/messages", bearer(tok), chat("m"), 400, modelgw.CodeProviderAPIMismatch},
		{"oversize body", "/v1/chat/completions", bearer(tok), big, 413, modelgw.CodeRequestTooLarge},
		{"not JSON", "/v1/chat/completions", bearer(tok), "{nope", 400, modelgw.CodeInvalidRequest},
		{"bring-your-own-key is off", "/v1/chat/completions", map[string]string{"X-CST": tok, "X-Provider-API-Key": "sk-mine"}, chat("gpt-4o-mini"), 400, modelgw.CodeBYOKDisabled},
		{"encrypted receipts", "/v1/chat/completions", map[string]string{"X-CST": tok, "X-Receipt-Privacy-Mode": "encrypted"}, chat("gpt-4o-mini"), 400, modelgw.CodePrivacyUnsupported},
		{"bad idempotency key", "/v1/chat/completions", map[string]string{"X-CST": tok, "X-Idempotency-Key": strings.Repeat("k", 300)}, chat("gpt-4o-mini"), 400, modelgw.CodeIdemInvalid},
	}
	before := e.upstream.Requests()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.post(tt.path, tt.headers, tt.body)
			if a.status != tt.status || a.code != tt.code {
				t.Errorf("got %d %s, want %d %s: %s", a.status, a.code, tt.status, tt.code, a.raw)
			}
			if a.header.Get("X-Clawea-Error") != tt.code {
				t.Errorf("X-Clawea-Error %q", a.header.Get("X-Clawea-Error"))
			}
			if strings.Contains(string(a.raw), "sk-configured") {
				t.Error("the answer reveals the provider key")
			}
		})
	}
	if n := e.upstream.Requests() - before; n != 0 {
		t.Errorf("%d refused calls reached the provider", n)
	}
	// Policy refusals of a known job are recorded in its chain.
	var codes []string
	for _, ev := range e.events(jobID) {
		if ev["_type"] == modelgw.EventLLMRefused {
			codes = append(codes, ev["code"].(string))
		}
	}
	for _, want := range []string{modelgw.CodePolicyDenied, modelgw.CodeRequestTooLarge, modelgw.CodeBYOKDisabled} {
		if !strings.Contains(strings.Join(codes, " "), want) {
			t.Errorf("refusal %s not recorded in the job's chain (have %v)", want, codes)
		}
	}
	e.finish(jobID)
}

// TestFaults: each upstream failure gets its code, a receipt that records
// it, and nothing hangs.
func TestFaults(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	e.faults.set("local-500", localmodel.Fault{Status: 503})
	e.faults.set("local-429", localmodel.Fault{Status: 429})
	e.faults.set("local-malformed", localmodel.Fault{Malformed: true})
	e.faults.set("local-hang", localmodel.Fault{Hang: true})
	e.faults.set("local-drop", localmodel.Fault{DropAfter: 2})
	path := "/v1/proxy/local/v1/chat/completions"
	withReceipt := func(a answer) {
		t.Helper()
		var b struct {
			Receipt json.RawMessage `json:"_receipt_envelope"`
		}
		json.Unmarshal(a.raw, &b)
		if len(b.Receipt) == 0 {
			t.Fatalf("no receipt in %s", a.raw)
		}
		e.checkReceipt(b.Receipt)
	}
	a := e.post(path, bearer(tok), chat("local-500"))
	if a.status != 503 || !strings.Contains(string(a.raw), "injected_fault") {
		t.Errorf("5xx passes through: %d %s", a.status, a.raw)
	}
	withReceipt(a)
	a = e.post(path, bearer(tok), chat("local-429"))
	if a.status != 429 {
		t.Errorf("provider 429: %d", a.status)
	}
	withReceipt(a)
	a = e.post(path, bearer(tok), chat("local-malformed"))
	if a.status != 502 || a.code != modelgw.CodeUpstreamMalformed {
		t.Errorf("malformed: %d %s", a.status, a.raw)
	}
	withReceipt(a)
	t0 := time.Now()
	a = e.post(path, bearer(tok), chat("local-hang"))
	if a.status != 504 || a.code != modelgw.CodeUpstreamTimeout || time.Since(t0) > 10*time.Second {
		t.Errorf("hang: %d %s after %s", a.status, a.raw, time.Since(t0))
	}
	withReceipt(a)
	a = e.post(path, bearer(tok), `{"model":"local-drop","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if a.status != 200 || !strings.Contains(string(a.raw), ":clawproxy_receipt_envelope_b64u=") {
		t.Errorf("dropped stream: %d %s", a.status, a.raw)
	}

	// A client that goes away mid-stream.
	e.faults.set("local-slow", localmodel.Fault{ChunkDelay: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url+path, strings.NewReader(`{"model":"local-slow","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	resp.Body.Read(buf)
	cancel()
	resp.Body.Close()

	// Every call that reached the provider left an llm_call event with its
	// outcome; wait for the disconnected one to be recorded.
	want := map[string]bool{modelgw.CodeUpstreamError: false, "UPSTREAM_REJECTED": false, modelgw.CodeUpstreamMalformed: false,
		modelgw.CodeUpstreamTimeout: false, modelgw.CodeUpstreamAborted: false, modelgw.CodeClientDisconnected: false}
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, ev := range e.events(jobID) {
			if ev["_type"] == modelgw.EventLLMCall {
				want[ev["outcome"].(string)] = true
			}
		}
		missing := []string{}
		for k, ok := range want {
			if !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcomes not recorded: %v", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.finish(jobID)
}

func TestIdempotencyAndRecovery(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	h := map[string]string{"Authorization": "Bearer " + tok, "X-Idempotency-Key": "call-1"}
	first := e.post("/v1/chat/completions", h, chat("gpt-4o-mini"))
	if first.status != 200 {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	calls := e.upstream.Requests()
	again := e.post("/v1/chat/completions", h, chat("gpt-4o-mini"))
	if again.status != 200 || string(again.raw) != string(first.raw) || again.header.Get("X-Clawea-Idempotent-Replay") != "true" {
		t.Errorf("replay differs: %d\n%s\n%s", again.status, first.raw, again.raw)
	}
	if e.upstream.Requests() != calls {
		t.Error("a replay reached the provider")
	}
	if a := e.post("/v1/chat/completions", h, strings.Replace(chat("gpt-4o-mini"), "hello", "goodbye", 1)); a.status != 409 || a.code != modelgw.CodeIdemMismatch {
		t.Errorf("changed body: %d %s", a.status, a.raw)
	}
	// Recovery by nonce, with the job's token; the nonce is in the binding.
	req, _ := http.NewRequest("GET", e.url+"/v1/receipt/call-1", nil)
	req.Header.Set("X-CST", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Receipt json.RawMessage `json:"_receipt_envelope"`
	}
	json.NewDecoder(resp.Body).Decode(&rec)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("recovery: %d", resp.StatusCode)
	}
	e.checkReceipt(rec.Receipt)
	if !strings.Contains(string(rec.Receipt), `"nonce":"call-1"`) || !strings.Contains(string(first.raw), string(rec.Receipt)) {
		t.Errorf("recovered receipt: %s", rec.Receipt)
	}
	_, otherTok := e.job(e.publish(testPolicy), nil)
	req, _ = http.NewRequest("GET", e.url+"/v1/receipt/call-1", nil)
	req.Header.Set("X-CST", otherTok)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("another job read the receipt: %d", resp.StatusCode)
	}
	// The admin token reads any job's receipt (through the credential layer).
	req, _ = http.NewRequest("GET", e.url+"/v1/receipt/call-1?job_id="+jobID, nil)
	req.Header.Set("Authorization", "Bearer "+e.admin.Token)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the admin could not read the receipt: %d", resp.StatusCode)
	}
	v := e.finish(jobID)
	if v.Receipts != 1 {
		t.Errorf("%d receipts after a replay, want 1", v.Receipts)
	}
}

func TestBudgets(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), &store.Budget{MaxRequests: 2, MaxTokensOutput: 1000})
	for i := 0; i < 2; i++ {
		if a := e.post("/v1/chat/completions", bearer(tok), chat("gpt-4o-mini")); a.status != 200 {
			t.Fatalf("call %d: %d %s", i, a.status, a.raw)
		}
	}
	// The output budget reached the provider as a cap.
	if !strings.Contains(string(e.upstream.Last().Body), `"max_completion_tokens":`) {
		t.Errorf("no output cap forwarded: %s", e.upstream.Last().Body)
	}
	a := e.post("/v1/chat/completions", bearer(tok), chat("gpt-4o-mini"))
	if a.status != 429 || a.code != modelgw.CodeRequestBudget || a.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("third call: %d %s", a.status, a.raw)
	}
	v := e.finish(jobID)
	if v.RateLimitClaims != 1 || v.Receipts != 2 {
		t.Errorf("claims %d receipts %d", v.RateLimitClaims, v.Receipts)
	}
}

func TestRedactionRules(t *testing.T) {
	e := start(t, nil)
	hash := e.publish(`{"policy_version":"1","policy_id":"redact-test","issuer_did":"did:web:test.example",
		"redaction_rules":[{"path":"$.messages[*].name","action":"remove"},{"path":"$.user","action":"hash"},{"path":"$.metadata.ticket","action":"mask"}]}`)
	jobID, tok := e.job(hash, nil)
	body := `{"model":"gpt-4o-mini","user":"alice@example.com","metadata":{"ticket":"CHG-9"},"messages":[{"role":"user","name":"alice","content":"hi"}]}`
	a := e.post("/v1/chat/completions", bearer(tok), body)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	got := string(e.upstream.Last().Body)
	if strings.Contains(got, "alice") || strings.Contains(got, "CHG-9") || !strings.Contains(got, `"user":"[HASH:SHA-256:`) || !strings.Contains(got, `"ticket":"[REDACTED]"`) {
		t.Errorf("forwarded: %s", got)
	}
	e.finish(jobID)
}
