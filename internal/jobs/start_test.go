package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/verify"
)

// changePolicy governs job:start: a change ticket CHG-*, at most 30
// minutes, no write scope at start.
const changePolicy = `{"policy_version":"2","policy_id":"change-gated","issuer_did":"did:web:security.example.com",
 "statements":[
  {"sid":"AllowStartWithTicket","effect":"Allow","actions":["job:start"],"resources":["job://*"],
   "conditions":{"StringLike":{"Job:Label.change_ticket":"CHG-*"},"NumericLessThan":{"Job:TTL":"1801"}}},
  {"sid":"DenyWriteAtStart","effect":"Deny","actions":["job:start"],"resources":["job://*"],
   "conditions":{"Bool":{"Job:WriteScope":"true"}}},
  {"sid":"AllowReads","effect":"Allow","actions":["keyvault:secrets.get"],"resources":["kv://**"]}]}`

func (h *harness) publishRaw(doc string) string {
	h.t.Helper()
	var out map[string]any
	if st := h.call("POST", "/v1/wpc", h.admin, map[string]json.RawMessage{"wpc": json.RawMessage(doc)}, &out); st != 201 && st != 200 {
		h.t.Fatalf("publish: %d %v", st, out)
	}
	return out["policy_hash_b64u"].(string)
}

