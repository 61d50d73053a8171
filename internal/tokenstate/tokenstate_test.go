package tokenstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/token"
)

// countingStore answers with nothing and counts key reads.
type countingStore struct{ keyReads atomic.Int64 }

func (c *countingStore) ListIssuerKeys(context.Context) ([]store.IssuerKey, error) {
	c.keyReads.Add(1)
	return nil, nil
}
func (c *countingStore) RevocationsSince(context.Context, int64, int) ([]store.Revocation, error) {
	return nil, nil
}
func (c *countingStore) GetJob(context.Context, string) (store.Job, error) {
	return store.Job{}, store.ErrNotFound
}
func (c *countingStore) JobsChangedSince(context.Context, int64, int) ([]store.Job, error) {
	return nil, nil
}
func (c *countingStore) PolicyChangesSince(context.Context, int64, int) ([]store.PolicyChange, error) {
	return nil, nil
}

// TestRefreshKeysRationed: a flood of tokens with made-up key ids costs at
// most a burst of store reads, not one each.
func TestRefreshKeysRationed(t *testing.T) {
	st := &countingStore{}
	m, err := New(context.Background(), st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := st.keyReads.Load()
	refused := 0
	for range 1000 {
		if m.RefreshKeys(context.Background()) != nil {
			refused++
		}
	}
	reads := st.keyReads.Load() - before
	if reads < 1 || reads > refreshBurst+1 {
		t.Fatalf("%d key reads for 1000 refreshes in a burst", reads)
	}
	if refused < 1000-refreshBurst-1 {
		t.Fatalf("only %d refreshes refused", refused)
	}
}

// policyStore serves a lifecycle log and can fail.
type policyStore struct {
	countingStore
	mu      sync.Mutex
	changes []store.PolicyChange
	fail    bool
	reads   int
}

func (p *policyStore) PolicyChangesSince(_ context.Context, after int64, limit int) ([]store.PolicyChange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads++
	if p.fail {
		return nil, errors.New("store down")
	}
	var out []store.PolicyChange
	for _, c := range p.changes {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (p *policyStore) add(c store.PolicyChange) {
	p.mu.Lock()
	c.Seq = int64(len(p.changes) + 1)
	p.changes = append(p.changes, c)
	p.mu.Unlock()
}

func codeOf(err error) string {
	var te *token.Error
	if errors.As(err, &te) {
		return te.Code
	}
	if err != nil {
		return "?"
	}
	return ""
}

// TestAdmitPolicy: retirement, freeze and approval decide, a stale mirror
// reads the store, and a mirror that cannot read it refuses.
func TestAdmitPolicy(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := &policyStore{}
	m, err := New(ctx, st, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := strings.Repeat("A", 43), strings.Repeat("B", 43)
	if c := codeOf(m.AdmitPolicy(ctx, h1)); c != "" {
		t.Fatalf("published hash: %s", c)
	}
	if c := codeOf(m.AdmitStart(ctx, h1, true)); c != token.CodePolicyNotApproved {
		t.Fatalf("unapproved start: %s", c)
	}
	st.add(store.PolicyChange{Action: store.PolicyApprove, PolicyHash: h1})
	// AdmitStart reads the store now.
	if c := codeOf(m.AdmitStart(ctx, h1, true)); c != "" {
		t.Fatalf("approved start: %s", c)
	}
	st.add(store.PolicyChange{Action: store.PolicyRetire, PolicyHash: h1})
	// A fresh mirror answers from memory; once stale it reads the store.
	reads := st.reads
	if c := codeOf(m.AdmitPolicy(ctx, h1)); c != "" || st.reads != reads {
		t.Fatalf("fresh mirror: %s, %d reads", c, st.reads-reads)
	}
	advance(PolicyStale + time.Millisecond)
	if c := codeOf(m.AdmitPolicy(ctx, h1)); c != token.CodePolicyRetired {
		t.Fatalf("retired after a stale read: %s", c)
	}
	st.add(store.PolicyChange{Action: store.PolicyApprove, PolicyHash: h1}) // retirement is final
	st.add(store.PolicyChange{Action: store.PolicyFreeze, Hashes: []string{h1}})
	if err := m.SyncPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	if c := codeOf(m.AdmitPolicy(ctx, h1)); c != token.CodePolicyRetired {
		t.Errorf("approve after retire: %s", c)
	}
	if c := codeOf(m.AdmitPolicy(ctx, h2)); c != token.CodePolicyNotInFreeze {
		t.Errorf("outside the freeze: %s", c)
	}
	st.add(store.PolicyChange{Action: store.PolicyUnfreeze})
	// The store fails: a fresh mirror still answers, a stale one refuses.
	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	if c := codeOf(m.AdmitPolicy(ctx, h2)); c != token.CodePolicyNotInFreeze {
		t.Errorf("fresh mirror while the store fails: %s", c)
	}
	advance(PolicyStale + time.Millisecond)
	if c := codeOf(m.AdmitPolicy(ctx, h2)); c != token.CodePolicyStateUnavailable {
		t.Errorf("stale mirror while the store fails: %s", c)
	}
	if c := codeOf(m.AdmitStart(ctx, h2, false)); c != token.CodePolicyStateUnavailable {
		t.Errorf("start while the store fails: %s", c)
	}
	// Refusals while the store fails do not each read it.
	reads = st.reads
	for range 50 {
		m.AdmitPolicy(ctx, h2)
	}
	if st.reads-reads > 1 {
		t.Errorf("%d store reads for 50 checks while it fails", st.reads-reads)
	}
	st.mu.Lock()
	st.fail = false
	st.mu.Unlock()
	advance(policyRetry)
	if c := codeOf(m.AdmitPolicy(ctx, h2)); c != "" {
		t.Errorf("after unfreeze: %s", c)
	}
}

// BenchmarkAdmitPolicy is the lifecycle check's cost on the verification
// hot path (a fresh mirror: no store read).
func BenchmarkAdmitPolicy(b *testing.B) {
	st := &policyStore{}
	for i := range 100 {
		st.add(store.PolicyChange{Action: store.PolicyApprove, PolicyHash: fmt.Sprintf("%043d", i)})
	}
	m, err := New(context.Background(), st, Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := fmt.Sprintf("%043d", 7)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := m.AdmitPolicy(context.Background(), h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
