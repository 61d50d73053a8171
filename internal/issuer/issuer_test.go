package issuer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/store/sqlite"
	"github.com/clawea/clawea/internal/tokenstate"
	"github.com/clawea/clawea/token"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t testing.TB) (*Issuer, *sqlite.DB, *tokenstate.Mirror, *clock, keystore.Dir) {
	ctx := context.Background()
	dir := keystore.Dir(t.TempDir())
	st, err := sqlite.Open(ctx, filepath.Join(string(dir), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	m, err := tokenstate.New(ctx, st, tokenstate.Options{Now: clk.now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	is, err := New(ctx, st, Options{DataDir: dir, State: m, Now: clk.now, OnRevoke: m.NoteRevoked})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return is, st, m, clk, dir
}

func code(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	var te *token.Error
	if errors.As(err, &te) {
		return te.Code
	}
	if err == nil {
		return "OK"
	}
	return err.Error()
}

func TestTTLPolicy(t *testing.T) {
	is, _, _, clk, _ := setup(t)
	ctx := context.Background()
	agent := "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"
	out, err := is.Issue(ctx, IssueRequest{Sub: agent, Scope: []string{"proxy:call"}})
	if err != nil || out.Claims.Exp-out.Claims.Iat != 600 {
		t.Fatalf("default TTL: %v %+v", err, out)
	}
	if out, err := is.Issue(ctx, IssueRequest{Sub: agent, Scope: []string{"a"}, TTL: time.Hour}); err != nil || out.Claims.Exp-clk.t.Unix() != 3600 {
		t.Errorf("maximum TTL: %v", err)
	}
	if _, err := is.Issue(ctx, IssueRequest{Sub: agent, Scope: []string{"a"}, TTL: time.Hour + time.Second}); code(err) != "TTL_TOO_LONG" {
		t.Errorf("over the maximum: %v", err)
	}
	if _, err := is.Issue(ctx, IssueRequest{Sub: agent, Scope: []string{"a"}, Exp: clk.t.Unix()}); code(err) != "TTL_EXPIRED" {
		t.Errorf("exp now: %v", err)
	}
	if _, err := is.Issue(ctx, IssueRequest{Sub: agent, Scope: []string{"a"}, Exp: clk.t.Add(-time.Minute).Unix()}); code(err) != "TTL_EXPIRED" {
		t.Errorf("exp in the past: %v", err)
	}
	short, err := New(ctx, is.st, Options{DataDir: is.dir, State: is.state, Now: clk.now, MaxTTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := short.Issue(ctx, IssueRequest{Sub: agent, Scope: []string{"a"}}); err != nil || out.Claims.Exp-out.Claims.Iat != 300 {
		t.Errorf("default capped by a lower maximum: %v", err)
	}
	if _, err := New(ctx, is.st, Options{DataDir: is.dir, DefaultTTL: time.Hour, MaxTTL: time.Minute}); err == nil {
		t.Error("default above maximum accepted")
	}
}

func TestRotationOverlap(t *testing.T) {
	is, st, m, clk, dir := setup(t)
	ctx := context.Background()
	v := token.NewVerifier(m, token.Options{Now: clk.now, CacheSize: -1})
	agent := "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"
	old, err := is.Issue(ctx, IssueRequest{Sub: agent, Scope: []string{"a"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	oldKid, newKid, err := Rotate(ctx, dir, st, 30*time.Minute, clk.t)
	if err != nil || oldKid == newKid {
		t.Fatalf("rotate: %v", err)
	}
	clk.t = clk.t.Add(time.Second) // a new key file mtime is enough; the clock is for expiry
	fresh, err := is.Issue(ctx, IssueRequest{Sub: agent, Scope: []string{"a"}, TTL: time.Hour})
	if err != nil || fresh.Kid != newKid {
		t.Fatalf("issue after rotation: kid %s want %s, %v", fresh.Kid, newKid, err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, old.Token, token.Request{}); err != nil {
		t.Errorf("old kid during overlap: %v", err)
	}
	if _, err := v.Verify(ctx, fresh.Token, token.Request{}); err != nil {
		t.Errorf("new kid: %v", err)
	}
	clk.t = clk.t.Add(31 * time.Minute)
	if _, err := v.Verify(ctx, old.Token, token.Request{}); code(err) != token.CodeKidExpired {
		t.Errorf("old kid after overlap: %v", err)
	}
	if _, err := v.Verify(ctx, fresh.Token, token.Request{}); err != nil {
		t.Errorf("new kid after overlap: %v", err)
	}
	keys, _ := st.ListIssuerKeys(ctx)
	if len(keys) != 2 {
		t.Errorf("%d keys stored", len(keys))
	}
	// Revocation through the issuer is visible at once to its own mirror.
	if _, existed, err := is.Revoke(ctx, fresh.TokenHash, "test", "admin", "", time.Time{}); err != nil || existed {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, fresh.Token, token.Request{}); code(err) != token.CodeRevoked {
		t.Errorf("revoked: %v", err)
	}
	if _, err := st.GetRevocation(ctx, fresh.TokenHash); err != nil {
		t.Errorf("revocation not stored: %v", err)
	}
	_ = store.ErrNotFound
}

// BenchmarkIssue measures issuance: validation, signing and recording the
// issued token in the SQLite store (tokens/s is the rate).
func BenchmarkIssue(b *testing.B) {
	is, _, _, _, _ := setup(b)
	ctx := context.Background()
	req := IssueRequest{Sub: "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7", Scope: []string{"proxy:call", "tool:call"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := is.Issue(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
