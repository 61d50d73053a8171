package toolgw

import (
	"testing"
	"time"

	"github.com/clawea/clawea/internal/metrics"
	"github.com/clawea/clawea/token"
)

func testJob(id string) *Job {
	return &Job{Token: &token.Verified{JobID: id, TokenHash: "th-" + id}}
}

// openOne reserves and keeps an open decision.
func openOne(t *testing.T, d *decisions, id, jobID string, size int, now time.Time) *decided {
	t.Helper()
	if e := d.reserve(jobID, size, now); e != nil {
		t.Fatalf("reserve %s: %v", id, e)
	}
	x := &decided{id: id, jobID: jobID, tokenHash: "th-" + jobID, tool: "openclaw/read", action: ActionToolExecute,
		resource: "tool://openclaw/read", args: []byte(`{}`), at: now, expires: now.Add(time.Minute), size: size}
	d.putOpen(x, now)
	return x
}

// TestDecideStateAccounting: reservations, closes and sweeps keep the
// per-job and global counts exact; a close that never returned is swept
// past its expiry plus closingGrace, and its late release changes nothing.
func TestDecideStateAccounting(t *testing.T) {
	d := newDecisions(metrics.NewRegistry())
	d.perJob, d.perJobBytes, d.maxOpen, d.maxBytes = 2, 1000, 3, 10_000
	now := time.Unix(1_700_000_000, 0)
	openOne(t, d, "a1", "A", 100, now)
	openOne(t, d, "a2", "A", 100, now)
	if e := d.reserve("A", 100, now); e == nil || e.Code != CodeDecisionsFull || e.Status != 429 {
		t.Fatalf("job A past its count: %v", e)
	}
	if e := d.reserve("B", 1001, now); e == nil || e.Status != 429 {
		t.Fatalf("a decision over a job's bytes: %v", e)
	}
	openOne(t, d, "b1", "B", 100, now)
	if e := d.reserve("C", 100, now); e == nil || e.Code != CodeDecisionsFull || e.Status != 503 {
		t.Fatalf("every job past the global count: %v", e)
	}
	// A reservation given back leaves no trace.
	d.maxOpen = 4
	if e := d.reserve("C", 100, now); e != nil {
		t.Fatal(e)
	}
	d.unreserve("C", 100)
	if d.open != 3 || d.bytes != 300 || d.jobs["C"] != nil {
		t.Fatalf("after unreserve: open %d bytes %d jobs %v", d.open, d.bytes, d.jobs)
	}
	// Closed: a tombstone, the bytes given back.
	x, e := d.claim("a1", testJob("A"), now)
	if e != nil {
		t.Fatal(e)
	}
	d.release(x.id, true)
	if d.open != 2 || d.bytes != 200 || d.jobs["A"].n != 1 || d.ntomb != 1 || d.m["a1"].args != nil {
		t.Fatalf("after close: open %d bytes %d A %+v tombs %d", d.open, d.bytes, d.jobs["A"], d.ntomb)
	}
	if _, e := d.claim("a1", testJob("A"), now); e == nil || e.Code != CodeDecisionClosed {
		t.Fatalf("closed again: %v", e)
	}
	// Stuck closing: kept until expiry + closingGrace, then swept.
	if _, e := d.claim("a2", testJob("A"), now); e != nil {
		t.Fatal(e)
	}
	d.sweepLocked(now.Add(time.Minute + closingGrace - time.Second))
	if d.m["a2"] == nil {
		t.Fatal("a closing decision swept before its grace")
	}
	d.sweepLocked(now.Add(time.Minute + closingGrace + time.Second))
	if d.m["a2"] != nil || d.m["b1"] != nil || d.m["a1"] != nil || d.open != 0 || d.bytes != 0 || len(d.jobs) != 0 || d.ntomb != 0 || len(d.tombs) != 0 {
		t.Fatalf("after the sweep: %d kept, open %d bytes %d jobs %v tombs %d/%d", len(d.m), d.open, d.bytes, d.jobs, d.ntomb, len(d.tombs))
	}
	d.release("a2", true) // the stuck close returns at last
	if d.open != 0 || d.ntomb != 0 || d.m["a2"] != nil {
		t.Fatalf("a late release changed the counts: open %d tombs %d", d.open, d.ntomb)
	}
}

// TestDecideTombstoneBound: past maxTombs the oldest tombstone goes
// (its late result is DECISION_NOT_FOUND); open decisions are not touched.
func TestDecideTombstoneBound(t *testing.T) {
	d := newDecisions(metrics.NewRegistry())
	d.maxTombs = 3
	now := time.Unix(1_700_000_000, 0)
	openOne(t, d, "open", "A", 100, now)
	for _, id := range []string{"d1", "d2", "d3", "d4"} {
		d.putTomb(&decided{id: id, jobID: "A", tokenHash: "th-A", state: decisionDenied, expires: now.Add(time.Minute)}, now)
	}
	if d.ntomb != 3 || d.m["d1"] != nil || d.m["d4"] == nil || d.m["open"] == nil {
		t.Fatalf("tombstones %d, d1 kept %v", d.ntomb, d.m["d1"] != nil)
	}
	if _, e := d.claim("d1", testJob("A"), now); e == nil || e.Code != CodeDecisionNotFound {
		t.Errorf("evicted tombstone: %v", e)
	}
	if _, e := d.claim("d4", testJob("A"), now); e == nil || e.Code != CodeDecisionNotAllowed {
		t.Errorf("denied: %v", e)
	}
}

func TestDecideDisclosableCode(t *testing.T) {
	for code, want := range map[string]bool{"ENOENT": true, "E": true, "EXIT_1": true, "A234567890123456789012345678901B": true,
		"A2345678901234567890123456789012X": false, "": false, "enoent": false, "1ABC": false, "_A": false, "A-B": false, "A.B": false, "A:B": false} {
		if disclosableCode(code) != want {
			t.Errorf("disclosableCode(%q) != %v", code, want)
		}
	}
}
