package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "clawea.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestPreparedAppendOneStatement checks that a prepared append on the
// current head takes the one-statement path, and a stale one does not.
func TestPreparedAppendOneStatement(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "clawea.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	if err := db.CreateJob(ctx, store.Job{ID: "j", AgentDID: "did:key:a", PolicyHash: "p", ScopeHash: "s", TokenHash: "t", Status: store.JobOpen, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ev := func(seq int64) store.JobEvent {
		return store.JobEvent{Seq: seq, EventID: fmt.Sprint("e", seq), EventType: "llm_call", EventHash: fmt.Sprint("h", seq), Event: []byte(`{}`), CreatedAt: now}
	}
	next := func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		if last == nil {
			return ev(1), nil, nil
		}
		return ev(last.Seq + 1), nil, nil
	}
	e1, err := db.AppendPrepared(ctx, "j", nil, ev(1), nil, next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendPrepared(ctx, "j", &e1, ev(2), nil, next); err != nil {
		t.Fatal(err)
	}
	if n := db.preparedAppends.Load(); n != 2 {
		t.Fatalf("%d of 2 appends took the one-statement path", n)
	}
	if _, err := db.AppendPrepared(ctx, "j", &e1, ev(2), nil, next); err != nil {
		t.Fatal(err)
	}
	if n := db.preparedAppends.Load(); n != 2 {
		t.Fatalf("a stale head took the one-statement path")
	}
}
