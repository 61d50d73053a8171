package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/store/storetest"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/token"
	"github.com/clawea/clawea/verify"
)

type harness struct {
	t     *testing.T
	node  *server.Node
	url   string
	admin string
}

func startNode(t *testing.T, cfg server.Config) *harness {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = keystore.Dir(t.TempDir())
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, err := node.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	tok, _, err := cfg.DataDir.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, node: node, url: url, admin: tok}
}

func (h *harness) call(method, path, auth string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

func errCode(m map[string]any) string {
	if e, ok := m["error"].(map[string]any); ok {
		c, _ := e["code"].(string)
		return c
	}
	return ""
}

func (h *harness) publish(name string) string {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", name))
	if err != nil {
		h.t.Fatal(err)
	}
	var out map[string]any
	if st := h.call("POST", "/v1/wpc", h.admin, map[string]json.RawMessage{"wpc": data}, &out); st != 201 && st != 200 {
		h.t.Fatalf("publish: %d %v", st, out)
	}
	return out["policy_hash_b64u"].(string)
}

// noLabels starts a job without labels (and so without a job_started
// event, under a policy that does not govern job:start).
var noLabels = map[string]any{"labels": nil}

func (h *harness) startJob(agent, policyHash string, extra map[string]any) (string, string) {
	h.t.Helper()
	body := map[string]any{"agent_did": agent, "policy_hash_b64u": policyHash, "labels": map[string]any{"change_ticket": "CHG-1001"}}
	for k, v := range extra {
		body[k] = v
	}
	var out struct {
		Job   jobs.View `json:"job"`
		Token string    `json:"token"`
	}
	if st := h.call("POST", "/v1/jobs", h.admin, body, &out); st != 201 {
		h.t.Fatalf("start job: %d", st)
	}
	return out.Job.ID, out.Token
}

func (h *harness) trust() verify.Options {
	return verify.Options{Strict: true, Now: time.Now().Add(time.Minute)}
}

func TestJobLifecycleCustodial(t *testing.T) {
	h := startNode(t, server.Config{})
	hash := h.publish("kv-boundary.wpc.json")
	var agent map[string]any
	if st := h.call("POST", "/v1/agents", h.admin, map[string]string{"name": "finance-agent"}, &agent); st != 201 {
		t.Fatalf("create agent: %d %v", st, agent)
	}
	did := agent["did"].(string)
	id, tok := h.startJob(did, hash, nil)
	// The gateways' own event types are refused from agents.
	for _, typ := range []string{"llm_call", "llm_call_refused", "tool_call", "approval_decided", "lockdown", "runtime_decision",
		jobs.EventResultsMissing, "policy_retired", "policy_frozen", "operator_revoke", jobs.EventJobStarted, jobs.EventWriteTokenIssued} {
		var out map[string]any
		if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": typ}, &out); st != 403 || errCode(out) != "EVENT_TYPE_RESERVED" {
			t.Fatalf("append %s: %d %v", typ, st, out)
		}
	}
	// An operator's record is taken from the admin credential only (an
	// event more: with the job_started event of the labelled job, six
	// below).
	var opOut map[string]any
	if st := h.call("POST", "/v1/jobs/"+id+"/events", h.admin, map[string]any{"event_type": "operator_revoke", "payload": map[string]any{"reason": "test"}}, &opOut); st != 201 {
		t.Fatalf("admin operator_revoke: %d %v", st, opOut)
	}
	for i, typ := range []string{"run_start", "plan", "step", "run_end"} {
		var out map[string]any
		if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": typ, "payload": map[string]any{"n": i, "tool": "storage.readonly"}}, &out); st != 201 {
			t.Fatalf("append %s: %d %v", typ, st, out)
		}
	}
	var view jobs.View
	if st := h.call("GET", "/v1/jobs/"+id, tok, nil, &view); st != 200 || view.Events != 6 || !view.Custodial || view.Status != "open" {
		t.Fatalf("view: %d %+v", st, view)
	}
	var fin jobs.FinishResult
	if st := h.call("POST", "/v1/jobs/"+id+"/finish", tok, nil, &fin); st != 200 || fin.Status != "finished" || len(fin.Bundles) != 1 {
		t.Fatalf("finish: %d %+v", st, fin)
	}
	b := fin.Bundles[0]
	opt := h.trust()
	opt.URM = b.URM
	if out := verify.Check(b.Envelope, verify.KindProofBundle, opt); out.Status != verify.StatusPass {
		t.Fatalf("bundle does not verify: %s %s", out.ReasonCode, out.Reason)
	}
	// The same check without the URM the bundle references fails, as the
	// reference's URM step requires.
	if out := verify.Check(b.Envelope, verify.KindProofBundle, h.trust()); out.ReasonCode != verify.URMMissing {
		t.Errorf("without URM: %s", out.ReasonCode)
	}
	// Remove one event: the bundle must fail.
	v, _ := canon.Parse(b.Envelope)
	chain := v.Get("payload").Get("event_chain")
	chain.Items = append(chain.Items[:1], chain.Items[2:]...)
	if out := verify.Check(canon.AppendCompact(nil, &v), verify.KindProofBundle, opt); out.Status == verify.StatusPass {
		t.Error("a bundle with an event removed passed")
	}
	// The finished job's token is refused, with the job-closed code.
	var e map[string]any
	if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": "late"}, &e); st != 401 || errCode(e) != token.CodeJobClosed {
		t.Errorf("token after finish: %d %v", st, e)
	}
	if st := h.call("POST", "/v1/jobs/"+id+"/finish", h.admin, nil, &e); st != 409 || errCode(e) != "JOB_FINISHED" {
		t.Errorf("second finish: %d %v", st, e)
	}
	var bl map[string]any
	if st := h.call("GET", "/v1/jobs/"+id+"/bundles", h.admin, nil, &bl); st != 200 {
		t.Errorf("bundles: %d", st)
	}
	// Labels were kept.
	if !strings.Contains(string(view.Labels), "CHG-1001") {
		t.Errorf("labels: %s", view.Labels)
	}
}

