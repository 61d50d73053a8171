package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/clawea/clawea/internal/store"
)

// The event journal takes a model or tool call's SQLite transaction off the
// call's path. A prepared append (an event built on the head this process
// knows, with its signed receipt) is written to an append-only file in one
// write(2) and acknowledged; a background goroutine then inserts it into
// job_events, in order, in group-committed transactions. The write makes
// the record as durable as a commit under synchronous=NORMAL: it survives
// the process, not the machine's power. If the process dies, the next one
// to take the lease replays the file into the database before anything
// else touches a chain.
//
// Journaled appends skip SQLite's checks, so this process must know that
// no other writer moved the chain or closed the job: it journals only
// while it holds the lease (an exclusive flock on PATH-lease) and only on a
// head it learned while holding it. Every chain write and status change,
// journaled or not, takes the lease; each taking bumps a generation
// counter in the lease file, and a process that finds the counter moved
// since its own last taking forgets every head it knew. Between calls the
// lease is released (once this process's records are inserted, up to
// insertDelay after the last one, and it has been idle for leaseLinger),
// so several processes on one file take turns; their reads may lag the
// holder's journal by up to insertDelay and the insert.
// Reads of events and items in this process wait for its own journaled
// records first.

const (
	// maxQueued bounds records waiting for insertion; past it appends
	// take the transaction path, which waits for the queue (backpressure).
	maxQueued = 1024
	// maxRecord bounds one record (an event payload is at most 64 KiB;
	// evidence such as tool receipts can be larger).
	maxRecord = 32 << 20
	// leaseWait is how long a writer waits for another process's lease.
	leaseWait = 30 * time.Second
	// leaseLinger is how long an idle process keeps the lease. It must not
	// exceed insertDelay: an append does not wake run while run waits on
	// either timer.
	leaseLinger = 2 * time.Millisecond
	// truncateAt is the journal size past which it is emptied as soon as
	// everything in it is in the database.
	truncateAt = 4 << 20
	// maxHeads bounds the heads a process remembers.
	maxHeads = 10000
	// insertTries is how often run tries a batch before the store fails
	// closed.
	insertTries = 3
)

// insertDelay is how long a journaled record may wait to be inserted with
// the ones after it, unless a reader needs it or maxBatch wait (a variable
// for tests).
var insertDelay = 5 * time.Millisecond

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrJournal wraps failures of the event journal; the store then refuses
// chain writes (fail closed) until restarted, and the file keeps what it
// could not insert.
var ErrJournal = errors.New("sqlite: event journal")

// ErrJournalLoss is wrapped by the error Open returns when the journal
// lost records that may have been acknowledged: a whole last record whose
// checksum or body is wrong, or a journal emptied while it held records
// not known to be inserted. The store refuses to open on it unless
// Options.AcceptJournalLoss is set; then the loss is logged.
var ErrJournalLoss = errors.New("sqlite: event journal lost records that may have been acknowledged")

// JournalLossError names what was lost.
type JournalLossError struct {
	Path    string
	Emptied bool      // the file was emptied or replaced
	Since   time.Time // Emptied: when the file last became non-empty
	JobID   string    // the damaged record's job, when readable
	Seq     int64     // and its event's sequence number
	Offset  int64     // where the damaged record starts
	Bytes   int64     // its size on disk
}

func (e *JournalLossError) Error() string {
	if e.Emptied {
		return fmt.Sprintf("%s: the journal was emptied or replaced while it held events not known to be in the database (journaled since %s); they are lost. Find the file that was removed, or start with --accept-journal-loss to accept the loss",
			e.Path, e.Since.UTC().Format(time.RFC3339Nano))
	}
	who := "an unreadable job"
	if e.JobID != "" {
		who = fmt.Sprintf("event %d of job %s", e.Seq, e.JobID)
	}
	return fmt.Sprintf("%s: the last record (%s, %d bytes at byte %d) is damaged and may have been acknowledged; the file is kept. Inspect it, then start with --accept-journal-loss to drop the record",
		e.Path, who, e.Bytes, e.Offset)
}

