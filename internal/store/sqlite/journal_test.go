package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/store"
)

// chainer appends to jobs the way evidence.Chain does: a prepared append on
// the head it saw last, whose event names the previous event's hash, and
// a rebuild on the real head when that moved.
type chainer struct {
	db    *DB
	mu    sync.Mutex
	heads map[string]*store.JobEvent
}

func newChainer(db *DB) *chainer { return &chainer{db: db, heads: map[string]*store.JobEvent{}} }

func mkEvent(jobID string, last *store.JobEvent) (store.JobEvent, []store.JobItem) {
	seq, prev := int64(1), ""
	if last != nil {
		seq, prev = last.Seq+1, last.EventHash
	}
	hash := fmt.Sprintf("h-%s-%d-%d", jobID, seq, time.Now().UnixNano())
	ev := store.JobEvent{Seq: seq, EventID: fmt.Sprintf("evt_%06d", seq), EventType: "llm_call", EventHash: hash,
		Event: []byte(fmt.Sprintf(`{"prev":%q,"hash":%q}`, prev, hash)), Payload: []byte(`{"p":1}`), CreatedAt: time.Now()}
	return ev, []store.JobItem{{Kind: "gateway_receipt", ItemID: "r-" + hash, EventHash: hash, JSON: []byte(`{"r":"` + hash + `"}`), CreatedAt: time.Now()}}
}

func (c *chainer) append(t testing.TB, jobID string) (store.JobEvent, error) {
	c.mu.Lock()
	head, known := c.heads[jobID]
	c.mu.Unlock()
	next := func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		ev, items := mkEvent(jobID, last)
		return ev, items, nil
	}
	var ev store.JobEvent
	var err error
	if known {
		pre, items := mkEvent(jobID, head)
		ev, err = c.db.AppendPrepared(context.Background(), jobID, head, pre, items, next)
	} else {
		ev, err = c.db.AppendEvent(context.Background(), jobID, next)
	}
	c.mu.Lock()
	if err == nil {
		c.heads[jobID] = &ev
	} else {
		delete(c.heads, jobID)
	}
	c.mu.Unlock()
	return ev, err
}

