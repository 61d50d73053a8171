package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/store/sqlite"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

var lifeNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type lifeRig struct {
	ts  *httptest.Server
	st  store.Store
	op  *signer.Key
	got []store.PolicyChange // what OnChange saw
}

func newLifeRig(t *testing.T) *lifeRig {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, _ := signer.FromSeed(testkit.Seed(42))
	op, _ := signer.FromSeed(testkit.Seed(7))
	rig := &lifeRig{st: db, op: op}
	srv := &Server{Store: db, Signer: key, Authorize: AdminToken(token), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return lifeNow },
		Lifecycle: &Lifecycle{Store: db, Operators: []string{op.DID()}, RequireApproval: true,
			OnChange: func(_ context.Context, c store.PolicyChange) (int, error) {
				rig.got = append(rig.got, c)
				return 0, nil
			}}}
	mux := http.NewServeMux()
	srv.Register(mux)
	rig.ts = httptest.NewServer(mux)
	t.Cleanup(rig.ts.Close)
	return rig
}

func (r *lifeRig) publish(t *testing.T, name string) string {
	c, _ := NewClient(r.ts.URL, ClientOptions{AllowAnySigner: true})
	res, err := c.Publish(context.Background(), example(t, name), token)
	if err != nil {
		t.Fatal(err)
	}
	return res.PolicyHash
}

