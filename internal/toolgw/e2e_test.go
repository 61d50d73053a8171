package toolgw_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/verify"
)

// memVault is a minimal in-memory vault for these tests.
type memVault struct {
	name string
	mu   sync.Mutex
	m    map[string]keyvault.Secret
	n    int
}

func (v *memVault) Vault() string { return v.name }
func (v *memVault) Get(_ context.Context, path, version string) (keyvault.Secret, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[path]
	if !ok {
		return s, keyvault.ErrNotFound
	}
	return s, nil
}
func (v *memVault) Set(_ context.Context, path, value, ct string) (keyvault.Secret, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n++
	s := keyvault.Secret{Vault: v.name, Path: path, Version: strings.Repeat("0", 31) + string(rune('0'+v.n%10)), Value: value, ContentType: ct, Enabled: true, Updated: time.Now()}
	v.m[path] = s
	return s, nil
}
func (v *memVault) Delete(context.Context, string) (keyvault.Deleted, error) {
	return keyvault.Deleted{}, nil
}
func (v *memVault) Recover(context.Context, string) (keyvault.Info, error) {
	return keyvault.Info{}, nil
}
func (v *memVault) Purge(context.Context, string) error                { return nil }
func (v *memVault) ListNames(context.Context) ([]keyvault.Info, error) { return nil, nil }
func (v *memVault) ListVersions(context.Context, string) ([]keyvault.Info, error) {
	return nil, nil
}

const (
	dbPassword = "Tr0ub4dor&3-correct-horse" // the canary
	vaultName  = "kv-prod-finance-001"
)

type env struct {
	t        testing.TB
	node     *server.Node
	url      string
	admin    *client.Client
	approver *signer.Key
	vault    *memVault
	upstream *localmodel.Server
	logs     *syncBuffer
	clock    *clock
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.off += d; c.mu.Unlock() }

func start(t testing.TB) *env {
	t.Helper()
	vault := &memVault{name: vaultName, m: map[string]keyvault.Secret{}}
	vault.Set(context.Background(), "agent/app/db-password", dbPassword, "text/plain")
	vault.Set(context.Background(), "prod/db-password", "prod-secret-value", "")
	e := startWith(t, toolgw.Options{Vaults: []keyvault.Client{vault}}, []string{"sb-orders"})
	e.vault = vault
	return e
}

// startWith starts a node whose tool gateway has tg's vaults and buses (the
// approver, approval lifetime and clock are the test's) and local queues
// for the namespaces in localBuses.
func startWith(t testing.TB, tg toolgw.Options, localBuses []string) *env {
	t.Helper()
	approver, _ := signer.Generate()
	up := localmodel.New(localmodel.Options{})
	base, err := up.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	logs := &syncBuffer{}
	clk := &clock{}
	tg.Approvers, tg.ApprovalTTL, tg.Now = []string{approver.DID()}, time.Minute, clk.now
	dir := keystore.Dir(t.TempDir())
	node, err := server.Open(context.Background(), server.Config{DataDir: dir, Listen: "127.0.0.1:0",
		Log:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ModelGateway: modelgw.Options{Providers: []modelgw.Provider{{Name: "local", BaseURL: base}}},
		ToolGateway:  tg,
		LocalBuses:   localBuses})
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
	tok, _, _ := dir.AdminToken()
	return &env{t: t, node: node, url: url, admin: client.New(url, tok), approver: approver, upstream: up, logs: logs, clock: clk}
}

func (e *env) publish(doc []byte) string {
	e.t.Helper()
	var out struct {
		Hash string `json:"policy_hash_b64u"`
	}
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/wpc", map[string]json.RawMessage{"wpc": doc}, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Hash
}

func example(t testing.TB, name string) []byte {
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", name+".wpc.json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (e *env) job(policyHash string) (string, string) {
	e.t.Helper()
	var agent struct {
		DID string `json:"did"`
	}
	e.admin.Do(context.Background(), "POST", "/v1/agents", map[string]string{"name": "t"}, &agent)
	var st jobs.Started
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: policyHash}, &st); err != nil {
		e.t.Fatal(err)
	}
	return st.Job.ID, st.Token
}

// mcpSession connects the official MCP client over streamable HTTP with
// the job's token on every request.
func (e *env) mcpSession(tok string) *mcp.ClientSession {
	e.t.Helper()
	hc := &http.Client{Transport: headerTransport{tok}}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp", HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cs.Close() })
	return cs
}

type headerTransport struct{ tok string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+h.tok)
	return http.DefaultTransport.RoundTrip(r)
}