func TestJobAgentSigns(t *testing.T) {
	h := startNode(t, server.Config{})
	hash := h.publish("secrets-isolation.wpc.json")
	agent, _ := signer.Generate()
	id, tok := h.startJob(agent.DID(), hash, map[string]any{"budget": map[string]any{"max_requests": 10}})
	var out map[string]any
	h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": "plan", "payload": map[string]any{"model": "m"}}, &out)
	var prep jobs.FinishResult
	if st := h.call("POST", "/v1/jobs/"+id+"/finish", tok, nil, &prep); st != 202 || prep.Status != "awaiting_signature" || len(prep.Payloads) != 1 || prep.SignBy != agent.DID() {
		t.Fatalf("prepare: %d %+v", st, prep)
	}
	// While finishing, no more events.
	if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": "x"}, &out); st == 201 {
		t.Error("event accepted while finishing")
	}
	// A signature by another key is rejected.
	other, _ := signer.Generate()
	bad, _ := envelope.Sign(other, envelope.TypeBundle, mustParse(prep.Payloads[0]), envelope.Options{})
	badRaw, _ := bad.JSON()
	if st := h.call("POST", "/v1/jobs/"+id+"/finish", tok, map[string]any{"signed": []json.RawMessage{badRaw}}, &out); st != 400 || errCode(out) != "SIGNATURE_REJECTED" {
		t.Errorf("foreign signature: %d %v", st, out)
	}
	env, _ := envelope.Sign(agent, envelope.TypeBundle, mustParse(prep.Payloads[0]), envelope.Options{})
	raw, _ := env.JSON()
	var fin jobs.FinishResult
	if st := h.call("POST", "/v1/jobs/"+id+"/finish", tok, map[string]any{"signed": []json.RawMessage{raw}}, &fin); st != 200 || fin.Status != "finished" {
		t.Fatalf("submit: %d %+v", st, fin)
	}
	opt := h.trust()
	opt.URM = fin.Bundles[0].URM
	out2 := verify.Check(fin.Bundles[0].Envelope, verify.KindProofBundle, opt)
	if out2.Status != verify.StatusPass || out2.Verification.RateLimitClaims != 1 {
		t.Fatalf("bundle: %s %s %+v", out2.ReasonCode, out2.Reason, out2.Verification)
	}
}