func (r *lifeRig) post(t *testing.T, body any) (int, string, []byte) {
	raw, _ := json.Marshal(body)
	resp, err := http.Post(r.ts.URL+"/v1/policy-lifecycle", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(out, &e)
	return resp.StatusCode, e.Error.Code, out
}

func (r *lifeRig) sign(t *testing.T, k *signer.Key, st Statement, at time.Time) SignedStatement {
	s, err := SignStatement(k, st, at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLifecycleStatements(t *testing.T) {
	r := newLifeRig(t)
	h1, h2 := r.publish(t, "kv-boundary.wpc.json"), r.publish(t, "demo-job.wpc.json")
	unknown := strings.Repeat("Q", 43)
	stranger, _ := signer.FromSeed(testkit.Seed(8))
	good := r.sign(t, r.op, Statement{Action: store.PolicyApprove, PolicyHash: h1, Reason: "CAB-1"}, lifeNow)
	tampered := good
	tampered.Statement = bytes.Replace(good.Statement, []byte("CAB-1"), []byte("CAB-2"), 1)
	extra := good
	extra.Statement = append(bytes.TrimSuffix(bytes.Clone(good.Statement), []byte("}")), []byte(`,"x":1}`)...)
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"not json", "nope", 400, CodeInvalidJSON},
		{"no signature", SignedStatement{Statement: good.Statement}, 400, CodeStatementInvalid},
		{"tampered", tampered, 401, CodeSignatureInvalid},
		{"unknown field", extra, 400, CodeStatementInvalid},
		{"bad signature encoding", SignedStatement{Statement: good.Statement, Signature: "!!"}, 401, CodeSignatureInvalid},
		{"stranger", r.sign(t, stranger, Statement{Action: store.PolicyApprove, PolicyHash: h1}, lifeNow), 403, CodeOperatorNotAllow},
		{"stale", r.sign(t, r.op, Statement{Action: store.PolicyApprove, PolicyHash: h1}, lifeNow.Add(-10*time.Minute)), 400, CodeStatementExpired},
		{"future", r.sign(t, r.op, Statement{Action: store.PolicyApprove, PolicyHash: h1}, lifeNow.Add(10*time.Minute)), 400, CodeStatementExpired},
		{"bad action", r.sign(t, r.op, Statement{Action: "delete", PolicyHash: h1}, lifeNow), 400, CodeStatementInvalid},
		{"bad hash", r.sign(t, r.op, Statement{Action: store.PolicyApprove, PolicyHash: "abc"}, lifeNow), 400, CodeStatementInvalid},
		{"unpublished", r.sign(t, r.op, Statement{Action: store.PolicyApprove, PolicyHash: unknown}, lifeNow), 404, CodeWPCNotFound},
		{"freeze without hashes", r.sign(t, r.op, Statement{Action: store.PolicyFreeze}, lifeNow), 400, CodeStatementInvalid},
		{"freeze repeats", r.sign(t, r.op, Statement{Action: store.PolicyFreeze, Hashes: []string{h1, h1}}, lifeNow), 400, CodeStatementInvalid},
		{"unfreeze with hash", r.sign(t, r.op, Statement{Action: store.PolicyUnfreeze, PolicyHash: h1}, lifeNow), 400, CodeStatementInvalid},
		{"supersede on approve", r.sign(t, r.op, Statement{Action: store.PolicyApprove, PolicyHash: h1, SupersededBy: h2}, lifeNow), 400, CodeStatementInvalid},
		{"approve", good, 201, ""},
		{"replayed", good, 409, CodeStatementReplayed},
		{"retire superseded", r.sign(t, r.op, Statement{Action: store.PolicyRetire, PolicyHash: h1, SupersededBy: h2}, lifeNow), 201, ""},
		{"retire again", r.sign(t, r.op, Statement{Action: store.PolicyRetire, PolicyHash: h1}, lifeNow), 409, CodePolicyRetired},
		{"approve retired", r.sign(t, r.op, Statement{Action: store.PolicyApprove, PolicyHash: h1}, lifeNow), 409, CodePolicyRetired},
		{"freeze retired", r.sign(t, r.op, Statement{Action: store.PolicyFreeze, Hashes: []string{h1}}, lifeNow), 409, CodePolicyRetired},
		{"freeze", r.sign(t, r.op, Statement{Action: store.PolicyFreeze, Hashes: []string{h2}}, lifeNow), 201, ""},
	}
	for _, c := range cases {
		status, code, raw := r.post(t, c.body)
		if status != c.status || code != c.code {
			t.Errorf("%s: %d %s, want %d %s: %s", c.name, status, code, c.status, c.code, raw)
		}
	}
	if len(r.got) != 3 || r.got[0].Action != store.PolicyApprove || r.got[1].Action != store.PolicySupersede || r.got[1].Hashes[0] != h2 ||
		r.got[2].Action != store.PolicyFreeze || r.got[0].Actor != r.op.DID() || r.got[0].Reason != "CAB-1" {
		t.Fatalf("OnChange saw %+v", r.got)
	}
	// The stored statement is the signed bytes: its signature verifies.
	var sv StatusView
	// Reading the log takes the admin credential (its statements could be
	// replayed at another deployment trusting the same operator key).
	if resp, _ := http.Get(r.ts.URL + "/v1/policy-lifecycle/" + h1); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("lifecycle status without a credential: %d", resp.StatusCode)
	}
	if resp, _ := http.Get(r.ts.URL + "/v1/policy-lifecycle"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("lifecycle log without a credential: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", r.ts.URL+"/v1/policy-lifecycle/"+h1, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, _ := http.DefaultClient.Do(req)
	json.NewDecoder(resp.Body).Decode(&sv)
	resp.Body.Close()
	if sv.Status != store.PolicyRetired || sv.SupersededBy != h2 || sv.CanStartJobs || sv.Approval == nil || len(sv.Changes) != 2 || !sv.Published {
		t.Fatalf("status: %+v", sv)
	}
	if _, _, _, e := ParseSignedStatement(mustJSON(SignedStatement{Statement: sv.Approval.Statement, Signature: sv.Approval.Signature})); e != nil {
		t.Errorf("the exported approval does not verify: %v", e)
	}
	get := func(path string) *http.Response {
		req, _ := http.NewRequest("GET", r.ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	sv = StatusView{}
	resp = get("/v1/policy-lifecycle/" + h2)
	json.NewDecoder(resp.Body).Decode(&sv)
	resp.Body.Close()
	if sv.Status != store.PolicyPublished || sv.CanStartJobs || !sv.Freeze.On { // not approved, approval required
		t.Errorf("h2: %+v", sv)
	}
	var log struct {
		Changes []ChangeView `json:"changes"`
		Next    int64        `json:"next_after"`
	}
	resp = get("/v1/policy-lifecycle?limit=2")
	json.NewDecoder(resp.Body).Decode(&log)
	resp.Body.Close()
	if len(log.Changes) != 2 || log.Next != log.Changes[1].Seq {
		t.Errorf("log page: %+v", log)
	}
}

func TestPublishSupersedes(t *testing.T) {
	r := newLifeRig(t)
	old := r.publish(t, "kv-boundary.wpc.json")
	c, _ := NewClient(r.ts.URL, ClientOptions{AllowAnySigner: true})
	if _, err := c.PublishSuperseding(context.Background(), example(t, "demo-job.wpc.json"), token, strings.Repeat("Q", 43)); ErrCode(err) != CodeWPCNotFound {
		t.Errorf("superseding an unknown hash: %v", err)
	}
	res, err := c.PublishSuperseding(context.Background(), example(t, "demo-job.wpc.json"), token, old)
	if err != nil || res.Status != http.StatusCreated || len(res.Lifecycle) == 0 {
		t.Fatalf("publish superseding: %+v %v", res, err)
	}
	if len(r.got) != 1 || r.got[0].Action != store.PolicySupersede || r.got[0].PolicyHash != old || r.got[0].Hashes[0] != res.PolicyHash || r.got[0].Actor != "admin-token" {
		t.Fatalf("change: %+v", r.got)
	}
	again, err := c.PublishSuperseding(context.Background(), example(t, "demo-job.wpc.json"), token, old)
	if err != nil || !again.Existed || len(r.got) != 1 || !strings.Contains(string(again.Lifecycle), `"retired"`) {
		t.Errorf("repeated publish superseding: %+v %v, %d changes", again, err, len(r.got))
	}
	if _, err := c.PublishSuperseding(context.Background(), example(t, "demo-job.wpc.json"), token, res.PolicyHash); ErrCode(err) != CodeInvalidRequest {
		t.Errorf("superseding itself: %v", err)
	}
}

func TestRecordInJobs(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h1, h2 := strings.Repeat("A", 43), strings.Repeat("B", 43)
	for _, j := range []store.Job{{ID: "j1", PolicyHash: h1}, {ID: "j2", PolicyHash: h2}, {ID: "j3", PolicyHash: h1}, {ID: "j4", PolicyHash: h1, Status: store.JobFinished}} {
		if j.Status == "" {
			j.Status = store.JobOpen
		}
		j.AgentDID, j.ScopeHash, j.TokenHash, j.Labels, j.Budget = "did:key:zA", "s", "t-"+j.ID, []byte("{}"), []byte("{}")
		j.CreatedAt, j.ExpiresAt = lifeNow, lifeNow.Add(time.Hour)
		if err := db.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	chain := evidence.NewChain(db, nil, 0, nil)
	events := func(id string) []store.JobEvent {
		evs, err := db.ListEvents(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	n, err := RecordInJobs(ctx, db, chain, store.PolicyChange{Seq: 4, Action: store.PolicyRetire, PolicyHash: h1, Actor: "did:key:zOp",
		Statement: []byte(`{"a":1}`), Signature: "sig", Reason: "too wide", At: lifeNow})
	if err != nil || n != 2 {
		t.Fatalf("retire: %d %v", n, err)
	}
	ev := events("j1")
	if len(ev) != 1 || ev[0].EventType != EventPolicyRetired || len(events("j3")) != 1 || len(events("j2")) != 0 || len(events("j4")) != 0 {
		t.Fatalf("retire events: j1 %v", ev)
	}
	var p ChangeEvent
	if err := json.Unmarshal(ev[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Actor != "did:key:zOp" || p.ChangeSeq != 4 || p.Statement != b64u.SHA256([]byte(`{"a":1}`)) || p.PolicyHash != h1 || p.Reason != "too wide" || p.Signature != "sig" {
		t.Errorf("payload: %+v", p)
	}
	n, _ = RecordInJobs(ctx, db, chain, store.PolicyChange{Action: store.PolicyFreeze, Hashes: []string{h1}, Actor: "x", At: lifeNow})
	if ev := events("j2"); n != 1 || len(ev) != 1 || ev[0].EventType != EventPolicyFrozen {
		t.Errorf("freeze: %d %v", n, ev)
	}
	if n, _ := RecordInJobs(ctx, db, chain, store.PolicyChange{Action: store.PolicyApprove, PolicyHash: h1}); n != 0 || len(events("j1")) != 1 {
		t.Errorf("approve touched %d jobs", n)
	}
}

func mustJSON(v any) []byte {
	raw, _ := json.Marshal(v)
	return raw
}

// FuzzParseSignedStatement: the statement parser never panics, and what
// it accepts is well formed and verifies.
func FuzzParseSignedStatement(f *testing.F) {
	op, _ := signer.FromSeed(testkit.Seed(7))
	for _, st := range []Statement{
		{Action: store.PolicyApprove, PolicyHash: strings.Repeat("A", 43)},
		{Action: store.PolicyFreeze, Hashes: []string{strings.Repeat("A", 43), strings.Repeat("B", 43)}},
		{Action: store.PolicyUnfreeze, Reason: "x"},
		{Action: store.PolicyRetire, PolicyHash: strings.Repeat("A", 43), SupersededBy: strings.Repeat("C", 43)},
	} {
		s, _ := SignStatement(op, st, lifeNow)
		f.Add(mustJSON(s))
	}
	f.Add([]byte(`{"statement":{},"signature_b64u":""}`))
	f.Add([]byte(`{"statement":[1,2],"signature_b64u":"AA"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		st, signed, sig, e := ParseSignedStatement(body)
		if e != nil {
			if e.Code == "" || e.Status < 400 {
				t.Fatalf("error without code or status: %+v", e)
			}
			return
		}
		if st.check() != nil || len(signed) == 0 || sig == "" {
			t.Fatalf("accepted an ill-formed statement: %+v", st)
		}
	})
}
