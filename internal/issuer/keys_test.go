package issuer

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/store"
	_ "github.com/clawea/clawea/internal/store/postgres"
	_ "github.com/clawea/clawea/internal/store/sqlite"
	"github.com/clawea/clawea/internal/store/storetest"
	"github.com/clawea/clawea/internal/tokenstate"
	"github.com/clawea/clawea/token"
)

// TestKeysRetire runs two instances (each its own store handle, mirror
// and caching verifier) over one store, SQLite and PostgreSQL: a new key
// is accepted everywhere as soon as the issuer signs with it; a key whose
// overlap ended, and a revoked key, are refused within a second at both,
// cached verifications included.
func TestKeysRetire(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dsn := "sqlite:" + filepath.Join(t.TempDir(), "clawea.db")
		keysRetire(t, dsn)
	})
	t.Run("postgres", func(t *testing.T) {
		keysRetire(t, storetest.PostgresDSN(t))
	})
}

// syncClock is a fake clock the test moves while mirrors poll.
type syncClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *syncClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *syncClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type instance struct {
	st store.Store
	m  *tokenstate.Mirror
	v  *token.Verifier
}

func keysRetire(t *testing.T, dsn string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &syncClock{t: time.Now().UTC()}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var inst [2]instance
	for i := range inst {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		inst[i].st = st
	}
	dir := keystore.Dir(t.TempDir())
	// The issuer runs on instance 0 and publishes its key before the
	// mirrors load.
	is, err := New(ctx, inst[0].st, Options{DataDir: dir, Now: clk.now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := range inst {
		m, err := tokenstate.New(ctx, inst[i].st, tokenstate.Options{Now: clk.now, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		go m.Run(ctx)
		inst[i].m, inst[i].v = m, token.NewVerifier(m, token.Options{Now: clk.now})
	}
	is.state = inst[0].m
	issue := func() *Issued {
		t.Helper()
		tok, err := is.Issue(ctx, IssueRequest{Sub: "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7", Scope: []string{"a"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verifyAll := func(what string, tok *Issued, want string) {
		t.Helper()
		for i := range inst {
			if _, err := inst[i].v.Verify(ctx, tok.Token, token.Request{}); code(err) != want {
				t.Fatalf("%s at instance %d: %v, want %s", what, i, err, want)
			}
		}
	}
	// refusedWithin waits (real time) until every instance refuses tok with
	// want, and fails past the bound.
	refusedWithin := func(what string, tok *Issued, want string, bound time.Duration) {
		t.Helper()
		start := time.Now()
		for i := range inst {
			for {
				_, err := inst[i].v.Verify(ctx, tok.Token, token.Request{})
				if code(err) == want {
					break
				}
				if time.Since(start) > bound {
					t.Fatalf("%s: instance %d still answers %v after %v", what, i, err, bound)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Logf("%s: refused everywhere after %v", what, time.Since(start).Round(time.Millisecond))
	}

	old := issue()
	verifyAll("the first key's token", old, "OK") // now cached at both

	// Rotation with a ten-minute overlap: the new key's first token is
	// accepted at both instances at once (no poll waited for).
	oldKid, newKid, err := Rotate(ctx, dir, inst[0].st, 10*time.Minute, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	fresh := issue()
	if fresh.Kid != newKid || old.Kid != oldKid {
		t.Fatalf("kids: old %s/%s new %s/%s", old.Kid, oldKid, fresh.Kid, newKid)
	}
	verifyAll("the new key's first token", fresh, "OK")
	verifyAll("the old key's token in the overlap", old, "OK")

	// The overlap ends: the cached old-key token is refused at both.
	clk.add(10 * time.Minute)
	refusedWithin("old key after the overlap", old, token.CodeKidExpired, time.Second)
	verifyAll("the new key's token after the overlap", fresh, "OK")

	// The active key is revoked (compromised): a new key is made, the
	// revoked key's tokens, cached at both, are refused within a second,
	// and the issuer signs with the new key, accepted at once.
	third, err := RevokeKey(ctx, dir, inst[0].st, newKid, clk.now())
	if err != nil || third == "" || third == newKid {
		t.Fatalf("revoke the active key: %q, %v", third, err)
	}
	refusedWithin("revoked key", fresh, token.CodeKidExpired, time.Second)
	next := issue()
	if next.Kid != third {
		t.Fatalf("issued with %s after revoking, want %s", next.Kid, third)
	}
	verifyAll("the replacement key's token", next, "OK")

	// Republishing a revoked key (an issuer restarted on an old key file)
	// does not bring it back.
	if err := inst[0].st.PutIssuerKey(ctx, store.IssuerKey{Kid: newKid, PublicKey: []byte{1}, CreatedAt: clk.now()}); err != nil {
		t.Fatal(err)
	}
	for i := range inst {
		if err := inst[i].m.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	verifyAll("the revoked key's token after republishing", fresh, token.CodeKidExpired)

	// An unknown kid is refused.
	if _, err := RevokeKey(ctx, dir, inst[0].st, "nope", clk.now()); err == nil {
		t.Fatal("revoking an unknown kid succeeded")
	}
}

// TestIssuerRefusesRetiredKey: an issuer whose key file holds a key that
// was revoked elsewhere issues nothing, with its own code.
func TestIssuerRefusesRetiredKey(t *testing.T) {
	is, st, m, clk, dir := setup(t)
	ctx := context.Background()
	tok, err := is.Issue(ctx, IssueRequest{Sub: "did:key:a", Scope: []string{"a"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Revoked from another data directory: no rotation here.
	other := keystore.Dir(t.TempDir())
	if _, err := RevokeKey(ctx, other, st, tok.Kid, clk.t); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := is.Issue(ctx, IssueRequest{Sub: "did:key:a", Scope: []string{"a"}, TTL: time.Hour}); code(err) != CodeKeyRetired {
		t.Fatalf("issue with a revoked key: %v", err)
	}
	// A restarted issuer starts, but still refuses.
	is2, err := New(ctx, st, Options{DataDir: dir, State: m, Now: clk.now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is2.Issue(ctx, IssueRequest{Sub: "did:key:a", Scope: []string{"a"}, TTL: time.Hour}); code(err) != CodeKeyRetired {
		t.Fatalf("restarted issuer with a revoked key: %v", err)
	}
}
