package evidence_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/store/sqlite"
)

// openChain returns a chain over a fresh SQLite store holding one open
// job (job) whose secret the chain's registry knows.
func openChain(t *testing.T, segEvents int) (*evidence.Chain, *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "clawea.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now().UTC()
	if err := db.CreateJob(ctx, store.Job{ID: job, AgentDID: "did:key:zAgent", PolicyHash: "p", ScopeHash: "s", TokenHash: "t",
		Status: store.JobOpen, Labels: []byte(`{}`), Budget: []byte(`{}`), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return evidence.NewChain(db, registry(), segEvents, nil), db
}

func code(err error) string {
	var he *httpapi.Error
	if errors.As(err, &he) {
		return he.Code
	}
	return ""
}

func stored(t *testing.T, db *sqlite.DB) (int, int) {
	t.Helper()
	evs, err := db.ListEvents(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	items, err := db.ListItems(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs), len(items)
}

func receiptItem(id, body string) evidence.AttachFunc {
	return func(a *evidence.Appended) ([]evidence.Item, string, error) {
		return []evidence.Item{{Kind: evidence.KindToolReceipt, ItemID: id, JSON: []byte(body)}}, "", nil
	}
}

// TestRecordGate: the gate is inside Record, whatever the producer passes.
func TestRecordGate(t *testing.T) {
	ctx := context.Background()
	ch, db := openChain(t, 0)
	for _, tc := range []struct {
		name    string
		payload any
		attach  evidence.AttachFunc
		code    string
	}{
		{"secret in the payload", map[string]any{"arg": secret}, nil, evidence.CodeSecretRefused},
		{"secret in an item", map[string]any{"ok": 1}, receiptItem("r1", `{"result":"`+secret+`"}`), evidence.CodeSecretRefused},
		{"secret in an item's key", map[string]any{"ok": 1}, receiptItem("r1", `{"`+secret+`":1}`), evidence.CodeSecretRefused},
		{"unknown kind", map[string]any{"ok": 1}, func(*evidence.Appended) ([]evidence.Item, string, error) {
			return []evidence.Item{{Kind: "note", ItemID: "n1", JSON: []byte(`{}`)}}, "", nil
		}, "EVIDENCE_KIND_INVALID"},
		{"empty type", nil, nil, "EVENT_TYPE_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ := "tool_call"
			if tc.payload == nil {
				typ = ""
			}
			_, err := ch.Record(ctx, job, typ, tc.payload, tc.attach)
			if code(err) != tc.code {
				t.Fatalf("Record = %v, want %s", err, tc.code)
			}
			if tc.code == evidence.CodeSecretRefused && !errors.Is(err, evidence.ErrSecretRefused) {
				t.Errorf("errors.Is(%v, ErrSecretRefused) = false", err)
			}
			if evs, items := stored(t, db); evs != 0 || items != 0 {
				t.Errorf("a refused record left %d events and %d items", evs, items)
			}
		})
	}
	// The same record without the secret is stored, event and item at once.
	ev, err := ch.Record(ctx, job, "tool_call", map[string]any{"ok": 1}, receiptItem("r1", `{"result":"[REDACTED:`+label+`]"}`))
	if err != nil {
		t.Fatal(err)
	}
	if evs, items := stored(t, db); evs != 1 || items != 1 {
		t.Fatalf("stored %d events and %d items, want 1 and 1", evs, items)
	}
	if ev.Seq != 1 || ev.Segment != 0 {
		t.Errorf("event %+v", ev)
	}
}

// TestRecordSegmentsAndClosedJob: segments start their own run and chain;
// a job that is not open takes nothing (ErrJobNotOpen).
func TestRecordSegmentsAndClosedJob(t *testing.T) {
	ctx := context.Background()
	ch, db := openChain(t, 2)
	var runs []string
	for i := 0; i < 5; i++ {
		_, err := ch.Record(ctx, job, "step", map[string]any{"i": i}, func(a *evidence.Appended) ([]evidence.Item, string, error) {
			runs = append(runs, a.Event.RunID)
			if (a.Stored.Index == 0) != (a.Event.PrevHash == nil) {
				t.Errorf("event %d: index %d, prev %v", i, a.Stored.Index, a.Event.PrevHash)
			}
			return nil, "", nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{job, job, evidence.RunID(job, 1), evidence.RunID(job, 1), job + ".s2"}
	if len(runs) != len(want) {
		t.Fatalf("runs %v", runs)
	}
	for i := range want {
		if runs[i] != want[i] {
			t.Errorf("event %d in run %s, want %s", i, runs[i], want[i])
		}
	}
	evs, err := db.ListEvents(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		var e bundle.Event
		if err := json.Unmarshal(evs[i].Event, &e); err != nil {
			t.Fatal(err)
		}
		if evs[i].Index > 0 && (e.PrevHash == nil || *e.PrevHash != evs[i-1].EventHash) {
			t.Errorf("event %d does not chain to %d", i+1, i)
		}
	}
	if err := db.SetJobStatus(ctx, job, store.JobOpen, store.JobFinishing, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.AppendEvent(ctx, job, "step", map[string]any{"late": true}); !errors.Is(err, evidence.ErrJobNotOpen) {
		t.Fatalf("append to a finishing job = %v, want JOB_NOT_OPEN", err)
	}
	if _, err := ch.AppendEvent(ctx, "job_none", "step", map[string]any{}); code(err) != "JOB_NOT_FOUND" {
		t.Fatalf("append to no job = %v, want JOB_NOT_FOUND", err)
	}
	if n, _ := stored(t, db); n != 5 {
		t.Errorf("%d events stored, want 5", n)
	}
}
