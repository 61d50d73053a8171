package token

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

func TestScopeHashWorkedExample(t *testing.T) {
	agent, _ := signer.FromSeed(testkit.Seed(1))
	gw, _ := signer.FromSeed(testkit.Seed(100))
	c := &Claims{TokenVersion: "1", Sub: agent.DID(), Aud: Aud("clawproxy.com"), Scope: []string{"proxy:call"},
		OwnerDID: gw.DID(), ControllerDID: gw.DID(), AgentDID: agent.DID(),
		Iat: 1, Exp: 2, JTI: "ignored", Nonce: "ignored", TokenLane: "legacy"}
	if got := c.ScopeHash(); got != "XZR8LHTwUXOZ0fuVu7HS0c5HFVZ1tNO-DW89BrdIvF4" {
		t.Fatalf("scope hash %s", got)
	}
	// Normalisation: order, spaces and duplicates of aud and scope do not count.
	c2 := *c
	c2.Aud = Aud(" clawproxy.com ", "clawproxy.com")
	c2.Scope = []string{"proxy:call", " proxy:call"}
	if c2.ScopeHash() != c.ScopeHash() {
		t.Error("normalisation changed the hash")
	}
}

// fakeState is a State for tests.
type fakeState struct {
	mu      sync.Mutex
	keys    map[string]IssuerKey
	revoked map[string]string
	jobs    map[string]JobInfo
	lookups int
}

func newFakeState(keys ...*signer.Key) *fakeState {
	s := &fakeState{keys: map[string]IssuerKey{}, revoked: map[string]string{}, jobs: map[string]JobInfo{}}
	for _, k := range keys {
		// As the server's state does, issuer keys get their table at once.
		dk := didkey.NewKey(k.Public())
		dk.Precompute()
		s.keys[signer.KID(k.Public())] = IssuerKey{Kid: signer.KID(k.Public()), Key: dk}
	}
	return s
}

func (s *fakeState) IssuerKey(kid string) (IssuerKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[kid]
	return k, ok
}
func (s *fakeState) IssuerKeys() []IssuerKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []IssuerKey
	for _, k := range s.keys {
		out = append(out, k)
	}
	return out
}
func (s *fakeState) Revoked(h string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.revoked[h]
	return r, ok
}
func (s *fakeState) Job(_ context.Context, id string) (JobInfo, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	j, ok := s.jobs[id]
	return j, ok, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func jobClaims(agent string, job string, at time.Time, ttl time.Duration) *Claims {
	c := &Claims{TokenVersion: "1", Sub: agent, Aud: Aud("clawea"), Scope: []string{"proxy:call", "tool:call"},
		Iat: at.Unix(), Exp: at.Add(ttl).Unix(), AgentDID: agent, MissionID: job,
		PolicyHash: b64u.SHA256([]byte("policy")), TokenLane: "legacy", JTI: NewID(), Nonce: NewID()}
	c.TokenScopeHash = c.ScopeHash()
	return c
}

func setup(t *testing.T) (*signer.Key, *fakeState, *clock, *Verifier, string, *Claims) {
	issuer, _ := signer.FromSeed(testkit.Seed(7))
	agent, _ := signer.FromSeed(testkit.Seed(1))
	st := newFakeState(issuer)
	clk := &clock{t0}
	c := jobClaims(agent.DID(), "job_1", t0, 10*time.Minute)
	st.jobs["job_1"] = JobInfo{ID: "job_1", ScopeHash: c.TokenScopeHash, Open: true}
	tok, err := Sign(c, issuer)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(st, Options{Audiences: []string{"clawea"}, RequireJob: true, Now: clk.now,
		ScopeOK: func(s []string) bool { return contains(s, "proxy:call") }})
	return issuer, st, clk, v, tok, c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return "OK"
	}
	return "?" + err.Error()
}