func mustParse(raw []byte) canon.Value {
	v, _ := canon.Parse(raw)
	return v
}

func TestTokenReplayIntoAnotherJob(t *testing.T) {
	h := startNode(t, server.Config{})
	hash := h.publish("kv-boundary.wpc.json")
	agent, _ := signer.Generate()
	id1, tok1 := h.startJob(agent.DID(), hash, nil)
	id2, _ := h.startJob(agent.DID(), hash, nil)
	var out map[string]any
	if st := h.call("POST", "/v1/jobs/"+id2+"/events", tok1, map[string]any{"event_type": "plan"}, &out); st != 403 || errCode(out) != token.CodeJobMismatch {
		t.Errorf("job 1's token on job 2: %d %v", st, out)
	}
	if st := h.call("POST", "/v1/jobs/"+id1+"/events", tok1, map[string]any{"event_type": "plan"}, &out); st != 201 {
		t.Errorf("own job: %d %v", st, out)
	}
	if st := h.call("POST", "/v1/jobs", tok1, map[string]any{"agent_did": agent.DID(), "policy_hash_b64u": hash}, &out); st != 401 {
		t.Errorf("job token opening a job: %d", st)
	}
	if st := h.call("POST", "/v1/jobs", h.admin, map[string]any{"agent_did": agent.DID(), "policy_hash_b64u": strings.Repeat("A", 43)}, &out); st != 404 || errCode(out) != "POLICY_NOT_FOUND" {
		t.Errorf("unknown policy: %d %v", st, out)
	}
	if st := h.call("POST", "/v1/jobs", h.admin, map[string]any{"agent_did": "alice", "policy_hash_b64u": hash}, &out); st != 400 {
		t.Errorf("bad agent: %d", st)
	}
	if st := h.call("POST", "/v1/jobs", h.admin, map[string]any{"agent_did": agent.DID(), "policy_hash_b64u": hash, "ttl_sec": 7200}, &out); st != 400 || errCode(out) != "TTL_TOO_LONG" {
		t.Errorf("ttl too long: %d %v", st, out)
	}
}

// TestLongJobAggregate finishes a job longer than one bundle as member
// bundles joined by an aggregate.
func TestLongJobAggregate(t *testing.T) {
	h := startNode(t, server.Config{SegmentEvents: 5})
	hash := h.publish("kv-boundary.wpc.json")
	var agent map[string]any
	h.call("POST", "/v1/agents", h.admin, map[string]string{"name": "long"}, &agent)
	id, tok := h.startJob(agent["did"].(string), hash, noLabels) // no job_started event: segments hold the appended events only
	for i := 0; i < 12; i++ {
		var out map[string]any
		if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": "step", "payload": map[string]any{"i": i}}, &out); st != 201 {
			t.Fatalf("append %d: %d", i, st)
		}
		if seg := int(out["segment"].(float64)); seg != i/5 {
			t.Fatalf("event %d in segment %d", i, seg)
		}
	}
	var fin jobs.FinishResult
	if st := h.call("POST", "/v1/jobs/"+id+"/finish", h.admin, nil, &fin); st != 200 {
		t.Fatalf("finish: %d", st)
	}
	if len(fin.Bundles) != 4 || fin.Bundles[0].Kind != "aggregate_bundle" {
		t.Fatalf("finish: %d bundles", len(fin.Bundles))
	}
	agg := verify.Check(fin.Bundles[0].Envelope, verify.KindAggregateBundle, h.trust())
	if agg.Status != verify.StatusPass {
		t.Fatalf("aggregate: %s %s", agg.ReasonCode, agg.Reason)
	}
	for _, b := range fin.Bundles[1:] {
		opt := h.trust()
		opt.URM = b.URM
		if out := verify.Check(b.Envelope, verify.KindProofBundle, opt); out.Status != verify.StatusPass {
			t.Errorf("member %d: %s %s", b.Part, out.ReasonCode, out.Reason)
		}
	}
}