func tokenScopes(t *testing.T, tok string) []string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := b64u.Decode(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Scope []string `json:"scope"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Scope
}

func TestJobStartUnderPolicy(t *testing.T) {
	h := startNode(t, server.Config{})
	hash := h.publishRaw(changePolicy)
	var agent map[string]any
	if st := h.call("POST", "/v1/agents", h.admin, map[string]string{"name": "ops"}, &agent); st != 201 {
		t.Fatalf("create agent: %d", st)
	}
	did := agent["did"].(string)
	start := func(body map[string]any) (int, map[string]any) {
		body["agent_did"], body["policy_hash_b64u"] = did, hash
		var out map[string]any
		st := h.call("POST", "/v1/jobs", h.admin, body, &out)
		return st, out
	}
	for name, c := range map[string]struct {
		body map[string]any
		st   int
		code string
	}{
		"no ticket":      {map[string]any{}, 403, jobs.CodeJobStartDenied},
		"wrong ticket":   {map[string]any{"labels": map[string]any{"change_ticket": "OPS-1"}}, 403, jobs.CodeJobStartDenied},
		"ttl too long":   {map[string]any{"labels": map[string]any{"change_ticket": "CHG-1"}, "ttl_sec": 3600}, 403, jobs.CodeJobStartDenied},
		"write asked":    {map[string]any{"labels": map[string]any{"change_ticket": "CHG-1"}, "write": true}, 403, jobs.CodeJobStartDenied},
		"bad label":      {map[string]any{"labels": map[string]any{"change_ticket": "CHG 1"}}, 400, policy.CodeLabelInvalid},
		"label not text": {map[string]any{"labels": map[string]any{"change_ticket": 7}}, 400, policy.CodeLabelInvalid},
		"reserved label": {map[string]any{"labels": map[string]any{"change_ticket": "CHG-1", "budget_overrun": "x"}}, 400, policy.CodeLabelInvalid},
		"label as scope": {map[string]any{"labels": map[string]any{"change_ticket": "CHG-1"}, "scopes": []string{"tool:call", "label:change_ticket=CHG-2"}}, 400, jobs.CodeJobScopeInvalid},
	} {
		if st, out := start(c.body); st != c.st || errCode(out) != c.code {
			t.Errorf("%s: %d %v, want %d %s", name, st, out, c.st, c.code)
		}
	}
	// The denial names the statement that refused.
	if _, out := start(map[string]any{"labels": map[string]any{"change_ticket": "CHG-1"}, "write": true}); !strings.Contains(string(mustJSON(out)), "DenyWriteAtStart") {
		t.Errorf("denial without its statement: %v", out)
	}

	st, out := start(map[string]any{"labels": map[string]any{"change_ticket": "CHG-1234"}, "ttl_sec": 900})
	if st != 201 {
		t.Fatalf("start with ticket: %d %v", st, out)
	}
	tok := out["token"].(string)
	id := out["job"].(map[string]any)["id"].(string)
	scopes := tokenScopes(t, tok)
	if !slices.Contains(scopes, "label:change_ticket=CHG-1234") || slices.Contains(scopes, jobs.ScopeWrite) {
		t.Fatalf("token scopes: %v", scopes)
	}
	// The first event records the labels and the decision.
	evs, err := h.node.Store.ListEvents(context.Background(), id)
	if err != nil || len(evs) != 1 || evs[0].EventType != jobs.EventJobStarted {
		t.Fatalf("events: %v %+v", err, evs)
	}
	first := string(evs[0].Payload)
	for _, want := range []string{`"change_ticket":"CHG-1234"`, `"AllowStartWithTicket"`, `"effect":"allow"`, `"write":false`} {
		if !strings.Contains(first, want) {
			t.Errorf("job_started lacks %s: %s", want, first)
		}
	}
	// An agent cannot forge one.
	var e map[string]any
	if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": jobs.EventJobStarted}, &e); st != 403 || errCode(e) != "EVENT_TYPE_RESERVED" {
		t.Errorf("forged job_started: %d %v", st, e)
	}
	if st := h.call("POST", "/v1/jobs/"+id+"/events", tok, map[string]any{"event_type": "step"}, &e); st != 201 {
		t.Fatalf("append: %d %v", st, e)
	}
	var fin jobs.FinishResult
	if st := h.call("POST", "/v1/jobs/"+id+"/finish", tok, nil, &fin); st != 200 || len(fin.Bundles) != 1 {
		t.Fatalf("finish: %d %+v", st, fin)
	}
	b := fin.Bundles[0]
	opt := h.trust()
	opt.URM = b.URM
	if res := verify.Check(b.Envelope, verify.KindProofBundle, opt); res.Status != verify.StatusPass {
		t.Fatalf("bundle: %s %s", res.ReasonCode, res.Reason)
	}
	var env struct {
		Payload struct {
			Metadata struct {
				Labels map[string]any `json:"clawea_labels"`
			} `json:"metadata"`
		} `json:"payload"`
	}
	json.Unmarshal(b.Envelope, &env)
	if env.Payload.Metadata.Labels["change_ticket"] != "CHG-1234" {
		t.Errorf("bundle labels: %v", env.Payload.Metadata.Labels)
	}
}

// A policy without job:start statements keeps today's behaviour: any
// labels, write scope by default, no decision.
func TestJobStartNotGoverned(t *testing.T) {
	h := startNode(t, server.Config{})
	hash := h.publish("kv-boundary.wpc.json")
	var agent map[string]any
	h.call("POST", "/v1/agents", h.admin, map[string]string{"name": "ops"}, &agent)
	did := agent["did"].(string)
	for _, c := range []struct {
		write any
		want  bool
	}{{nil, true}, {true, true}, {false, false}} {
		body := map[string]any{"agent_did": did, "policy_hash_b64u": hash}
		if c.write != nil {
			body["write"] = c.write
		}
		var out map[string]any
		if st := h.call("POST", "/v1/jobs", h.admin, body, &out); st != 201 {
			t.Fatalf("start: %d %v", st, out)
		}
		if got := slices.Contains(tokenScopes(t, out["token"].(string)), jobs.ScopeWrite); got != c.want {
			t.Errorf("write %v: scope %v", c.write, got)
		}
		if n := out["job"].(map[string]any)["events"].(float64); n != 0 {
			t.Errorf("write %v: %v events, want none (no labels, not governed)", c.write, n)
		}
	}
}

func mustJSON(v any) []byte {
	raw, _ := json.Marshal(v)
	return raw
}

// Without the registry's policy source the service compiles the stored
// policy itself, parents included (inherits resolved from the store).
func TestJobStartWithoutPolicySource(t *testing.T) {
	dir := keystore.Dir(t.TempDir())
	h := startNode(t, server.Config{DataDir: dir})
	h.publishRaw(strings.Replace(changePolicy, `"change-gated"`, `"change-gated-parent"`, 1))
	child := h.publishRaw(`{"policy_version":"2","policy_id":"child","issuer_did":"did:web:security.example.com","inherits":"change-gated-parent",
	 "statements":[{"sid":"AllowAll","effect":"Allow","actions":["job:start","keyvault:secrets.get"],"resources":["**"]}]}`)
	custody, err := jobs.OpenCustody(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := jobs.New(h.node.Store, jobs.Options{Issuer: h.node.Issuer, Key: h.node.Jobs.Key(), Custody: custody,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	agent, _ := signer.Generate()
	ctx := context.Background()
	_, err = svc.Start(ctx, jobs.StartRequest{AgentDID: agent.DID(), PolicyHash: child, Labels: map[string]any{"change_ticket": "OPS-1"}})
	var je *jobs.Error
	if !errors.As(err, &je) || je.Code != jobs.CodeJobStartDenied || !strings.Contains(je.Msg, "parent policy") {
		t.Fatalf("the parent's rule: %v", err)
	}
	if _, err := svc.Start(ctx, jobs.StartRequest{AgentDID: agent.DID(), PolicyHash: child, Labels: map[string]any{"change_ticket": "CHG-1"}}); err != nil {
		t.Fatalf("allowed start: %v", err)
	}
}