type toolAnswer struct {
	isError bool
	text    string
	out     map[string]any
	errObj  map[string]any
	receipt string
}

func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) toolAnswer {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v", name, err)
	}
	a := toolAnswer{isError: res.IsError}
	if len(res.Content) > 0 {
		a.text = res.Content[0].(*mcp.TextContent).Text
	}
	raw, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	json.Unmarshal(raw, &m)
	if res.IsError {
		a.errObj, _ = m["error"].(map[string]any)
	} else {
		a.out = m
	}
	if id, ok := res.Meta["clawea/receipt_id"].(string); ok {
		a.receipt = id
	}
	return a
}

func (a toolAnswer) code() string {
	if a.errObj == nil {
		return ""
	}
	c, _ := a.errObj["code"].(string)
	return c
}

// finish finishes the job and verifies its bundle in strict mode.
func (e *env) finish(jobID string) (raw []byte, res *verify.Result) {
	e.t.Helper()
	var fin jobs.FinishResult
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/jobs/"+jobID+"/finish", map[string]any{}, &fin); err != nil {
		e.t.Fatal(err)
	}
	b := fin.Bundles[0]
	opt := verify.Options{Strict: true, URM: b.URM, Config: verify.Config{GatewayReceiptSigners: []string{e.node.Models.DID()}}}
	out := verify.Check(b.Envelope, verify.KindProofBundle, opt)
	if out.Status != verify.StatusPass {
		e.t.Fatalf("bundle: %s %s", out.ReasonCode, out.Reason)
	}
	return b.Envelope, out.Verification
}