// TestRevocationAcrossInstances revokes on one node and measures how long a
// second node sharing the same PostgreSQL keeps accepting the token.
func TestRevocationAcrossInstances(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	data := keystore.Dir(t.TempDir())
	a := startNode(t, server.Config{DataDir: data, DB: dsn})
	b := startNode(t, server.Config{DataDir: data, DB: dsn})
	hash := a.publish("kv-boundary.wpc.json")
	agent, _ := signer.Generate()
	id, tok := a.startJob(agent.DID(), hash, nil)
	var out map[string]any
	if st := b.call("GET", "/v1/jobs/"+id, tok, nil, &out); st != 200 {
		t.Fatalf("second node before revocation: %d %v", st, out)
	}
	var rev map[string]any
	if st := a.call("POST", "/v1/tokens/revoke", a.admin, map[string]string{"token": tok, "reason": "test"}, &rev); st != 200 || rev["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", st, rev)
	}
	start := time.Now()
	for {
		st := b.call("GET", "/v1/jobs/"+id, tok, nil, &out)
		if st == 401 && errCode(out) == token.CodeRevoked {
			break
		}
		if time.Since(start) > 1500*time.Millisecond {
			t.Fatalf("second node still accepts the token after %s: %d %v", time.Since(start), st, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("revocation took %s to reach the second node (goal: 1 s)", d)
	} else {
		t.Logf("revocation seen by the second node after %s", d.Round(time.Millisecond))
	}
	if st := a.call("POST", "/v1/tokens/revoke", a.admin, map[string]string{"token": tok}, &rev); st != 200 || rev["status"] != "already_revoked" {
		t.Errorf("second revoke: %v", rev)
	}
}

func TestIssuerRoutes(t *testing.T) {
	h := startNode(t, server.Config{})
	hash := h.publish("kv-boundary.wpc.json")
	agent, _ := signer.Generate()
	_, tok := h.startJob(agent.DID(), hash, nil)
	var intro map[string]any
	if st := h.call("POST", "/v1/tokens/introspect", "", map[string]string{"token": tok}, &intro); st != 200 || intro["active"] != true || intro["token_hash"] != token.Hash(tok) {
		t.Fatalf("introspect: %d %v", st, intro)
	}
	var jwks struct {
		Keys []issuerJWK `json:"keys"`
	}
	if st := h.call("GET", "/v1/jwks", "", nil, &jwks); st != 200 || len(jwks.Keys) != 1 || jwks.Keys[0].Alg != "EdDSA" || len(jwks.Keys[0].Kid) != 16 {
		t.Fatalf("jwks: %d %+v", st, jwks)
	}
	var did map[string]any
	if st := h.call("GET", "/v1/did", "", nil, &did); st != 200 || !strings.HasPrefix(fmt.Sprint(did["did"]), "did:key:z6Mk") || did["kid"] != jwks.Keys[0].Kid {
		t.Fatalf("did: %v", did)
	}
	var issued map[string]any
	if st := h.call("POST", "/v1/tokens/issue", h.admin, map[string]any{"sub": agent.DID(), "aud": "clawea", "scope": []string{"read:x"}, "ttl_sec": 60}, &issued); st != 200 || issued["token"] == nil {
		t.Fatalf("issue: %d %v", st, issued)
	}
	var e map[string]any
	for name, body := range map[string]map[string]any{
		"TTL_TOO_LONG":               {"sub": agent.DID(), "scope": []string{"a"}, "ttl_sec": 3601},
		"SCOPE_WILDCARD_NOT_ALLOWED": {"sub": agent.DID(), "scope": []string{"proxy:*"}},
		"POLICY_HASH_INVALID":        {"sub": agent.DID(), "scope": []string{"a"}, "policy_hash_b64u": "short"},
		"INVALID_REQUEST":            {"scope": []string{"a"}},
		"INVALID_TTL":                {"sub": agent.DID(), "scope": []string{"a"}, "ttl_sec": -5},
	} {
		if st := h.call("POST", "/v1/tokens/issue", h.admin, body, &e); st != 400 || errCode(e) != name {
			t.Errorf("%s: %d %v", name, st, e)
		}
	}
	if st := h.call("POST", "/v1/tokens/issue", "", map[string]any{"sub": agent.DID(), "scope": []string{"a"}}, &e); st != 401 || errCode(e) != "UNAUTHORIZED" {
		t.Errorf("issue without admin: %d %v", st, e)
	}
	if st := h.call("POST", "/v1/tokens/revoke", h.admin, map[string]any{"token_hash": "xyz"}, &e); st != 400 || errCode(e) != "INVALID_TOKEN_HASH" {
		t.Errorf("bad hash: %d %v", st, e)
	}
	h.call("POST", "/v1/tokens/revoke", h.admin, map[string]any{"token": tok}, &e)
	if st := h.call("POST", "/v1/tokens/introspect", "", map[string]string{"token": tok}, &intro); st != 200 || intro["active"] != false || intro["revoked"] != true {
		t.Errorf("introspect revoked: %v", intro)
	}
	var feed struct {
		Events []map[string]any `json:"events"`
		Cursor string           `json:"cursor"`
	}
	if st := h.call("GET", "/v1/revocations/events", h.admin, nil, &feed); st != 200 || len(feed.Events) != 1 || feed.Cursor == "0" {
		t.Errorf("feed: %d %+v", st, feed)
	}
	if st := h.call("GET", "/v1/revocations/events?cursor="+feed.Cursor, h.admin, nil, &feed); st != 200 || len(feed.Events) != 0 {
		t.Errorf("feed page 2: %+v", feed)
	}
}

type issuerJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
}