func TestVerifyHappyPathAndCache(t *testing.T) {
	_, st, _, v, tok, c := setup(t)
	ctx := context.Background()
	got, err := v.Verify(ctx, tok, Request{JobID: "job_1"})
	if err != nil || got.JobID != "job_1" || got.ScopeHash != c.TokenScopeHash || got.TokenHash != Hash(tok) {
		t.Fatalf("verify: %+v %v", got, err)
	}
	before := st.lookups
	if _, err := v.Verify(ctx, tok, Request{JobID: "job_1"}); err != nil {
		t.Fatal(err)
	}
	if st.lookups != before+1 {
		t.Errorf("a cached verification must still look at the job (lookups %d -> %d)", before, st.lookups)
	}
}

func TestExpiryWithFakeClock(t *testing.T) {
	_, _, clk, v, tok, _ := setup(t)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok, Request{}); err != nil {
		t.Fatal(err)
	}
	clk.t = t0.Add(10*time.Minute - time.Second)
	if _, err := v.Verify(ctx, tok, Request{}); err != nil {
		t.Errorf("one second before exp: %v", err)
	}
	clk.t = t0.Add(10 * time.Minute)
	if _, err := v.Verify(ctx, tok, Request{}); code(err) != CodeExpired {
		t.Errorf("at exp (cached): %v", err)
	}
	if _, err := v.Verify(ctx, tok, Request{}); code(err) != CodeExpired {
		t.Errorf("at exp (uncached): %v", err)
	}
}