func (e *env) decide(id, decision string) (int, string) {
	e.t.Helper()
	var v toolgw.ApprovalView
	if _, _, err := e.admin.Do(context.Background(), "GET", "/v1/approvals/"+id, nil, &v); err != nil {
		e.t.Fatal(err)
	}
	sig, err := toolgw.SignDecision(e.approver, v, decision, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	status, raw, err := client.New(e.url, "").Do(context.Background(), "POST", "/v1/approvals/"+id+"/decision",
		toolgw.DecisionRequest{Decision: decision, CoSignature: sig, Note: "looks right"}, nil)
	code := ""
	if err != nil {
		code = err.(*client.Error).Code
	}
	_ = raw
	return status, code
}

func TestKeyVaultBoundaryThroughMCP(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish(example(t, "kv-boundary")))
	cs := e.mcpSession(tok)

	// Only tools the policy could ever allow are listed.
	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, ",") != "keyvault_get_secret,keyvault_set_secret" {
		t.Errorf("tools/list: %v", names)
	}

	// Allowed read: the value comes back redacted.
	a := call(t, cs, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password"})
	if a.isError || a.out["value"] != "[REDACTED:"+vaultName+"/agent/app/db-password]" || a.receipt == "" {
		t.Fatalf("get: %+v", a)
	}
	// Denied read under prod/: a clear MCP error with the code and statement.
	a = call(t, cs, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "prod/db-password"})
	if !a.isError || a.code() != toolgw.CodePolicyDenied || !strings.Contains(a.text, "DenyProdAndBreakglass") || a.errObj["receipt_id"] == nil {
		t.Fatalf("denied read: %+v", a)
	}
	// A tool the policy can never allow is not even known to the job.
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "keyvault_list_secrets", Arguments: map[string]any{"vault": vaultName}}); err == nil || !strings.Contains(err.Error(), "unknown tool") {
		t.Errorf("unlisted tool: %v", err)
	}

	// A write needs approval; the retry runs once allowed.
	set := map[string]any{"vault": vaultName, "name": "agent/app/report-token", "value": "new-report-token-123"}
	a = call(t, cs, "keyvault_set_secret", set)
	id, _ := a.errObj["approval_id"].(string)
	if !a.isError || a.code() != toolgw.CodeApprovalRequired || id == "" || !strings.Contains(a.text, "AllowAgentSecretWritesWithApproval") {
		t.Fatalf("write without approval: %+v", a)
	}
	if a = call(t, cs, "keyvault_set_secret", set); a.code() != toolgw.CodeApprovalPending {
		t.Fatalf("retry before the decision: %+v", a)
	}
	if status, code := e.decide(id, "allow"); status != 200 {
		t.Fatalf("allow: %d %s", status, code)
	}
	if status, code := e.decide(id, "deny"); status != 409 || code != toolgw.CodeApprovalDecided {
		t.Errorf("second decision: %d %s", status, code)
	}
	a = call(t, cs, "keyvault_set_secret", set)
	if a.isError || a.out["name"] != "agent/app/report-token" {
		t.Fatalf("write after approval: %+v", a)
	}
	// Used up: the same write again needs a new approval; so does another value.
	if a = call(t, cs, "keyvault_set_secret", set); a.code() != toolgw.CodeApprovalRequired {
		t.Errorf("second write: %+v", a)
	}
	changed := map[string]any{"vault": vaultName, "name": "agent/app/report-token", "value": "changed-value-456"}
	a = call(t, cs, "keyvault_set_secret", changed)
	id2, _ := a.errObj["approval_id"].(string)
	if a.code() != toolgw.CodeApprovalRequired || id2 == id {
		t.Errorf("changed argument: %+v", a)
	}
	// Deny.
	e.decide(id2, "deny")
	if a = call(t, cs, "keyvault_set_secret", changed); a.code() != toolgw.CodeApprovalDenied {
		t.Errorf("after deny: %+v", a)
	}

	// Expiry: a request nobody decides is denied when it times out.
	late := map[string]any{"vault": vaultName, "name": "agent/app/late", "value": "late-value-789"}
	a = call(t, cs, "keyvault_set_secret", late)
	id3, _ := a.errObj["approval_id"].(string)
	e.clock.advance(2 * time.Minute)
	if a = call(t, cs, "keyvault_set_secret", late); a.code() != toolgw.CodeApprovalExpired {
		t.Errorf("after expiry: %+v", a)
	}
	if status, code := e.decide(id3, "allow"); status != 409 {
		t.Errorf("deciding an expired approval: %d %s", status, code)
	}
	if a = call(t, cs, "keyvault_set_secret", late); a.code() != toolgw.CodeApprovalRequired {
		t.Errorf("asking again after expiry: %+v", a)
	}

	// Replay of the approval into another job: the other job has none.
	_, tok2 := e.job(e.publish(example(t, "kv-boundary")))
	cs2 := e.mcpSession(tok2)
	e.decide(mustApproval(t, e, jobID, "agent/app/late"), "allow")
	if a = call(t, cs2, "keyvault_set_secret", late); a.code() != toolgw.CodeApprovalRequired {
		t.Errorf("another job used this job's approval: %+v", a)
	}

	// The bundle verifies in strict mode, co-signatures included.
	raw, v := e.finish(jobID)
	// This job made no model call, so its human-approval records have no
	// span to anchor to: they travel beside the bundle, which commits to
	// them in metadata.clawea_unanchored.
	var x jobs.Export
	if _, _, err := e.admin.Do(context.Background(), "GET", "/v1/jobs/"+jobID+"/export", nil, &x); err != nil {
		t.Fatal(err)
	}
	beside, _ := json.Marshal(x.Bundles[0].UnanchoredRecords)
	if v.ToolReceipts < 5 || !bytes.Contains(beside, []byte("explicit_approve")) || !bytes.Contains(beside, []byte("timeout_deny")) ||
		!bytes.Contains(raw, []byte("clawea_unanchored")) {
		t.Errorf("bundle: %d tool receipts, human approvals %d", v.ToolReceipts, v.HumanApprovals)
	}
	if !bytes.Contains(raw, []byte(`"role":"approver"`)) || !bytes.Contains(raw, []byte(e.approver.DID())) {
		t.Error("no approver co-signature in the bundle")
	}
	// The approval's receipt verifies on its own, and a co-signature that
	// is not the approver's over this payload does not.
	var v1 toolgw.ApprovalView
	e.admin.Do(context.Background(), "GET", "/v1/approvals/"+id, nil, &v1)
	var dec struct {
		Receipt json.RawMessage `json:"receipt"`
	}
	json.Unmarshal(v1.Decision, &dec)
	if out := verify.Check(dec.Receipt, verify.KindToolReceipt, verify.Options{Strict: true}); out.Status != verify.StatusPass {
		t.Fatalf("approval receipt: %s %s", out.ReasonCode, out.Reason)
	}
	env, _ := canon.Parse(dec.Receipt)
	hash, _ := env.StringOf("payload_hash_b64u")
	other, _ := signer.Generate()
	forged, _ := other.Sign([]byte(hash))
	env.Get("co_signatures").Items[0].Set("signature_b64u", canon.NewString(base64.RawURLEncoding.EncodeToString(forged)))
	bad := canon.AppendCompact(nil, &env)
	if out := verify.Check(bad, verify.KindToolReceipt, verify.Options{Strict: true}); out.Status == verify.StatusPass || out.ReasonCode != "CO_SIGNATURE_INVALID" {
		t.Errorf("a forged co-signature: %s", out.ReasonCode)
	}
}

