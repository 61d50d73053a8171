package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/registry"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/store/storetest"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/token"
)

// do sends a request with the given bearer credential ("" for none) and
// returns the status, the error code ("" on success) and the body.
func (w *walkNode) do(t *testing.T, method, path, bearer string, body any) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, w.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Error.Code, raw
}

// publishFile publishes an example policy and returns its hash.
func (w *walkNode) publishFile(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", name))
	if err != nil {
		t.Fatal(err)
	}
	var pub struct {
		Hash string `json:"policy_hash_b64u"`
	}
	w.mustCall(t, "POST", "/v1/wpc", map[string]json.RawMessage{"wpc": raw}, &pub)
	return pub.Hash
}

// change signs a lifecycle statement with the node's operator and posts it.
func (w *walkNode) change(t *testing.T, st registry.Statement) (int, string, []byte) {
	t.Helper()
	signed, err := registry.SignStatement(w.op, st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return w.do(t, "POST", "/v1/policy-lifecycle", "", signed)
}

func (w *walkNode) mustChange(t *testing.T, st registry.Statement) {
	t.Helper()
	if status, code, raw := w.change(t, st); status != http.StatusCreated {
		t.Fatalf("%s: %d %s %s", st.Action, status, code, raw)
	}
}

// startJobOn starts a job for a new custodial agent; it returns the start
// answer's status and code, and the job.
func (w *walkNode) startJobOn(t *testing.T, hash string) (int, string, jobs.Started) {
	t.Helper()
	var agent struct {
		DID string `json:"did"`
	}
	w.mustCall(t, "POST", "/v1/agents", map[string]string{"name": "lifecycle"}, &agent)
	status, code, raw := w.do(t, "POST", "/v1/jobs", w.admin, jobs.StartRequest{AgentDID: agent.DID, PolicyHash: hash})
	var st jobs.Started
	if status < 300 {
		json.Unmarshal(raw, &st)
	}
	return status, code, st
}

const (
	modelBody = `{"model":"clawea-local-test-model","messages":[{"role":"user","content":"hi"}]}`
	toolBody  = `{"tool":"keyvault_get_secret","arguments":{"vault":"kv-prod-finance-001","name":"agent/app/db-password"}}`
	mcpBody   = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"keyvault_get_secret","arguments":{"vault":"kv-prod-finance-001","name":"agent/app/db-password"}}}`
)

// admitted: the token was accepted (the call ran, or the job's own policy
// decided it).
func admitted(code string) bool { return code == "" || code == "POLICY_DENIED" }

// waitCode calls until the answer carries code, or fails after limit; it
// returns how long that took.
func waitCode(t *testing.T, what string, limit time.Duration, code string, call func() (int, string, []byte)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		st, got, raw := call()
		if got == code {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: still %d %s after %s: %s", what, st, got, time.Since(start), raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPolicyLifecycleAcrossInstances: two instances on one PostgreSQL. An
// unapproved hash cannot start a job when approval is required; a hash
// retired at A refuses its running job's next model call and tool call at
// B within one second, and the retirement is in the job's bundle; a freeze
// refuses to start a job on another hash, and its running jobs.
func TestPolicyLifecycleAcrossInstances(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	dir := keystore.Dir(t.TempDir())
	op, err := signer.Generate()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(c *server.Config) {
		c.DataDir, c.DB = dir, dsn
		c.Policy = server.PolicyLifecycle{RequireApproval: true, Operators: []string{op.DID()}}
	}
	a := startNodeWith(t, edit)
	b := startNodeWith(t, edit)
	a.op, b.op = op, op

	h1 := a.publishFile(t, "demo-job.wpc.json")
	h2 := a.publishFile(t, "kv-boundary.wpc.json")
	h3 := a.publishFile(t, "secrets-isolation.wpc.json")

	// Approval required: an unapproved hash starts no job, at either node.
	for _, n := range []*walkNode{a, b} {
		if status, code, _ := n.startJobOn(t, h1); status != 403 || code != token.CodePolicyNotApproved {
			t.Fatalf("unapproved start: %d %s", status, code)
		}
	}
	// An operator outside the allowlist cannot approve.
	stranger, _ := signer.Generate()
	signed, _ := registry.SignStatement(stranger, registry.Statement{Action: "approve", PolicyHash: h1}, time.Now())
	if status, code, _ := a.do(t, "POST", "/v1/policy-lifecycle", "", signed); status != 403 || code != registry.CodeOperatorNotAllow {
		t.Fatalf("stranger approve: %d %s", status, code)
	}
	for _, h := range []string{h1, h2, h3} {
		a.mustChange(t, registry.Statement{Action: "approve", PolicyHash: h, Reason: "reviewed"})
	}
	status, code, j1 := b.startJobOn(t, h1) // B sees A's approval: its start reads the store
	if status != 201 && status != 200 {
		t.Fatalf("approved start at B: %d %s", status, code)
	}
	_, _, j2 := b.startJobOn(t, h2)
	_, _, j3 := b.startJobOn(t, h3)
	if j2.Token == "" || j3.Token == "" {
		t.Fatal("jobs on h2/h3 did not start")
	}
	if st, code, raw := b.do(t, "POST", "/v1/chat/completions", j1.Token, modelBody); st != 200 {
		t.Fatalf("model call before retirement: %d %s %s", st, code, raw)
	}
	if st, code, raw := b.do(t, "POST", "/v1/tools/call", j1.Token, toolBody); strings.HasPrefix(code, "POLICY_") || st >= 500 {
		t.Fatalf("tool call before retirement: %d %s %s", st, code, raw)
	}

	// Retire h1 at A; B refuses the running job within one second.
	a.mustChange(t, registry.Statement{Action: "retire", PolicyHash: h1, Reason: "widened by mistake"})
	d := waitCode(t, "model call at B", 1500*time.Millisecond, token.CodePolicyRetired, func() (int, string, []byte) {
		return b.do(t, "POST", "/v1/chat/completions", j1.Token, modelBody)
	})
	if d > time.Second {
		t.Errorf("retirement took %s to reach B's model gateway (goal: 1 s)", d)
	}
	t.Logf("retirement refused at B after %s", d.Round(time.Millisecond))
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/tools/call", toolBody}, {"POST", "/mcp", mcpBody}, {"GET", "/v1/tools", ""},
		{"POST", "/v1/messages", `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`},
		{"GET", "/v1/jobs/" + j1.Job.ID, ""}, {"POST", "/v1/jobs/" + j1.Job.ID + "/events", `{"event_type":"note","payload":{}}`},
	} {
		if st, code, raw := b.do(t, c.method, c.path, j1.Token, c.body); code != token.CodePolicyRetired {
			t.Errorf("%s %s at B after retirement: %d %s %s", c.method, c.path, st, code, raw)
		}
	}
	if status, code, _ := b.startJobOn(t, h1); code != token.CodePolicyRetired {
		t.Errorf("start on a retired hash: %d %s", status, code)
	}
	if status, code, _ := a.change(t, registry.Statement{Action: "approve", PolicyHash: h1}); status != 409 || code != token.CodePolicyRetired {
		t.Errorf("approve after retire: %d %s", status, code)
	}
	// Other jobs are untouched.
	if st, code, raw := b.do(t, "POST", "/v1/chat/completions", j2.Token, modelBody); !admitted(code) {
		t.Fatalf("other job after retirement: %d %s %s", st, code, raw)
	}

	// The retirement is in j1's chain and its bundle, which verifies
	// strictly (the job service verifies what it finishes).
	var fin map[string]any
	if st, code, raw := a.do(t, "POST", "/v1/jobs/"+j1.Job.ID+"/finish", a.admin, `{}`); st != 200 {
		t.Fatalf("finish j1: %d %s %s", st, code, raw)
	} else {
		json.Unmarshal(raw, &fin)
	}
	_, _, exp := a.do(t, "GET", "/v1/jobs/"+j1.Job.ID+"/export", a.admin, nil)
	// Events carry payload hashes; the URM shows the payload (operator,
	// reason, change number, signature).
	for _, want := range []string{registry.EventPolicyRetired, "clawea_policy_lifecycle", op.DID(), "widened by mistake", h1} {
		if !bytes.Contains(exp, []byte(want)) {
			t.Errorf("j1's export lacks %q", want)
		}
	}

	// Freeze to h2: no job starts on h3, and h3's running job is refused.
	a.mustChange(t, registry.Statement{Action: "freeze", Hashes: []string{h2}, Reason: "incident 42"})
	if status, code, _ := b.startJobOn(t, h3); status != 403 || code != token.CodePolicyNotInFreeze {
		t.Errorf("start outside the freeze at B: %d %s", status, code)
	}
	waitCode(t, "h3's job at B", 1500*time.Millisecond, token.CodePolicyNotInFreeze, func() (int, string, []byte) {
		return b.do(t, "POST", "/v1/tools/call", j3.Token, toolBody)
	})
	if st, code, raw := b.do(t, "POST", "/v1/chat/completions", j2.Token, modelBody); !admitted(code) {
		t.Errorf("job inside the freeze: %d %s %s", st, code, raw)
	}
	_, _, ev := a.do(t, "GET", "/v1/jobs/"+j3.Job.ID+"/events", a.admin, nil)
	if !bytes.Contains(ev, []byte(registry.EventPolicyFrozen)) {
		t.Errorf("h3's job chain lacks the freeze: %s", ev)
	}
	a.mustChange(t, registry.Statement{Action: "unfreeze"})
	if status, code, _ := b.startJobOn(t, h3); status >= 300 {
		t.Errorf("start after unfreeze: %d %s", status, code)
	}

	// The store's record: every change with the operator and signature.
	var log struct {
		Changes []registry.ChangeView `json:"changes"`
	}
	_, _, raw := b.do(t, "GET", "/v1/policy-lifecycle", b.admin, nil)
	json.Unmarshal(raw, &log)
	var actions []string
	for _, c := range log.Changes {
		actions = append(actions, c.Action)
		if c.Actor != op.DID() || c.Signature == "" || len(c.Statement) == 0 {
			t.Errorf("change %d: actor %s, signed %v", c.Seq, c.Actor, c.Signature != "")
		}
	}
	if got := strings.Join(actions, ","); got != "approve,approve,approve,retire,freeze,unfreeze" {
		t.Errorf("log: %s", got)
	}
	var sv registry.StatusView
	_, _, raw = b.do(t, "GET", "/v1/policy-lifecycle/"+h1, b.admin, nil)
	json.Unmarshal(raw, &sv)
	if sv.Status != "retired" || sv.CanStartJobs || sv.Approval == nil || sv.Retirement == nil || sv.Retirement.Actor != op.DID() {
		t.Errorf("status of h1: %s", raw)
	}
}

// TestSupersedeRetiresTheOldHash: publishing with supersedes retires the
// old hash; its running job fails closed at the next call.
func TestSupersedeRetiresTheOldHash(t *testing.T) {
	w := startWalkNode(t)
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", "kv-boundary.wpc.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st, code, raw := w.do(t, "POST", "/v1/chat/completions", w.token, modelBody); st != 200 {
		t.Fatalf("before: %d %s %s", st, code, raw)
	}
	var out struct {
		Hash      string `json:"policy_hash_b64u"`
		Lifecycle struct {
			Change registry.ChangeView `json:"change"`
			Status registry.StatusView `json:"status"`
		} `json:"lifecycle"`
	}
	w.mustCall(t, "POST", "/v1/wpc", map[string]any{"wpc": json.RawMessage(raw), "supersedes": w.hash}, &out)
	if out.Lifecycle.Change.Action != "supersede" || out.Lifecycle.Status.Status != "retired" || out.Lifecycle.Status.SupersededBy != out.Hash ||
		out.Lifecycle.Status.JobsTouched == nil || *out.Lifecycle.Status.JobsTouched != 1 {
		t.Fatalf("supersede answer: %+v", out)
	}
	if st, code, raw := w.do(t, "POST", "/v1/chat/completions", w.token, modelBody); code != token.CodePolicyRetired {
		t.Fatalf("after supersede: %d %s %s", st, code, raw)
	}
	_, _, ev := w.do(t, "GET", "/v1/jobs/"+w.job+"/events", w.admin, nil)
	if !bytes.Contains(ev, []byte(registry.EventPolicyRetired)) {
		t.Errorf("chain lacks the supersession: %s", ev)
	}
}

// TestRetiredPolicyRefusedOnEveryJobRoute walks every registered route:
// once the job's policy is retired, the job token makes no difference on
// any route except to be refused with POLICY_RETIRED, so a new route
// cannot admit a job token without the lifecycle check.
func TestRetiredPolicyRefusedOnEveryJobRoute(t *testing.T) {
	w := startWalkNode(t)
	bodies := []string{`{}`, toolBody, mcpBody, modelBody}
	type outcome struct {
		status int
		code   string
	}
	walk := func(bearer string, finish bool) map[string]outcome {
		out := map[string]outcome{}
		for _, pattern := range w.node.Routes {
			methods, path := w.concrete(pattern)
			if strings.HasSuffix(path, "/finish") && !finish {
				continue // the job must stay open until it is retired
			}
			for _, m := range methods {
				for _, body := range bodies {
					if m == "GET" && body != bodies[0] {
						continue
					}
					st, code, _ := w.do(t, m, path, bearer, body)
					out[m+" "+path+" "+body] = outcome{st, code}
				}
			}
		}
		return out
	}
	before := walk(w.token, false)
	none := walk("", true)
	differs := 0
	for k, o := range before {
		if o != none[k] {
			differs++
		}
	}
	if differs < 15 {
		t.Fatalf("the job token changed only %d answers before retirement; the walk is not exercising job routes", differs)
	}
	w.mustChange(t, registry.Statement{Action: "retire", PolicyHash: w.hash})
	after := walk(w.token, true)
	refused := 0
	for k, o := range after {
		if o.code == token.CodePolicyRetired {
			refused++
			continue
		}
		if o != none[k] {
			t.Errorf("%s: the retired job's token got %d %s (no credential: %d %s)", k, o.status, o.code, none[k].status, none[k].code)
		}
	}
	t.Logf("%d answers differed with the job token before retirement; %d refused POLICY_RETIRED after", differs, refused)
}