func TestRevocationAndJobBinding(t *testing.T) {
	issuer, st, _, v, tok, c := setup(t)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok, Request{JobID: "job_2"}); code(err) != CodeJobMismatch {
		t.Errorf("replayed into another job: %v", err)
	}
	if _, err := v.Verify(ctx, tok, Request{JobID: "job_1"}); err != nil {
		t.Fatal(err)
	}
	// A token minted for job_1 with other claims (another scope hash) is refused.
	other := *c
	other.Scope = []string{"proxy:call", "control:*"}
	other.TokenScopeHash = other.ScopeHash()
	otherTok, _ := Sign(&other, issuer)
	if _, err := v.Verify(ctx, otherTok, Request{}); code(err) != CodeJobMismatch {
		t.Errorf("token not issued for this job: %v", err)
	}
	// Finished job: closed, whether seen through the job or the revocation.
	st.mu.Lock()
	st.jobs["job_1"] = JobInfo{ID: "job_1", ScopeHash: c.TokenScopeHash, Open: false}
	st.mu.Unlock()
	if _, err := v.Verify(ctx, tok, Request{}); code(err) != CodeJobClosed {
		t.Errorf("finished job: %v", err)
	}
	st.mu.Lock()
	st.jobs["job_1"] = JobInfo{ID: "job_1", ScopeHash: c.TokenScopeHash, Open: true}
	st.revoked[Hash(tok)] = "compromised"
	st.mu.Unlock()
	if _, err := v.Verify(ctx, tok, Request{}); code(err) != CodeRevoked {
		t.Errorf("revoked after caching: %v", err)
	}
	st.mu.Lock()
	st.revoked[Hash(tok)] = RevokeReasonJobFinished
	st.mu.Unlock()
	if _, err := v.Verify(ctx, tok, Request{}); code(err) != CodeJobClosed {
		t.Errorf("revoked at job end: %v", err)
	}
	// No job at all.
	agent, _ := signer.FromSeed(testkit.Seed(1))
	unbound := jobClaims(agent.DID(), "", t0, time.Minute)
	unboundTok, _ := Sign(unbound, issuer)
	if _, err := v.Verify(ctx, unboundTok, Request{}); code(err) != CodeJobMismatch {
		t.Errorf("no mission_id: %v", err)
	}
	ghost := jobClaims(agent.DID(), "job_ghost", t0, time.Minute)
	ghostTok, _ := Sign(ghost, issuer)
	if _, err := v.Verify(ctx, ghostTok, Request{}); code(err) != CodeJobMismatch {
		t.Errorf("unknown job: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	old, st, clk, _, _, c := setup(t)
	newKey, _ := signer.FromSeed(testkit.Seed(8))
	v := NewVerifier(st, Options{Now: clk.now, CacheSize: -1})
	oldTok, _ := Sign(c, old)
	// Rotate: the new key is active, the old one valid for a 30-minute overlap.
	st.mu.Lock()
	st.keys[signer.KID(newKey.Public())] = IssuerKey{Kid: signer.KID(newKey.Public()), Key: didkey.NewKey(newKey.Public())}
	k := st.keys[signer.KID(old.Public())]
	k.NotAfter = t0.Add(30 * time.Minute)
	st.keys[k.Kid] = k
	st.mu.Unlock()
	c2 := *c
	c2.Exp = t0.Add(time.Hour).Unix()
	c2.TokenScopeHash = c2.ScopeHash()
	oldLong, _ := Sign(&c2, old)
	newTok, _ := Sign(c, newKey)
	ctx := context.Background()
	if _, err := v.Verify(ctx, oldTok, Request{}); err != nil {
		t.Errorf("old kid during overlap: %v", err)
	}
	if _, err := v.Verify(ctx, newTok, Request{}); err != nil {
		t.Errorf("new kid: %v", err)
	}
	clk.t = t0.Add(31 * time.Minute)
	if _, err := v.Verify(ctx, oldLong, Request{}); code(err) != CodeKidExpired {
		t.Errorf("old kid after overlap: %v", err)
	}
	stranger, _ := signer.FromSeed(testkit.Seed(9))
	strangerTok, _ := Sign(&c2, stranger)
	if _, err := v.Verify(ctx, strangerTok, Request{}); code(err) != CodeUnknownKid {
		t.Errorf("unknown kid: %v", err)
	}
	empty := NewVerifier(newFakeState(), Options{Now: clk.now})
	if _, err := empty.Verify(ctx, oldLong, Request{}); code(err) != CodeKeyMissing {
		t.Errorf("no keys: %v", err)
	}
}

// TestTamperedTokens changes every part of a token and expects the right
// code for each.
func TestTamperedTokens(t *testing.T) {
	issuer, _, _, v, tok, c := setup(t)
	ctx := context.Background()
	parts := strings.Split(tok, ".")
	reencode := func(mut func(m map[string]any)) string {
		raw, _ := b64u.Decode(parts[1])
		var m map[string]any
		json.Unmarshal(raw, &m)
		mut(m)
		out, _ := json.Marshal(m)
		return parts[0] + "." + b64u.Encode(out) + "." + parts[2]
	}
	resign := func(mut func(c *Claims)) string {
		cc := *c
		mut(&cc)
		s, _ := Sign(&cc, issuer)
		return s
	}
	header := func(h string) string { return b64u.Encode([]byte(h)) + "." + parts[1] + "." + parts[2] }
	tests := []struct {
		name, tok, code string
	}{
		{"empty", "", CodeRequired},
		{"two parts", parts[0] + "." + parts[1], CodeMalformed},
		{"bad base64", parts[0] + ".!!!." + parts[2], CodeMalformed},
		{"header not json", header("nope"), CodeMalformed},
		{"alg none", header(`{"alg":"none","typ":"JWT"}`), CodeUnsupportedAlg},
		{"alg HS256", header(`{"alg":"HS256","typ":"JWT"}`), CodeUnsupportedAlg},
		{"payload changed, signature kept", reencode(func(m map[string]any) { m["scope"] = []string{"proxy:call", "control:*"} }), CodeSignatureInvalid},
		{"exp pushed out", reencode(func(m map[string]any) { m["exp"] = float64(c.Exp + 3600) }), CodeSignatureInvalid},
		{"unknown claim", reencode(func(m map[string]any) { m["admin"] = true }), CodeInvalidClaims},
		{"fractional exp", reencode(func(m map[string]any) { m["exp"] = 1.5 }), CodeInvalidClaims},
		{"no sub", reencode(func(m map[string]any) { delete(m, "sub") }), CodeInvalidClaims},
		{"bad version", reencode(func(m map[string]any) { m["token_version"] = "2" }), CodeInvalidClaims},
		{"signature flipped", parts[0] + "." + parts[1] + "." + flip(parts[2]), CodeSignatureInvalid},
		{"wrong audience", resign(func(c *Claims) { c.Aud = Aud("elsewhere") }), CodeBadAudience},
		{"no useful scope", resign(func(c *Claims) { c.Scope = []string{"read"}; c.TokenScopeHash = c.ScopeHash() }), CodeInsufficientScope},
		{"expired", resign(func(c *Claims) { c.Exp = t0.Add(-time.Second).Unix() }), CodeExpired},
		{"no scope hash", resign(func(c *Claims) { c.TokenScopeHash = "" }), CodeScopeHashRequired},
		{"scope hash of other claims", resign(func(c *Claims) { c.MissionID = "job_2" }), CodeScopeHashMismatch},
		{"delegation half set", resign(func(c *Claims) { c.DelegationID = "d1"; c.TokenScopeHash = c.ScopeHash() }), CodeDelegationInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(ctx, tt.tok, Request{}); code(err) != tt.code {
				t.Errorf("got %s, want %s", code(err), tt.code)
			}
		})
	}
	if _, err := v.Verify(ctx, tok, Request{ClientDID: "did:key:other"}); code(err) != CodeSubMismatch {
		t.Errorf("client DID: %v", err)
	}
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// FuzzParse feeds arbitrary strings to the JWT parser: no panics, and every
// failure has a code.
//
//	go test ./token -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	issuer, _ := signer.FromSeed(testkit.Seed(7))
	c := jobClaims("did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7", "job_1", t0, time.Minute)
	tok, _ := Sign(c, issuer)
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFZERTQSJ9.e30.AAAA")
	st := newFakeState(issuer)
	st.jobs["job_1"] = JobInfo{ID: "job_1", ScopeHash: c.TokenScopeHash, Open: true}
	v := NewVerifier(st, Options{Now: func() time.Time { return t0 }, CacheSize: -1})
	f.Fuzz(func(t *testing.T, s string) {
		_, err := v.Verify(context.Background(), s, Request{})
		if err != nil && code(err)[0] == '?' {
			t.Fatalf("error without a code: %v", err)
		}
	})
}

