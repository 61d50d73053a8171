package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/verify"
)

// producer records evidence into a job's chain in the shapes the gateways
// give it (internal/modelgw/record.go, internal/toolgw recordCall,
// requestApproval and recordDecision), signed by keys the node trusts, so
// that a history of thousands of events can be made in a second. The
// acceptance tests in gateways_finish_test.go drive the real gateways.
type producer struct {
	t            *testing.T
	chain        *jobs.Service
	model, tool  *signer.Key
	approver     *signer.Key
	jobID, agent string
	policy       string
	scope        string
	commit       []byte
	seq          int // events appended so far
	segSize      int
	anchored     map[int]bool // segment -> a model call happened in it
	want         map[string]bool
	pending      []pendingApproval
	ids          int
}

type pendingApproval struct {
	id    string
	event store.JobEvent
	args  canon.Value
}

// segOf is the segment the next event goes into.
func (p *producer) segOf() int { return p.seq / p.segSize }

func (p *producer) newID(prefix string) string {
	p.ids++
	return fmt.Sprintf("%s%08d", prefix, p.ids)
}

// expect notes a side-effect or approval record and whether the finish
// should list it in its bundle (a model call came before it in its
// segment) or carry it beside.
func (p *producer) expect(id string, seg int) { p.want[id] = p.anchored[seg] }

func (p *producer) modelCall(r *rand.Rand) {
	p.t.Helper()
	rid := p.newID("rcpt_")
	in, out := r.Int64N(2000), r.Int64N(500)
	ev := map[string]any{"receipt_id": rid, "provider": "local", "model": "word-counter", "api": "chat", "stream": false,
		"outcome": "OK", "tokens_input": in, "tokens_output": out}
	_, err := p.chain.Record(context.Background(), p.jobID, "llm_call", ev, func(a *evidence.Appended) ([]evidence.Item, string, error) {
		span := "llm_" + a.Event.EventID
		mi := receipt.NewModelIdentity("local", "word-counter")
		rc := receipt.Gateway{ReceiptID: rid, GatewayID: p.model.DID(), Provider: "local", Model: "word-counter",
			RequestHash: b64u.SHA256([]byte(rid)), ResponseHash: b64u.SHA256([]byte("r" + rid)), TokensInput: in, TokensOutput: out,
			LatencyMS: 3, Timestamp: envelope.FormatTime(time.Now()),
			Binding: &receipt.Binding{RunID: a.Event.RunID, EventHash: a.Event.EventHash, PolicyHash: p.policy,
				TokenScopeHash: p.scope, SpanID: span, ParentSpanID: a.Anchor},
			Metadata: &receipt.GatewayMetadata{ModelIdentity: &mi, ModelIdentityHash: mi.Hash(), Status: "OK", Privacy: "hash_only"}}
		env, err := rc.SignJSON(p.model)
		if err != nil {
			return nil, "", err
		}
		return []evidence.Item{{Kind: evidence.KindGatewayReceipt, ItemID: rid, JSON: env}}, span, nil
	})
	if err != nil {
		p.t.Fatalf("model call: %v", err)
	}
	p.anchored[p.segOf()] = true
	p.seq++
}

// toolReceipt builds a v2 tool receipt as the tool gateway does.
func (p *producer) toolReceipt(name string, args, result canon.Value, status string, disclose bool) *receipt.ToolV2 {
	p.t.Helper()
	ac, err := receipt.Commit("args", args, p.commit, "")
	if err != nil {
		p.t.Fatal(err)
	}
	rc, err := receipt.Commit("result", result, p.commit, "")
	if err != nil {
		p.t.Fatal(err)
	}
	r := &receipt.ToolV2{ReceiptID: p.newID("tool_"), ToolName: name, ArgsHash: ac.Root, ResultHash: rc.Root, ResultStatus: status,
		AgentDID: p.agent, Timestamp: envelope.FormatTime(time.Now()), ArgsSalt: ac.Salt, ResultSalt: rc.Salt}
	if r.ArgsDisclosure, err = ac.Disclose(ac.Paths()...); err != nil {
		p.t.Fatal(err)
	}
	if status != receipt.StatusSuccess || disclose {
		if r.ResultDisclosure, err = rc.Disclose(rc.Paths()...); err != nil {
			p.t.Fatal(err)
		}
	}
	return r
}

