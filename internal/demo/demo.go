// Package demo runs clawea's end-to-end demonstration job on the embedded
// defaults (SQLite, keys in a data directory, everything on loopback) and
// reports what happened step by step.
//
// The demo drives a real node through its HTTP APIs, exactly as an operator
// and an agent would: it publishes a policy to the registry, opens a job
// (the issuer mints the job's token), makes model calls through the model
// gateway with that token (to a built-in local test model, and to a real
// provider when asked), appends the job's other events, finishes the job
// (the custodial agent key signs the proof bundle, the token is revoked),
// exports the evidence and verifies it offline in strict mode.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/examples"
	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/registry"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/verify"
)

// PolicyName is the example policy the demo job is pinned to.
const PolicyName = "demo-job"

// Options configure a demo run.
type Options struct {
	// DataDir holds the node's data (keys, SQLite) and the evidence; empty
	// means a new temporary directory.
	DataDir string
	// Log receives the human-readable narration; nil discards it.
	Log io.Writer
	// RealProvider, when set ("openai" or "anthropic"), adds one call to
	// that provider with the key from OPENAI_API_KEY or ANTHROPIC_API_KEY.
	RealProvider string
	// Interactive asks on In whether to allow the approval-gated write
	// instead of having the demo's approver allow it.
	Interactive bool
	In          io.Reader
}

// Summary is the machine-readable outcome of a demo run.
type Summary struct {
	DataDir       string      `json:"data_dir"`
	ServerURL     string      `json:"server_url"`
	Store         string      `json:"store"`
	PolicyHash    string      `json:"policy_hash_b64u"`
	AgentDID      string      `json:"agent_did"`
	JobID         string      `json:"job_id"`
	TokenKid      string      `json:"token_kid"`
	BundleID      string      `json:"bundle_id"`
	BundlePath    string      `json:"bundle_path"`
	URMPath       string      `json:"urm_path"`
	ConfigPath    string      `json:"config_path"`
	Events        int         `json:"events"`
	Receipts      int         `json:"gateway_receipts"`
	ToolReceipts  int         `json:"tool_receipts"`
	TokenAfter    string      `json:"token_after_finish"`
	ModelCalls    []ModelCall `json:"model_calls"`
	ToolCalls     []ToolCall  `json:"tool_calls"`
	ApproverDID   string      `json:"approver_did"`
	Redacted      bool        `json:"model_body_redacted"`
	SideEffects   int         `json:"side_effect_records"`
	Approvals     int         `json:"human_approval_records"`
	Status        string      `json:"status"`
	ReasonCode    string      `json:"reason_code"`
	ProofTier     string      `json:"proof_tier"`
	VerifyCommand string      `json:"verify_command"`
}

// ModelCall is one model call the demo made through the gateway.
type ModelCall struct {
	Provider  string `json:"provider"`
	Model     string `json:"model"`
	Stream    bool   `json:"stream"`
	Status    int    `json:"http_status"`
	Code      string `json:"code,omitempty"`
	ReceiptID string `json:"receipt_id,omitempty"`
	TokensIn  int64  `json:"tokens_input"`
	TokensOut int64  `json:"tokens_output"`
}

// demoEvents are the agent's own notes in the job's chain.
var demoEvents = []struct {
	typ     string
	payload map[string]any
}{
	{"note", map[string]any{"text": "rotated the report token and queued the order summary"}},
}

// The demo's vault and namespace, as the demo-job policy names them.
const (
	demoVault     = "kv-prod-finance-001"
	demoNamespace = "sb-demo"
)