// TestLongJobAtTheReferenceCap appends more events than the reference
// allows in one bundle (1,000) with the default segment size: the job
// finishes as three members and an aggregate, each verifying in strict mode.
func TestLongJobAtTheReferenceCap(t *testing.T) {
	if testing.Short() {
		t.Skip("2,100 events; skipped with -short")
	}
	h := startNode(t, server.Config{})
	hash := h.publish("kv-boundary.wpc.json")
	agent, err := h.node.Jobs.CreateAgent(context.Background(), "long")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := h.startJob(agent.DID, hash, noLabels)
	for i := 0; i < 2100; i++ {
		if _, err := h.node.Jobs.AppendEvent(context.Background(), id, "step", map[string]any{"i": i}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	fin, err := h.node.Jobs.Finish(context.Background(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fin.Bundles) != 4 || fin.Bundles[0].Kind != "aggregate_bundle" {
		t.Fatalf("finish: %d bundles", len(fin.Bundles))
	}
	opt := h.trust()
	if out := verify.Check(fin.Bundles[0].Envelope, verify.KindAggregateBundle, opt); out.Status != verify.StatusPass {
		t.Fatalf("aggregate: %s %s", out.ReasonCode, out.Reason)
	}
	events := 0
	for _, b := range fin.Bundles[1:] {
		o := opt
		o.URM = b.URM
		out := verify.Check(b.Envelope, verify.KindProofBundle, o)
		if out.Status != verify.StatusPass {
			t.Fatalf("member %d: %s %s", b.Part, out.ReasonCode, out.Reason)
		}
		if out.Verification.EventCount > 1000 {
			t.Errorf("member %d holds %d events", b.Part, out.Verification.EventCount)
		}
		events += out.Verification.EventCount
	}
	if events != 2100 {
		t.Errorf("members hold %d events, want 2100", events)
	}
}

// FuzzAPI sends arbitrary bodies to every route that parses one, with the
// admin token and with a job token: nothing may panic or answer 500, and
// every refusal carries a code.
func FuzzAPI(f *testing.F) {
	for _, s := range []string{`{}`, `{"agent_did":"did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7","policy_hash_b64u":"x","ttl_sec":1e309}`,
		`{"event_type":"x","payload":{"a":[1,2,{"b":null}]}}`, `{"signed":[{}]}`, `{"sub":"s","scope":["a"],"ttl_sec":-1}`,
		`{"token_hash":"zz"}`, `{"token":"a.b.c"}`, `[`, `null`, `{"labels":{"k":{}}}`, `{"event_type":"` + strings.Repeat("e", 300) + `"}`} {
		for r := 0; r < 16; r++ {
			f.Add(uint8(r), s)
		}
	}
	ctx := context.Background()
	dir := keystore.Dir(f.TempDir())
	node, err := server.Open(ctx, server.Config{DataDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { node.Close() })
	admin, _, _ := dir.AdminToken()
	do := func(method, path, auth, body string) (int, []byte) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		rec := httptest.NewRecorder()
		node.Handler.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	doc, _ := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", "kv-boundary.wpc.json"))
	_, raw := do("POST", "/v1/wpc", admin, `{"wpc":`+string(doc)+`}`)
	var pub struct {
		PolicyHash string `json:"policy_hash_b64u"`
	}
	json.Unmarshal(raw, &pub)
	agent, err := node.Jobs.CreateAgent(ctx, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	started, err := node.Jobs.Start(ctx, jobs.StartRequest{AgentDID: agent.DID, PolicyHash: pub.PolicyHash})
	if err != nil {
		f.Fatal(err)
	}
	id := started.Job.ID
	routes := []struct{ method, path string }{
		{"POST", "/v1/jobs"}, {"POST", "/v1/jobs/" + id + "/events"}, {"POST", "/v1/jobs/" + id + "/finish"},
		{"POST", "/v1/agents"}, {"POST", "/v1/tokens/issue"}, {"POST", "/v1/tokens/revoke"},
		{"POST", "/v1/tokens/introspect"}, {"POST", "/v1/wpc"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := routes[int(route)%len(routes)]
		auth := admin
		if route&8 != 0 {
			auth = started.Token
		}
		if r.path == "/v1/tokens/revoke" && auth == admin {
			auth = "" // keep the job's token alive for the other routes
		}
		code, raw := do(r.method, r.path, auth, body)
		if code >= 500 {
			t.Fatalf("%s %s answered %d: %s", r.method, r.path, code, raw)
		}
		if code >= 400 {
			var e map[string]any
			if json.Unmarshal(raw, &e) != nil || e["error"] == nil {
				t.Fatalf("%s %s: %d without an error code: %s", r.method, r.path, code, raw)
			}
		}
	})
}

// TestEventTypeLookAlikesRefused (red team): the job API takes event types
// of a-z 0-9 _ . - only, so no look-alike of a reserved type (case, spaces,
// invisible characters) can be appended.
func TestEventTypeLookAlikesRefused(t *testing.T) {
	h := startNode(t, server.Config{})
	hash := h.publish("kv-boundary.wpc.json")
	var agent map[string]any
	h.call("POST", "/v1/agents", h.admin, map[string]string{"name": "a"}, &agent)
	id, tok := h.startJob(agent["did"].(string), hash, nil)
	for _, typ := range []string{"Operator_Revoke", "operator_revoke ", "operator_revoke\u200b", "POLICY_RETIRED", "policy_retired\t",
		"Runtime_Results_Missing", "tool_call\u00a0", "Tool_Call", "_tool_call", "", strings.Repeat("a", 65)} {
		var out map[string]any
		if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": typ}, &out); st != 400 || errCode(out) != "EVENT_TYPE_INVALID" {
			t.Errorf("append %q: %d %v", typ, st, out)
		}
	}
	var out map[string]any
	if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": "openclaw_undecided_tool_call"}, &out); st != 201 {
		t.Errorf("an ordinary type: %d %v", st, out)
	}
}