func mustValue(t *testing.T, v any) canon.Value {
	t.Helper()
	out, err := canon.ValueOf(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// toolCall records a tool_call event with its receipt; a write that
// succeeded adds a side-effect record anchored to the segment's first
// model call (when there is one), as recordCall does.
func (p *producer) toolCall(name string, write, denied bool) {
	p.t.Helper()
	args := mustValue(p.t, map[string]any{"namespace": "sb-orders", "entity": "orders-staging", "n": p.seq})
	result := mustValue(p.t, map[string]any{"sequence_number": p.seq})
	status := receipt.StatusSuccess
	if denied {
		result = mustValue(p.t, map[string]any{"outcome": "denied", "code": "POLICY_DENIED", "statements": []string{"DenyOrdersProd"}})
		status, write = receipt.StatusError, false
	}
	r := p.toolReceipt(name, args, result, status, false)
	seID := ""
	if write {
		seID = p.newID("se_")
		p.expect(seID, p.segOf())
	}
	ev := map[string]any{"tool": name, "action": "servicebus:send", "resource": "sb://sb-orders/orders-staging", "receipt_id": r.ReceiptID, "result_status": status}
	_, err := p.chain.Record(context.Background(), p.jobID, "tool_call", ev, func(a *evidence.Appended) ([]evidence.Item, string, error) {
		rr := *r
		rr.Binding = &receipt.Binding{RunID: a.Event.RunID, EventHash: a.Event.EventHash, PolicyHash: p.policy, TokenScopeHash: p.scope}
		env, err := rr.Sign(p.tool, time.Now())
		if err != nil {
			return nil, "", err
		}
		raw, err := env.JSON()
		if err != nil {
			return nil, "", err
		}
		items := []evidence.Item{{Kind: evidence.KindToolReceipt, ItemID: rr.ReceiptID, JSON: raw}}
		if write {
			se := receipt.SideEffect{Version: "1", ReceiptID: seID, EffectClass: "external_api_write",
				TargetDigest: b64u.SHA256([]byte("sb://sb-orders/orders-staging")), RequestDigest: rr.ArgsHash, ResponseDigest: rr.ResultHash,
				HashAlgorithm: envelope.HashSHA256, AgentDID: p.agent, Timestamp: envelope.FormatTime(time.Now()),
				Binding: &receipt.Binding{RunID: a.Event.RunID, EventHash: a.Event.EventHash, ParentSpanID: a.Anchor}}
			seRaw, err := canon.Marshal(se)
			if err != nil {
				return nil, "", err
			}
			items = append(items, evidence.Item{Kind: evidence.KindSideEffect, ItemID: seID, JSON: seRaw})
		}
		return items, "", nil
	})
	if err != nil {
		p.t.Fatalf("tool call: %v", err)
	}
	p.seq++
}

// requestApproval records an approval_requested event, as the tool
// gateway does when a call needs a human.
func (p *producer) requestApproval() {
	p.t.Helper()
	id := p.newID("apv_")
	args := mustValue(p.t, map[string]any{"namespace": "sb-orders", "entity": "orders-staging", "dlq": true})
	ev, err := p.chain.AppendEvent(context.Background(), p.jobID, "approval_requested", map[string]any{"approval_id": id, "tool": "servicebus_deadletter_read"})
	if err != nil {
		p.t.Fatalf("approval request: %v", err)
	}
	p.pending = append(p.pending, pendingApproval{id: id, event: ev, args: args})
	p.seq++
}

// decide records a pending approval's outcome: a signed decision (the
// approver's co-signed tool receipt, bound to the request's event) or a
// timeout, each with its human-approval record.
func (p *producer) decide(r *rand.Rand) {
	p.t.Helper()
	i := r.IntN(len(p.pending))
	a := p.pending[i]
	p.pending = slices.Delete(p.pending, i, i+1)
	kind := []string{"explicit_approve", "explicit_deny", "timeout_deny"}[r.IntN(3)]
	var rcpt *evidence.Item
	eventType := "approval_decided"
	argsHash := ""
	if kind == "timeout_deny" {
		eventType = "approval_expired"
	} else {
		dec, status := "allow", receipt.StatusSuccess
		if kind == "explicit_deny" {
			dec, status = "deny", receipt.StatusError
		}
		tr := p.toolReceipt("servicebus_deadletter_read", a.args, mustValue(p.t, map[string]any{"approval_id": a.id, "decision": dec}), status, true)
		tr.Version, tr.HashAlgorithm = "2", envelope.HashSHA256
		tr.Binding = &receipt.Binding{RunID: evidence.RunID(p.jobID, a.event.Segment), EventHash: a.event.EventHash, Nonce: a.id,
			PolicyHash: p.policy, TokenScopeHash: p.scope}
		val := mustValue(p.t, tr)
		env, err := envelope.Sign(p.tool, envelope.TypeTool, &val, envelope.Options{Version: envelope.Version2, IssuedAt: time.Now()})
		if err != nil {
			p.t.Fatal(err)
		}
		sig, err := p.approver.Sign([]byte(envelope.PayloadHash(&val, false)))
		if err != nil {
			p.t.Fatal(err)
		}
		env.CoSignatures = append(env.CoSignatures, envelope.CoSignature{Signature: b64u.Encode(sig), Algorithm: envelope.AlgEd25519,
			SignerDID: p.approver.DID(), IssuedAt: envelope.FormatTime(time.Now()), Role: "approver"})
		raw, err := env.JSON()
		if err != nil {
			p.t.Fatal(err)
		}
		ev := a.event
		rcpt = &evidence.Item{Kind: evidence.KindToolReceipt, ItemID: tr.ReceiptID, JSON: raw, BoundTo: &ev}
		argsHash = tr.ArgsHash
	}
	haID := p.newID("ha_")
	p.expect(haID, p.segOf())
	minted := kind == "explicit_approve"
	_, err := p.chain.Record(context.Background(), p.jobID, eventType, map[string]any{"approval_id": a.id, "decision": kind},
		func(ap *evidence.Appended) ([]evidence.Item, string, error) {
			ha := receipt.HumanApproval{Version: "1", ReceiptID: haID, ApprovalType: kind, ScopeHash: argsHash, ApproverSubject: p.approver.DID(),
				CapabilityMinted: &minted, PolicyHash: p.policy, HashAlgorithm: envelope.HashSHA256, AgentDID: p.agent,
				Timestamp: envelope.FormatTime(time.Now()), Binding: &receipt.Binding{RunID: ap.Event.RunID, EventHash: ap.Event.EventHash, ParentSpanID: ap.Anchor}}
			raw, err := canon.Marshal(ha)
			if err != nil {
				return nil, "", err
			}
			items := []evidence.Item{{Kind: evidence.KindHumanApproval, ItemID: haID, JSON: raw}}
			if rcpt != nil {
				items = append(items, *rcpt)
			}
			return items, "", nil
		})
	if err != nil {
		p.t.Fatalf("decision: %v", err)
	}
	p.seq++
}

// agentEvent is a runtime event the agent posts through the job API.
func (p *producer) agentEvent(r *rand.Rand) {
	p.t.Helper()
	if _, err := p.chain.AppendEvent(context.Background(), p.jobID, "runtime_decision", map[string]any{"step": p.seq, "choice": r.IntN(5)}); err != nil {
		p.t.Fatalf("agent event: %v", err)
	}
	p.seq++
}

// history is one random job.
type history struct {
	seed    uint64
	events  int
	segSize int
	// writesFirst writes this many times before anything else (no model
	// call to anchor them to).
	writesFirst int
	budget      *store.Budget
}

// newProducer starts a job on h's node for a custodial agent.
func newProducer(t *testing.T, h *harness, model, tool *signer.Key, segSize int, budget *store.Budget) *producer {
	t.Helper()
	ctx := context.Background()
	hash := h.publish("servicebus-send-only.wpc.json")
	agent, err := h.node.Jobs.CreateAgent(ctx, "prop")
	if err != nil {
		t.Fatal(err)
	}
	st, err := h.node.Jobs.Start(ctx, jobs.StartRequest{AgentDID: agent.DID, PolicyHash: hash, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	approver, _ := signer.Generate()
	return &producer{t: t, chain: h.node.Jobs, model: model, tool: tool, approver: approver, jobID: st.Job.ID, agent: agent.DID,
		policy: hash, scope: st.Job.ScopeHash, commit: []byte("commitment-secret-for-tests-0001"), segSize: segSize,
		anchored: map[int]bool{}, want: map[string]bool{}}
}

// run makes the history's events.
func (p *producer) run(hs history) {
	r := rand.New(rand.NewPCG(hs.seed, hs.seed^0x5eed))
	for i := 0; i < hs.writesFirst; i++ {
		p.toolCall("servicebus_send", true, false)
	}
	if hs.writesFirst > 0 && p.seq < hs.events {
		p.modelCall(r) // the first model call comes after the writes
	}
	for p.seq < hs.events {
		switch k := r.IntN(100); {
		case k < 15:
			p.modelCall(r)
		case k < 30:
			p.toolCall("keyvault_get_secret", false, false)
		case k < 55:
			p.toolCall("servicebus_send", true, false)
		case k < 62:
			p.toolCall("servicebus_send", false, true)
		case k < 72:
			p.requestApproval()
		case k < 85 && len(p.pending) > 0:
			p.decide(r)
		default:
			p.agentEvent(r)
		}
	}
}

// checkFinished verifies every bundle of a finish in strict mode and that
// every stored side-effect and approval record is in its bundle's list or
// beside it, counted and committed to by its clawea_unanchored entry.
func checkFinished(t *testing.T, h *harness, jobID string, bs []jobs.FinishedBundle, trust verify.Config, want map[string]bool) {
	t.Helper()
	opt := verify.Options{Strict: true, Config: trust, Now: time.Now().Add(time.Minute)}
	items, err := h.node.Store.ListItems(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int]map[string]bool{} // segment -> record ids
	for _, it := range items {
		if it.Kind == evidence.KindSideEffect || it.Kind == evidence.KindHumanApproval {
			if stored[it.Segment] == nil {
				stored[it.Segment] = map[string]bool{}
			}
			stored[it.Segment][it.ItemID] = true
		}
	}
	members := 0
	seen := map[string]bool{}
	for _, b := range bs {
		if b.Kind == "aggregate_bundle" {
			if res := verify.Check(b.Envelope, verify.KindAggregateBundle, opt); res.Status != verify.StatusPass {
				t.Fatalf("aggregate: %s %s", res.ReasonCode, res.Reason)
			}
			continue
		}
		members++
		o := opt
		o.URM = b.URM
		if res := verify.Check(b.Envelope, verify.KindProofBundle, o); res.Status != verify.StatusPass {
			t.Fatalf("bundle %d: %s %s", b.Part, res.ReasonCode, res.Reason)
		}
		var env struct {
			Payload struct {
				SideEffects    []receipt.SideEffect    `json:"side_effect_receipts"`
				HumanApprovals []receipt.HumanApproval `json:"human_approval_receipts"`
				Metadata       struct {
					Labels     map[string]json.RawMessage `json:"clawea_labels"`
					Unanchored *bundle.Unanchored         `json:"clawea_unanchored"`
				} `json:"metadata"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(b.Envelope, &env); err != nil {
			t.Fatal(err)
		}
		if _, ok := env.Payload.Metadata.Labels["unanchored_records"]; ok {
			t.Errorf("bundle %d still carries records in its labels", b.Part)
		}
		in := map[string]bool{}
		for _, se := range env.Payload.SideEffects {
			in[se.ReceiptID] = true
		}
		for _, ha := range env.Payload.HumanApprovals {
			in[ha.ReceiptID] = true
		}
		var beside [][]byte
		for _, raw := range b.UnanchoredRecords {
			var rec struct {
				ID string `json:"receipt_id"`
			}
			json.Unmarshal(raw, &rec)
			if in[rec.ID] {
				t.Errorf("bundle %d: %s is both listed and beside", b.Part, rec.ID)
			}
			in[rec.ID] = true
			beside = append(beside, raw)
			if want != nil && want[rec.ID] {
				t.Errorf("bundle %d: %s should be anchored, it is beside", b.Part, rec.ID)
			}
		}
		for id := range in {
			if !stored[b.Part][id] {
				t.Errorf("bundle %d names record %s that is not stored in its segment", b.Part, id)
			}
			seen[id] = true
		}
		if len(in) != len(stored[b.Part]) {
			t.Errorf("bundle %d accounts for %d records, its segment stores %d", b.Part, len(in), len(stored[b.Part]))
		}
		// The verifier's check of the records beside a bundle agrees.
		if v, r := verify.CheckUnanchored(b.Envelope, append([][]byte{}, beside...)); r != nil || !v.Checked || v.Declared != len(beside) {
			t.Errorf("bundle %d: verify.CheckUnanchored %+v %+v", b.Part, v, r)
		}
		u := env.Payload.Metadata.Unanchored
		switch {
		case len(beside) == 0 && u != nil:
			t.Errorf("bundle %d declares %d unanchored records and none travel beside it", b.Part, u.Count)
		case len(beside) > 0 && u == nil:
			t.Errorf("bundle %d has %d records beside it and no clawea_unanchored", b.Part, len(beside))
		case u != nil:
			root, err := jobs.UnanchoredRoot(beside)
			if err != nil || u.Count != len(beside) || u.Root != root || u.Version != "1" {
				t.Errorf("bundle %d: clawea_unanchored %+v, records give %d %s %v", b.Part, u, len(beside), root, err)
			}
		}
	}
	if members > 1 && bs[0].Kind != "aggregate_bundle" {
		t.Errorf("%d members and no aggregate first", members)
	}
	for id, anchored := range want {
		if !seen[id] {
			t.Errorf("record %s is in no bundle and beside none", id)
		}
		_ = anchored
	}
	// The export answer carries the same records beside the same bundles.
	x, err := h.node.Jobs.Export(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	byPart := map[int]int{}
	for _, b := range bs {
		byPart[b.Part] = len(b.UnanchoredRecords)
	}
	for _, b := range x.Bundles {
		if byPart[b.Part] != len(b.UnanchoredRecords) {
			t.Errorf("export bundle %d: %d records beside, finish gave %d", b.Part, len(b.UnanchoredRecords), byPart[b.Part])
		}
	}
}

// gatewayKeys makes the model and tool gateway keys of the producer and a
// trust config naming the model gateway.
func gatewayKeys(t *testing.T) (*signer.Key, *signer.Key, verify.Config) {
	model, err := signer.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tool, err := signer.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return model, tool, verify.Config{GatewayReceiptSigners: []string{model.DID()}}
}

// TestFinishRandomHistories is the property: whatever a job did, in any
// number and order, finishing produces bundles (and an aggregate) that
// pass strict verification, and every side-effect and approval record is
// either in its bundle or beside it, committed to by clawea_unanchored.
func TestFinishRandomHistories(t *testing.T) {
	model, tool, trust := gatewayKeys(t)
	histories := []history{
		{seed: 1, events: 31, segSize: 1000, writesFirst: 30}, // the job, in one bundle
		{seed: 2, events: 260, segSize: 1000, writesFirst: 200},
		{seed: 3, events: 400, segSize: 37},
		{seed: 4, events: 1, segSize: 1000, writesFirst: 1},
		{seed: 5, events: 900, segSize: 90, writesFirst: 120, budget: &store.Budget{MaxTokensInput: 5000, MaxTokensOutput: 1 << 40}},
		// A whole first segment of writes at the reference's cap, then
		// two more segments.
		{seed: 6, events: 3000, segSize: 1000, writesFirst: 999, budget: &store.Budget{MaxRequests: 50}},
	}
	randoms, maxEvents := 6, 1500
	if raceEnabled || testing.Short() {
		// The same shapes, smaller: a finish under the race detector is
		// about ten times slower.
		histories[4].events = 400
		histories[5] = history{seed: 6, events: 320, segSize: 160, writesFirst: 159, budget: &store.Budget{MaxRequests: 5}}
		randoms, maxEvents = 2, 300
	}
	// Further histories drawn from a fixed seed, so that a failure
	// reproduces: random lengths, segment sizes, leading writes and
	// request budgets (which concurrent calls may overrun).
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < randoms; i++ {
		histories = append(histories, history{seed: uint64(100 + i), events: 1 + r.IntN(maxEvents), segSize: 5 + r.IntN(200), writesFirst: r.IntN(60),
			budget: &store.Budget{MaxRequests: int64(r.IntN(3))}})
	}
	nodes := map[int]*harness{}
	outer := t
	for _, hs := range histories {
		t.Run(fmt.Sprintf("seed%d_events%d_seg%d", hs.seed, hs.events, hs.segSize), func(t *testing.T) {
			h := nodes[hs.segSize]
			if h == nil {
				h = startNode(outer, server.Config{SegmentEvents: hs.segSize, Trust: trust})
				nodes[hs.segSize] = h
			}
			p := newProducer(t, h, model, tool, hs.segSize, hs.budget)
			p.run(hs)
			fin, err := h.node.Jobs.Finish(context.Background(), p.jobID, nil)
			if err != nil {
				t.Fatalf("finish: %v", err)
			}
			checkFinished(t, h, p.jobID, fin.Bundles, trust, p.want)
			beside := 0
			for id, anchored := range p.want {
				if !anchored {
					beside++
				}
				_ = id
			}
			if fin.Unanchored != beside {
				t.Errorf("finish reports %d unanchored records, the history made %d", fin.Unanchored, beside)
			}
			if hs.writesFirst > 0 && fin.Unanchored < hs.writesFirst {
				t.Errorf("%d writes before any model call, %d unanchored", hs.writesFirst, fin.Unanchored)
			}
		})
	}
}

// TestFailedFinishCanBeRetried makes a finish fail its own strict check
// (a service that does not trust the model gateway that signed the job's
// receipts): the error names the check and the verifier's reason, the job
// stays finishing with nothing to export, and a finish by a service that
// trusts the gateway then succeeds.
func TestFailedFinishCanBeRetried(t *testing.T) {
	model, tool, trust := gatewayKeys(t)
	dir := keystore.Dir(t.TempDir())
	h := startNode(t, server.Config{DataDir: dir, Trust: trust})
	p := newProducer(t, h, model, tool, 1000, nil)
	p.run(history{seed: 9, events: 40, writesFirst: 30})

	custody, err := jobs.OpenCustody(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := signer.Generate()
	distrustful, err := jobs.New(h.node.Store, jobs.Options{Issuer: h.node.Issuer, Key: h.node.Jobs.Key(), Custody: custody,
		Trust: verify.Config{GatewayReceiptSigners: []string{other.DID()}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = distrustful.Finish(context.Background(), p.jobID, nil)
	var je *jobs.Error
	if !errors.As(err, &je) || je.Code != "BUNDLE_SELF_CHECK_FAILED" || !strings.Contains(je.Msg, "RECEIPT") {
		t.Fatalf("finish with the wrong trust: %v", err)
	}
	v, err := h.node.Jobs.Get(context.Background(), p.jobID)
	if err != nil || v.Status != store.JobFinishing || len(v.Bundles) != 0 {
		t.Fatalf("after the failed finish: %+v %v", v, err)
	}
	if _, err := h.node.Jobs.Export(context.Background(), p.jobID); !errors.As(err, &je) || je.Code != "BUNDLES_NOT_FOUND" {
		t.Fatalf("export of a job still finishing: %v", err)
	}
	fin, err := h.node.Jobs.Finish(context.Background(), p.jobID, nil)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if fin.Status != "finished" || fin.Unanchored != 30 {
		t.Fatalf("retry: %s, %d unanchored", fin.Status, fin.Unanchored)
	}
	checkFinished(t, h, p.jobID, fin.Bundles, trust, p.want)
	if _, err := h.node.Jobs.Finish(context.Background(), p.jobID, nil); !errors.As(err, &je) || je.Code != "JOB_FINISHED" {
		t.Fatalf("a finished job finished again: %v", err)
	}
}

// TestJobTooLongForOneAggregate: an aggregate joins at most 1,000 member
// bundles, so the event that would open a job's 1,001st segment is refused
// (JOB_TOO_LONG) rather than making a job that can never finish.
func TestJobTooLongForOneAggregate(t *testing.T) {
	h := startNode(t, server.Config{SegmentEvents: 2})
	hash := h.publish("kv-boundary.wpc.json")
	agent, err := h.node.Jobs.CreateAgent(context.Background(), "long")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := h.startJob(agent.DID, hash, noLabels)
	for i := 0; i < 2*evidence.MaxSegments; i++ {
		if _, err := h.node.Jobs.AppendEvent(context.Background(), id, "step", map[string]any{"i": i}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	var je *jobs.Error
	if _, err := h.node.Jobs.AppendEvent(context.Background(), id, "step", map[string]any{}); !errors.As(err, &je) || je.Code != "JOB_TOO_LONG" {
		t.Fatalf("event %d: %v", 2*evidence.MaxSegments+1, err)
	}
	if raceEnabled || testing.Short() {
		return // finishing 1,000 members takes a while under the race detector
	}
	fin, err := h.node.Jobs.Finish(context.Background(), id, nil)
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	if len(fin.Bundles) != evidence.MaxSegments+1 {
		t.Fatalf("%d bundles", len(fin.Bundles))
	}
	if res := verify.Check(fin.Bundles[0].Envelope, verify.KindAggregateBundle, h.trust()); res.Status != verify.StatusPass {
		t.Fatalf("aggregate: %s %s", res.ReasonCode, res.Reason)
	}
}