func BenchmarkVerifyUncached(b *testing.B) {
	issuer, _ := signer.FromSeed(testkit.Seed(7))
	c := jobClaims("did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7", "job_1", t0, time.Hour)
	tok, _ := Sign(c, issuer)
	st := newFakeState(issuer)
	st.jobs["job_1"] = JobInfo{ID: "job_1", ScopeHash: c.TokenScopeHash, Open: true}
	v := NewVerifier(st, Options{Audiences: []string{"clawea"}, RequireJob: true, Now: func() time.Time { return t0 }, CacheSize: -1})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(context.Background(), tok, Request{JobID: "job_1"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	issuer, _ := signer.FromSeed(testkit.Seed(7))
	c := jobClaims("did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7", "job_1", t0, time.Hour)
	tok, _ := Sign(c, issuer)
	st := newFakeState(issuer)
	st.jobs["job_1"] = JobInfo{ID: "job_1", ScopeHash: c.TokenScopeHash, Open: true}
	v := NewVerifier(st, Options{Audiences: []string{"clawea"}, RequireJob: true, Now: func() time.Time { return t0 }})
	v.Verify(context.Background(), tok, Request{JobID: "job_1"})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(context.Background(), tok, Request{JobID: "job_1"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	issuer, _ := signer.FromSeed(testkit.Seed(7))
	c := jobClaims("did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7", "job_1", t0, time.Hour)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.JTI = NewID()
		c.TokenScopeHash = c.ScopeHash()
		if _, err := Sign(c, issuer); err != nil {
			b.Fatal(err)
		}
	}
}