// mustApproval finds the pending approval of a job's write to name.
func mustApproval(t *testing.T, e *env, jobID, name string) string {
	var out struct {
		Approvals []toolgw.ApprovalView `json:"approvals"`
	}
	e.admin.Do(context.Background(), "GET", "/v1/approvals?status=pending", nil, &out)
	for _, a := range out.Approvals {
		var s struct {
			JobID     string         `json:"job_id"`
			Arguments map[string]any `json:"arguments"`
		}
		json.Unmarshal(a.Summary, &s)
		if s.JobID == jobID && s.Arguments["name"] == name {
			return a.ID
		}
	}
	t.Fatalf("no pending approval for %s", name)
	return ""
}

func TestServiceBusSendOnlyThroughMCP(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish(example(t, "servicebus-send-only")))
	cs := e.mcpSession(tok)
	props := map[string]any{"schema_version": "2", "correlation_id": "c-1"}
	send := func(entity, body string, p map[string]any) toolAnswer {
		return call(t, cs, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": entity, "body": body, "application_properties": p})
	}
	if a := send("orders-staging", `{"order":1}`, props); a.isError {
		t.Fatalf("send to staging: %+v", a)
	}
	if a := send("orders-prod", `{"order":1}`, props); a.code() != toolgw.CodePolicyDenied || !strings.Contains(a.text, "DenyOrdersProd") {
		t.Errorf("send to prod: %+v", a)
	}
	if a := send("orders-staging", strings.Repeat("x", 131072), props); a.code() != toolgw.CodePolicyDenied {
		t.Errorf("oversize: %+v", a)
	}
	if a := send("orders-staging", "{}", map[string]any{"schema_version": "2"}); a.code() != toolgw.CodePolicyDenied {
		t.Errorf("missing correlation_id: %+v", a)
	}
	if a := send("orders-staging", "{}", map[string]any{"schema_version": "2", "correlation_id": "c", "Cookie": "x"}); a.code() != toolgw.CodePolicyDenied || !strings.Contains(a.text, "DenyCookieProperty") {
		t.Errorf("forbidden property: %+v", a)
	}
	// The 201st message of the job is refused.
	e.node.Store.AddCounter(context.Background(), jobID, "servicebus.messages_sent", 198)
	if a := send("orders-staging", "{}", props); a.isError {
		t.Errorf("200th message: %+v", a)
	}
	if a := send("orders-staging", "{}", props); a.code() != toolgw.CodePolicyDenied {
		t.Errorf("201st message: %+v", a)
	}
	// Reading the dead-letter queue needs approval.
	if a := call(t, cs, "servicebus_deadletter_read", map[string]any{"namespace": "sb-orders", "entity": "orders-staging"}); a.code() != toolgw.CodeApprovalRequired {
		t.Errorf("dead-letter read: %+v", a)
	}
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "servicebus_peek", Arguments: map[string]any{"namespace": "sb-orders", "entity": "orders-staging"}}); err == nil {
		t.Error("peek is not granted, yet it is listed")
	}
	_, v := e.finish(jobID)
	if v.SideEffects < 2 && v.ToolReceipts < 2 {
		t.Errorf("bundle: %+v", v)
	}
}

