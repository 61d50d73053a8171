package verify_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/verify"
)

// These tests build evidence as the gateways and the job service do, with
// the project's own builders and real Ed25519 keys, then tamper with it
// and sign it again with the same key: every signature verifies, so only
// strict mode's completeness checks can catch the change.

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type keys struct{ agent, gateway, tool, service, other *signer.Key }

func testKeys(t testing.TB) keys {
	k := func(n byte) *signer.Key {
		key, err := signer.FromSeed(testkit.Seed(n))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	return keys{k(11), k(12), k(13), k(14), k(15)}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// segmentPayload builds the payload of one run (segment seg of job, of
// parts): calls llm_call events, each with its gateway receipt, and one
// tool_call event with its tool receipt, as internal/jobs lays them out.
func segmentPayload(t testing.TB, k keys, job string, seg, parts, calls int) *bundle.Payload {
	runID := job
	if seg > 0 {
		runID = fmt.Sprintf("%s.s%d", job, seg)
	}
	chain := bundle.NewChain(runID)
	at := t0.Add(time.Duration(seg) * time.Hour)
	var receipts []*envelope.Envelope
	for i := 0; i < calls; i++ {
		ts := at.Add(time.Duration(i) * time.Second)
		ph := must[string](t)(bundle.PayloadHash(map[string]any{"receipt_id": fmt.Sprintf("rcpt_%s_%d", runID, i)}))
		ev := must[bundle.Event](t)(chain.Append(fmt.Sprintf("evt_%06d", seg*1000+i+1), "llm_call", ts, ph))
		mi := receipt.NewModelIdentity("openai", "gpt-test")
		g := &receipt.Gateway{ReceiptID: fmt.Sprintf("rcpt_%s_%d", runID, i), GatewayID: k.gateway.DID(), Provider: "openai", Model: "gpt-test",
			RequestHash: b64u.SHA256([]byte("req")), ResponseHash: b64u.SHA256([]byte("resp")), TokensInput: 10, TokensOutput: 20,
			Timestamp: envelope.FormatTime(ts),
			Binding: &receipt.Binding{RunID: runID, EventHash: ev.EventHash, PolicyHash: b64u.SHA256([]byte("policy")),
				TokenScopeHash: b64u.SHA256([]byte("scope")), SpanID: "llm_" + ev.EventID},
			Metadata: &receipt.GatewayMetadata{ModelIdentity: &mi, ModelIdentityHash: mi.Hash()}}
		if i > 0 {
			g.Binding.ParentSpanID = "llm_" + chain.Events[0].EventID
		}
		receipts = append(receipts, must[*envelope.Envelope](t)(g.Sign(k.gateway)))
	}
	ts := at.Add(time.Duration(calls) * time.Second)
	ev := must[bundle.Event](t)(chain.Append(fmt.Sprintf("evt_%06d", seg*1000+calls+1), "tool_call", ts, b64u.SHA256([]byte("tool"))))
	secret := []byte("0123456789abcdef0123456789abcdef")
	ac := must[*receipt.Commitment](t)(receipt.Commit("args", must[canon.Value](t)(canon.ValueOf(map[string]any{"name": "x"})), secret, ""))
	rc := must[*receipt.Commitment](t)(receipt.Commit("result", must[canon.Value](t)(canon.ValueOf(map[string]any{"ok": true})), secret, ""))
	tr := &receipt.ToolV2{ReceiptID: "tool_" + runID, ToolName: "keyvault.secrets.get", ArgsHash: ac.Root, ResultHash: rc.Root,
		ResultStatus: receipt.StatusSuccess, AgentDID: k.agent.DID(), Timestamp: envelope.FormatTime(ts), ArgsSalt: ac.Salt, ResultSalt: rc.Salt,
		Binding: &receipt.Binding{RunID: runID, EventHash: ev.EventHash}}
	p := &bundle.Payload{BundleID: "bundle_" + runID, AgentDID: k.agent.DID(), EventChain: chain.Events, Receipts: receipts,
		ToolReceipts: []*envelope.Envelope{must[*envelope.Envelope](t)(tr.Sign(k.tool, ts))},
		Metadata:     &bundle.Metadata{Harness: &bundle.Harness{ID: "clawea", Version: "test"}, JobID: job}}
	if parts > 1 {
		p.Metadata.Part = &bundle.Part{Index: seg, Count: parts}
	}
	return p
}

func signBundle(t testing.TB, p *bundle.Payload, key signer.Signer) *envelope.Envelope {
	t.Helper()
	return must[*envelope.Envelope](t)(p.Sign(key, t0.Add(24*time.Hour)))
}

func rawOf(t testing.TB, env *envelope.Envelope) []byte {
	t.Helper()
	return must[[]byte](t)(env.JSON())
}

func options(k keys, strict bool) verify.Options {
	return verify.Options{Strict: strict, Now: t0.Add(25 * time.Hour), Config: verify.Config{GatewayReceiptSigners: []string{k.gateway.DID()}}}
}

func expect(t *testing.T, name string, out *verify.Outcome, status, code string) {
	t.Helper()
	if out.Status != status || out.ReasonCode != code {
		t.Errorf("%s: got %s %s (%s), want %s %s", name, out.Status, out.ReasonCode, out.Reason, status, code)
	}
}

// TestStrictBundleReceiptsComplete: a bundle of 50 model calls passes; the
// same bundle with 40 receipts removed and signed again by the agent's key
// passes compat mode (the reference's behaviour) and fails strict mode
// with RECEIPT_MISSING; so does one without its tool receipt. A tool
// receipt bound to no event fails with RECEIPT_UNBOUND.
func TestStrictBundleReceiptsComplete(t *testing.T) {
	k := testKeys(t)
	p := segmentPayload(t, k, "job_complete", 0, 1, 50)
	expect(t, "untampered strict", verify.Check(rawOf(t, signBundle(t, p, k.agent)), verify.KindProofBundle, options(k, true)), verify.StatusPass, verify.OK)

	cut := *p
	cut.Receipts = append(append([]*envelope.Envelope{}, p.Receipts[:5]...), p.Receipts[45:]...)
	raw := rawOf(t, signBundle(t, &cut, k.agent))
	expect(t, "40 receipts removed, compat", verify.Check(raw, verify.KindProofBundle, options(k, false)), verify.StatusPass, verify.OK)
	out := verify.Check(raw, verify.KindProofBundle, options(k, true))
	expect(t, "40 receipts removed, strict", out, verify.StatusFail, verify.ReceiptMissing)
	if !strings.HasPrefix(out.Reason, "40 ") || out.Verification.Path != "event_chain[5]" {
		t.Errorf("reason %q at %q, want 40 events counted and event_chain[5] first", out.Reason, out.Verification.Path)
	}

	noTool := *p
	noTool.ToolReceipts = nil
	expect(t, "tool receipt removed, strict", verify.Check(rawOf(t, signBundle(t, &noTool, k.agent)), verify.KindProofBundle, options(k, true)),
		verify.StatusFail, verify.ReceiptMissing)

	// A tool receipt whose binding names no event: the tool gateway signs
	// it as it is, the agent adds it to the bundle.
	unbound := *p
	trPayload := p.ToolReceipts[0].Payload.Clone()
	for i, m := range trPayload.Members {
		if m.Key == "binding" {
			trPayload.Members = append(trPayload.Members[:i:i], trPayload.Members[i+1:]...)
			break
		}
	}
	tr2 := must[*envelope.Envelope](t)(envelope.Sign(k.tool, envelope.TypeTool, trPayload, envelope.Options{Version: envelope.Version2, IssuedAt: t0}))
	unbound.ToolReceipts = append([]*envelope.Envelope{tr2}, p.ToolReceipts...)
	expect(t, "unbound tool receipt, compat", verify.Check(rawOf(t, signBundle(t, &unbound, k.agent)), verify.KindProofBundle, options(k, false)), verify.StatusPass, verify.OK)
	expect(t, "unbound tool receipt, strict", verify.Check(rawOf(t, signBundle(t, &unbound, k.agent)), verify.KindProofBundle, options(k, true)),
		verify.StatusFail, verify.ReceiptUnbound)
}

// jobAggregate builds a job of three segments and its aggregate, signed by
// the job service key, as internal/jobs finishes a long job.
func jobAggregate(t testing.TB, k keys, job string) []*envelope.Envelope {
	var members []*envelope.Envelope
	for seg := 0; seg < 3; seg++ {
		members = append(members, signBundle(t, segmentPayload(t, k, job, seg, 3, 4), k.agent))
	}
	return members
}

func aggregate(t testing.TB, issuer signer.Signer, job string, members []*envelope.Envelope) []byte {
	t.Helper()
	return rawOf(t, must[*envelope.Envelope](t)(bundle.NewAggregate(issuer, "aggregate_"+job, members, t0.Add(24*time.Hour))))
}

// TestStrictAggregateWhole: an aggregate re-issued (signed again by the
// job service) without its middle segment passes compat mode and fails
// strict mode with AGGREGATE_INCOMPLETE; so do members of two jobs, and
// members that declare no job and part.
func TestStrictAggregateWhole(t *testing.T) {
	k := testKeys(t)
	members := jobAggregate(t, k, "job_agg")
	expect(t, "whole", verify.Check(aggregate(t, k.service, "job_agg", members), verify.KindAggregateBundle, options(k, true)), verify.StatusPass, verify.OK)

	gap := []*envelope.Envelope{members[0], members[2]}
	raw := aggregate(t, k.service, "job_agg", gap)
	expect(t, "middle segment removed, compat", verify.Check(raw, verify.KindAggregateBundle, options(k, false)), verify.StatusPass, verify.OK)
	expect(t, "middle segment removed, strict", verify.Check(raw, verify.KindAggregateBundle, options(k, true)), verify.StatusFail, verify.AggregateIncomplete)

	// The agent renumbers the parts and signs the members again: the run
	// ids still give the gap away.
	var renumbered []*envelope.Envelope
	for i, seg := range []int{0, 2} {
		p := segmentPayload(t, k, "job_agg", seg, 3, 4)
		p.Metadata.Part = &bundle.Part{Index: i, Count: 2}
		renumbered = append(renumbered, signBundle(t, p, k.agent))
	}
	expect(t, "renumbered parts, strict", verify.Check(aggregate(t, k.service, "job_agg", renumbered), verify.KindAggregateBundle, options(k, true)),
		verify.StatusFail, verify.AggregateIncomplete)

	other := jobAggregate(t, k, "job_other")
	mixed := []*envelope.Envelope{members[0], other[1], members[2]}
	expect(t, "two jobs, strict", verify.Check(aggregate(t, k.service, "job_agg", mixed), verify.KindAggregateBundle, options(k, true)),
		verify.StatusFail, verify.AggregateIncomplete)

	var fleet []*envelope.Envelope
	for i := 0; i < 2; i++ {
		fleet = append(fleet, signBundle(t, segmentPayload(t, k, fmt.Sprintf("job_fleet_%d", i), 0, 1, 2), k.agent))
	}
	raw = aggregate(t, k.service, "fleet", fleet)
	expect(t, "undeclared parts, compat", verify.Check(raw, verify.KindAggregateBundle, options(k, false)), verify.StatusPass, verify.OK)
	expect(t, "undeclared parts, strict", verify.Check(raw, verify.KindAggregateBundle, options(k, true)), verify.StatusFail, verify.AggregateIncomplete)
}

// TestSignerPins: with aggregate_signer_dids set, an aggregate signed by
// another key fails (both modes) with SIGNER_NOT_PINNED, and so does a
// member bundle signed by an agent outside agent_signer_dids; a strict
// PASS without pins carries warnings that say so.
func TestSignerPins(t *testing.T) {
	k := testKeys(t)
	members := jobAggregate(t, k, "job_pin")
	good, forged := aggregate(t, k.service, "job_pin", members), aggregate(t, k.other, "job_pin", members)

	out := verify.Check(forged, verify.KindAggregateBundle, options(k, true))
	expect(t, "unpinned strict", out, verify.StatusPass, verify.OK)
	if len(out.Warnings) != 2 || out.Warnings[0] != verify.WarnAgentUnpinned || out.Warnings[1] != verify.WarnAggregateUnpinned {
		t.Errorf("warnings %q, want both unpinned warnings", out.Warnings)
	}
	for _, strict := range []bool{true, false} {
		opt := options(k, strict)
		opt.Config.AggregateSigners = []string{k.service.DID()}
		opt.Config.AgentSigners = []string{k.agent.DID()}
		out := verify.Check(good, verify.KindAggregateBundle, opt)
		expect(t, fmt.Sprint("pinned signers, strict=", strict), out, verify.StatusPass, verify.OK)
		if len(out.Warnings) != 0 {
			t.Errorf("pinned: warnings %q", out.Warnings)
		}
		expect(t, fmt.Sprint("aggregate by another key, strict=", strict), verify.Check(forged, verify.KindAggregateBundle, opt), verify.StatusFail, verify.SignerNotPinned)
		opt.Config.AgentSigners = []string{k.other.DID()}
		out = verify.Check(good, verify.KindAggregateBundle, opt)
		expect(t, fmt.Sprint("member by an unpinned agent, strict=", strict), out, verify.StatusFail, verify.AggregateMemberInvalid)
		if !strings.Contains(out.Reason, verify.SignerNotPinned) {
			t.Errorf("member reason %q does not name %s", out.Reason, verify.SignerNotPinned)
		}
		expect(t, fmt.Sprint("bundle by an unpinned agent, strict=", strict), verify.Check(rawOf(t, members[0]), verify.KindProofBundle, opt), verify.StatusFail, verify.SignerNotPinned)
	}
}

// TestDuplicateEnvelopeKeys: a second signer_did or payload written into a
// signed envelope (whose last-wins parse still verifies) fails in both
// modes with DUPLICATE_JSON_KEY, at any depth.
func TestDuplicateEnvelopeKeys(t *testing.T) {
	k := testKeys(t)
	env := signBundle(t, segmentPayload(t, k, "job_dup", 0, 1, 3), k.agent)
	raw := string(rawOf(t, env))
	signerField := `"signer_did":"` + k.agent.DID() + `"`
	other := signBundle(t, segmentPayload(t, k, "job_dup2", 0, 1, 1), k.agent)
	otherPayload := must[[]byte](t)(canon.Marshal(other.Payload))
	for name, forged := range map[string]string{
		// The first copy is another signer's, the last the real one.
		"signer_did first": strings.Replace(raw, `"envelope_type":"proof_bundle"`, `"envelope_type":"proof_bundle","signer_did":"`+k.other.DID()+`"`, 1),
		"signer_did last":  strings.Replace(raw, signerField, signerField+`,"signer_did":"`+k.other.DID()+`"`, 1),
		"payload first":    strings.Replace(raw, `"envelope_type":"proof_bundle"`, `"envelope_type":"proof_bundle","payload":`+string(otherPayload), 1),
		"in a receipt":     strings.Replace(raw, `"provider":"openai"`, `"provider":"anthropic","provider":"openai"`, 1),
	} {
		if forged == raw {
			t.Fatalf("%s: edit did not apply", name)
		}
		for _, strict := range []bool{true, false} {
			expect(t, fmt.Sprint(name, " strict=", strict), verify.Check([]byte(forged), verify.KindAuto, options(k, strict)), verify.StatusFail, verify.DuplicateJSONKey)
		}
		if r := verify.ProofBundle([]byte(forged), options(k, true)); r.Code != verify.DuplicateJSONKey {
			t.Errorf("%s: ProofBundle = %s", name, r.Code)
		}
	}
	expect(t, "as signed", verify.Check([]byte(raw), verify.KindAuto, options(k, true)), verify.StatusPass, verify.OK)
}

// TestInputCap: an input over Options.MaxBytes is refused before it is
// parsed (it is not even JSON here) with INPUT_TOO_LARGE, by Check and by
// the byte entry points; at the cap it is read.
func TestInputCap(t *testing.T) {
	k := testKeys(t)
	raw := rawOf(t, signBundle(t, segmentPayload(t, k, "job_cap", 0, 1, 2), k.agent))
	opt := options(k, true)
	opt.MaxBytes = int64(len(raw))
	expect(t, "at the cap", verify.Check(raw, verify.KindAuto, opt), verify.StatusPass, verify.OK)
	opt.MaxBytes--
	out := verify.Check(raw, verify.KindAuto, opt)
	expect(t, "one byte over", out, verify.StatusError, verify.InputTooLarge)
	if out.ExitCode() != 2 {
		t.Errorf("exit code %d", out.ExitCode())
	}
	junk := []byte("{" + strings.Repeat("x", 100))
	opt.MaxBytes = 10
	expect(t, "unparsed", verify.Check(junk, verify.KindAuto, opt), verify.StatusError, verify.InputTooLarge)
	for name, r := range map[string]*verify.Result{
		"ProofBundle":     verify.ProofBundle(junk, opt),
		"AggregateBundle": verify.AggregateBundle(junk, opt),
		"ExportBundle":    verify.ExportBundle(junk, opt),
		"GatewayReceipt":  verify.GatewayReceipt(junk, opt),
		"ToolReceipt":     verify.ToolReceipt(junk, opt),
	} {
		if r.Code != verify.InputTooLarge {
			t.Errorf("%s: %s", name, r.Code)
		}
	}
	// The default cap applies when MaxBytes is zero.
	big := make([]byte, verify.DefaultMaxBytes+1)
	opt.MaxBytes = 0
	expect(t, "default cap", verify.Check(big, verify.KindAuto, opt), verify.StatusError, verify.InputTooLarge)
}
