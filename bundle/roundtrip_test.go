package bundle_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/verify"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type fixture struct {
	agent, gateway, tool, approver, issuer *signer.Key
	bundle                                 *envelope.Envelope
	gatewayReceipt                         *envelope.Envelope
	toolReceipt                            *envelope.Envelope
	urm                                    []byte
	opt                                    verify.Options
}

func mustKey(t testing.TB) *signer.Key {
	k, err := signer.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// buildJob assembles the evidence of a small job the way the gateways do:
// two model calls, one approval-gated tool call with a side effect.
func buildJob(t testing.TB) *fixture { return buildRun(t, "job_roundtrip_1") }

func buildRun(t testing.TB, runID string) *fixture {
	f := &fixture{agent: mustKey(t), gateway: mustKey(t), tool: mustKey(t), approver: mustKey(t), issuer: mustKey(t)}
	chain := bundle.NewChain(runID)
	var receipts []*envelope.Envelope
	spans := []string{"span_1", "span_2"}
	for i, span := range spans {
		ph := must(bundle.PayloadHash(map[string]any{"type": "llm_call", "n": i}))
		ev := must(chain.Append(fmt.Sprintf("evt_%d", i+1), "llm_call", t0.Add(time.Duration(i)*time.Second), ph))
		mi := receipt.NewModelIdentity("openai", "gpt-test")
		g := &receipt.Gateway{
			ReceiptID: fmt.Sprintf("rcpt_%s_%d", runID, i+1), GatewayID: f.gateway.DID(), Provider: "openai", Model: "gpt-test",
			RequestHash: b64u.SHA256([]byte("req")), ResponseHash: b64u.SHA256([]byte("resp")),
			TokensInput: 12, TokensOutput: 34, LatencyMS: 56, Timestamp: envelope.FormatTime(t0.Add(time.Duration(i) * time.Second)),
			Binding:  &receipt.Binding{RunID: runID, EventHash: ev.EventHash, Nonce: fmt.Sprintf("nonce_%d", i), PolicyHash: b64u.SHA256([]byte("policy")), TokenScopeHash: b64u.SHA256([]byte("scope")), SpanID: span, Phase: "execution"},
			Metadata: &receipt.GatewayMetadata{ModelIdentity: &mi, ModelIdentityHash: mi.Hash()},
		}
		if i > 0 {
			g.Binding.ParentSpanID = spans[i-1]
		}
		receipts = append(receipts, must(g.Sign(f.gateway)))
	}
	f.gatewayReceipt = receipts[0]

	secret := []byte("0123456789abcdef0123456789abcdef")
	args := must(canon.ValueOf(map[string]any{"vault": "kv-prod-finance-001", "name": "agent/app/db", "value": "s3cret"}))
	result := must(canon.ValueOf(map[string]any{"version": "v2"}))
	ac := must(receipt.Commit("args", args, secret, ""))
	rc := must(receipt.Commit("result", result, secret, ""))
	disc := must(ac.Disclose("args.name", "args.vault"))
	ev := must(chain.Append("evt_3", "tool_call", t0.Add(3*time.Second), must(bundle.PayloadHash(map[string]any{"type": "tool_call"}))))
	tr := &receipt.ToolV2{ReceiptID: "tr_1", ToolName: "keyvault.secrets.set", ArgsHash: ac.Root, ResultHash: rc.Root,
		ResultStatus: receipt.StatusSuccess, AgentDID: f.agent.DID(), Timestamp: envelope.FormatTime(t0.Add(3 * time.Second)), LatencyMS: 4,
		ArgsSalt: ac.Salt, ResultSalt: rc.Salt, Binding: &receipt.Binding{RunID: runID, EventHash: ev.EventHash}, ArgsDisclosure: disc}
	toolEnv := must(tr.Sign(f.tool, t0.Add(3*time.Second)))
	if err := toolEnv.CoSign(f.approver, "approver", t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.toolReceipt = toolEnv
	v1 := &receipt.ToolV1{ReceiptID: "tr_0", ToolName: "ticketing.create", ArgsHash: receipt.HashJSON(args), ResultHash: receipt.HashJSON(result),
		AgentDID: f.agent.DID(), Timestamp: envelope.FormatTime(t0.Add(3 * time.Second)), LatencyMS: 1,
		Binding: &receipt.Binding{RunID: runID, EventHash: ev.EventHash}}
	v1Env := must(v1.SignV1(f.tool, t0.Add(3*time.Second)))
	bw := int64(42)
	se := receipt.SideEffect{Version: "1", ReceiptID: "se_1", EffectClass: receipt.EffectExternalAPIWrite, TargetDigest: b64u.SHA256([]byte("kv")),
		HashAlgorithm: "SHA-256", BytesWritten: &bw, AgentDID: f.agent.DID(), Timestamp: envelope.FormatTime(t0.Add(3 * time.Second)),
		Binding: &receipt.Binding{RunID: runID, EventHash: ev.EventHash, ParentSpanID: "span_2"}}
	minted := true
	ha := receipt.HumanApproval{Version: "1", ReceiptID: "ha_1", ApprovalType: receipt.ApprovalExplicitApprove, ScopeHash: ac.Root,
		ApproverSubject: f.approver.DID(), CapabilityMinted: &minted, HashAlgorithm: "SHA-256", AgentDID: f.agent.DID(),
		Timestamp: envelope.FormatTime(t0.Add(2 * time.Second)), Binding: &receipt.Binding{RunID: runID, ParentSpanID: "span_2"}}
	urm := &bundle.URM{URMID: "urm_1", RunID: runID, AgentDID: f.agent.DID(), IssuedAt: envelope.FormatTime(t0.Add(5 * time.Second)),
		Harness: bundle.URMHarness{ID: "clawea", Version: "test"}, ChainRootHash: chain.Root(), ReceiptsRoot: bundle.ReceiptsRoot(receipts)}
	raw, urmHash, err := urm.JSON()
	if err != nil {
		t.Fatal(err)
	}
	f.urm = raw
	p := &bundle.Payload{BundleID: "bundle_" + runID, AgentDID: f.agent.DID(),
		URM:        &bundle.URMRef{Version: "1", URMID: "urm_1", ResourceType: "urm", ResourceHash: urmHash},
		EventChain: chain.Events, Receipts: receipts, ToolReceipts: []*envelope.Envelope{v1Env, toolEnv},
		SideEffects: []receipt.SideEffect{se}, HumanApprovals: []receipt.HumanApproval{ha},
		RateLimitClaims: []bundle.RateLimitClaim{{Version: "1", Scope: "agent", ScopeKey: f.agent.DID(), WindowStart: envelope.FormatTime(t0), WindowEnd: envelope.FormatTime(t0.Add(time.Minute)), MaxRequests: 10, ObservedRequests: 2, RunID: runID}},
		Metadata:        &bundle.Metadata{Harness: &bundle.Harness{ID: "clawea", Version: "test", Runtime: "clawea"}},
	}
	f.bundle = must(p.Sign(f.agent, t0.Add(6*time.Second)))
	f.opt = verify.Options{Now: t0.Add(time.Hour), Strict: true, URM: f.urm,
		Config: verify.Config{GatewayReceiptSigners: []string{f.gateway.DID()}, WebReceiptSigners: []string{f.gateway.DID()}}}
	return f
}

func jsonOf(t testing.TB, v interface{ JSON() ([]byte, error) }) []byte {
	raw, err := v.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func expectPass(t *testing.T, name string, data []byte, kind verify.Kind, opt verify.Options) {
	t.Helper()
	out := verify.Check(data, kind, opt)
	if out.Status != verify.StatusPass {
		t.Errorf("%s: %s %s: %s", name, out.Status, out.ReasonCode, out.Reason)
	}
}

func TestEveryArtifactKindVerifies(t *testing.T) {
	f := buildJob(t)
	data := jsonOf(t, f.bundle)
	expectPass(t, "proof bundle (strict)", data, verify.KindAuto, f.opt)
	compat := f.opt
	compat.Strict = false
	expectPass(t, "proof bundle (compat)", data, verify.KindProofBundle, compat)
	out := verify.Check(data, verify.KindAuto, f.opt)
	if v := out.Verification; v.ReceiptsVerified != 2 || v.ProofTier != "gateway" || v.ToolReceipts != 2 || v.EventCount != 3 {
		t.Errorf("details: %+v", v)
	}
	expectPass(t, "gateway receipt", jsonOf(t, f.gatewayReceipt), verify.KindAuto, f.opt)
	expectPass(t, "tool receipt v2", jsonOf(t, f.toolReceipt), verify.KindAuto, f.opt)

	tree := must(receipt.NewMerkleTree([]string{b64u.SHA256([]byte("a")), b64u.SHA256([]byte("b")), b64u.SHA256([]byte("c"))}))
	for i := 0; i < 3; i++ {
		proof := must(tree.Prove("log-test", i, f.issuer, t0))
		expectPass(t, fmt.Sprintf("inclusion proof %d", i), must(canon.Marshal(proof)), verify.KindAuto, f.opt)
	}
	proof := must(tree.Prove("log-test", 1, f.issuer, t0))
	web := &receipt.Web{ReceiptID: "web_1", WitnessID: "witness", Source: "other", RequestHash: b64u.SHA256([]byte("q")),
		ResponseHash: b64u.SHA256([]byte("a")), Timestamp: envelope.FormatTime(t0),
		Metadata: map[string]any{"note": "test"}}
	webEnv := must(web.Sign(f.gateway))
	expectPass(t, "web receipt", jsonOf(t, webEnv), verify.KindAuto, f.opt)
	_ = proof

	exp := must(bundle.NewExport(f.issuer, "exp_1", bundle.ExportArtifacts{ProofBundle: f.bundle}, t0.Add(7*time.Second)))
	expectPass(t, "export bundle", must(canon.Marshal(exp)), verify.KindAuto, f.opt)

	g := buildRun(t, "job_roundtrip_2")
	aggOpt := f.opt
	aggOpt.URM = nil
	aggOpt.Strict = false
	aggOpt.Config.GatewayReceiptSigners = []string{f.gateway.DID(), g.gateway.DID()}
	// Members reference URM documents that an aggregate does not carry, so
	// the members here are rebuilt without a URM reference.
	f2, g2 := withoutURM(t, f), withoutURM(t, g)
	agg := must(bundle.NewAggregate(f.issuer, "agg_1", []*envelope.Envelope{f2, g2}, t0.Add(8*time.Second)))
	expectPass(t, "aggregate bundle", jsonOf(t, agg), verify.KindAuto, aggOpt)

	sig := must(receipt.SignCommit(f.agent, "135016bbeda0a95d5745ff9031c1287263ea0a06", t0))
	expectPass(t, "m1 commit signature", must(canon.Marshal(sig)), verify.KindAuto, verify.Options{})
}

func withoutURM(t testing.TB, f *fixture) *envelope.Envelope {
	p := f.bundle.Payload.Clone()
	p.Delete("urm")
	return must(envelope.Sign(f.agent, envelope.TypeBundle, p, envelope.Options{IssuedAt: t0.Add(6 * time.Second)}))
}

// TestMutationsRejected flips bytes of signed payloads and swaps keys; every
// change to the canonical content must be refused.
func TestMutationsRejected(t *testing.T) {
	f := buildJob(t)
	cases := []struct {
		name string
		env  *envelope.Envelope
		kind verify.Kind
		opt  verify.Options
	}{
		{"gateway receipt", f.gatewayReceipt, verify.KindGatewayReceipt, f.opt},
		{"tool receipt", f.toolReceipt, verify.KindToolReceipt, f.opt},
		{"proof bundle", f.bundle, verify.KindProofBundle, f.opt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := jsonOf(t, tc.env)
			payload := canon.AppendCompact(nil, &tc.env.Payload)
			start := bytes.Index(raw, payload)
			if start < 0 {
				t.Fatal("payload not found in envelope bytes")
			}
			step := 1
			if testing.Short() || len(payload) > 4000 {
				step = 7 // large bundles: a spread of positions keeps the test quick
			}
			checked := 0
			for i := start; i < start+len(payload); i += step {
				for _, mask := range []byte{0x01, 0x20, 0x80} {
					mut := bytes.Clone(raw)
					mut[i] ^= mask
					if sameCanonicalPayload(mut, payload) {
						continue // e.g. a case flip of an exponent marker
					}
					out := verify.Check(mut, tc.kind, tc.opt)
					if out.Status == verify.StatusPass {
						t.Fatalf("byte %d ^ %#x accepted: %s", i-start, mask, mut[i-start:min(len(mut), i+20)])
					}
					checked++
				}
			}
			// Key reordering: swap the first two members of every object.
			v := must(canon.Parse(raw))
			swaps := 0
			walkObjects(v.Get("payload"), func(o *canon.Value) {
				if len(o.Members) < 2 {
					return
				}
				o.Members[0], o.Members[1] = o.Members[1], o.Members[0]
				mut := canon.AppendCompact(nil, &v)
				if out := verify.Check(mut, tc.kind, tc.opt); out.Status == verify.StatusPass {
					t.Errorf("key swap in an object accepted: %s", canon.AppendCompact(nil, o))
				}
				o.Members[0], o.Members[1] = o.Members[1], o.Members[0]
				swaps++
			})
			if checked == 0 || swaps == 0 {
				t.Fatalf("nothing checked (%d flips, %d swaps)", checked, swaps)
			}
		})
	}
}

func sameCanonicalPayload(mut, payload []byte) bool {
	v, err := canon.Parse(mut)
	if err != nil {
		return false
	}
	p := v.Get("payload")
	return p != nil && bytes.Equal(canon.AppendCompact(nil, p), payload)
}

func walkObjects(v *canon.Value, f func(*canon.Value)) {
	switch v.Kind {
	case canon.Object:
		f(v)
		for i := range v.Members {
			walkObjects(&v.Members[i].Value, f)
		}
	case canon.Array:
		for i := range v.Items {
			walkObjects(&v.Items[i], f)
		}
	}
}