// TestStdio drives the gateway through clawea mcp's stdio server with the
// official client.
func TestStdio(t *testing.T) {
	e := start(t)
	_, tok := e.job(e.publish(example(t, "kv-boundary")))
	cIn, sOut := io.Pipe()
	sIn, cOut := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- toolgw.Stdio(ctx, e.url, tok, sIn, sOut) }()
	c := mcp.NewClient(&mcp.Implementation{Name: "stdio-agent", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.IOTransport{Reader: cIn, Writer: cOut}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	a := call(t, cs, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password"})
	if a.isError || !strings.HasPrefix(a.out["value"].(string), "[REDACTED:") {
		t.Fatalf("stdio get: %+v", a)
	}
	a = call(t, cs, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "prod/db-password"})
	if a.code() != toolgw.CodePolicyDenied || !strings.Contains(a.text, "DenyProdAndBreakglass") {
		t.Fatalf("stdio deny: %+v", a)
	}
}

// TestCanary: a secret fetched through the gateway appears in no tool
// output, log line, stored receipt, bundle or body the model gateway
// forwards — only redacted.
func TestCanary(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish([]byte(`{"policy_version":"2","policy_id":"canary","issuer_did":"did:web:test.example","statements":[
		{"sid":"Read","effect":"Allow","actions":["keyvault:secrets.get"],"resources":["kv://*/secrets/agent/**"]},
		{"sid":"Peek","effect":"Allow","actions":["servicebus:peek"],"resources":["sb://sb-orders/*"]},
		{"sid":"Model","effect":"Allow","actions":["model:invoke"],"resources":["model://local/*"]}]}`)))
	cs := e.mcpSession(tok)
	a := call(t, cs, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password"})
	if a.isError {
		t.Fatalf("get: %+v", a)
	}
	forms := []string{dbPassword, base64.StdEncoding.EncodeToString([]byte(dbPassword)), base64.RawURLEncoding.EncodeToString([]byte(dbPassword)),
		hex.EncodeToString([]byte(dbPassword)), url.QueryEscape(dbPassword)}
	// A later tool result that would carry the secret: a queued message.
	e.node.Store.BusSend(context.Background(), store.BusMessage{Namespace: "sb-orders", Entity: "finance-reports", MessageID: "m1",
		Body: []byte("password=" + dbPassword + " b64=" + forms[1] + " hex=" + forms[3]), Properties: []byte(`{}`), EnqueuedAt: time.Now()})
	var peeked string
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "servicebus_peek", Arguments: map[string]any{"namespace": "sb-orders", "entity": "finance-reports"}}); err == nil {
		raw, _ := json.Marshal(res)
		peeked = string(raw)
	}
	// The model gateway forwards the job's bodies redacted.
	body := `{"model":"clawea-local-test-model","messages":[{"role":"user","content":"the password is ` + dbPassword + ` (` + forms[2] + `)"}]}`
	req, _ := http.NewRequest("POST", e.url+"/v1/proxy/local/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	modelAnswer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("model call: %d %s", resp.StatusCode, modelAnswer)
	}
	forwarded := string(e.upstream.Last().Body)
	if !strings.Contains(forwarded, "[REDACTED:"+vaultName+"/agent/app/db-password]") {
		t.Errorf("forwarded body not redacted: %s", forwarded)
	}
	items, _ := e.node.Store.ListItems(context.Background(), jobID)
	var stored bytes.Buffer
	for _, it := range items {
		stored.Write(it.JSON)
	}
	evs, _ := e.node.Store.ListEvents(context.Background(), jobID)
	for _, ev := range evs {
		stored.Write(ev.Event)
		stored.Write(ev.Payload)
	}
	bundle, _ := e.finish(jobID)
	for where, text := range map[string]string{"tool output": a.text + peeked, "forwarded model body": forwarded, "model answer": string(modelAnswer),
		"logs": e.logs.String(), "stored evidence": stored.String(), "bundle": string(bundle)} {
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("the secret (as %q) appears in the %s", f, where)
			}
		}
	}
	if !strings.Contains(peeked, "[REDACTED:") {
		t.Errorf("peek output: %s", peeked)
	}
}

func TestLockdown(t *testing.T) {
	e := start(t)
	_, tok := e.job(e.publish(example(t, "servicebus-send-only")))
	cs := e.mcpSession(tok)
	props := map[string]any{"schema_version": "2", "correlation_id": "c-1"}
	args := map[string]any{"namespace": "sb-orders", "entity": "orders-staging", "body": "{}", "application_properties": props}
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/lockdown", map[string]any{"on": true, "reason": "incident 42"}, nil); err != nil {
		t.Fatal(err)
	}
	if a := call(t, cs, "servicebus_send", args); a.code() != toolgw.CodeLockdown {
		t.Errorf("send during lockdown: %+v", a)
	}
	if _, _, err := client.New(e.url, tok).Do(context.Background(), "POST", "/v1/lockdown", map[string]any{"on": false, "reason": "x"}, nil); err == nil {
		t.Error("a job token turned the lockdown off")
	}
	// The caller's "by" is a note; the recorded actor is the credential.
	e.admin.Do(context.Background(), "POST", "/v1/lockdown", map[string]any{"on": false, "reason": "resolved", "by": "mallory"}, nil)
	if a := call(t, cs, "servicebus_send", args); a.isError {
		t.Errorf("send after lockdown: %+v", a)
	}
	var l struct {
		On  bool             `json:"on"`
		Log []map[string]any `json:"log"`
	}
	e.admin.Do(context.Background(), "GET", "/v1/lockdown", nil, &l)
	if l.On || len(l.Log) != 2 || l.Log[1]["reason"] != "incident 42" {
		t.Errorf("lockdown log: %+v", l)
	}
	if len(l.Log) == 2 && (l.Log[0]["by"] != "admin-token" || l.Log[1]["by"] != "admin-token" || l.Log[0]["reason"] != "resolved [note: mallory]") {
		t.Errorf("lockdown actor: %+v", l.Log)
	}
}
