package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/cli"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/verify"
)

// gwNode is a node with the real model gateway (the local test model
// upstream) and tool gateway (a local Service Bus namespace).
type gwNode struct {
	*harness
	approver *signer.Key
	policy   string
	asks     int // approvals asked for (each for different arguments)
}

func startGateways(t *testing.T, segEvents int, approvalTTL time.Duration) *gwNode {
	t.Helper()
	up := localmodel.New(localmodel.Options{})
	base, err := up.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	approver, _ := signer.Generate()
	h := startNode(t, server.Config{SegmentEvents: segEvents,
		ModelGateway: modelgw.Options{Providers: []modelgw.Provider{{Name: "local", BaseURL: base}}},
		ToolGateway:  toolgw.Options{Approvers: []string{approver.DID()}, ApprovalTTL: approvalTTL},
		LocalBuses:   []string{"sb-orders"}})
	// The Service Bus example policy (200 sends a job), with model calls
	// to the local model allowed.
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", "servicebus-send-only.wpc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["policy_id"] = "servicebus-orders-send-only-with-models"
	doc["statements"] = append(doc["statements"].([]any), map[string]any{"sid": "AllowLocalModel", "effect": "Allow",
		"actions": []string{"model:invoke"}, "resources": []string{"model://local/" + localmodel.ModelName}})
	wpc, _ := json.Marshal(doc)
	var out map[string]any
	if st := h.call("POST", "/v1/wpc", h.admin, map[string]json.RawMessage{"wpc": wpc}, &out); st != 201 && st != 200 {
		t.Fatalf("publish: %d %v", st, out)
	}
	return &gwNode{harness: h, approver: approver, policy: out["policy_hash_b64u"].(string)}
}

// agentJob starts a job for a custodial agent and authorizes its token at
// the tool gateway.
func (g *gwNode) agentJob() (string, string, *toolgw.Job) {
	g.t.Helper()
	agent, err := g.node.Jobs.CreateAgent(context.Background(), "gw")
	if err != nil {
		g.t.Fatal(err)
	}
	id, tok := g.startJob(agent.DID, g.policy, nil)
	j, e := g.node.Tools.Authorize(context.Background(), tok)
	if e != nil {
		g.t.Fatalf("authorize: %v", e)
	}
	return id, tok, j
}

func (g *gwNode) send(j *toolgw.Job, entity string) *toolgw.Error {
	g.t.Helper()
	args, _ := json.Marshal(map[string]any{"namespace": "sb-orders", "entity": entity, "body": `{"order":1}`,
		"application_properties": map[string]any{"schema_version": "2", "correlation_id": "c-1"}})
	_, e := g.node.Tools.Call(context.Background(), j, "servicebus_send", args)
	return e
}

// modelCall calls the local model through the model gateway with the
// job's token, as an OpenAI client does.
func (g *gwNode) modelCall(tok string) {
	g.t.Helper()
	body, _ := json.Marshal(map[string]any{"model": localmodel.ModelName, "messages": []map[string]string{{"role": "user", "content": "count these words"}}})
	req, _ := http.NewRequest("POST", g.url+"/v1/proxy/local/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		g.t.Fatalf("model call: %d %s", resp.StatusCode, raw)
	}
}

// requestAndDecide asks for a dead-letter read (it needs a human), and
// has the approver allow or deny it, or lets it expire.
func (g *gwNode) requestAndDecide(j *toolgw.Job, how string) {
	g.t.Helper()
	ctx := context.Background()
	g.asks++
	args := []byte(fmt.Sprintf(`{"namespace":"sb-orders","entity":"orders-staging","max":%d}`, g.asks))
	_, e := g.node.Tools.Call(ctx, j, "servicebus_deadletter_read", args)
	if e == nil || e.ApprovalID == "" {
		g.t.Fatalf("dead-letter read without approval: %v", e)
	}
	switch how {
	case "expire":
		a, err := g.node.Store.GetApproval(ctx, e.ApprovalID)
		if err != nil {
			g.t.Fatal(err)
		}
		time.Sleep(time.Until(a.ExpiresAt) + 10*time.Millisecond)
		g.node.Tools.Sweep(ctx)
	default:
		a, err := g.node.Store.GetApproval(ctx, e.ApprovalID)
		if err != nil {
			g.t.Fatal(err)
		}
		sig, err := toolgw.SignDecision(g.approver, toolgw.View(a), how, time.Now())
		if err != nil {
			g.t.Fatal(err)
		}
		if _, de := g.node.Tools.Decide(ctx, e.ApprovalID, how, sig, ""); de != nil {
			g.t.Fatalf("decide: %v", de)
		}
		if how == toolgw.DecisionAllow {
			if _, e := g.node.Tools.Call(ctx, j, "servicebus_deadletter_read", args); e != nil {
				g.t.Fatalf("allowed dead-letter read: %v", e)
			}
		}
	}
}