// Run runs the demo job and verifies its evidence. The Summary is filled as
// far as the run got, also on error.
func Run(ctx context.Context, opt Options) (*Summary, error) {
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	dir := opt.DataDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "clawea-demo-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &Summary{DataDir: dir}
	step := func(label, format string, args ...any) {
		fmt.Fprintf(log, "  %-12s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintln(log, "clawea demo: one job on the embedded defaults, signed evidence, offline verification")
	step("data dir", "%s", dir)

	// 1. A node with the registry, issuer and jobs roles, on loopback.
	logFile, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return s, err
	}
	defer logFile.Close()
	// The built-in local test model stands in for a provider.
	lm := localmodel.New(localmodel.Options{})
	lmURL, err := lm.Start()
	if err != nil {
		return s, err
	}
	defer lm.Close()
	providers := []modelgw.Provider{{Name: "local", BaseURL: lmURL}}
	realModel := ""
	switch opt.RealProvider {
	case "":
	case "openai":
		if os.Getenv("OPENAI_API_KEY") == "" {
			return s, errors.New("--real-provider openai needs OPENAI_API_KEY")
		}
		providers = append(providers, modelgw.Provider{Name: "openai", APIKey: "env:OPENAI_API_KEY"})
		realModel = "gpt-4o-mini"
	case "anthropic":
		if os.Getenv("ANTHROPIC_API_KEY") == "" {
			return s, errors.New("--real-provider anthropic needs ANTHROPIC_API_KEY")
		}
		providers = append(providers, modelgw.Provider{Name: "anthropic", APIKey: "env:ANTHROPIC_API_KEY"})
		realModel = "claude-haiku-4-5"
	default:
		return s, fmt.Errorf("unknown real provider %q (openai or anthropic)", opt.RealProvider)
	}
	// The built-in dev vault stands in for Key Vault (the real azsecrets
	// client talks to it over TLS); the store's local queue for Service Bus.
	dbPassword, err := randomSecret()
	if err != nil {
		return s, err
	}
	dv, err := devvault.New(devvault.Options{Vault: demoVault})
	if err != nil {
		return s, err
	}
	dv.Put("agent--app--db-password", dbPassword, "text/plain")
	dv.Put("prod--db-password", "not-for-agents-"+dbPassword[:8], "text/plain")
	dvURL, err := dv.Start()
	if err != nil {
		return s, err
	}
	defer dv.Close()
	kv, err := dv.Conn().Client()
	if err != nil {
		return s, err
	}
	approver, err := loadOrCreate(filepath.Join(dir, "keys", "approver.key.json"))
	if err != nil {
		return s, err
	}
	s.ApproverDID = approver.DID()
	// The policy operator approves the job's policy hash before any job may
	// start on it (the deployment requires approval, as clawea serve does).
	operator, err := loadOrCreate(filepath.Join(dir, "keys", "operator.key.json"))
	if err != nil {
		return s, err
	}
	nodeDir := filepath.Join(dir, "server")
	node, err := server.Open(ctx, server.Config{DataDir: keystore.Dir(nodeDir), Listen: "127.0.0.1:0",
		Log: slog.New(slog.NewTextHandler(logFile, nil)), ModelGateway: modelgw.Options{Providers: providers},
		ToolGateway: toolgw.Options{Vaults: []keyvault.Client{kv}, Approvers: []string{approver.DID()}}, LocalBuses: []string{demoNamespace},
		Policy: server.PolicyLifecycle{RequireApproval: true, Operators: []string{operator.DID()}}})
	if err != nil {
		return s, err
	}
	defer node.Close()
	if s.ServerURL, err = node.Listen(); err != nil {
		return s, err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- node.Serve(sctx) }()
	defer func() { stop(); <-served }()
	s.Store = node.Store.Backend()
	step("server", "%s (registry, issuer, jobs, model and tool gateways; %s store; log in server.log)", s.ServerURL, s.Store)
	step("upstream", "local test model at %s (not a language model: it counts words)", lmURL)
	step("key vault", "dev vault %s at %s (TLS; the real Azure SDK client talks to it)", demoVault, dvURL)
	step("servicebus", "namespace %s served from the store's local queue", demoNamespace)
	step("approver", "%s (key in keys/approver.key.json)", approver.DID())
	admin, _, err := keystore.Dir(nodeDir).AdminToken()
	if err != nil {
		return s, err
	}
	api := client.New(s.ServerURL, admin)

	// 2. Publish the job's policy; the registry signs it.
	doc, err := examples.Policy(PolicyName)
	if err != nil {
		return s, err
	}
	reg, err := registry.NewClient(s.ServerURL, registry.ClientOptions{Signers: []string{node.DIDs[server.RoleRegistry]}})
	if err != nil {
		return s, err
	}
	pub, err := reg.Publish(ctx, doc, admin)
	if err != nil {
		return s, fmt.Errorf("publish policy: %w", err)
	}
	s.PolicyHash = pub.PolicyHash
	if _, err := reg.Fetch(ctx, pub.PolicyHash); err != nil {
		return s, fmt.Errorf("fetch the published policy back: %w", err)
	}
	step("policy", "%s published as %s (signed by the registry, re-verified on fetch)", PolicyName, s.PolicyHash)
	approval, err := registry.SignStatement(operator, registry.Statement{Action: "approve", PolicyHash: s.PolicyHash, Reason: "demo review"}, time.Now())
	if err != nil {
		return s, err
	}
	if _, _, err := api.Do(ctx, "POST", "/v1/policy-lifecycle", approval, nil); err != nil {
		return s, fmt.Errorf("approve policy: %w", err)
	}
	step("approved", "%s approved by operator %s (signed statement kept in the lifecycle log; jobs start only on approved hashes)", s.PolicyHash, operator.DID())

	// 3. A custodial agent and its job; the job's token is pinned to the
	// policy and bound to the job.
	var agent struct {
		DID string `json:"did"`
	}
	if _, _, err := api.Do(ctx, "POST", "/v1/agents", map[string]string{"name": "demo-finance-assistant"}, &agent); err != nil {
		return s, fmt.Errorf("create agent: %w", err)
	}
	s.AgentDID = agent.DID
	step("agent", "%s (custodial: the job service holds its key, sealed)", s.AgentDID)
	var started jobs.Started
	if _, _, err := api.Do(ctx, "POST", "/v1/jobs", jobs.StartRequest{AgentDID: s.AgentDID, PolicyHash: s.PolicyHash,
		Labels: map[string]any{"change_ticket": "CHG-DEMO-1"}}, &started); err != nil {
		return s, fmt.Errorf("start job: %w", err)
	}
	s.JobID = started.Job.ID
	s.TokenKid = tokenKid(started.Token)
	step("job", "%s opened; its token (kid %s) expires %s and works only for this job", s.JobID, s.TokenKid, started.ExpiresAt)

	// 4. The agent's work: model calls through the model gateway (the
	// job's token as the API key, as an OpenAI SDK sends it) and tool calls
	// through the tool gateway (the official MCP client).
	agentAPI := client.New(s.ServerURL, started.Token)
	model := func(provider, path, modelName, prompt string, stream bool) error {
		mc, err := modelCall(ctx, s.ServerURL, started.Token, path, provider, modelName, prompt, stream)
		if err != nil {
			return fmt.Errorf("model call: %w", err)
		}
		s.ModelCalls = append(s.ModelCalls, mc)
		how := "call"
		if stream {
			how = "streamed"
		}
		switch {
		case mc.ReceiptID != "" && mc.Code != "":
			step("model", "%s/%s %s: failed %s (HTTP %d); the attempt has receipt %s", provider, modelName, how, mc.Code, mc.Status, mc.ReceiptID)
		case mc.ReceiptID != "":
			step("model", "%s/%s %s: HTTP %d, %d/%d tokens, receipt %s", provider, modelName, how, mc.Status, mc.TokensIn, mc.TokensOut, mc.ReceiptID)
		default:
			step("model", "%s/%s %s: refused %s (HTTP %d), recorded in the job's chain", provider, modelName, how, mc.Code, mc.Status)
		}
		return nil
	}
	localPath := "/v1/proxy/local/v1/chat/completions"
	if err := model("local", localPath, localmodel.ModelName, "Summarise yesterday's failed payments.", false); err != nil {
		return s, err
	}
	mcpAgent, tools, err := connectMCP(ctx, s.ServerURL, started.Token)
	if err != nil {
		return s, fmt.Errorf("MCP: %w", err)
	}
	defer mcpAgent.cs.Close()
	step("mcp", "connected to %s/mcp; the policy allows %d tools: %s", s.ServerURL, len(tools), strings.Join(tools, ", "))
	tool := func(name, target string, args map[string]any) (ToolCall, error) {
		tc, err := mcpAgent.call(ctx, name, target, args)
		if err != nil {
			return tc, fmt.Errorf("%s: %w", name, err)
		}
		s.ToolCalls = append(s.ToolCalls, tc)
		if tc.Outcome == "ok" {
			step("tool", "%s %s: ok, receipt %s", name, target, tc.ReceiptID)
		} else {
			step("tool", "%s %s: refused %s", name, target, tc.Outcome)
		}
		return tc, nil
	}
	secretPath := "agent/app/db-password"
	tc, err := tool("keyvault_get_secret", "kv://"+demoVault+"/secrets/"+secretPath, map[string]any{"vault": demoVault, "name": secretPath})
	if err != nil {
		return s, err
	}
	var got struct {
		Value string `json:"value"`
	}
	json.Unmarshal([]byte(tc.Output), &got)
	step("", "the agent sees value %s", got.Value)
	if _, err := tool("keyvault_get_secret", "kv://"+demoVault+"/secrets/prod/db-password", map[string]any{"vault": demoVault, "name": "prod/db-password"}); err != nil {
		return s, err
	}
	// A careless prompt that carries the secret: the model gateway
	// forwards it redacted.
	if err := model("local", localPath, localmodel.ModelName, "Check this config: DB_PASSWORD="+dbPassword, true); err != nil {
		return s, err
	}
	forwarded := string(lm.Last().Body)
	s.Redacted = !strings.Contains(forwarded, dbPassword) && strings.Contains(forwarded, "[REDACTED:"+demoVault+"/"+secretPath+"]")
	step("", "the provider received DB_PASSWORD=[REDACTED:%s/%s] (redacted: %v)", demoVault, secretPath, s.Redacted)
	// An approval-gated write.
	write := map[string]any{"vault": demoVault, "name": "agent/app/report-token", "value": "rtk-" + dbPassword[8:20]}
	writeTarget := "kv://" + demoVault + "/secrets/agent/app/report-token"
	tc, err = tool("keyvault_set_secret", writeTarget, write)
	if err != nil {
		return s, err
	}
	if tc.ApprovalID != "" {
		in := opt.In
		if in == nil {
			in = os.Stdin
		}
		decision, err := approve(ctx, s.ServerURL, admin, approver, tc.ApprovalID, opt.Interactive, in, log)
		if err != nil {
			return s, fmt.Errorf("approval: %w", err)
		}
		step("approval", "%s %s, signed by %s", tc.ApprovalID, decision, approver.DID())
		if _, err := tool("keyvault_set_secret", writeTarget, write); err != nil {
			return s, err
		}
	}
	// Service Bus: staging yes; prod no; oversize no.
	props := map[string]any{"correlation_id": "CHG-DEMO-1", "schema_version": "2"}
	for _, m := range []struct {
		entity string
		body   string
	}{
		{"orders-staging", `{"report":"3 failed payments on 2026-11-21"}`},
		{"orders-prod", `{"report":"3 failed payments on 2026-11-21"}`},
		{"orders-staging", strings.Repeat("x", 140000)},
	} {
		target := "sb://" + demoNamespace + "/" + m.entity
		if len(m.body) > 1000 {
			target += fmt.Sprintf(" (%d bytes)", len(m.body))
		}
		if _, err := tool("servicebus_send", target, map[string]any{"namespace": demoNamespace, "entity": m.entity, "body": m.body,
			"application_properties": props}); err != nil {
			return s, err
		}
	}
	if err := model("local", localPath, "gpt-4.1", "Use a bigger model, please.", false); err != nil {
		return s, err
	}
	if realModel != "" {
		path := "/v1/proxy/openai/v1/chat/completions"
		if opt.RealProvider == "anthropic" {
			path = "/v1/proxy/anthropic/v1/messages"
		}
		if err := model(opt.RealProvider, path, realModel, "Say hello in five words.", false); err != nil {
			return s, err
		}
	}

	// 5. The agent's other steps, appended with the job's own token.
	for _, ev := range demoEvents {
		var out struct {
			Event struct {
				EventID   string `json:"event_id"`
				EventHash string `json:"event_hash_b64u"`
			} `json:"event"`
		}
		if _, _, err := agentAPI.Do(ctx, "POST", "/v1/jobs/"+s.JobID+"/events", map[string]any{"event_type": ev.typ, "payload": ev.payload}, &out); err != nil {
			return s, fmt.Errorf("append event: %w", err)
		}
		step("event", "%-9s %s  hash %s…", ev.typ, out.Event.EventID, out.Event.EventHash[:12])
	}

	// 6. Finish: the bundle is built, signed with the agent key, verified
	// in strict mode and stored; the token is revoked.
	var fin jobs.FinishResult
	if _, _, err := agentAPI.Do(ctx, "POST", "/v1/jobs/"+s.JobID+"/finish", map[string]any{}, &fin); err != nil {
		return s, fmt.Errorf("finish job: %w", err)
	}
	if len(fin.Bundles) == 0 {
		return s, errors.New("finish returned no bundle")
	}
	s.BundleID = fin.Bundles[0].BundleID
	step("finish", "bundle %s signed by the agent; server-side check %s; token revoked", s.BundleID, fin.Verified)

	// The finished job's token no longer works.
	_, _, err = agentAPI.Do(ctx, "POST", "/v1/jobs/"+s.JobID+"/events", map[string]any{"event_type": "late", "payload": map[string]any{}}, nil)
	var ce *client.Error
	if !errors.As(err, &ce) {
		return s, fmt.Errorf("the finished job's token was not refused (%v)", err)
	}
	s.TokenAfter = ce.Code
	step("token", "after finish: refused with %s", ce.Code)

	// 7. Export and verify offline, as an auditor would.
	var x jobs.Export
	if _, _, err := api.Do(ctx, "GET", "/v1/jobs/"+s.JobID+"/export", nil, &x); err != nil {
		return s, fmt.Errorf("export: %w", err)
	}
	evidence := filepath.Join(dir, "evidence")
	if _, err := jobs.WriteBundles(evidence, s.JobID, x.Bundles); err != nil {
		return s, err
	}
	s.BundlePath = filepath.Join(evidence, s.JobID+"-bundle.json")
	s.URMPath = filepath.Join(evidence, s.JobID+"-urm.json")
	s.ConfigPath = filepath.Join(evidence, "trust.json")
	trust := verify.Config{GatewayReceiptSigners: gateways(node.DIDs)}
	cfgRaw, _ := json.MarshalIndent(map[string]any{"config_version": "1", "allowlists": map[string]any{
		"gateway_receipt_signer_dids": trust.GatewayReceiptSigners}}, "", "  ")
	if err := os.WriteFile(s.ConfigPath, append(cfgRaw, '\n'), 0o644); err != nil {
		return s, err
	}
	raw, err := os.ReadFile(s.BundlePath)
	if err != nil {
		return s, err
	}
	urm, err := os.ReadFile(s.URMPath)
	if err != nil {
		return s, err
	}
	out := verify.Check(raw, verify.KindAuto, verify.Options{Strict: true, URM: urm, Config: trust})
	s.Status, s.ReasonCode = out.Status, out.ReasonCode
	if v := out.Verification; v != nil {
		s.ProofTier = v.ProofTier
		s.Events, s.Receipts = v.EventCount, v.ReceiptsVerified
		s.ToolReceipts, s.SideEffects, s.Approvals = v.ToolReceipts, v.SideEffects, v.HumanApprovals
	}
	step("verify", "%s %s (strict, offline; %d events, %d gateway receipts, %d tool receipts, %d side effects, %d approvals; proof tier %s)",
		out.Status, out.ReasonCode, s.Events, s.Receipts, s.ToolReceipts, s.SideEffects, s.Approvals, s.ProofTier)
	if strings.Contains(string(raw), dbPassword) {
		return s, errors.New("the secret appears in the bundle")
	}
	s.VerifyCommand = fmt.Sprintf("clawea verify --strict --config %s %s", s.ConfigPath, s.BundlePath)
	fmt.Fprintf(log, "\nCheck it yourself, offline:\n  %s\n", s.VerifyCommand)
	if out.Status != verify.StatusPass {
		return s, fmt.Errorf("demo bundle did not verify: %s %s", out.ReasonCode, out.Reason)
	}
	return s, nil
}

// gateways lists the node's gateway signers (none until a gateway role
// runs).
func gateways(dids map[string]string) []string {
	out := []string{}
	for role, did := range dids {
		if strings.HasSuffix(role, "gateway") {
			out = append(out, did)
		}
	}
	return out
}

// tokenKid reads the kid from a token's header without checking it.
func tokenKid(tok string) string {
	h, _, _ := strings.Cut(tok, ".")
	var hdr struct {
		Kid string `json:"kid"`
	}
	if raw, err := b64u.Decode(h); err == nil {
		json.Unmarshal(raw, &hdr)
	}
	return hdr.Kid
}

// modelCall makes one chat call as an agent would and reads the receipt
// the gateway returns (in the body, or the stream's trailer).
func modelCall(ctx context.Context, base, tok, path, provider, model, prompt string, stream bool) (ModelCall, error) {
	mc := ModelCall{Provider: provider, Model: model, Stream: stream}
	body := map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": prompt}}, "stream": stream}
	if strings.HasSuffix(path, "/messages") {
		body["max_tokens"] = 64
	}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(raw))
	if err != nil {
		return mc, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return mc, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return mc, err
	}
	mc.Status = resp.StatusCode
	var env json.RawMessage
	if stream && resp.StatusCode == 200 {
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, ":clawproxy_receipt_envelope_b64u="); ok {
				env, _ = b64u.Decode(v)
			}
		}
	} else {
		var b struct {
			Receipt json.RawMessage `json:"_receipt_envelope"`
			Error   struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		json.Unmarshal(out, &b)
		env, mc.Code = b.Receipt, b.Error.Code
	}
	if len(env) > 0 {
		var r struct {
			Payload struct {
				ID  string `json:"receipt_id"`
				In  int64  `json:"tokens_input"`
				Out int64  `json:"tokens_output"`
			} `json:"payload"`
		}
		json.Unmarshal(env, &r)
		mc.ReceiptID, mc.TokensIn, mc.TokensOut = r.Payload.ID, r.Payload.In, r.Payload.Out
	}
	return mc, nil
}

func randomSecret() (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "demo" + hex.EncodeToString(b[:]), nil
}

func loadOrCreate(path string) (*signer.Key, error) {
	if k, err := signer.LoadFile(path); err == nil {
		return k, nil
	}
	k, err := signer.Generate()
	if err != nil {
		return nil, err
	}
	return k, signer.WriteFile(path, k, false)
}