// checkChain fails unless the job's events are numbered 1..n and each names
// the previous one's hash.
func checkChain(t testing.TB, db *DB, jobID string, n int) {
	t.Helper()
	evs, err := db.ListEvents(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n {
		t.Fatalf("job %s has %d events, want %d", jobID, len(evs), n)
	}
	prev := ""
	for i, e := range evs {
		if e.Seq != int64(i+1) || !bytes.Contains(e.Event, []byte(fmt.Sprintf(`{"prev":%q,`, prev))) {
			t.Fatalf("job %s event %d (seq %d) does not follow %q: %s", jobID, i, e.Seq, prev, e.Event)
		}
		prev = e.EventHash
	}
	items, err := db.ListItems(context.Background(), jobID)
	if err != nil || len(items) != n {
		t.Fatalf("job %s has %d items (%v), want %d", jobID, len(items), err, n)
	}
}

func openJob(t testing.TB, path string, jobs ...string) *DB {
	t.Helper()
	if !journalSupported {
		t.Skip("no event journal on this system")
	}
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range jobs {
		if err := db.CreateJob(context.Background(), store.Job{ID: id, AgentDID: "did:key:a", PolicyHash: "p", ScopeHash: "s", TokenHash: "t" + id,
			Status: store.JobOpen, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// crash drops the process's state as a kill would: queued records are
// never inserted, the lease goes with the file descriptors.
func (s *DB) crash() {
	s.jn.mu.Lock()
	s.jn.closed = true
	s.jn.mu.Unlock()
	s.jn.f.Close()
	s.jn.lf.Close()
	s.db.Close()
	s.w.Close()
}

// crashedWithJournal makes a database whose job "a" has one event stored
// and n more journaled but not inserted when its process died; it returns
// the database's path.
func crashedWithJournal(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clawea.db")
	db := openJob(t, path, "a")
	c := newChainer(db)
	c.append(t, "a")
	db.jn.pause()
	for range n {
		if _, err := c.append(t, "a"); err != nil {
			t.Fatal(err)
		}
	}
	db.crash()
	return path
}

// reopen opens the database at path, closing it when the test ends.
func reopen(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (j *journal) pause() {
	j.mu.Lock()
	j.paused = true
	j.mu.Unlock()
}

func (j *journal) resume() {
	j.mu.Lock()
	j.paused = false
	j.kick()
	j.mu.Unlock()
}

func (j *journal) count() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return int64(j.written)
}

func TestJournalAppends(t *testing.T) {
	db := openJob(t, filepath.Join(t.TempDir(), "clawea.db"), "j")
	defer db.Close()
	c := newChainer(db)
	for range 50 {
		if _, err := c.append(t, "j"); err != nil {
			t.Fatal(err)
		}
	}
	// The first append learns the head in a transaction; the rest are
	// journaled.
	if n := db.jn.count(); n != 49 {
		t.Fatalf("%d of 49 appends were journaled", n)
	}
	checkChain(t, db, "j", 50)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(db.path + "-events"); err != nil || st.Size() != 0 {
		t.Fatalf("journal after close: %v %v", st, err)
	}
}

// TestJournalInsertsAlone: journaled records reach the database within
// insertDelay when nobody reads them (nothing waits for a reader to ask),
// which may insert several in one transaction.
func TestJournalInsertsAlone(t *testing.T) {
	db := openJob(t, filepath.Join(t.TempDir(), "clawea.db"), "j")
	defer db.Close()
	c := newChainer(db)
	for range 5 {
		if _, err := c.append(t, "j"); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for {
		db.jn.mu.Lock()
		done, queued := db.jn.committed == db.jn.written, len(db.jn.queue)
		db.jn.mu.Unlock()
		if done {
			break
		}
		if queued == 0 || time.Since(start) > 10*time.Second {
			t.Fatalf("journaled records not inserted after %v (%d queued)", time.Since(start), queued)
		}
		time.Sleep(time.Millisecond)
	}
	var rows int
	if err := db.db.QueryRow(`SELECT COUNT(*) FROM job_events WHERE job_id = 'j'`).Scan(&rows); err != nil || rows != 5 {
		t.Fatalf("%d rows, %v", rows, err)
	}
}

// TestJournalReadersDoNotWait: a read, a status change and Close each
// have the journal inserted at once instead of waiting out insertDelay.
func TestJournalReadersDoNotWait(t *testing.T) {
	defer func(d time.Duration) { insertDelay = d }(insertDelay)
	insertDelay = time.Hour
	path := filepath.Join(t.TempDir(), "clawea.db")
	db := openJob(t, path, "j", "k")
	c := newChainer(db)
	within := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s waited for the insert delay", what)
		}
	}
	for range 3 {
		c.append(t, "j")
		c.append(t, "k")
	}
	within("a read", func() {
		if evs, err := db.ListEvents(context.Background(), "j"); err != nil || len(evs) != 3 {
			t.Errorf("%d events, %v", len(evs), err)
		}
	})
	c.append(t, "k")
	within("a status change", func() {
		if err := db.SetJobStatus(context.Background(), "j", store.JobOpen, store.JobFinished, time.Now()); err != nil {
			t.Error(err)
		}
	})
	c.append(t, "k")
	within("Close", func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	db2 := reopen(t, path)
	checkChain(t, db2, "k", 5)
}

// TestJournalReplay kills a process with journaled appends not yet in the
// database; the next open replays them, and a torn last record (a write
// that never finished, so was never acknowledged) is dropped.
func TestJournalReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clawea.db")
	db := openJob(t, path, "a", "b")
	c := newChainer(db)
	for _, j := range []string{"a", "b"} {
		if _, err := c.append(t, j); err != nil {
			t.Fatal(err)
		}
	}
	db.jn.pause()
	for range 10 {
		for _, j := range []string{"a", "b"} {
			if _, err := c.append(t, j); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := db.jn.count(); n != 20 {
		t.Fatalf("%d of 20 appends were journaled", n)
	}
	var raw int
	db.db.QueryRow(`SELECT COUNT(*) FROM job_events`).Scan(&raw)
	if raw != 2 {
		t.Fatalf("%d events in the database before the crash, want 2", raw)
	}
	db.crash()
	f, err := os.OpenFile(path+"-events", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3})
	f.Close()

	db2 := reopen(t, path)
	checkChain(t, db2, "a", 11)
	checkChain(t, db2, "b", 11)
	if st, err := os.Stat(path + "-events"); err != nil || st.Size() != 0 {
		t.Fatalf("journal after replay: %v %v", st, err)
	}
	// Appends go on from the replayed heads.
	c2 := newChainer(db2)
	for range 3 {
		if _, err := c2.append(t, "a"); err != nil {
			t.Fatal(err)
		}
	}
	checkChain(t, db2, "a", 14)
}

// TestJournalDamage: a damaged record before the end stops the open with
// an error naming the file, which is kept; moving the file aside loses its
// records, so the open after that needs the loss accepted.
func TestJournalDamage(t *testing.T) {
	path := crashedWithJournal(t, 3)
	data, err := os.ReadFile(path + "-events")
	if err != nil {
		t.Fatal(err)
	}
	data[20] ^= 0xff // inside the first record
	os.WriteFile(path+"-events", data, 0o600)
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "-events") {
		t.Fatalf("open with a damaged journal: %v", err)
	}
	if after, _ := os.ReadFile(path + "-events"); !bytes.Equal(after, data) {
		t.Fatal("the damaged journal was changed")
	}
	// Moving the file aside loses its records: the next open says so and
	// needs the loss accepted.
	os.Rename(path+"-events", path+"-events.damaged")
	if _, err := Open(context.Background(), path); !errors.Is(err, ErrJournalLoss) {
		t.Fatalf("open after moving the journal aside: %v", err)
	}
	log, _ := lossLog()
	db2, err := OpenWith(context.Background(), path, Options{AcceptJournalLoss: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	checkChain(t, db2, "a", 1)
}

// TestJournalWrittenBehindItsBack: if the chain changes without the lease
// (here a direct SQL update closing the job), the insert of a journaled
// record fails and the store fails closed instead of dropping it.
func TestJournalWrittenBehindItsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clawea.db")
	db := openJob(t, path, "a")
	c := newChainer(db)
	c.append(t, "a")
	db.jn.pause()
	if _, err := c.append(t, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.Exec(`UPDATE jobs SET status = 'finished' WHERE id = 'a'`); err != nil {
		t.Fatal(err)
	}
	db.jn.resume()
	if _, err := db.ListEvents(context.Background(), "a"); !errors.Is(err, ErrJournal) {
		t.Fatalf("read after a failed insert: %v", err)
	}
	if _, err := c.append(t, "a"); !errors.Is(err, ErrJournal) {
		t.Fatalf("append after a failed insert: %v", err)
	}
	if err := db.SetJobStatus(context.Background(), "a", store.JobOpen, store.JobFinished, time.Now()); !errors.Is(err, ErrJournal) {
		t.Fatalf("status change after a failed insert: %v", err)
	}
	if err := db.Close(); !errors.Is(err, ErrJournal) {
		t.Fatalf("close: %v", err)
	}
	if _, err := Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "replaying event 2 of job a") {
		t.Fatalf("reopen: %v", err)
	}
}

// TestJournalTwoProcesses runs two stores on one file, as two processes
// would: they take turns with the lease, and a head one learned is not
// trusted after the other wrote.
func TestJournalTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clawea.db")
	a := openJob(t, path, "j", "k")
	defer a.Close()
	b, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ca, cb := newChainer(a), newChainer(b)
	for range 5 {
		if _, err := ca.append(t, "j"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cb.append(t, "j"); err != nil { // waits for a's inserts
		t.Fatal(err)
	}
	before := a.jn.count()
	if _, err := ca.append(t, "j"); err != nil { // a's head is stale
		t.Fatal(err)
	}
	if a.jn.count() != before {
		t.Fatal("a journaled on a head another process had moved")
	}
	checkChain(t, a, "j", 7)
	// Concurrent writers in both, on both jobs.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, c := range []*chainer{ca, cb} {
		for _, job := range []string{"j", "k"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 40 {
					if _, err := c.append(t, job); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b.jn.settle()
	checkChain(t, a, "j", 87)
	checkChain(t, a, "k", 80)
	// b closes the job; a, whose journal knows it as open, must not take
	// another event.
	if err := b.SetJobStatus(context.Background(), "j", store.JobOpen, store.JobFinishing, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.append(t, "j"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("append to a job another process closed: %v", err)
	}
}

// TestJournalStatusChange: closing a job waits for its journaled events
// and keeps later ones out.
func TestJournalStatusChange(t *testing.T) {
	db := openJob(t, filepath.Join(t.TempDir(), "clawea.db"), "j")
	defer db.Close()
	c := newChainer(db)
	for range 20 {
		if _, err := c.append(t, "j"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetJobStatus(context.Background(), "j", store.JobOpen, store.JobFinishing, time.Now()); err != nil {
		t.Fatal(err)
	}
	checkChain(t, db, "j", 20)
	if _, err := c.append(t, "j"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("append after the job closed: %v", err)
	}
}

// TestJournalConcurrent mixes journaled appends, transactions, reads and
// status changes on many jobs (run with -race).
func TestJournalConcurrent(t *testing.T) {
	jobs := []string{"a", "b", "c", "d", "e", "f"}
	db := openJob(t, filepath.Join(t.TempDir(), "clawea.db"), append(jobs, "z")...)
	defer db.Close()
	c := newChainer(db)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	// Four writers on z without taking turns (nothing in the store may
	// rely on callers doing so): stale prepared appends must be rebuilt.
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 60 {
				if _, err := c.append(t, "z"); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts["z"]++
				mu.Unlock()
			}
		}()
	}
	defer func() { checkChain(t, db, "z", counts["z"]) }()
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				if i%10 == 9 {
					// Forget the head now and then: a transaction relearns it.
					c.mu.Lock()
					delete(c.heads, job)
					c.mu.Unlock()
				}
				if _, err := c.append(t, job); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts[job]++
				mu.Unlock()
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := db.ListEvents(context.Background(), job); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, job := range jobs {
		checkChain(t, db, job, counts[job])
	}
	if db.jn.count() == 0 {
		t.Fatal("nothing was journaled")
	}
}

func FuzzJournalRecords(f *testing.F) {
	ev, items := mkEvent("job", nil)
	rec := appendRecord(nil, &jrec{ev: ev, items: []byte(items[0].JSON), headHash: "h0"})
	f.Add(rec)
	f.Add(append(append([]byte{}, rec...), rec[:10]...))
	f.Add([]byte{})
	f.Add(rec[8:])
	f.Fuzz(func(t *testing.T, data []byte) {
		// data as a whole journal, and as one record's body under a valid
		// length and checksum (so that the body parser is reached).
		framed := binary.LittleEndian.AppendUint32(nil, uint32(len(data)))
		framed = binary.LittleEndian.AppendUint32(framed, crc32.Checksum(data, crcTable))
		for _, in := range [][]byte{data, append(framed, data...)} {
			roundTrip(t, in)
		}
	})
}

// roundTrip checks that what decodes encodes to records that decode the
// same.
func roundTrip(t *testing.T, data []byte) {
	recs, tl, err := decodeRecords(data)
	if err != nil {
		return
	}
	if tl != nil && (tl.Offset+tl.Bytes != int64(len(data)) || tl.Bytes <= 0) {
		t.Fatalf("tail %+v does not end the %d bytes", tl, len(data))
	}
	var out []byte
	for _, r := range recs {
		n := len(out)
		out = appendRecord(out, r)
		if len(out)-n > r.size() {
			t.Fatalf("a record of %d bytes exceeds its size bound %d", len(out)-n, r.size())
		}
	}
	again, _, err := decodeRecords(out)
	if err != nil || !reflect.DeepEqual(again, recs) {
		t.Fatalf("re-encoded records decode differently: %v", err)
	}
}

// TestJournalZeroTail: zeros after the last record (a file extended before
// its data reached the disk) end the journal; they are not damage.
func TestJournalZeroTail(t *testing.T) {
	path := crashedWithJournal(t, 3)
	f, err := os.OpenFile(path+"-events", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 4096))
	f.Close()
	db2 := reopen(t, path)
	checkChain(t, db2, "a", 4)
}

// TestJournalMovedAside: an operator moves the journal aside while a
// process runs. The process must leave that file alone and journal into
// a new one at the path, where the next process finds its records.
func TestJournalMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clawea.db")
	db := openJob(t, path, "a")
	c := newChainer(db)
	c.append(t, "a")
	db.jn.settle()
	time.Sleep(3 * leaseLinger) // the lease goes back
	kept := []byte("kept for inspection")
	if err := os.Rename(path+"-events", path+"-events.aside"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-events.aside", kept, 0o600); err != nil {
		t.Fatal(err)
	}
	db.jn.pause()
	for range 3 {
		if _, err := c.append(t, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.jn.count(); n != 3 {
		t.Fatalf("%d of 3 appends journaled", n)
	}
	db.crash()
	if got, _ := os.ReadFile(path + "-events.aside"); !bytes.Equal(got, kept) {
		t.Fatalf("the file moved aside changed: %q", got)
	}
	db2 := reopen(t, path)
	checkChain(t, db2, "a", 4)
}

// TestEvidenceMustBeJSON: evidence that canon.Parse would refuse is
// refused by every path that stores it, and nothing is stored.
func TestEvidenceMustBeJSON(t *testing.T) {
	db := openJob(t, filepath.Join(t.TempDir(), "clawea.db"), "j")
	defer db.Close()
	for _, bad := range []string{`{`, "\"\xff\"", `{"a":1}x`} {
		it := store.JobItem{JobID: "j", Kind: "gateway_receipt", ItemID: "r1", EventHash: "h", JSON: []byte(bad), CreatedAt: time.Now()}
		if _, err := db.AddItem(context.Background(), it); err == nil || !strings.Contains(err.Error(), "not JSON") {
			t.Errorf("AddItem(%q): %v", bad, err)
		}
		if _, err := encodeItems([]store.JobItem{it}); err == nil {
			t.Errorf("encodeItems(%q) accepted it", bad)
		}
	}
	if items, err := db.ListItems(context.Background(), "j"); err != nil || len(items) != 0 {
		t.Fatalf("%d items stored, %v", len(items), err)
	}
}

// lossLog captures what the journal logs.
func lossLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// TestJournalDamagedLastRecord: a whole last record with a wrong checksum
// may have been acknowledged. Open refuses, naming the job and the event,
// and keeps the file; with AcceptJournalLoss it opens without that event
// and logs the loss.
func TestJournalDamagedLastRecord(t *testing.T) {
	path := crashedWithJournal(t, 3)
	data, err := os.ReadFile(path + "-events")
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-3] ^= 0xff // inside the last record (event 4)
	os.WriteFile(path+"-events", data, 0o600)
	_, err = Open(context.Background(), path)
	var le *JournalLossError
	if !errors.Is(err, ErrJournalLoss) || !errors.Is(err, ErrJournal) || !errors.As(err, &le) {
		t.Fatalf("open with a damaged last record: %v", err)
	}
	if le.JobID != "a" || le.Seq != 4 || !strings.Contains(err.Error(), "event 4 of job a") {
		t.Fatalf("the error does not name the lost event: %+v: %v", le, err)
	}
	if after, _ := os.ReadFile(path + "-events"); !bytes.Equal(after, data) {
		t.Fatal("the damaged journal was changed")
	}
	log, buf := lossLog()
	db, err := OpenWith(context.Background(), path, Options{AcceptJournalLoss: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkChain(t, db, "a", 3)
	if !strings.Contains(buf.String(), "job_id=a seq=4") || !strings.Contains(buf.String(), "ERROR") {
		t.Fatalf("the accepted loss was not logged: %q", buf.String())
	}
}

// TestJournalEmptied: a journal emptied while it held records that were
// not inserted is noticed by the next process (the lease file's dirty
// mark), which refuses to open unless the loss is accepted.
func TestJournalEmptied(t *testing.T) {
	path := crashedWithJournal(t, 3)
	if err := os.Truncate(path+"-events", 0); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path)
	var le *JournalLossError
	if !errors.Is(err, ErrJournalLoss) || !errors.As(err, &le) || !le.Emptied {
		t.Fatalf("open with an emptied journal: %v", err)
	}
	// Removing the file is the same.
	os.Remove(path + "-events")
	if _, err := Open(context.Background(), path); !errors.Is(err, ErrJournalLoss) {
		t.Fatalf("open with a removed journal: %v", err)
	}
	log, buf := lossLog()
	db, err := OpenWith(context.Background(), path, Options{AcceptJournalLoss: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, db, "a", 1)
	if !strings.Contains(buf.String(), "emptied=true") {
		t.Fatalf("the accepted loss was not logged: %q", buf.String())
	}
	// Accepted once: the next open is clean.
	db.Close()
	db2 := reopen(t, path)
	checkChain(t, db2, "a", 1)
}

// TestJournalCleanStops: a journal emptied by its own process after
// inserting everything (a clean stop, or an idle release) leaves no mark,
// so the next open neither refuses nor logs.
func TestJournalCleanStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clawea.db")
	db := openJob(t, path, "a")
	c := newChainer(db)
	for range 3 {
		c.append(t, "a")
	}
	db.jn.settle()
	time.Sleep(3 * leaseLinger) // an idle release empties the journal
	c.append(t, "a")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "-events") // gone after a clean stop: no loss
	log, buf := lossLog()
	db2, err := OpenWith(context.Background(), path, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	checkChain(t, db2, "a", 4)
	if buf.Len() != 0 {
		t.Fatalf("a clean stop was reported: %q", buf.String())
	}
}

// TestJournalUnfinishedWriteLogged: a last record cut short (a write that
// never completed, so never acknowledged) is dropped with a warning that
// names its job.
func TestJournalUnfinishedWriteLogged(t *testing.T) {
	path := crashedWithJournal(t, 3)
	data, _ := os.ReadFile(path + "-events")
	os.WriteFile(path+"-events", data[:len(data)-5], 0o600)
	log, buf := lossLog()
	db, err := OpenWith(context.Background(), path, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkChain(t, db, "a", 3)
	if !strings.Contains(buf.String(), "kind=incomplete") || !strings.Contains(buf.String(), "job_id=a seq=4") {
		t.Fatalf("the dropped write was not logged: %q", buf.String())
	}
}

func TestParseDSN(t *testing.T) {
	for dsn, want := range map[string]Options{
		"sqlite:/d/clawea.db":                           {},
		"sqlite:/d/clawea.db?accept_journal_loss=true":  {AcceptJournalLoss: true},
		"sqlite:/d/clawea.db?accept_journal_loss=1":     {AcceptJournalLoss: true},
		"sqlite:/d/clawea.db?accept_journal_loss=false": {},
	} {
		path, opt, err := ParseDSN(dsn)
		if err != nil || path != "/d/clawea.db" || opt != want {
			t.Errorf("ParseDSN(%q) = %q, %+v, %v", dsn, path, opt, err)
		}
	}
	if _, _, err := ParseDSN("sqlite:/d/x.db?nope=1"); err == nil {
		t.Error("an unknown setting was accepted")
	}
}
