package tokenstate

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/clawea/clawea/internal/store"
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