func (e *JournalLossError) Unwrap() error { return ErrJournalLoss }

type journal struct {
	db    *DB
	jpath string
	f     *os.File // PATH-events, append-only
	lf    *os.File // PATH-lease: the flock, the generation counter and the dirty mark
	log   *slog.Logger
	// accept: drop records lost to damage (logging them) instead of
	// refusing to open.
	accept bool

	mu        sync.Mutex
	settled   *sync.Cond // committed advanced, or err set
	held      bool
	users     int    // transactions in flight under the lease
	gen       uint64 // the generation this process wrote at its last taking
	dirty     bool   // the lease file's dirty mark is set: the journal may hold records not yet inserted
	size      int64  // bytes in the journal file
	heads     map[string]jhead
	busy      map[string]*jbusy // jobs with a transaction in flight
	queue     []*jrec
	worker    bool          // run is running
	napping   bool          // run waits on its timer, due within insertDelay
	hurry     int           // settlers waiting: insert without delay
	inserting bool          // run is inserting a batch
	wake      chan struct{} // tells run there is work (or closing)
	written   uint64        // records journaled (appends acknowledged from the journal)
	committed uint64        // records inserted
	err       error         // set once an insert failed; the store fails closed
	closed    bool
	paused    bool // tests: journaled records wait for resume
	lastUse   time.Time
}

// jhead is a job's last event, known to be in an open job.
type jhead struct {
	seq  int64
	hash string
}

// jbusy tracks a job's transactions in flight. They may finish in any
// order, so the head learned when the last one leaves is the highest event
// any of them appended, and nothing when one of them failed or changed
// the job's status.
type jbusy struct {
	n       int
	last    *store.JobEvent
	unknown bool
}

// jrec is one journaled append.
type jrec struct {
	ev       store.JobEvent
	items    []byte    // embedded evidence, as encodeItems wrote it
	headHash string    // the previous event's hash ("" for the first)
	at       time.Time // when it was journaled
}

func openJournal(db *DB, path string, opt Options) (*journal, error) {
	lf, err := os.OpenFile(path+"-lease", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	f, err := os.OpenFile(path+"-events", os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	j := &journal{db: db, jpath: path + "-events", f: f, lf: lf, heads: map[string]jhead{}, busy: map[string]*jbusy{},
		wake: make(chan struct{}, 1), log: opt.Log, accept: opt.AcceptJournalLoss}
	if j.log == nil {
		j.log = slog.Default()
	}
	j.settled = sync.NewCond(&j.mu)
	return j, nil
}

// recover replays what a process that died left in the journal, unless
// another live process holds the lease (then it is that one's to insert).
func (j *journal) recover() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	ok, err := j.take()
	if err != nil || !ok {
		return err
	}
	j.releaseNow()
	return nil
}

// take acquires the lease without waiting (mu held): false if another
// process holds it. On taking it replays a journal left behind and forgets
// the heads when another process held the lease since this one did.
func (j *journal) take() (bool, error) {
	j.lastUse = time.Now()
	if j.held {
		return true, nil
	}
	if ok, err := tryLock(j.lf); err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("%w: lease: %v", ErrJournal, err)
		}
		return false, err
	}
	// The lease file: the generation (8 bytes), then the dirty mark (8
	// bytes, the time in Unix nanoseconds at which the journal last
	// became non-empty, 0 once it was emptied with everything inserted).
	var b [16]byte
	if n, err := j.lf.ReadAt(b[:], 0); err != nil && !(errors.Is(err, io.EOF) && (n == 0 || n == 8 || n == 16)) {
		unlock(j.lf)
		return false, fmt.Errorf("%w: lease: %v", ErrJournal, err)
	}
	gen := binary.LittleEndian.Uint64(b[:])
	mark := int64(binary.LittleEndian.Uint64(b[8:]))
	if gen != j.gen {
		clear(j.heads)
	}
	err := j.reopenIfMoved()
	var st os.FileInfo
	if err == nil {
		st, err = j.f.Stat()
	}
	if err == nil && st.Size() == 0 && mark != 0 {
		err = j.lost(&JournalLossError{Path: j.jpath, Emptied: true, Since: time.Unix(0, mark)})
	}
	if err == nil && st.Size() > 0 {
		err = j.replay(st.Size())
	}
	if err == nil {
		binary.LittleEndian.PutUint64(b[:], gen+1)
		binary.LittleEndian.PutUint64(b[8:], 0)
		_, err = j.lf.WriteAt(b[:], 0)
	}
	if err != nil {
		unlock(j.lf)
		if errors.Is(err, ErrJournalLoss) {
			return false, fmt.Errorf("%w: %w", ErrJournal, err)
		}
		return false, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	j.gen, j.held, j.size, j.dirty = gen+1, true, 0, false
	return true, nil
}

