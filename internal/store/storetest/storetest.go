// Package storetest is the conformance suite every store back end must
// pass, plus helpers that provide a fresh PostgreSQL database per test.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clawea/clawea/internal/store"
)

// Opener returns a new, empty store for one test.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite against stores from open.
func Run(t *testing.T, open Opener) {
	t.Run("WPCs", func(t *testing.T) { testWPCs(t, open(t)) })
	t.Run("WPCConcurrentPublish", func(t *testing.T) { testWPCConcurrent(t, open(t)) })
	t.Run("IssuerKeysAndTokens", func(t *testing.T) { testTokens(t, open(t)) })
	t.Run("Revocations", func(t *testing.T) { testRevocations(t, open(t)) })
	t.Run("Jobs", func(t *testing.T) { testJobs(t, open(t)) })
	t.Run("ConcurrentAppend", func(t *testing.T) { testConcurrentAppend(t, open(t)) })
	t.Run("Agents", func(t *testing.T) { testAgents(t, open(t)) })
	t.Run("EventWithEvidence", func(t *testing.T) { testEventWithEvidence(t, open(t)) })
	t.Run("ConcurrentAppendsIsolated", func(t *testing.T) { testAppendIsolation(t, open(t)) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, open(t)) })
	t.Run("ConcurrentUsage", func(t *testing.T) { testConcurrentUsage(t, open(t)) })
	t.Run("UsageReservations", func(t *testing.T) { testUsageReservations(t, open(t)) })
	t.Run("GatewayCalls", func(t *testing.T) { testGatewayCalls(t, open(t)) })
	t.Run("Approvals", func(t *testing.T) { testApprovals(t, open(t)) })
	t.Run("LockdownAndCounters", func(t *testing.T) { testLockdownAndCounters(t, open(t)) })
	t.Run("PolicyLifecycle", func(t *testing.T) { testPolicyLifecycle(t, open(t)) })
	t.Run("ConcurrentPolicyChanges", func(t *testing.T) { testConcurrentPolicyChanges(t, open(t)) })
	t.Run("ConnectorSwitches", func(t *testing.T) { testConnectorSwitches(t, open(t)) })
	t.Run("Bus", func(t *testing.T) { testBus(t, open(t)) })
	t.Run("ConcurrentReceive", func(t *testing.T) { testConcurrentReceive(t, open(t)) })
	t.Run("PreparedAppend", func(t *testing.T) {
		s := open(t)
		if _, ok := s.(store.PreparedAppender); !ok {
			t.Skip("this back end has no prepared appends")
		}
		testPreparedAppend(t, s)
	})
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.PutIssuerKey(ctx, store.IssuerKey{Kid: "k1", PublicKey: []byte{1}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIssuerKey(ctx, store.IssuerKey{Kid: "k2", PublicKey: []byte{2}, CreatedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Rotation: k1 gets an end; the public key itself never changes.
	if err := s.PutIssuerKey(ctx, store.IssuerKey{Kid: "k1", PublicKey: []byte{9}, CreatedAt: t0, NotAfter: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListIssuerKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].Kid != "k1" || !keys[0].NotAfter.Equal(t0.Add(2*time.Hour)) || keys[0].PublicKey[0] != 1 || !keys[1].NotAfter.IsZero() {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	// A retired key is never active again, and its end only moves earlier
	// (a restarted issuer republishing its key, or a later rotation with a
	// longer overlap, must not undo a revocation).
	for _, put := range []store.IssuerKey{
		{Kid: "k1", PublicKey: []byte{1}, CreatedAt: t0},
		{Kid: "k1", PublicKey: []byte{1}, CreatedAt: t0, NotAfter: t0.Add(5 * time.Hour)},
		{Kid: "k1", PublicKey: []byte{1}, CreatedAt: t0, NotAfter: t0.Add(time.Hour)},
	} {
		if err := s.PutIssuerKey(ctx, put); err != nil {
			t.Fatal(err)
		}
	}
	keys, err = s.ListIssuerKeys(ctx)
	if err != nil || !keys[0].NotAfter.Equal(t0.Add(time.Hour)) || !keys[1].NotAfter.IsZero() {
		t.Fatalf("keys after moving k1's end: %+v %v", keys, err)
	}
	tok := store.IssuedToken{TokenHash: "h1", JTI: "j1", Sub: "did:key:a", JobID: "job1", ScopeHash: "s", PolicyHash: "p", Kid: "k2",
		IssuedAt: t0, ExpiresAt: t0.Add(time.Minute), Claims: []byte(`{}`)}
	if err := s.PutIssuedToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	dup := tok
	dup.TokenHash = "h2"
	if err := s.PutIssuedToken(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate jti: %v", err)
	}
	got, err := s.GetIssuedToken(ctx, "h1")
	if err != nil || got.JobID != "job1" || !got.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("get token: %+v %v", got, err)
	}
	if _, err := s.GetIssuedToken(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing token: %v", err)
	}
}

func testRevocations(t *testing.T, s store.Store) {
	ctx := context.Background()
	r1, existed, err := s.Revoke(ctx, store.Revocation{TokenHash: "a", Reason: "compromised", RevokedBy: "admin", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	if err != nil || existed || r1.Seq == 0 {
		t.Fatalf("revoke: %+v %v %v", r1, existed, err)
	}
	again, existed, err := s.Revoke(ctx, store.Revocation{TokenHash: "a", Reason: "other", RevokedAt: t0.Add(time.Minute)})
	if err != nil || !existed || again.Reason != "compromised" || again.Seq != r1.Seq {
		t.Errorf("second revoke must keep the first: %+v %v %v", again, existed, err)
	}
	r2, _, _ := s.Revoke(ctx, store.Revocation{TokenHash: "b", Reason: "job_finished", JobID: "job1", RevokedAt: t0, ExpiresAt: t0})
	if r2.Seq <= r1.Seq {
		t.Errorf("sequence does not increase: %d then %d", r1.Seq, r2.Seq)
	}
	list, err := s.RevocationsSince(ctx, 0, 10)
	if err != nil || len(list) != 2 || list[0].TokenHash != "a" || list[1].JobID != "job1" {
		t.Fatalf("since 0: %+v %v", list, err)
	}
	list, _ = s.RevocationsSince(ctx, r1.Seq, 10)
	if len(list) != 1 || list[0].TokenHash != "b" {
		t.Errorf("since r1: %+v", list)
	}
	if _, err := s.GetRevocation(ctx, "zzz"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing revocation: %v", err)
	}
}

func newJob(id string) store.Job {
	return store.Job{ID: id, AgentDID: "did:key:a", PolicyHash: "p", ScopeHash: "s-" + id, TokenHash: "t-" + id, Status: store.JobOpen,
		Labels: []byte(`{"ticket":"CHG-1"}`), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

func appendN(t *testing.T, s store.Store, jobID string, n int) {
	for i := 0; i < n; i++ {
		_, err := s.AppendEvent(context.Background(), jobID, func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
			seq := int64(1)
			if last != nil {
				seq = last.Seq + 1
			}
			return store.JobEvent{Seq: seq, EventID: fmt.Sprintf("e%d", seq), EventType: "llm_call", EventHash: fmt.Sprintf("h%d", seq),
				Event: []byte(`{}`), CreatedAt: t0}, nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testJobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateJob(ctx, newJob("job_a")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateJob(ctx, newJob("job_a")); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate job: %v", err)
	}
	if err := s.CreateJob(ctx, newJob("job_b")); err != nil {
		t.Fatal(err)
	}
	j, err := s.GetJob(ctx, "job_a")
	if err != nil || j.Status != store.JobOpen || string(j.Labels) != `{"ticket":"CHG-1"}` || string(j.Budget) != "{}" || j.Seq == 0 {
		t.Fatalf("get: %+v %v", j, err)
	}
	appendN(t, s, "job_a", 3)
	evs, err := s.ListEvents(ctx, "job_a")
	if err != nil || len(evs) != 3 || evs[2].Seq != 3 {
		t.Fatalf("events: %d %v", len(evs), err)
	}
	it, err := s.AddItem(ctx, store.JobItem{JobID: "job_a", Kind: "gateway_receipt", ItemID: "r1", EventHash: "h1", JSON: []byte(`{"r":1}`), CreatedAt: t0})
	if err != nil || it.Seq != 1 {
		t.Fatalf("item: %+v %v", it, err)
	}
	if _, err := s.AddItem(ctx, store.JobItem{JobID: "job_a", Kind: "gateway_receipt", ItemID: "r1", JSON: []byte(`{}`)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate item: %v", err)
	}
	before, _ := s.JobsChangedSince(ctx, 0, 10)
	if len(before) != 2 {
		t.Fatalf("changes: %d", len(before))
	}
	last := before[len(before)-1].Seq
	if err := s.SetJobStatus(ctx, "job_a", store.JobOpen, store.JobFinished, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetJobStatus(ctx, "job_a", store.JobOpen, store.JobFinished, t0); !errors.Is(err, store.ErrConflict) {
		t.Errorf("double finish: %v", err)
	}
	if err := s.SetJobStatus(ctx, "nope", store.JobOpen, store.JobFinished, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing job: %v", err)
	}
	changed, _ := s.JobsChangedSince(ctx, last, 10)
	if len(changed) != 1 || changed[0].ID != "job_a" || changed[0].Status != store.JobFinished || !changed[0].FinishedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("changed after finish: %+v", changed)
	}
	_, err = s.AppendEvent(ctx, "job_a", func(*store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		t.Error("next called for a finished job")
		return store.JobEvent{}, nil, nil
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("append to finished job: %v", err)
	}
	if _, err := s.AddItem(ctx, store.JobItem{JobID: "job_a", Kind: "k", ItemID: "x", JSON: []byte(`{}`)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("item on finished job: %v", err)
	}
	open, _ := s.ListJobs(ctx, "", store.JobOpen, 10)
	all, _ := s.ListJobs(ctx, "", "", 10)
	if len(open) != 1 || open[0].ID != "job_b" || len(all) != 2 {
		t.Errorf("list: open %d all %d", len(open), len(all))
	}
	for part := -1; part <= 1; part++ {
		if err := s.PutBundle(ctx, store.Bundle{JobID: "job_a", Part: part, BundleID: fmt.Sprint("b", part), Envelope: []byte(`{}`), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := s.ListBundles(ctx, "job_a")
	if err != nil || len(bs) != 3 || bs[0].Part != -1 || string(bs[1].URM) != "{}" {
		t.Errorf("bundles: %+v %v", bs, err)
	}
}

// testConcurrentAppend appends from several goroutines: the chain must
// come out gap-free, each event seeing the one before it.
func testConcurrentAppend(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateJob(ctx, newJob("job_c")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				_, err := s.AppendEvent(ctx, "job_c", func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
					seq, prev := int64(1), "null"
					if last != nil {
						seq, prev = last.Seq+1, last.EventHash
					}
					return store.JobEvent{Seq: seq, EventID: fmt.Sprint("e", seq), EventType: "x", EventHash: fmt.Sprintf("h%d<%s", seq, prev),
						Event: []byte(`{}`), CreatedAt: t0}, nil, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, _ := s.ListEvents(ctx, "job_c")
	if len(evs) != 40 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("gap at %d: seq %d", i, e.Seq)
		}
		if i > 0 && !strings.HasSuffix(e.EventHash, "<"+evs[i-1].EventHash) {
			t.Fatalf("event %d did not see its predecessor", e.Seq)
		}
	}
}

// testEventWithEvidence appends an event with items in one transaction;
// a failing item (an id repeated within the append) takes the event with
// it.
func testEventWithEvidence(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateJob(ctx, newJob("job_e")); err != nil {
		t.Fatal(err)
	}
	item := func(id string) store.JobItem {
		return store.JobItem{Kind: "gateway_receipt", ItemID: id, EventHash: "h", JSON: []byte(`{"id":"` + id + `"}`), CreatedAt: t0}
	}
	ev, err := s.AppendEvent(ctx, "job_e", func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		return store.JobEvent{Seq: 1, EventID: "e1", EventType: "llm_call", EventHash: "h1", Event: []byte(`{}`), Anchor: "span_1", CreatedAt: t0},
			[]store.JobItem{item("r1"), item("r2")}, nil
	})
	if err != nil || ev.Anchor != "span_1" {
		t.Fatalf("append with items: %+v %v", ev, err)
	}
	_, err = s.AppendEvent(ctx, "job_e", func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		if last == nil || last.Anchor != "span_1" {
			t.Errorf("last event lost its anchor: %+v", last)
		}
		return store.JobEvent{Seq: 2, EventID: "e2", EventType: "llm_call", EventHash: "h2", Event: []byte(`{}`), CreatedAt: t0},
			[]store.JobItem{item("r3"), item("r3")}, nil
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("item repeated within an append: %v", err)
	}
	evs, _ := s.ListEvents(ctx, "job_e")
	items, _ := s.ListItems(ctx, "job_e")
	if len(evs) != 1 || len(items) != 2 || items[0].Seq != 1 || items[1].Seq != 2 || items[0].JobID != "job_e" {
		t.Errorf("after a failed append: %d events, items %+v", len(evs), items)
	}
	if evs[0].Anchor != "span_1" {
		t.Errorf("anchor not stored: %q", evs[0].Anchor)
	}
	sentinel := errors.New("refused")
	if _, err := s.AppendEvent(ctx, "job_e", func(*store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		return store.JobEvent{}, nil, sentinel
	}); !errors.Is(err, sentinel) {
		t.Errorf("callback error not returned: %v", err)
	}
}

// testAppendIsolation appends concurrently to an open job, to a finished
// one and with callbacks that fail: only the good appends land, each
// failure reaches its own caller, and the good chain has no gap.
func testAppendIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, id := range []string{"job_ok", "job_done"} {
		if err := s.CreateJob(ctx, newJob(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetJobStatus(ctx, "job_done", store.JobOpen, store.JobFinished, t0); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("callback refused")
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				job, fail := "job_ok", i%3 == 2
				if w%3 == 0 {
					job, fail = "job_done", false
				}
				_, err := s.AppendEvent(ctx, job, func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
					if fail {
						return store.JobEvent{}, nil, refused
					}
					seq := int64(1)
					if last != nil {
						seq = last.Seq + 1
					}
					return store.JobEvent{Seq: seq, EventID: fmt.Sprint("e", seq), EventType: "x", EventHash: fmt.Sprint("h", seq), Event: []byte(`{}`), CreatedAt: t0},
						[]store.JobItem{{Kind: "k", ItemID: fmt.Sprint("i", seq), EventHash: "h", JSON: []byte(`{}`), CreatedAt: t0}}, nil
				})
				mu.Lock()
				switch {
				case err == nil:
					counts["ok"]++
				case errors.Is(err, refused):
					counts["refused"]++
				case errors.Is(err, store.ErrConflict):
					counts["closed"]++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	evs, _ := s.ListEvents(ctx, "job_ok")
	items, _ := s.ListItems(ctx, "job_ok")
	if counts["ok"] != 28 || counts["refused"] != 12 || counts["closed"] != 20 || len(evs) != 28 || len(items) != 28 {
		t.Fatalf("counts %v, %d events, %d items", counts, len(evs), len(items))
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("gap at %d", i)
		}
	}
}

func testUsage(t *testing.T, s store.Store) {
	ctx := context.Background()
	if u, err := s.GetUsage(ctx, "job_u"); err != nil || u != (store.Usage{}) {
		t.Fatalf("empty usage: %+v %v", u, err)
	}
	limit := store.Usage{Requests: 2}
	for i := 1; i <= 2; i++ {
		u, err := s.AddUsage(ctx, "job_u", store.Usage{Requests: 1}, limit)
		if err != nil || u.Requests != int64(i) {
			t.Fatalf("reserve %d: %+v %v", i, u, err)
		}
	}
	if u, err := s.AddUsage(ctx, "job_u", store.Usage{Requests: 1}, limit); !errors.Is(err, store.ErrLimit) || u.Requests != 2 {
		t.Errorf("over the limit: %+v %v", u, err)
	}
	if u, err := s.AddUsage(ctx, "job_u", store.Usage{TokensIn: 100, TokensOut: 7}, store.Usage{}); err != nil || u.TokensIn != 100 || u.Requests != 2 {
		t.Errorf("tokens: %+v %v", u, err)
	}
	if u, _ := s.GetUsage(ctx, "job_u"); u != (store.Usage{Requests: 2, TokensIn: 100, TokensOut: 7}) {
		t.Errorf("get: %+v", u)
	}
}

// testConcurrentUsage reserves from several goroutines against a limit:
// exactly the limit is granted.
func testConcurrentUsage(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				_, err := s.AddUsage(ctx, "job_cu", store.Usage{Requests: 1}, store.Usage{Requests: 25})
				if err == nil {
					mu.Lock()
					granted++
					mu.Unlock()
				} else if !errors.Is(err, store.ErrLimit) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if granted != 25 {
		t.Errorf("granted %d reservations, want 25", granted)
	}
}

// testUsageReservations checks what the model gateway's budget
// reservations rely on: a refused addition reports the usage it was
// refused against, negative additions (a reservation given back or
// settled lower) are taken without a limit, and concurrent reservations
// that are then settled leave exactly the settled usage.
func testUsageReservations(t *testing.T, s store.Store) {
	ctx := context.Background()
	limit := store.Usage{Requests: 10, TokensIn: 1000, TokensOut: 50}
	if _, err := s.AddUsage(ctx, "job_r", store.Usage{Requests: 1, TokensIn: 400, TokensOut: 30}, limit); err != nil {
		t.Fatal(err)
	}
	// 30 of 50 output tokens reserved: 25 more do not fit, and the refusal
	// tells what is used so that 20 can be reserved instead.
	u, err := s.AddUsage(ctx, "job_r", store.Usage{Requests: 1, TokensIn: 400, TokensOut: 25}, limit)
	if !errors.Is(err, store.ErrLimit) || u != (store.Usage{Requests: 1, TokensIn: 400, TokensOut: 30}) {
		t.Fatalf("refused reservation: %+v %v", u, err)
	}
	if u, err := s.AddUsage(ctx, "job_r", store.Usage{Requests: 1, TokensIn: 400, TokensOut: limit.TokensOut - u.TokensOut}, limit); err != nil || u.TokensOut != 50 {
		t.Fatalf("reservation of what is left: %+v %v", u, err)
	}
	// Give one back and settle the other lower.
	if _, err := s.AddUsage(ctx, "job_r", store.Usage{Requests: -1, TokensIn: -400, TokensOut: -20}, store.Usage{}); err != nil {
		t.Fatal(err)
	}
	if u, err := s.AddUsage(ctx, "job_r", store.Usage{TokensIn: 7 - 400, TokensOut: 4 - 30}, store.Usage{}); err != nil || u != (store.Usage{Requests: 1, TokensIn: 7, TokensOut: 4}) {
		t.Fatalf("settled: %+v %v", u, err)
	}
	// Concurrent reserve-then-settle: the counters end at the settled sum.
	var wg sync.WaitGroup
	var granted atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				_, err := s.AddUsage(ctx, "job_r2", store.Usage{Requests: 1, TokensOut: 5}, store.Usage{TokensOut: 25})
				if errors.Is(err, store.ErrLimit) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				granted.Add(1)
				if _, err := s.AddUsage(ctx, "job_r2", store.Usage{TokensOut: -3}, store.Usage{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n := granted.Load()
	if u, _ := s.GetUsage(ctx, "job_r2"); n < 5 || u != (store.Usage{Requests: n, TokensOut: 2 * n}) || u.TokensOut > 25 {
		t.Errorf("%d granted, usage %+v", n, u)
	}
}

func testGatewayCalls(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := store.GatewayCall{Nonce: "n1", JobID: "job_g", Fingerprint: "fp", CreatedAt: t0}
	got, claimed, err := s.ClaimCall(ctx, c)
	if err != nil || !claimed || got.Status != store.CallInFlight {
		t.Fatalf("claim: %+v %v %v", got, claimed, err)
	}
	got, claimed, err = s.ClaimCall(ctx, store.GatewayCall{Nonce: "n1", JobID: "job_g", Fingerprint: "other", CreatedAt: t0})
	if err != nil || claimed || got.Fingerprint != "fp" || got.JobID != "job_g" {
		t.Fatalf("second claim: %+v %v %v", got, claimed, err)
	}
	done := store.GatewayCall{Nonce: "n1", JobID: "job_g", HTTPStatus: 200, ContentType: "application/json", Body: []byte(`{"ok":true}`), Receipt: []byte(`{"r":1}`), UpdatedAt: t0.Add(time.Second)}
	if err := s.CompleteCall(ctx, done); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseCall(ctx, "job_g", "n1"); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetCall(ctx, "job_g", "n1")
	if err != nil || got.Status != store.CallDone || got.HTTPStatus != 200 || string(got.Body) != `{"ok":true}` || string(got.Receipt) != `{"r":1}` || !got.UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("completed call (release must not drop it): %+v %v", got, err)
	}
	if _, _, err := s.ClaimCall(ctx, store.GatewayCall{Nonce: "n2", JobID: "job_g", Fingerprint: "fp", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseCall(ctx, "job_g", "n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCall(ctx, "job_g", "n2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("released call still there: %v", err)
	}
	if err := s.CompleteCall(ctx, store.GatewayCall{Nonce: "n3", JobID: "job_g"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("complete unknown: %v", err)
	}
	if got, _ := s.GetCall(ctx, "job_g", "n1"); got.Body == nil {
		t.Error("body nil")
	}
	if _, _, err := s.ClaimCall(ctx, store.GatewayCall{Nonce: "n4", JobID: "job_g", Fingerprint: "fp", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCall(ctx, "job_g", "n4"); err != nil || len(got.Body) != 0 || len(got.Receipt) != 0 {
		t.Errorf("empty call: %+v %v", got, err)
	}

	// Keys are scoped to their job: job_x using job_g's keys sees a fresh
	// key, and neither job's records change through the other's calls.
	got, claimed, err = s.ClaimCall(ctx, store.GatewayCall{Nonce: "n1", JobID: "job_x", Fingerprint: "other", CreatedAt: t0})
	if err != nil || !claimed || got.JobID != "job_x" || got.Fingerprint != "other" || got.Status != store.CallInFlight {
		t.Fatalf("another job's claim of a used key: %+v %v %v", got, claimed, err)
	}
	if _, err := s.GetCall(ctx, "job_x", "n4"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("job_x read job_g's key n4: %v", err)
	}
	if err := s.CompleteCall(ctx, store.GatewayCall{Nonce: "n4", JobID: "job_x", HTTPStatus: 500}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("job_x completed job_g's call: %v", err)
	}
	if err := s.ReleaseCall(ctx, "job_x", "n4"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCall(ctx, "job_g", "n4"); err != nil || got.Status != store.CallInFlight || got.HTTPStatus != 0 {
		t.Errorf("job_x's release or completion touched job_g's call: %+v %v", got, err)
	}
	xDone := store.GatewayCall{Nonce: "n1", JobID: "job_x", HTTPStatus: 201, ContentType: "text/plain", Body: []byte("x"), Receipt: []byte(`{"r":2}`), UpdatedAt: t0}
	if err := s.CompleteCall(ctx, xDone); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCall(ctx, "job_g", "n1"); err != nil || got.HTTPStatus != 200 || string(got.Body) != `{"ok":true}` {
		t.Errorf("job_g's call after job_x completed the same key: %+v %v", got, err)
	}
	if got, err := s.GetCall(ctx, "job_x", "n1"); err != nil || got.HTTPStatus != 201 || string(got.Body) != "x" {
		t.Errorf("job_x's call: %+v %v", got, err)
	}
}

func testAgents(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.Agent{DID: "did:key:agent", Name: "finance", SealedKey: []byte{1, 2, 3}, CreatedAt: t0}
	if err := s.PutAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAgent(ctx, a); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate agent: %v", err)
	}
	got, err := s.GetAgent(ctx, a.DID)
	if err != nil || got.Name != "finance" || len(got.SealedKey) != 3 {
		t.Errorf("get agent: %+v %v", got, err)
	}
	list, _ := s.ListAgents(ctx)
	if len(list) != 1 {
		t.Errorf("agents: %d", len(list))
	}
	if _, err := s.GetAgent(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing agent: %v", err)
	}
}

func testWPCs(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetWPC(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	created := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	w := store.WPC{Hash: "hash-b", PolicyID: "p1", PolicyVersion: "2", IssuerDID: "did:key:z1",
		Payload: []byte(`{"a":1}`), Envelope: []byte(`{"e":1}`), CreatedAt: created}
	got, existed, err := s.PutWPC(ctx, w)
	if err != nil || existed {
		t.Fatalf("first put: existed=%v err=%v", existed, err)
	}
	if !got.CreatedAt.Equal(created) || string(got.Payload) != `{"a":1}` || got.PolicyID != "p1" {
		t.Fatalf("stored %+v", got)
	}
	again := w
	again.Envelope = []byte(`{"e":2}`)
	again.CreatedAt = created.Add(time.Hour)
	got, existed, err = s.PutWPC(ctx, again)
	if err != nil || !existed || string(got.Envelope) != `{"e":1}` || !got.CreatedAt.Equal(created) {
		t.Fatalf("second put must keep the first record: existed=%v %+v %v", existed, got, err)
	}
	for _, h := range []string{"hash-a", "hash-c", "hash-B"} {
		w2 := w
		w2.Hash = h
		if _, _, err := s.PutWPC(ctx, w2); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListWPCs(ctx, "", 3)
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d %v", len(list), err)
	}
	var hashes []string
	for _, x := range list {
		hashes = append(hashes, x.Hash)
	}
	if strings.Join(hashes, ",") != "hash-B,hash-a,hash-b" {
		t.Errorf("byte order: %v", hashes)
	}
	rest, err := s.ListWPCs(ctx, list[2].Hash, 10)
	if err != nil || len(rest) != 1 || rest[0].Hash != "hash-c" {
		t.Errorf("second page: %+v %v", rest, err)
	}
}

func testWPCConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, existed, err := s.PutWPC(ctx, store.WPC{Hash: "same", PolicyID: "p", PolicyVersion: "1", IssuerDID: "did:key:z",
				Payload: []byte(fmt.Sprint(i)), Envelope: []byte("{}")})
			if err != nil {
				t.Error(err)
				return
			}
			if !existed {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if fresh != 1 {
		t.Errorf("%d publishers saw a new record, want exactly 1", fresh)
	}
}

// PostgresDSN returns the DSN of a new, empty database on the test server
// (CLAWEA_TEST_POSTGRES_DSN), dropped when the test ends. Without a server
// the test is skipped, or fails when CLAWEA_REQUIRE_POSTGRES=1 (CI).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("CLAWEA_TEST_POSTGRES_DSN")
	if admin == "" {
		msg := "no PostgreSQL for tests: set CLAWEA_TEST_POSTGRES_DSN (scripts/test starts one)"
		if os.Getenv("CLAWEA_REQUIRE_POSTGRES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("test PostgreSQL at %s: %v", store.Redact(admin), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "clawea_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(admin, "/"+cfg.Database, "/"+name, 1)
}

func testApprovals(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.Approval{ID: "apv_1", JobID: "job_a", Tool: "keyvault_set_secret", Action: "keyvault:secrets.set", Resource: "kv://v/secrets/x",
		ArgsHash: "args1", PolicyHash: "pol", Summary: []byte(`{"s":1}`), Request: []byte(`{"r":1}`), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	got, existed, err := s.CreateApproval(ctx, a)
	if err != nil || existed || got.Status != store.ApprovalPending || string(got.Summary) != `{"s":1}` || !got.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("create: %+v %v %v", got, existed, err)
	}
	dup := a
	dup.ID = "apv_2"
	if got, existed, err := s.CreateApproval(ctx, dup); err != nil || !existed || got.ID != "apv_1" {
		t.Fatalf("second pending for the same call: %+v %v %v", got, existed, err)
	}
	other := a
	other.ID, other.ArgsHash = "apv_3", "args2"
	if _, existed, err := s.CreateApproval(ctx, other); err != nil || existed {
		t.Fatalf("other arguments: %v %v", existed, err)
	}
	if err := s.SetApprovalStatus(ctx, "apv_1", store.ApprovalPending, store.ApprovalAllowed, "did:key:approver", []byte(`{"d":1}`), t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetApprovalStatus(ctx, "apv_1", store.ApprovalPending, store.ApprovalDenied, "x", nil, t0); !errors.Is(err, store.ErrConflict) {
		t.Errorf("decide twice: %v", err)
	}
	if err := s.SetApprovalStatus(ctx, "nope", store.ApprovalPending, store.ApprovalDenied, "x", nil, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("decide unknown: %v", err)
	}
	got, err = s.GetApproval(ctx, "apv_1")
	if err != nil || got.Status != store.ApprovalAllowed || got.Approver != "did:key:approver" || string(got.Decision) != `{"d":1}` || !got.DecidedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("after decision: %+v %v", got, err)
	}
	if err := s.SetApprovalStatus(ctx, "apv_1", store.ApprovalAllowed, store.ApprovalUsed, "", nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetApproval(ctx, "apv_1"); got.Approver != "did:key:approver" || string(got.Decision) != `{"d":1}` || got.Status != store.ApprovalUsed {
		t.Errorf("marking used lost the decision: %+v", got)
	}
	// A new pending approval for the same call may follow a decided one.
	again := a
	again.ID, again.CreatedAt = "apv_4", t0.Add(time.Hour)
	if _, existed, err := s.CreateApproval(ctx, again); err != nil || existed {
		t.Fatalf("new request after a decision: %v %v", existed, err)
	}
	if got, err := s.FindApproval(ctx, "job_a", "keyvault_set_secret", "args1", "pol"); err != nil || got.ID != "apv_4" {
		t.Errorf("find newest: %+v %v", got, err)
	}
	if _, err := s.FindApproval(ctx, "job_b", "keyvault_set_secret", "args1", "pol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("find in another job: %v", err)
	}
	pending, _ := s.ListApprovals(ctx, store.ApprovalPending, "", 10)
	all, _ := s.ListApprovals(ctx, "", "", 10)
	if len(pending) != 2 || len(all) != 3 {
		t.Errorf("list: %d pending, %d all", len(pending), len(all))
	}
}

func testLockdownAndCounters(t *testing.T, s store.Store) {
	ctx := context.Background()
	if l, err := s.GetLockdown(ctx); err != nil || l.On {
		t.Fatalf("initial lockdown: %+v %v", l, err)
	}
	if _, err := s.SetLockdown(ctx, store.Lockdown{On: true, By: "admin", Reason: "incident", At: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetLockdown(ctx, store.Lockdown{On: false, By: "admin", Reason: "resolved", At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	l, _ := s.GetLockdown(ctx)
	log, _ := s.LockdownLog(ctx, 10)
	if l.On || l.Reason != "resolved" || len(log) != 2 || !log[1].On || log[1].Reason != "incident" || !log[1].At.Equal(t0) {
		t.Errorf("lockdown %+v log %+v", l, log)
	}
	for i := 1; i <= 3; i++ {
		if v, err := s.AddCounter(ctx, "job_a", "messages_sent", 1); err != nil || v != int64(i) {
			t.Fatalf("counter: %d %v", v, err)
		}
	}
	if v, _ := s.AddCounter(ctx, "job_a", "messages_sent", -1); v != 2 {
		t.Errorf("decrement: %d", v)
	}
	if v, _ := s.AddCounter(ctx, "job_b", "messages_sent", 0); v != 0 {
		t.Errorf("other job: %d", v)
	}
}

func testConnectorSwitches(t *testing.T, s store.Store) {
	ctx := context.Background()
	if d, err := s.DeniedConnectors(ctx); err != nil || len(d) != 0 {
		t.Fatalf("initial: %+v %v", d, err)
	}
	set := func(name string, denied bool, reason string, at time.Time) store.ConnectorSwitch {
		c, err := s.SetConnectorSwitch(ctx, store.ConnectorSwitch{Name: name, Denied: denied, By: "admin", Reason: reason, At: at})
		if err != nil || c.Seq == 0 {
			t.Fatalf("set %s: %+v %v", name, c, err)
		}
		return c
	}
	set("keyvault", true, "incident", t0)
	set("mcp:fs", true, "exfiltration", t0.Add(time.Second))
	set("servicebus", true, "x", t0.Add(2*time.Second))
	last := set("servicebus", false, "resolved", t0.Add(3*time.Second))
	d, err := s.DeniedConnectors(ctx)
	if err != nil || len(d) != 2 || d[0].Name != "keyvault" || d[1].Name != "mcp:fs" || !d[0].Denied || d[0].Reason != "incident" || d[0].By != "admin" || !d[0].At.Equal(t0) {
		t.Fatalf("denied: %+v %v", d, err)
	}
	log, err := s.ConnectorSwitchLog(ctx, 3)
	if err != nil || len(log) != 3 || log[0].Seq != last.Seq || log[0].Denied || log[0].Name != "servicebus" || log[2].Name != "mcp:fs" {
		t.Fatalf("log: %+v %v", log, err)
	}
	set("keyvault", false, "resolved", t0.Add(4*time.Second))
	if d, _ := s.DeniedConnectors(ctx); len(d) != 1 || d[0].Name != "mcp:fs" {
		t.Fatalf("after allow: %+v", d)
	}
}

func testBus(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		m, err := s.BusSend(ctx, store.BusMessage{Namespace: "ns", Entity: "q", MessageID: fmt.Sprint("m", i), Subject: "s", Body: []byte(fmt.Sprint("body", i)),
			Properties: []byte(`{"k":"v"}`), EnqueuedAt: t0})
		if err != nil || m.Seq == 0 {
			t.Fatalf("send: %+v %v", m, err)
		}
	}
	s.BusSend(ctx, store.BusMessage{Namespace: "ns", Entity: "other", MessageID: "x", EnqueuedAt: t0})
	if peek, _ := s.BusPeek(ctx, "ns", "q", 10); len(peek) != 3 || string(peek[0].Body) != "body1" || string(peek[0].Properties) != `{"k":"v"}` {
		t.Fatalf("peek: %+v", peek)
	}
	locked, err := s.BusReceive(ctx, "ns", "q", 2, time.Minute, t0)
	if err != nil || len(locked) != 2 || locked[0].LockToken == "" || locked[0].DeliveryCount != 1 || locked[0].State != store.MsgLocked {
		t.Fatalf("peek-lock: %+v %v", locked, err)
	}
	if err := s.BusSettle(ctx, "ns", "q", locked[0].LockToken, "complete", "", "", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.BusSettle(ctx, "ns", "q", locked[0].LockToken, "complete", "", "", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("settle twice: %v", err)
	}
	if err := s.BusSettle(ctx, "ns", "q", locked[1].LockToken, "deadletter", "bad", "unparsable", t0); err != nil {
		t.Fatal(err)
	}
	// The third is still there; a lock that expired makes a message
	// available again.
	l3, _ := s.BusReceive(ctx, "ns", "q", 5, time.Second, t0)
	if len(l3) != 1 || l3[0].MessageID != "m3" {
		t.Fatalf("third: %+v", l3)
	}
	if err := s.BusSettle(ctx, "ns", "q", l3[0].LockToken, "complete", "", "", t0.Add(2*time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("settle after the lock expired: %v", err)
	}
	again, _ := s.BusReceive(ctx, "ns", "q", 5, 0, t0.Add(2*time.Second))
	if len(again) != 1 || again[0].MessageID != "m3" || again[0].DeliveryCount != 2 {
		t.Fatalf("redelivery: %+v", again)
	}
	if left, _ := s.BusPeek(ctx, "ns", "q", 10); len(left) != 0 {
		t.Errorf("receive-and-delete left %d", len(left))
	}
	dead, _ := s.BusReceiveDead(ctx, "ns", "q", 10)
	if len(dead) != 1 || dead[0].DeadReason != "bad" || dead[0].DeadDesc != "unparsable" {
		t.Fatalf("dead letters: %+v", dead)
	}
	s.BusSend(ctx, store.BusMessage{Namespace: "ns", Entity: "q", MessageID: "m4", EnqueuedAt: t0})
	m4, _ := s.BusReceive(ctx, "ns", "q", 1, time.Minute, t0)
	s.BusSettle(ctx, "ns", "q", m4[0].LockToken, "abandon", "", "", t0)
	m4b, _ := s.BusReceive(ctx, "ns", "q", 1, time.Minute, t0)
	if len(m4b) != 1 || m4b[0].DeliveryCount != 2 {
		t.Fatalf("abandon: %+v", m4b)
	}
	s.BusSettle(ctx, "ns", "q", m4b[0].LockToken, "deadletter", "r", "", t0)
	if n, err := s.BusPurgeDead(ctx, "ns", "q"); err != nil || n != 1 {
		t.Errorf("purge: %d %v", n, err)
	}
	if other, _ := s.BusPeek(ctx, "ns", "other", 10); len(other) != 1 {
		t.Errorf("another entity was touched: %d", len(other))
	}
}

// testConcurrentReceive: receivers never get the same message twice.
func testConcurrentReceive(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := 0; i < 40; i++ {
		s.BusSend(ctx, store.BusMessage{Namespace: "ns", Entity: "c", MessageID: fmt.Sprint(i), EnqueuedAt: t0})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msgs, err := s.BusReceive(ctx, "ns", "c", 3, 0, t0)
				if err != nil {
					t.Error(err)
					return
				}
				if len(msgs) == 0 {
					return
				}
				mu.Lock()
				for _, m := range msgs {
					seen[m.MessageID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Errorf("received %d distinct messages", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s received %d times", id, n)
		}
	}
}

// testPreparedAppend checks a back end's prepared appends: taken as they
// are while the head holds, and otherwise the same as AppendEvent (next
// rebuilds on the real head; closed and unknown jobs and repeated items
// are refused with AppendEvent's errors).
func testPreparedAppend(t *testing.T, s store.Store) {
	ctx := context.Background()
	pa := s.(store.PreparedAppender)
	if err := s.CreateJob(ctx, newJob("job_p")); err != nil {
		t.Fatal(err)
	}
	mk := func(seq int64) store.JobEvent {
		return store.JobEvent{Seq: seq, EventID: fmt.Sprintf("e%d", seq), EventType: "llm_call", EventHash: fmt.Sprintf("h%d", seq), Event: []byte(`{}`), CreatedAt: t0}
	}
	item := func(id string) store.JobItem {
		return store.JobItem{Kind: "gateway_receipt", ItemID: id, EventHash: "h", JSON: []byte(`{"id":"` + id + `"}`), CreatedAt: t0}
	}
	var calls []*store.JobEvent
	next := func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		calls = append(calls, last)
		seq := int64(1)
		if last != nil {
			seq = last.Seq + 1
		}
		return mk(seq), []store.JobItem{item(fmt.Sprint("rebuilt", seq))}, nil
	}
	// The head holds: first event, then the second on it.
	e1, err := pa.AppendPrepared(ctx, "job_p", nil, mk(1), []store.JobItem{item("r1")}, next)
	if err != nil || e1.Seq != 1 || e1.JobID != "job_p" {
		t.Fatalf("first prepared append: %+v %v", e1, err)
	}
	e2, err := pa.AppendPrepared(ctx, "job_p", &e1, mk(2), []store.JobItem{item("r2")}, next)
	if err != nil || e2.Seq != 2 {
		t.Fatalf("second prepared append: %+v %v", e2, err)
	}
	// A stale head (seq 1 again), and a head with the right number but
	// another hash: next rebuilds on the real head each time.
	stale := e1
	wrongHash := e2
	wrongHash.EventHash = "other"
	for i, head := range []*store.JobEvent{&stale, &wrongHash, nil} {
		calls = nil
		want, seq := int64(3+i), int64(1)
		if head != nil {
			seq = head.Seq + 1
		}
		ev, err := pa.AppendPrepared(ctx, "job_p", head, mk(seq), nil, next)
		if err != nil || ev.Seq != want || len(calls) != 1 || calls[0] == nil || calls[0].Seq != want-1 {
			t.Fatalf("head %d: %+v %v (next saw %v)", i, ev, err, calls)
		}
	}
	// An event that does not follow its head (a gap): next rebuilds.
	calls = nil
	last := mustLast(t, s, "job_p")
	ev, err := pa.AppendPrepared(ctx, "job_p", &last, mk(last.Seq+3), nil, next)
	if err != nil || ev.Seq != last.Seq+1 || len(calls) != 1 {
		t.Fatalf("prepared event with a gap: %+v %v (next called %d times)", ev, err, len(calls))
	}
	evs, _ := s.ListEvents(ctx, "job_p")
	items, _ := s.ListItems(ctx, "job_p")
	if len(evs) != 6 || len(items) != 6 || items[0].ItemID != "r1" || items[2].ItemID != "rebuilt3" {
		t.Fatalf("after prepared appends: %d events, %d items %+v", len(evs), len(items), items)
	}
	// Repeated items, an unknown job, a closed job.
	last = evs[len(evs)-1]
	if _, err := pa.AppendPrepared(ctx, "job_p", &last, mk(7), []store.JobItem{item("x"), item("x")}, func(*store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		return mk(7), []store.JobItem{item("x"), item("x")}, nil
	}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("repeated items: %v", err)
	}
	if _, err := pa.AppendPrepared(ctx, "job_nope", nil, mk(1), nil, next); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	if err := s.SetJobStatus(ctx, "job_p", store.JobOpen, store.JobFinished, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := pa.AppendPrepared(ctx, "job_p", &last, mk(7), nil, next); !errors.Is(err, store.ErrConflict) {
		t.Errorf("closed job: %v", err)
	}
	if evs, _ := s.ListEvents(ctx, "job_p"); len(evs) != 6 {
		t.Errorf("refused appends stored events: %d", len(evs))
	}
}

func mustLast(t *testing.T, s store.Store, jobID string) store.JobEvent {
	t.Helper()
	evs, err := s.ListEvents(context.Background(), jobID)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events of %s: %d, %v", jobID, len(evs), err)
	}
	return evs[len(evs)-1]
}

func testPolicyLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got, err := s.PolicyChangesSince(ctx, 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty log: %v %v", got, err)
	}
	h1, h2 := strings.Repeat("A", 43), strings.Repeat("B", 43)
	changes := []store.PolicyChange{
		{Action: store.PolicyApprove, PolicyHash: h1, Actor: "did:key:zOp", Statement: []byte(`{"a":1}`), Signature: "sig1", At: t0},
		{Action: store.PolicyFreeze, Hashes: []string{h1}, Actor: "did:key:zOp", Reason: "incident", Statement: []byte(`{"a":2}`), Signature: "sig2", At: t0.Add(time.Second)},
		{Action: store.PolicySupersede, PolicyHash: h1, Hashes: []string{h2}, Actor: "admin-token", At: t0.Add(2 * time.Second)},
		{Action: store.PolicyApprove, PolicyHash: h1, Actor: "did:key:zOp", Statement: []byte(`{"a":3}`), Signature: "sig3", At: t0.Add(3 * time.Second)},
		{Action: store.PolicyUnfreeze, Actor: "admin-token", At: t0.Add(4 * time.Second)},
	}
	var last int64
	for i, c := range changes {
		got, err := s.AddPolicyChange(ctx, c)
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if got.Seq <= last {
			t.Fatalf("change %d: seq %d after %d", i, got.Seq, last)
		}
		last = got.Seq
	}
	// A replayed signed statement is refused; unsigned changes may repeat.
	if _, err := s.AddPolicyChange(ctx, changes[0]); !errors.Is(err, store.ErrConflict) {
		t.Errorf("replayed statement: %v", err)
	}
	if _, err := s.AddPolicyChange(ctx, store.PolicyChange{Action: store.PolicyUnfreeze, Actor: "admin-token", At: t0}); err != nil {
		t.Errorf("unsigned repeat: %v", err)
	}
	all, err := s.PolicyChangesSince(ctx, 0, 100)
	if err != nil || len(all) != 6 {
		t.Fatalf("log: %d %v", len(all), err)
	}
	c := all[1]
	if c.Action != store.PolicyFreeze || len(c.Hashes) != 1 || c.Hashes[0] != h1 || c.Reason != "incident" || string(c.Statement) != `{"a":2}` ||
		c.Signature != "sig2" || c.Actor != "did:key:zOp" || !c.At.Equal(t0.Add(time.Second)) {
		t.Errorf("freeze change read back as %+v", c)
	}
	if all[2].Statement != nil || all[2].Hashes[0] != h2 || all[0].Hashes != nil {
		t.Errorf("empty fields: %+v %+v", all[2], all[0])
	}
	if page, _ := s.PolicyChangesSince(ctx, all[3].Seq, 100); len(page) != 2 || page[0].Seq != all[4].Seq {
		t.Errorf("since: %+v", page)
	}
	if page, _ := s.PolicyChangesSince(ctx, 0, 2); len(page) != 2 {
		t.Errorf("limit: %d", len(page))
	}
	b, err := store.ReadPolicyBook(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	st1 := b.Status(h1)
	if st1.Status != store.PolicyRetired || st1.SupersededBy != h2 || st1.Approval == nil || st1.Approval.Signature != "sig1" || len(st1.Changes) != 4 {
		t.Errorf("h1: %+v", st1)
	}
	if b.Freeze.On || !b.Freeze.Allows(h2) || b.Status(h2).Status != store.PolicyPublished {
		t.Errorf("freeze %+v h2 %+v", b.Freeze, b.Status(h2))
	}
}

// testConcurrentPolicyChanges: a follower reading "after seq" sees every
// change, even when appends race.
func testConcurrentPolicyChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	const n = 40
	seen := map[int64]bool{}
	var after int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			page, err := s.PolicyChangesSince(ctx, after, 1000)
			if err != nil {
				t.Error(err)
				return
			}
			for _, c := range page {
				seen[c.Seq] = true
				after = c.Seq
			}
		}
	}()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := s.AddPolicyChange(ctx, store.PolicyChange{Action: store.PolicyRetire, PolicyHash: fmt.Sprintf("%043d", i), Actor: "x", At: t0}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	close(stop)
	<-done
	page, _ := s.PolicyChangesSince(ctx, after, 1000)
	for _, c := range page {
		seen[c.Seq] = true
	}
	if len(seen) != n {
		t.Errorf("follower saw %d of %d changes", len(seen), n)
	}
}
