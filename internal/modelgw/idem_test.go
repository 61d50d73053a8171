package modelgw_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestIdempotencyKeysPerJob: job B using job A's X-Idempotency-Key gets
// what a fresh key gets — its own call, not A's answer, no conflict — and
// A's replay and receipt are unaffected; B cannot recover A's receipt.
func TestIdempotencyKeysPerJob(t *testing.T) {
	e := start(t, nil)
	hash := e.publish(testPolicy)
	jobA, tokA := e.job(hash, nil)
	_, tokB := e.job(hash, nil)
	with := func(tok, key string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "X-Idempotency-Key": key}
	}
	first := e.post("/v1/chat/completions", with(tokA, "shared-key"), chat("gpt-4o-mini"))
	if first.status != 200 {
		t.Fatalf("A: %d %s", first.status, first.raw)
	}
	if a := e.post("/v1/chat/completions", with(tokA, "shared-key-2"), chat("gpt-4o-mini")); a.status != 200 {
		t.Fatalf("A: %d %s", a.status, a.raw)
	}
	// B with A's keys, with A's body and with another, and B with a key
	// nobody used: all answered alike, by the provider.
	shape := func(a answer) string {
		return strings.Join([]string{http.StatusText(a.status), a.code, a.header.Get("X-Clawea-Idempotent-Replay")}, "|")
	}
	fresh := e.post("/v1/chat/completions", with(tokB, "never-used"), chat("gpt-4o-mini"))
	for key, body := range map[string]string{"shared-key": chat("gpt-4o-mini"), "shared-key-2": strings.Replace(chat("gpt-4o-mini"), "hello", "other", 1)} {
		calls := e.upstream.Requests()
		b := e.post("/v1/chat/completions", with(tokB, key), body)
		if shape(b) != shape(fresh) || b.status != 200 || string(b.raw) == string(first.raw) {
			t.Errorf("B with A's key %s: %s (fresh key: %s)\n%s", key, shape(b), shape(fresh), b.raw)
		}
		if e.upstream.Requests() != calls+1 {
			t.Errorf("B's call with A's key %s did not reach the provider", key)
		}
		// B's own replay under the key is B's answer.
		again := e.post("/v1/chat/completions", with(tokB, key), body)
		if string(again.raw) != string(b.raw) || again.header.Get("X-Clawea-Idempotent-Replay") != "true" {
			t.Errorf("B's replay: %s", again.raw)
		}
	}
	// A is not blocked and still replays its own answer.
	a := e.post("/v1/chat/completions", with(tokA, "shared-key"), chat("gpt-4o-mini"))
	if a.status != 200 || string(a.raw) != string(first.raw) || a.header.Get("X-Clawea-Idempotent-Replay") != "true" {
		t.Errorf("A's replay after B used the key: %d %s", a.status, a.raw)
	}
	// Receipt recovery: each job gets its own receipt under the key; the
	// admin names the job.
	recover := func(tok, query string) (int, string) {
		req, _ := http.NewRequest("GET", e.url+"/v1/receipt/shared-key"+query, nil)
		req.Header.Set("X-CST", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			JobID string `json:"job_id"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.JobID
	}
	if st, job := recover(tokA, ""); st != 200 || job != jobA {
		t.Errorf("A's recovery: %d %s", st, job)
	}
	if st, job := recover(tokB, ""); st != 200 || job == jobA {
		t.Errorf("B's recovery: %d %s", st, job)
	}
	adminTok, _, _ := e.dataDir.AdminToken()
	if st, job := recover(adminTok, "?job_id="+jobA); st != 200 || job != jobA {
		t.Errorf("admin recovery: %d %s", st, job)
	}
	if st, _ := recover(adminTok, ""); st != 400 {
		t.Errorf("admin recovery without a job: %d", st)
	}
}

// TestIdempotentAnswerWithSecretNotKept: an answer kept for idempotent
// replay is stored, so it passes the evidence gate: an answer holding a
// secret of the job is not kept, and its replay says so with the receipt.
func TestIdempotentAnswerWithSecretNotKept(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	// The local model's answer always says this.
	e.node.Secrets.Add(jobID, "(local test model)", "kv-test/echo")
	h := map[string]string{"Authorization": "Bearer " + tok, "X-Idempotency-Key": "k-secret"}
	if a := e.post("/v1/chat/completions", h, chat("gpt-4o-mini")); a.status != 200 {
		t.Fatalf("call: %d %s", a.status, a.raw)
	}
	again := e.post("/v1/chat/completions", h, chat("gpt-4o-mini"))
	if again.code != "IDEMPOTENCY_REPLAY_UNAVAILABLE" || strings.Contains(string(again.raw), "(local test model)") {
		t.Fatalf("replay of an answer holding a secret: %d %s %s", again.status, again.code, again.raw)
	}
}