// lost reports records lost to damage: an error that stops the open, or,
// when the operator accepted the loss, a log line naming them.
func (j *journal) lost(e *JournalLossError) error {
	if !j.accept {
		return e
	}
	j.log.Error("event journal: accepted the loss of records that may have been acknowledged",
		"file", e.Path, "emptied", e.Emptied, "job_id", e.JobID, "seq", e.Seq, "bytes", e.Bytes, "offset", e.Offset)
	return nil
}

// markDirty sets the lease file's dirty mark before the first record goes
// into an empty journal (mu held, lease held), so that a journal emptied
// behind this process's back is noticed by the next one to take the lease.
func (j *journal) markDirty() error {
	if j.dirty {
		return nil
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
	if _, err := j.lf.WriteAt(b[:], 8); err != nil {
		return err
	}
	j.dirty = true
	return nil
}

// empty truncates the journal once everything in it is in the database
// (mu held, lease held). The dirty mark is cleared first: a crash between
// the two leaves inserted records in the file, which a replay skips.
func (j *journal) empty() {
	if j.size == 0 && !j.dirty {
		return
	}
	var b [8]byte
	if _, err := j.lf.WriteAt(b[:], 8); err != nil {
		return
	}
	j.dirty = false
	if j.f.Truncate(0) == nil {
		j.size = 0
	}
}

// reopenIfMoved reopens the journal when the file at its path is no
// longer the one this process has open (moved aside or deleted by an
// operator, or replaced): what the path names is the journal (mu held,
// lease held).
func (j *journal) reopenIfMoved() error {
	have, err := j.f.Stat()
	if err != nil {
		return err
	}
	now, err := os.Stat(j.jpath)
	if err == nil && os.SameFile(have, now) {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(j.jpath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	j.f.Close()
	j.f = f
	return nil
}

// release arranges (mu held) for the lease to be given up once nothing of
// this process needs it (no transaction in flight, nothing journaled
// waiting) and it has not been used for leaseLinger, so that calls in a
// row keep it without a system call each: run does that.
func (j *journal) release() {
	if j.held {
		j.kick()
	}
}

// kick wakes run, starting it if needed (mu held).
func (j *journal) kick() {
	if !j.worker {
		j.worker = true
		go j.run()
		return
	}
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

func (j *journal) idle() bool {
	return j.held && j.users == 0 && len(j.queue) == 0 && !j.inserting && j.err == nil
}

// releaseNow gives the lease up at once (mu held) when idle.
func (j *journal) releaseNow() {
	if !j.idle() {
		return
	}
	// Emptying the file is tidiness, and it clears the dirty mark: a
	// replay skips records already in the database.
	j.empty()
	unlock(j.lf)
	j.held = false
}

// append journals a prepared append when this process holds (or can take
// at once) the lease and knows head is the open job's last event. ok is
// false when the caller must take the transaction path instead.
func (j *journal) append(jobID string, head *store.JobEvent, ev store.JobEvent, items []store.JobItem) (store.JobEvent, bool, error) {
	headSeq, headHash := int64(0), ""
	if head != nil {
		headSeq, headHash = head.Seq, head.EventHash
	}
	if ev.Seq != headSeq+1 || len(ev.Event) == 0 {
		return store.JobEvent{}, false, nil
	}
	embedded, err := encodeItems(items)
	if err != nil {
		return store.JobEvent{}, false, nil // the transaction path reports it
	}
	ev.JobID = jobID
	r := &jrec{ev: ev, items: embedded, headHash: headHash}
	rec := appendRecord(make([]byte, 0, r.size()), r)
	if len(rec) > maxRecord {
		return store.JobEvent{}, false, nil // too large to replay: a transaction
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return store.JobEvent{}, true, errClosed
	}
	if j.err != nil {
		return store.JobEvent{}, true, j.err
	}
	if len(j.queue) >= maxQueued || j.busy[jobID] != nil {
		return store.JobEvent{}, false, nil
	}
	if ok, err := j.take(); err != nil || !ok {
		return store.JobEvent{}, false, nil
	}
	h, known := j.heads[jobID]
	if !known || h.seq != headSeq || h.hash != headHash || j.markDirty() != nil {
		j.release()
		return store.JobEvent{}, false, nil
	}
	if _, err := j.f.Write(rec); err != nil {
		// Nothing is acknowledged; cut a partial record off so that the
		// file stays a sequence of whole records.
		if terr := j.f.Truncate(j.size); terr != nil {
			j.err = fmt.Errorf("%w: %s: a failed write could not be undone: %v", ErrJournal, j.jpath, terr)
		}
		delete(j.heads, jobID)
		j.release()
		return store.JobEvent{}, true, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	j.size += int64(len(rec))
	j.learn(jobID, ev.Seq, ev.EventHash)
	r.at = j.lastUse // take set it
	j.queue = append(j.queue, r)
	j.written++
	if !j.napping || len(j.queue) >= maxBatch {
		j.kick()
	}
	// Otherwise run's timer is due within insertDelay: waking it now
	// would cost this call a thread wake-up.
	return ev, true, nil
}

// run moves journaled records into the database in order, in batches,
// and gives the lease up when this process has not needed it for
// leaseLinger. It is the only goroutine that inserts journaled records.
func (j *journal) run() {
	t := time.NewTimer(leaseLinger)
	defer t.Stop()
	j.mu.Lock()
	for {
		if n := min(len(j.queue), maxBatch); n > 0 && !j.paused && j.err == nil && j.due() {
			batch := append([]*jrec(nil), j.queue[:n]...)
			j.inserting = true
			j.mu.Unlock()
			err := j.db.insertJournaled(context.Background(), batch)
			for try := 1; err != nil && try < insertTries; try++ {
				// A busy or full disk may pass; a record that no longer
				// follows its head will not, and fails each try.
				time.Sleep(time.Duration(try) * 100 * time.Millisecond)
				err = j.db.insertJournaled(context.Background(), batch)
			}
			j.mu.Lock()
			j.inserting = false
			if err != nil {
				// The records stay in the file for the next process to
				// replay; this one refuses chain writes from now on.
				j.err = fmt.Errorf("%w: %s: inserting journaled events failed (they stay in the file and are replayed at the next start): %v", ErrJournal, j.jpath, err)
			} else {
				j.queue = append(j.queue[:0], j.queue[n:]...)
				j.committed += uint64(n)
				if len(j.queue) == 0 && j.size >= truncateAt {
					j.empty()
				}
			}
			j.settled.Broadcast()
			continue
		}
		if j.closed || j.err != nil || !j.held {
			break
		}
		if len(j.queue) > 0 && !j.paused {
			// Wait for more records to insert with these.
			j.nap(t, insertDelay-time.Since(j.queue[0].at))
			continue
		}
		if !j.idle() {
			// Work in flight: its end kicks.
			j.mu.Unlock()
			<-j.wake
			j.mu.Lock()
			continue
		}
		wait := leaseLinger - time.Since(j.lastUse)
		if wait <= 0 {
			j.releaseNow()
			break
		}
		j.nap(t, wait)
	}
	if j.err != nil && j.held && j.users == 0 {
		// Broken: let another process take the lease and replay the file,
		// which keeps every record this one could not insert.
		unlock(j.lf)
		j.held = false
	}
	j.worker = false
	j.settled.Broadcast()
	j.mu.Unlock()
}

// due reports whether the queue is to be inserted now (mu held): a batch
// is full, a reader or Close waits, or the oldest record has waited
// insertDelay. At light load, records then go to SQLite several per
// transaction instead of one each, which halves the CPU time a call costs
// the host (and the calls that run beside an insert).
func (j *journal) due() bool {
	return len(j.queue) >= maxBatch || j.hurry > 0 || j.closed || time.Since(j.queue[0].at) >= insertDelay
}

// nap waits (mu held, released meanwhile) for a kick or for wait to pass
// on run's timer t. Appends do not kick while it naps.
func (j *journal) nap(t *time.Timer, wait time.Duration) {
	j.napping = true
	j.mu.Unlock()
	t.Reset(wait)
	select {
	case <-j.wake:
	case <-t.C:
	}
	j.mu.Lock()
	j.napping = false
}

// settle waits until everything journaled before it was called is in the
// database (mu held).
func (j *journal) settleLocked() error {
	target := j.written
	if j.committed < target {
		j.hurry++
		defer func() { j.hurry-- }()
		j.kick()
	}
	for j.committed < target && j.err == nil {
		j.settled.Wait()
	}
	return j.err
}

// settle is settleLocked for readers.
func (j *journal) settle() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.committed == j.written {
		return j.err
	}
	return j.settleLocked()
}

// enter readies a transaction that writes a job's chain or status: it takes
// the lease (waiting for another process up to leaseWait), waits for the
// journal, and keeps the job off the journal until leave.
func (j *journal) enter(ctx context.Context, jobID string) error {
	deadline := time.Now().Add(leaseWait)
	pause := 500 * time.Microsecond
	j.mu.Lock()
	for {
		if j.err != nil {
			j.mu.Unlock()
			return j.err
		}
		ok, err := j.take()
		if err != nil {
			j.mu.Unlock()
			return err
		}
		if ok {
			break
		}
		j.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: another process has held %s-lease for %v", ErrJournal, j.db.path, leaseWait)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 20*time.Millisecond)
		j.mu.Lock()
	}
	j.users++
	b := j.busy[jobID]
	if b == nil {
		b = &jbusy{}
		j.busy[jobID] = b
	}
	b.n++
	delete(j.heads, jobID)
	err := j.settleLocked()
	if err != nil {
		j.leaveLocked(jobID, nil)
	}
	j.mu.Unlock()
	return err
}

// leave ends what enter began. last is the job's last event after a
// successful append (nil when unknown: a failure, or a status change).
func (j *journal) leave(jobID string, last *store.JobEvent) {
	j.mu.Lock()
	j.leaveLocked(jobID, last)
	j.mu.Unlock()
}

func (j *journal) leaveLocked(jobID string, last *store.JobEvent) {
	j.users--
	b := j.busy[jobID]
	switch {
	case last == nil:
		b.unknown = true
	case b.last == nil || last.Seq > b.last.Seq:
		b.last = last
	}
	if b.n--; b.n == 0 {
		delete(j.busy, jobID)
		if !b.unknown && b.last != nil {
			j.learn(jobID, b.last.Seq, b.last.EventHash)
		}
	}
	j.release()
}

// learn records a job's head (mu held). Past maxHeads jobs it forgets
// them all: a forgotten head costs one transaction to learn again.
func (j *journal) learn(jobID string, seq int64, hash string) {
	if _, ok := j.heads[jobID]; !ok && len(j.heads) >= maxHeads {
		clear(j.heads)
	}
	j.heads[jobID] = jhead{seq: seq, hash: hash}
}

// close waits for the inserts and gives the lease up.
func (j *journal) close() error {
	j.mu.Lock()
	j.closed = true
	err := j.settleLocked()
	j.kick()
	for j.worker {
		j.settled.Wait()
	}
	j.releaseNow()
	j.mu.Unlock()
	j.f.Close()
	j.lf.Close()
	return err
}

// size bounds the length of r's record, so that it is encoded without
// growing its buffer.
func (r *jrec) size() int {
	e := &r.ev
	return 8 + 13*binary.MaxVarintLen64 + len(e.JobID) + len(e.EventID) + len(e.EventType) + len(e.EventHash) +
		len(e.Event) + len(e.Payload) + len(e.Anchor) + len(r.items) + len(r.headHash)
}

// appendRecord encodes r as a journal record: the body's length and
// CRC-32C, then the body (length-prefixed fields and varints).
func appendRecord(b []byte, r *jrec) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	str := func(b []byte, s []byte) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	e := &r.ev
	b = str(b, []byte(e.JobID))
	b = binary.AppendVarint(b, e.Seq)
	b = binary.AppendVarint(b, int64(e.Segment))
	b = binary.AppendVarint(b, int64(e.Index))
	b = str(b, []byte(e.EventID))
	b = str(b, []byte(e.EventType))
	b = str(b, []byte(e.EventHash))
	b = str(b, e.Event)
	b = str(b, e.Payload)
	b = str(b, []byte(e.Anchor))
	b = binary.AppendVarint(b, us(e.CreatedAt))
	b = str(b, r.items)
	b = str(b, []byte(r.headHash))
	body := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, crcTable))
	return b
}

var errTorn = errors.New("torn record")

// tail describes what decodeRecords left out at the end of a journal.
type tail struct {
	Offset int64  // where the unused bytes start
	Bytes  int64  // how many there are
	Kind   string // tailZeros, tailIncomplete or tailDamaged
	JobID  string // the job the record names, when its first fields are readable
	Seq    int64  // and its event's sequence number
}

// Kinds of tail.
const (
	// tailZeros: the file was extended with zeros after a power cut; the
	// writes never reached the disk.
	tailZeros = "zeros"
	// tailIncomplete: the last record runs past the end of the file, a
	// write(2) that never completed, so nothing was acknowledged for it.
	tailIncomplete = "incomplete"
	// tailDamaged: the last record is whole but its checksum or body is
	// wrong. It may have been acknowledged: this is loss.
	tailDamaged = "damaged"
)

// decodeRecords parses a journal. What follows the last good record when
// it is not a whole record is described by the tail (nil when the file
// ends cleanly); damage before the end is an error.
func decodeRecords(data []byte) ([]*jrec, *tail, error) {
	var out []*jrec
	for off := 0; off < len(data); {
		if allZero(data[off:]) {
			return out, &tail{Offset: int64(off), Bytes: int64(len(data) - off), Kind: tailZeros}, nil
		}
		r, n, err := decodeRecord(data[off:])
		if err != nil && (n < 0 || off+n >= len(data)) {
			t := &tail{Offset: int64(off), Bytes: int64(len(data) - off), Kind: tailDamaged}
			if n < 0 {
				t.Kind = tailIncomplete
			}
			t.JobID, t.Seq = peekRecord(data[off:])
			return out, t, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("record at byte %d: %w", off, err)
		}
		out = append(out, r)
		off += n
	}
	return out, nil, nil
}

// peekRecord reads the job id and sequence number at the start of a
// record's body without checking the record, for reports about damage;
// "" when they cannot be read.
func peekRecord(data []byte) (string, int64) {
	if len(data) <= 8 {
		return "", 0
	}
	d := recDecoder{b: data[8:]}
	id := d.bytes()
	seq := d.varint()
	if d.err || len(id) == 0 || len(id) > 256 || !utf8.Valid(id) {
		return "", 0
	}
	return string(id), seq
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// decodeRecord parses one record and returns its size; with errTorn, the
// size is -1 when the record runs past the data.
func decodeRecord(data []byte) (*jrec, int, error) {
	if len(data) < 8 {
		return nil, -1, errTorn
	}
	n := binary.LittleEndian.Uint32(data)
	if n > maxRecord {
		return nil, 0, fmt.Errorf("%w: length %d", errTorn, n)
	}
	if uint64(len(data)-8) < uint64(n) {
		return nil, -1, errTorn
	}
	body := data[8 : 8+n]
	size := 8 + int(n)
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(data[4:]) {
		return nil, size, fmt.Errorf("%w: checksum", errTorn)
	}
	d := recDecoder{b: body}
	r := &jrec{}
	e := &r.ev
	e.JobID = string(d.bytes())
	e.Seq = d.varint()
	e.Segment = int(d.varint())
	e.Index = int(d.varint())
	e.EventID = string(d.bytes())
	e.EventType = string(d.bytes())
	e.EventHash = string(d.bytes())
	e.Event = d.bytes()
	e.Payload = d.bytes()
	e.Anchor = string(d.bytes())
	e.CreatedAt = fromUS(d.varint())
	r.items = d.bytes()
	r.headHash = string(d.bytes())
	if d.err || len(d.b) != 0 {
		return nil, size, errors.New("malformed record body")
	}
	if e.JobID == "" || e.Seq < 1 || len(e.Event) == 0 {
		return nil, size, errors.New("record without a job, a sequence number or an event")
	}
	return r, size, nil
}

type recDecoder struct {
	b   []byte
	err bool
}

func (d *recDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) bytes() []byte {
	l, n := binary.Uvarint(d.b)
	if n <= 0 || uint64(len(d.b)-n) < l {
		d.err = true
		d.b = nil
		return nil
	}
	v := append([]byte{}, d.b[n:n+int(l)]...)
	d.b = d.b[n+int(l):]
	return v
}

// replay inserts what the journal holds that the database lacks (mu held,
// lease held), then empties the file.
func (j *journal) replay(size int64) error {
	data := make([]byte, size)
	if _, err := j.f.ReadAt(data, 0); err != nil {
		return err
	}
	recs, t, err := decodeRecords(data)
	if err != nil {
		return fmt.Errorf("%s: %w (the file is kept; move it aside only after inspecting it)", j.jpath, err)
	}
	switch {
	case t == nil:
	case t.Kind == tailDamaged:
		if err := j.lost(&JournalLossError{Path: j.jpath, JobID: t.JobID, Seq: t.Seq, Offset: t.Offset, Bytes: t.Bytes}); err != nil {
			return err
		}
	default:
		// A write that never completed, or zeros from a power cut: by
		// the journal's durability (that of synchronous=NORMAL) nothing
		// acknowledged that survived is lost, but say what is dropped.
		j.log.Warn("event journal: dropped an unfinished last write", "file", j.jpath, "kind", t.Kind,
			"job_id", t.JobID, "seq", t.Seq, "bytes", t.Bytes, "offset", t.Offset)
	}
	ctx := context.Background()
	for _, r := range recs {
		var have string
		err := j.db.w.QueryRowContext(ctx, `SELECT event_hash FROM job_events WHERE job_id = ? AND seq = ?`, r.ev.JobID, r.ev.Seq).Scan(&have)
		switch {
		case err == nil && have == r.ev.EventHash:
			continue
		case err == nil:
			return fmt.Errorf("%s: event %d of job %s in the journal differs from the stored one (the file is kept)", j.jpath, r.ev.Seq, r.ev.JobID)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if err := j.db.insertJournaled(ctx, []*jrec{r}); err != nil {
			return fmt.Errorf("%s: replaying event %d of job %s: %w (the file is kept)", j.jpath, r.ev.Seq, r.ev.JobID, err)
		}
	}
	return j.f.Truncate(0)
}
