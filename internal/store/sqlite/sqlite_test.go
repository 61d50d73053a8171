package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, noJournal := range []bool{false, true} {
		t.Run(fmt.Sprint("NoJournal=", noJournal), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				db, err := OpenWith(context.Background(), filepath.Join(t.TempDir(), "clawea.db"), Options{NoJournal: noJournal})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			})
		})
	}
}

// TestPreparedAppendOneStatement checks that a prepared append on the
// current head takes the one-statement path, and a stale one does not.
func TestPreparedAppendOneStatement(t *testing.T) {
	ctx := context.Background()
	db, err := OpenWith(ctx, filepath.Join(t.TempDir(), "clawea.db"), Options{NoJournal: true})
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

// TestMigrationRebuildsJobEvents opens a database made by the migrations
// before version 6 and checks that the rebuilt job_events keeps every
// event and its evidence, drops the event id index, and takes appends.
func TestMigrationRebuildsJobEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clawea.db")
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	old := &DB{db: raw, w: raw, path: path}
	if err := old.migrateWith(ctx, migrations[:5]); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := old.CreateJob(ctx, store.Job{ID: "j", AgentDID: "did:key:a", PolicyHash: "p", ScopeHash: "s", TokenHash: "t", Status: store.JobOpen, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	next := func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		seq := int64(1)
		if last != nil {
			seq = last.Seq + 1
		}
		ev := store.JobEvent{Seq: seq, EventID: fmt.Sprintf("evt_%06d", seq), EventType: "llm_call", EventHash: fmt.Sprint("h", seq),
			Event: []byte(fmt.Sprintf(`{"n":%d}`, seq)), Payload: []byte(`{"p":1}`), Anchor: "span_1", CreatedAt: now}
		return ev, []store.JobItem{{Kind: "gateway_receipt", ItemID: fmt.Sprint("r", seq), EventHash: ev.EventHash, JSON: []byte(`{"r":true}`), CreatedAt: now}}, nil
	}
	for range 3 {
		if _, err := old.AppendEvent(ctx, "j", next); err != nil {
			t.Fatal(err)
		}
	}
	before, err := old.ListEvents(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	after, err := db.ListEvents(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("events changed in the migration:\n%+v\n%+v", before, after)
	}
	items, err := db.ListItems(ctx, "j")
	if err != nil || len(items) != 3 {
		t.Fatalf("items after the migration: %d, %v", len(items), err)
	}
	var indexes int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'job_events'`).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if indexes != 1 {
		t.Fatalf("job_events has %d indexes, want only its primary key", indexes)
	}
	head := after[len(after)-1]
	ev, items4, _ := next(&head)
	if _, err := db.AppendPrepared(ctx, "j", &head, ev, items4, next); err != nil {
		t.Fatal(err)
	}
	if db.preparedAppends.Load() != 1 {
		t.Fatal("the append after the migration did not take the one-statement path")
	}
	// The primary key still refuses a second event at a sequence number.
	if _, err := db.AppendPrepared(ctx, "j", &head, ev, items4, func(*store.JobEvent) (store.JobEvent, []store.JobItem, error) { return ev, items4, nil }); err == nil {
		t.Fatal("a repeated sequence number was stored")
	}
}

// TestMigrationScopesGatewayCalls: version 7 keeps the idempotency records
// of a database made before it, and from then on a key is per job.
func TestMigrationScopesGatewayCalls(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clawea.db")
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	old := &DB{db: raw, w: raw, path: path}
	if err := old.migrateWith(ctx, migrations[:6]); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO gateway_calls (`+callCols+`) VALUES ('key-1', 'job_a', 'fp', 'done', 200, 'application/json', x'7b7d', x'7b7d', 1, 2)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.GetCall(ctx, "job_a", "key-1")
	if err != nil || got.Status != store.CallDone || got.HTTPStatus != 200 || string(got.Body) != "{}" || got.Fingerprint != "fp" {
		t.Fatalf("record after the migration: %+v %v", got, err)
	}
	if _, claimed, err := db.ClaimCall(ctx, store.GatewayCall{Nonce: "key-1", JobID: "job_b", Fingerprint: "fp2", CreatedAt: time.Now()}); err != nil || !claimed {
		t.Fatalf("job_b could not claim its own key-1: %v %v", claimed, err)
	}
	if _, claimed, err := db.ClaimCall(ctx, store.GatewayCall{Nonce: "key-1", JobID: "job_a", Fingerprint: "fp", CreatedAt: time.Now()}); err != nil || claimed {
		t.Fatalf("job_a's key-1 was claimed again: %v %v", claimed, err)
	}
}