// expectedAnchoring derives, from the job's stored events alone, which
// side-effect and approval records a model call anchors: those whose
// event comes after the first llm_call of its segment.
func expectedAnchoring(t *testing.T, h *harness, jobID string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	evs, err := h.node.Store.ListEvents(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	firstModel := map[int]int{} // segment -> index of its first llm_call
	index := map[string][2]int{}
	for _, ev := range evs {
		if _, ok := firstModel[ev.Segment]; !ok && ev.EventType == "llm_call" {
			firstModel[ev.Segment] = ev.Index
		}
		index[ev.EventHash] = [2]int{ev.Segment, ev.Index}
	}
	items, err := h.node.Store.ListItems(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, it := range items {
		if it.Kind != evidence.KindSideEffect && it.Kind != evidence.KindHumanApproval {
			continue
		}
		at, ok := index[it.EventHash]
		if !ok {
			t.Fatalf("%s %s names no stored event", it.Kind, it.ItemID)
		}
		first, ok := firstModel[at[0]]
		want[it.ItemID] = ok && first < at[1]
	}
	return want
}

func countBeside(want map[string]bool) int {
	n := 0
	for _, anchored := range want {
		if !anchored {
			n++
		}
	}
	return n
}

// TestFinishAfterSendsBeforeModelCall is the job, through the real
// gateways: 30 (and 200, the example policy's allowance) Service Bus sends
// before the job's first model call, then the model call, then finish. The
// job finishes, the bundle passes strict verification, and the sends'
// side-effect records travel beside it, committed to by its metadata.
func TestFinishAfterSendsBeforeModelCall(t *testing.T) {
	g := startGateways(t, 0, time.Minute)
	trust := verify.Config{GatewayReceiptSigners: []string{g.node.Models.DID()}}
	for _, sends := range []int{30, 200} {
		t.Run(fmt.Sprintf("%d_sends", sends), func(t *testing.T) {
			id, tok, j := g.agentJob()
			for i := 0; i < sends; i++ {
				if e := g.send(j, "orders-staging"); e != nil {
					t.Fatalf("send %d: %v", i, e)
				}
			}
			g.modelCall(tok)
			if sends == 200 {
				if e := g.send(j, "orders-staging"); e == nil || e.Code != toolgw.CodePolicyDenied {
					t.Fatalf("the 201st send: %v", e)
				}
			} else {
				if e := g.send(j, "orders-staging"); e != nil {
					t.Fatalf("a send after the model call: %v", e)
				}
			}
			var fin jobs.FinishResult
			if st := g.call("POST", "/v1/jobs/"+id+"/finish", g.admin, nil, &fin); st != 200 || fin.Status != "finished" {
				t.Fatalf("finish: %d %+v", st, fin)
			}
			if len(fin.Bundles) != 1 || fin.Unanchored != sends || len(fin.Bundles[0].UnanchoredRecords) != sends {
				t.Fatalf("%d bundles, %d unanchored records", len(fin.Bundles), fin.Unanchored)
			}
			want := expectedAnchoring(t, g.harness, id)
			if countBeside(want) != sends {
				t.Fatalf("the store says %d records precede the model call, want %d", countBeside(want), sends)
			}
			checkFinished(t, g.harness, id, fin.Bundles, trust, want)
			// The metadata stays small whatever the number of records.
			var env struct {
				Payload struct {
					Metadata json.RawMessage `json:"metadata"`
				} `json:"payload"`
			}
			json.Unmarshal(fin.Bundles[0].Envelope, &env)
			if len(env.Payload.Metadata) > 1024 {
				t.Errorf("metadata is %d bytes", len(env.Payload.Metadata))
			}
			// The files a verifier picks up include the records.
			dir := t.TempDir()
			written, err := jobs.WriteBundles(dir, id, fin.Bundles)
			if err != nil {
				t.Fatal(err)
			}
			var beside []json.RawMessage
			raw, err := os.ReadFile(filepath.Join(dir, id+"-unanchored.json"))
			if err != nil || json.Unmarshal(raw, &beside) != nil || len(beside) != sends {
				t.Fatalf("unanchored file: %v (%d records; wrote %v)", err, len(beside), written)
			}
			// clawea verify --strict picks the records up and checks them;
			// records removed fail it; no records at all is a warning.
			trustFile := filepath.Join(dir, "trust.json")
			tj, _ := json.Marshal(map[string]any{"config_version": "1", "allowlists": trust})
			os.WriteFile(trustFile, tj, 0o600)
			verifyCLI := func() (int, string) {
				var out, errs bytes.Buffer
				code := cli.Run([]string{"verify", "--strict", "--json", "--config", trustFile, filepath.Join(dir, id+"-bundle.json")}, nil, &out, &errs)
				return code, out.String() + errs.String()
			}
			if code, out := verifyCLI(); code != 0 || strings.Contains(out, "UNANCHORED_UNCHECKED") {
				t.Fatalf("verify with the records: %d %s", code, out)
			}
			short, _ := json.Marshal(beside[1:])
			os.WriteFile(filepath.Join(dir, id+"-unanchored.json"), short, 0o600)
			if code, out := verifyCLI(); code != 1 || !strings.Contains(out, verify.UnanchoredMismatch) {
				t.Fatalf("verify with a record removed: %d %s", code, out)
			}
			os.Remove(filepath.Join(dir, id+"-unanchored.json"))
			if code, out := verifyCLI(); code != 0 || !strings.Contains(out, "UNANCHORED_UNCHECKED") {
				t.Fatalf("verify without the records: %d %s", code, out)
			}
		})
	}
}

// TestFinishRandomGatewayHistory makes one random history with the real
// gateways: sends (writes), denied sends, model calls, approvals allowed,
// denied and expired, and the agent's own events, over small segments so
// that some have no model call at all, then finishes it.
func TestFinishRandomGatewayHistory(t *testing.T) {
	g := startGateways(t, 23, 400*time.Millisecond)
	trust := verify.Config{GatewayReceiptSigners: []string{g.node.Models.DID()}}
	id, tok, j := g.agentJob()
	r := rand.New(rand.NewPCG(42, 42))
	expired := false
	for i := 0; i < 150; i++ {
		switch k := r.IntN(100); {
		case k < 12:
			g.modelCall(tok)
		case k < 60:
			if e := g.send(j, "orders-staging"); e != nil {
				t.Fatalf("send: %v", e)
			}
		case k < 70:
			if e := g.send(j, "orders-prod"); e == nil || e.Code != toolgw.CodePolicyDenied {
				t.Fatalf("send to prod: %v", e)
			}
		case k < 78:
			how := []string{toolgw.DecisionAllow, toolgw.DecisionDeny, "expire"}[r.IntN(3)]
			if how == "expire" {
				if expired {
					how = toolgw.DecisionDeny
				}
				expired = true
			}
			g.requestAndDecide(j, how)
		default:
			if _, err := g.node.Jobs.AppendEvent(context.Background(), id, "runtime_decision", map[string]any{"i": i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var fin jobs.FinishResult
	if st := g.call("POST", "/v1/jobs/"+id+"/finish", g.admin, nil, &fin); st != 200 || fin.Status != "finished" {
		t.Fatalf("finish: %d %+v", st, fin)
	}
	want := expectedAnchoring(t, g.harness, id)
	if fin.Unanchored != countBeside(want) || fin.Unanchored == 0 || fin.Unanchored == len(want) {
		t.Fatalf("%d unanchored records of %d; the events say %d", fin.Unanchored, len(want), countBeside(want))
	}
	checkFinished(t, g.harness, id, fin.Bundles, trust, want)
}
