// Package demo runs clawea's end-to-end demonstration job on the embedded
// defaults and reports what happened step by step.
package demo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/verify"
)

// Options configure a demo run.
type Options struct {
	// DataDir holds the keys and evidence; empty means a new temporary
	// directory.
	DataDir string
	// Log receives the human-readable narration; nil discards it.
	Log io.Writer
	// Now is the job's clock; zero means the current time.
	Now time.Time
}

// Summary is the machine-readable outcome of a demo run.
type Summary struct {
	DataDir       string `json:"data_dir"`
	AgentDID      string `json:"agent_did"`
	GatewayDID    string `json:"gateway_did"`
	RunID         string `json:"run_id"`
	BundleID      string `json:"bundle_id"`
	BundlePath    string `json:"bundle_path"`
	URMPath       string `json:"urm_path"`
	ConfigPath    string `json:"config_path"`
	Events        int    `json:"events"`
	Receipts      int    `json:"gateway_receipts"`
	ToolReceipts  int    `json:"tool_receipts"`
	Status        string `json:"status"`
	ReasonCode    string `json:"reason_code"`
	ProofTier     string `json:"proof_tier"`
	VerifyCommand string `json:"verify_command"`
}

// Run builds a small job's evidence (an agent key and a gateway key, two
// model calls with gateway receipts bound to the job's event chain, one
// tool call with a salted v2 tool receipt), signs the proof bundle with the
// agent key, writes it with its URM and a trust config, and verifies it in
// strict mode.
func Run(opt Options) (*Summary, error) {
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now().UTC().Truncate(time.Millisecond)
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
	step := func(format string, args ...any) { fmt.Fprintf(log, "  "+format+"\n", args...) }
	fmt.Fprintln(log, "clawea demo: one small job, signed evidence, offline verification")
	step("data dir      %s", dir)

	agent, err := loadOrCreate(filepath.Join(dir, "keys", "agent.key.json"))
	if err != nil {
		return nil, err
	}
	gw, err := loadOrCreate(filepath.Join(dir, "keys", "gateway.key.json"))
	if err != nil {
		return nil, err
	}
	s.AgentDID, s.GatewayDID = agent.DID(), gw.DID()
	step("agent key     %s", agent.DID())
	step("gateway key   %s", gw.DID())

	var rnd [5]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	s.RunID = "job_demo_" + hex.EncodeToString(rnd[:])
	chain := bundle.NewChain(s.RunID)
	var receipts []*envelope.Envelope
	prevSpan := ""
	for i, prompt := range []string{"Summarise yesterday's failed payments.", "Draft a ticket for the payments team."} {
		at := now.Add(time.Duration(i) * time.Second)
		req := map[string]any{"model": "clawea-local-test-model", "messages": []map[string]string{{"role": "user", "content": prompt}}}
		resp := map[string]any{"id": fmt.Sprintf("chatcmpl-demo-%d", i+1), "choices": []map[string]any{{"message": map[string]string{"role": "assistant", "content": "(local test model reply)"}}},
			"usage": map[string]int{"prompt_tokens": 18 + i, "completion_tokens": 7}}
		reqRaw, _ := canon.Marshal(req)
		respRaw, _ := canon.Marshal(resp)
		ph, _ := bundle.PayloadHash(map[string]any{"type": "llm_call", "request_hash_b64u": b64u.SHA256(reqRaw)})
		ev, err := chain.Append(fmt.Sprintf("evt_%d", len(chain.Events)+1), "llm_call", at, ph)
		if err != nil {
			return nil, err
		}
		span := fmt.Sprintf("span_%d", i+1)
		mi := receipt.NewModelIdentity("local", "clawea-local-test-model")
		g := &receipt.Gateway{
			ReceiptID: fmt.Sprintf("rcpt_%s_%d", s.RunID, i+1), GatewayID: gw.DID(), Provider: "local", Model: "clawea-local-test-model",
			RequestHash: b64u.SHA256(reqRaw), ResponseHash: b64u.SHA256(respRaw), TokensInput: int64(18 + i), TokensOutput: 7,
			LatencyMS: 3, Timestamp: envelope.FormatTime(at),
			Binding:  &receipt.Binding{RunID: s.RunID, EventHash: ev.EventHash, Nonce: fmt.Sprintf("nonce_%s_%d", s.RunID, i+1), SpanID: span, ParentSpanID: prevSpan, Phase: "execution"},
			Metadata: &receipt.GatewayMetadata{ModelIdentity: &mi, ModelIdentityHash: mi.Hash()},
		}
		env, err := g.Sign(gw)
		if err != nil {
			return nil, err
		}
		receipts = append(receipts, env)
		prevSpan = span
		step("model call %d  %q -> gateway receipt %s, bound to %s", i+1, prompt, g.ReceiptID, ev.EventID)
	}

	at := now.Add(3 * time.Second)
	secret := make([]byte, 32)
	copy(secret, []byte(gw.DID()))
	args, _ := canon.ValueOf(map[string]any{"bucket": "reports", "key": "payments/2026-11-21.csv"})
	result, _ := canon.ValueOf(map[string]any{"bytes": 5120, "status": "ok"})
	ac, err := receipt.Commit("args", args, secret, "")
	if err != nil {
		return nil, err
	}
	rc, err := receipt.Commit("result", result, secret, "")
	if err != nil {
		return nil, err
	}
	ph, _ := bundle.PayloadHash(map[string]any{"type": "tool_call", "tool": "storage.readonly"})
	ev, err := chain.Append(fmt.Sprintf("evt_%d", len(chain.Events)+1), "tool_call", at, ph)
	if err != nil {
		return nil, err
	}
	tr := &receipt.ToolV2{ReceiptID: "tool_" + s.RunID + "_1", ToolName: "storage.readonly", ArgsHash: ac.Root, ResultHash: rc.Root,
		ResultStatus: receipt.StatusSuccess, AgentDID: agent.DID(), Timestamp: envelope.FormatTime(at), LatencyMS: 2,
		ArgsSalt: ac.Salt, ResultSalt: rc.Salt, Binding: &receipt.Binding{RunID: s.RunID, EventHash: ev.EventHash, ParentSpanID: prevSpan}}
	toolEnv, err := tr.Sign(gw, at)
	if err != nil {
		return nil, err
	}
	step("tool call     storage.readonly -> tool receipt v2 (salted hashes only), bound to %s", ev.EventID)

	urm := &bundle.URM{URMID: "urm_" + s.RunID, RunID: s.RunID, AgentDID: agent.DID(), IssuedAt: envelope.FormatTime(now.Add(4 * time.Second)),
		Harness: bundle.URMHarness{ID: "clawea-demo", Version: "1", Runtime: "clawea"}, ChainRootHash: chain.Root(), ReceiptsRoot: bundle.ReceiptsRoot(receipts)}
	urmRaw, urmHash, err := urm.JSON()
	if err != nil {
		return nil, err
	}
	s.BundleID = "bundle_" + s.RunID
	p := &bundle.Payload{BundleID: s.BundleID, AgentDID: agent.DID(),
		URM:        &bundle.URMRef{Version: "1", URMID: urm.URMID, ResourceType: "urm", ResourceHash: urmHash},
		EventChain: chain.Events, Receipts: receipts, ToolReceipts: []*envelope.Envelope{toolEnv},
		Metadata: &bundle.Metadata{Harness: &bundle.Harness{ID: "clawea-demo", Version: "1", Runtime: "clawea"}, JobID: s.RunID},
	}
	benv, err := p.Sign(agent, now.Add(5*time.Second))
	if err != nil {
		return nil, err
	}
	s.Events, s.Receipts, s.ToolReceipts = len(chain.Events), len(receipts), 1
	step("bundle        %s signed by the agent (%d events, %d gateway receipts, %d tool receipt)", s.BundleID, s.Events, s.Receipts, s.ToolReceipts)

	pretty, err := benv.Indented()
	if err != nil {
		return nil, err
	}
	s.BundlePath = filepath.Join(dir, "demo-bundle.json")
	s.URMPath = filepath.Join(dir, "demo-urm.json")
	s.ConfigPath = filepath.Join(dir, "trust.json")
	cfg := map[string]any{"config_version": "1", "allowlists": map[string]any{"gateway_receipt_signer_dids": []string{gw.DID()}}}
	cfgRaw, _ := json.MarshalIndent(cfg, "", "  ")
	for _, f := range []struct {
		path string
		data []byte
	}{{s.BundlePath, pretty}, {s.URMPath, urmRaw}, {s.ConfigPath, append(cfgRaw, '\n')}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, err
		}
	}
	out := verify.Check(pretty, verify.KindAuto, verify.Options{Strict: true, URM: urmRaw, Now: now.Add(time.Minute),
		Config: verify.Config{GatewayReceiptSigners: []string{gw.DID()}}})
	s.Status, s.ReasonCode = out.Status, out.ReasonCode
	if out.Verification != nil {
		s.ProofTier = out.Verification.ProofTier
	}
	step("verify        %s %s (strict; proof tier %s; %d of %d receipts signed and bound)", out.Status, out.ReasonCode, s.ProofTier,
		out.Verification.ReceiptsVerified, out.Verification.Receipts)
	s.VerifyCommand = fmt.Sprintf("clawea verify --strict --config %s %s", s.ConfigPath, s.BundlePath)
	fmt.Fprintf(log, "\nCheck it yourself, offline:\n  %s\n", s.VerifyCommand)
	if out.Status != verify.StatusPass {
		return s, fmt.Errorf("demo bundle did not verify: %s %s", out.ReasonCode, out.Reason)
	}
	return s, nil
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
