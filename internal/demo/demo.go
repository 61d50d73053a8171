// Package demo runs clawea's end-to-end demonstration job on the embedded
// defaults (SQLite, keys in a data directory, everything on loopback) and
// reports what happened step by step.
//
// The demo drives a real node through its HTTP APIs, exactly as an operator
// and an agent would: it publishes a policy to the registry, opens a job
// (the issuer mints the job's token), appends the job's events with that
// token, finishes the job (the custodial agent key signs the proof bundle,
// the token is revoked), exports the evidence and verifies it offline in
// strict mode.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/examples"
	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/registry"
	"github.com/clawea/clawea/internal/server"
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
}

// Summary is the machine-readable outcome of a demo run.
type Summary struct {
	DataDir       string `json:"data_dir"`
	ServerURL     string `json:"server_url"`
	Store         string `json:"store"`
	PolicyHash    string `json:"policy_hash_b64u"`
	AgentDID      string `json:"agent_did"`
	JobID         string `json:"job_id"`
	TokenKid      string `json:"token_kid"`
	BundleID      string `json:"bundle_id"`
	BundlePath    string `json:"bundle_path"`
	URMPath       string `json:"urm_path"`
	ConfigPath    string `json:"config_path"`
	Events        int    `json:"events"`
	Receipts      int    `json:"gateway_receipts"`
	ToolReceipts  int    `json:"tool_receipts"`
	TokenAfter    string `json:"token_after_finish"`
	Status        string `json:"status"`
	ReasonCode    string `json:"reason_code"`
	ProofTier     string `json:"proof_tier"`
	VerifyCommand string `json:"verify_command"`
}

// demoEvents are the job's steps until the gateways record model and tool
// calls themselves.
var demoEvents = []struct {
	typ     string
	payload map[string]any
}{
	{"plan", map[string]any{"goal": "Summarise yesterday's failed payments and file a ticket", "steps": 3}},
	{"tool_call", map[string]any{"tool": "storage.readonly", "args": map[string]any{"bucket": "reports", "key": "payments/2026-11-21.csv"}}},
	{"tool_call", map[string]any{"tool": "ticketing.create", "args": map[string]any{"queue": "payments", "title": "3 failed payments on 2026-11-21"}}},
	{"note", map[string]any{"text": "done"}},
}

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
	nodeDir := filepath.Join(dir, "server")
	node, err := server.Open(ctx, server.Config{DataDir: keystore.Dir(nodeDir), Listen: "127.0.0.1:0",
		Log: slog.New(slog.NewTextHandler(logFile, nil))})
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
	step("server", "%s (registry, issuer, jobs; %s store; log in server.log)", s.ServerURL, s.Store)
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

	// 4. The agent's steps, appended with the job's own token.
	agentAPI := client.New(s.ServerURL, started.Token)
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

	// 5. Finish: the bundle is built, signed with the agent key, verified
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

	// 6. Export and verify offline, as an auditor would.
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
		s.ToolReceipts = v.ToolReceipts
	}
	step("verify", "%s %s (strict, offline; %d events, %d gateway receipts, %d tool receipts; proof tier %s)",
		out.Status, out.ReasonCode, s.Events, s.Receipts, s.ToolReceipts, s.ProofTier)
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
