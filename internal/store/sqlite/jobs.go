package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/store"
)

func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// PutIssuerKey inserts an issuer key or moves its end earlier: a retired
// key is never made active again, nor its end later.
func (s *DB) PutIssuerKey(ctx context.Context, k store.IssuerKey) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO issuer_keys (kid, public_key, created_at, not_after) VALUES (?, ?, ?, ?)
		ON CONFLICT (kid) DO UPDATE SET not_after = CASE
			WHEN issuer_keys.not_after = 0 THEN excluded.not_after
			WHEN excluded.not_after = 0 THEN issuer_keys.not_after
			ELSE min(issuer_keys.not_after, excluded.not_after) END`, k.Kid, k.PublicKey, us(k.CreatedAt), us(k.NotAfter))
	if err != nil {
		return fmt.Errorf("sqlite: put issuer key: %w", err)
	}
	return nil
}

// ListIssuerKeys lists every issuer key, oldest first.
func (s *DB) ListIssuerKeys(ctx context.Context) ([]store.IssuerKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kid, public_key, created_at, not_after FROM issuer_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list issuer keys: %w", err)
	}
	defer rows.Close()
	var out []store.IssuerKey
	for rows.Next() {
		var k store.IssuerKey
		var c, n int64
		if err := rows.Scan(&k.Kid, &k.PublicKey, &c, &n); err != nil {
			return nil, err
		}
		k.CreatedAt, k.NotAfter = fromUS(c), fromUS(n)
		out = append(out, k)
	}
	return out, rows.Err()
}

// PutIssuedToken records an issued token.
func (s *DB) PutIssuedToken(ctx context.Context, t store.IssuedToken) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO issued_tokens (token_hash, jti, sub, job_id, scope_hash, policy_hash, kid, issued_at, expires_at, claims)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.TokenHash, t.JTI, t.Sub, t.JobID, t.ScopeHash, t.PolicyHash, t.Kid, us(t.IssuedAt), us(t.ExpiresAt), t.Claims)
	if isUnique(err) {
		return store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: put issued token: %w", err)
	}
	return nil
}

// GetIssuedToken returns an issued token by hash.
func (s *DB) GetIssuedToken(ctx context.Context, hash string) (store.IssuedToken, error) {
	var t store.IssuedToken
	var ia, ea int64
	err := s.db.QueryRowContext(ctx, `SELECT token_hash, jti, sub, job_id, scope_hash, policy_hash, kid, issued_at, expires_at, claims FROM issued_tokens WHERE token_hash = ?`, hash).
		Scan(&t.TokenHash, &t.JTI, &t.Sub, &t.JobID, &t.ScopeHash, &t.PolicyHash, &t.Kid, &ia, &ea, &t.Claims)
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("sqlite: get issued token: %w", err)
	}
	t.IssuedAt, t.ExpiresAt = fromUS(ia), fromUS(ea)
	return t, nil
}

const revCols = `seq, token_hash, reason, revoked_by, job_id, revoked_at, expires_at`

func scanRev(sc interface{ Scan(...any) error }) (store.Revocation, error) {
	var r store.Revocation
	var ra, ea int64
	err := sc.Scan(&r.Seq, &r.TokenHash, &r.Reason, &r.RevokedBy, &r.JobID, &ra, &ea)
	r.RevokedAt, r.ExpiresAt = fromUS(ra), fromUS(ea)
	return r, err
}

// Revoke records a revocation unless the token is already revoked.
func (s *DB) Revoke(ctx context.Context, r store.Revocation) (store.Revocation, bool, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO revocations (token_hash, reason, revoked_by, job_id, revoked_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (token_hash) DO NOTHING`, r.TokenHash, r.Reason, r.RevokedBy, r.JobID, us(r.RevokedAt), us(r.ExpiresAt))
	if err != nil {
		return r, false, fmt.Errorf("sqlite: revoke: %w", err)
	}
	n, _ := res.RowsAffected()
	got, err := s.GetRevocation(ctx, r.TokenHash)
	return got, n == 0, err
}

// GetRevocation returns the revocation of a token.
func (s *DB) GetRevocation(ctx context.Context, hash string) (store.Revocation, error) {
	r, err := scanRev(s.db.QueryRowContext(ctx, `SELECT `+revCols+` FROM revocations WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return r, store.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("sqlite: get revocation: %w", err)
	}
	return r, nil
}

// RevocationsSince lists revocations after a sequence number.
func (s *DB) RevocationsSince(ctx context.Context, after int64, limit int) ([]store.Revocation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+revCols+` FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revocations: %w", err)
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		r, err := scanRev(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const jobCols = `id, agent_did, policy_hash, scope_hash, token_hash, status, labels, budget, created_at, expires_at, finished_at, seq`

func scanJob(sc interface{ Scan(...any) error }) (store.Job, error) {
	var j store.Job
	var c, e, f int64
	err := sc.Scan(&j.ID, &j.AgentDID, &j.PolicyHash, &j.ScopeHash, &j.TokenHash, &j.Status, &j.Labels, &j.Budget, &c, &e, &f, &j.Seq)
	j.CreatedAt, j.ExpiresAt, j.FinishedAt = fromUS(c), fromUS(e), fromUS(f)
	return j, err
}

func nextJobSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, `UPDATE job_seq SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&seq)
	return seq, err
}

func orEmpty(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// CreateJob inserts a job.
func (s *DB) CreateJob(ctx context.Context, j store.Job) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	defer tx.Rollback()
	seq, err := nextJobSeq(ctx, tx)
	if err != nil {
		return fmt.Errorf("sqlite: job seq: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO jobs (`+jobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.AgentDID, j.PolicyHash, j.ScopeHash, j.TokenHash, j.Status, orEmpty(j.Labels), orEmpty(j.Budget), us(j.CreatedAt), us(j.ExpiresAt), us(j.FinishedAt), seq)
	if isUnique(err) {
		return store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: create job: %w", err)
	}
	return tx.Commit()
}

// GetJob returns a job.
func (s *DB) GetJob(ctx context.Context, id string) (store.Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, store.ErrNotFound
	}
	if err != nil {
		return j, fmt.Errorf("sqlite: get job: %w", err)
	}
	return j, nil
}

func (s *DB) queryJobs(ctx context.Context, q string, args ...any) ([]store.Job, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: jobs: %w", err)
	}
	defer rows.Close()
	var out []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// ListJobs lists jobs by id.
func (s *DB) ListJobs(ctx context.Context, after, status string, limit int) ([]store.Job, error) {
	if status == "" {
		return s.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	}
	return s.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE status = ? AND id > ? ORDER BY id LIMIT ?`, status, after, limit)
}

// JobsChangedSince lists jobs changed after a sequence number.
func (s *DB) JobsChangedSince(ctx context.Context, after int64, limit int) ([]store.Job, error) {
	return s.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
}

// SetJobStatus changes a job's status if it is in from.
func (s *DB) SetJobStatus(ctx context.Context, id, from, to string, at time.Time) error {
	if s.jn != nil {
		// The journal's appends rely on the job being open: the change
		// waits for them and keeps the job off the journal until a
		// transaction learns its state again.
		if err := s.jn.enter(ctx, id); err != nil {
			return err
		}
		defer s.jn.leave(id, nil)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	defer tx.Rollback()
	seq, err := nextJobSeq(ctx, tx)
	if err != nil {
		return fmt.Errorf("sqlite: job seq: %w", err)
	}
	fin := int64(0)
	if to == store.JobFinished || to == store.JobFinishing {
		fin = us(at)
	}
	res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, seq = ?, finished_at = CASE WHEN ? > 0 THEN ? ELSE finished_at END WHERE id = ? AND status = ?`,
		to, seq, fin, fin, id, from)
	if err != nil {
		return fmt.Errorf("sqlite: set job status: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetJob(ctx, id); errors.Is(err, store.ErrNotFound) {
			return store.ErrNotFound
		}
		return store.ErrConflict
	}
	return tx.Commit()
}

// Statements of the hot path (every model and tool call appends an event
// with its receipt), prepared once on the writer connection.
const (
	stmtJobStatus = `SELECT status FROM jobs WHERE id = ?`
	// stmtHead reads a job's status and last event in one step.
	// stmtHead reads the job's status and its last event's identity (not
	// its event and payload bytes, which no append needs).
	stmtHead = `SELECT j.status, e.job_id, e.seq, e.segment, e.idx, e.event_id, e.event_type, e.event_hash, e.anchor, e.created_at
		FROM jobs j LEFT JOIN job_events e ON e.job_id = j.id AND e.seq = (SELECT MAX(seq) FROM job_events WHERE job_id = j.id)
		WHERE j.id = ?`
	stmtSavepoint  = `SAVEPOINT a`
	stmtRelease    = `RELEASE a`
	stmtRollbackTo = `ROLLBACK TO a`
	stmtPutEvent   = `INSERT INTO job_events (` + eventCols + `, items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// stmtPutEventAfter inserts an event only while its job is open and
	// the given sequence number and hash are its last event's (0 and ""
	// for none).
	stmtPutEventAfter = `INSERT INTO job_events (` + eventCols + `, items) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE (SELECT status FROM jobs WHERE id = ?) = 'open'
		AND COALESCE((SELECT MAX(seq) FROM job_events WHERE job_id = ?), 0) = ?
		AND COALESCE((SELECT event_hash FROM job_events WHERE job_id = ? AND seq = ?), '') = ?`
	// stmtPutItem numbers the item after the job's last one as it inserts.
	stmtPutItem = `INSERT INTO job_items (` + itemCols + `) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_items WHERE job_id = ?), ?, ?, ?, ?, ?, ?) RETURNING seq`
)

// prepare prepares the hot-path statements; it runs at open, before any
// transaction holds the writer connection.
func (s *DB) prepare(ctx context.Context) error {
	s.stmts = map[string]*sql.Stmt{}
	for _, q := range []string{stmtJobStatus, stmtHead, stmtPutEvent, stmtPutEventAfter, stmtPutItem, stmtSavepoint, stmtRelease, stmtRollbackTo} {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// stmt returns the transaction's form of a prepared hot-path statement.
func (s *DB) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if st := s.stmts[q]; st != nil {
		return tx.StmtContext(ctx, st)
	}
	return nil
}

// queryRow runs a hot-path query, prepared when possible.
func (s *DB) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.stmt(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

func (s *DB) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if tx == nil { // autocommit on the writer
		if st := s.stmts[q]; st != nil {
			return st.ExecContext(ctx, args...)
		}
		return s.w.ExecContext(ctx, q, args...)
	}
	if st := s.stmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (s *DB) jobOpen(ctx context.Context, tx *sql.Tx, id string) error {
	var status string
	err := s.queryRow(ctx, tx, stmtJobStatus, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if status != store.JobOpen {
		return store.ErrConflict
	}
	return nil
}

const eventCols = `job_id, seq, segment, idx, event_id, event_type, event_hash, event, payload, anchor, created_at`

func scanEvent(sc interface{ Scan(...any) error }) (store.JobEvent, error) {
	var e store.JobEvent
	var c int64
	err := sc.Scan(&e.JobID, &e.Seq, &e.Segment, &e.Index, &e.EventID, &e.EventType, &e.EventHash, &e.Event, &e.Payload, &e.Anchor, &c)
	e.CreatedAt = fromUS(c)
	return e, err
}

// AppendEvent appends an event and its evidence to an open job atomically.
// Appends are group-committed: the writer takes every append waiting when
// it starts a transaction (up to maxBatch), runs each under its own
// savepoint so that one failure touches no other, and commits once. Under
// load this divides the cost of a commit between calls; alone, an append
// is one transaction as before.
func (s *DB) AppendEvent(ctx context.Context, jobID string, next func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error)) (store.JobEvent, error) {
	return s.enqueue(ctx, &appendReq{jobID: jobID, next: next})
}

// AppendPrepared appends ev and its items, built on head, in one statement
// when head is still the job's last event and the job is open, and no other
// append is waiting (a lone call at light load: no transaction to open,
// no head to read first). Otherwise it is AppendEvent with next.
func (s *DB) AppendPrepared(ctx context.Context, jobID string, head *store.JobEvent, ev store.JobEvent, items []store.JobItem,
	next func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error)) (store.JobEvent, error) {
	if s.jn != nil {
		if got, ok, err := s.jn.append(jobID, head, ev, items); ok {
			return got, err
		}
	}
	return s.enqueue(ctx, &appendReq{jobID: jobID, next: next, prepared: &prepared{head: head, ev: ev, items: items}})
}

func (s *DB) enqueue(ctx context.Context, req *appendReq) (store.JobEvent, error) {
	if err := ctx.Err(); err != nil {
		return store.JobEvent{}, err
	}
	if s.jn == nil {
		return s.enqueueTx(ctx, req)
	}
	if err := s.jn.enter(ctx, req.jobID); err != nil {
		return store.JobEvent{}, err
	}
	var last *store.JobEvent // stays nil on an error or a panic
	defer func() { s.jn.leave(req.jobID, last) }()
	ev, err := s.enqueueTx(ctx, req)
	if err == nil {
		last = &ev
	}
	return ev, err
}

func (s *DB) enqueueTx(ctx context.Context, req *appendReq) (store.JobEvent, error) {
	req.done = make(chan appendRes, 1)
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		return store.JobEvent{}, errClosed
	}
	s.queue = append(s.queue, req)
	if !s.leading {
		// No batch is running: this caller leads, running its own append
		// (and any that queue meanwhile) without a goroutine handoff.
		s.leading = true
		s.leaders.Add(1)
		s.qmu.Unlock()
		s.lead(false)
	} else {
		s.qmu.Unlock()
	}
	// Once queued the append is seen through: returning early on a
	// cancelled context could report a failure for an event that commits.
	res := <-req.done
	return res.ev, res.err
}

const maxBatch = 64

var errClosed = errors.New("sqlite: store closed")

type appendReq struct {
	jobID    string
	next     func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error)
	prepared *prepared // set by AppendPrepared
	done     chan appendRes
}

// prepared is an event built in advance on the head its caller last saw.
type prepared struct {
	head  *store.JobEvent
	ev    store.JobEvent
	items []store.JobItem
}

type appendRes struct {
	ev  store.JobEvent
	err error
}

// lead runs queued appends in batches. A caller leads one batch and, if
// more appends queued meanwhile, passes the lead to a goroutine so that it
// returns as soon as its own append is done.
func (s *DB) lead(background bool) {
	for {
		s.qmu.Lock()
		n := min(len(s.queue), maxBatch)
		if n == 0 {
			s.leading = false
			s.qmu.Unlock()
			s.leaders.Done()
			return
		}
		batch := append([]*appendReq(nil), s.queue[:n]...)
		s.queue = append(s.queue[:0], s.queue[n:]...)
		s.qmu.Unlock()
		s.runBatch(batch)
		if !background {
			s.qmu.Lock()
			more := len(s.queue) > 0
			if !more {
				s.leading = false
				s.qmu.Unlock()
				s.leaders.Done()
				return
			}
			s.qmu.Unlock()
			go s.lead(true)
			return
		}
	}
}

func (s *DB) runBatch(batch []*appendReq) {
	ctx := context.Background()
	if len(batch) == 1 && batch[0].prepared != nil {
		if res, done := s.appendPrepared(ctx, batch[0]); done {
			batch[0].done <- res
			return
		}
	}
	results := make([]appendRes, len(batch))
	fail := func(err error) {
		for _, r := range batch {
			r.done <- appendRes{err: err}
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("sqlite: %w", err))
		return
	}
	single := len(batch) == 1
	for i, r := range batch {
		if !single {
			if _, err := s.exec(ctx, tx, stmtSavepoint); err != nil {
				tx.Rollback()
				fail(fmt.Errorf("sqlite: %w", err))
				return
			}
		}
		results[i].ev, results[i].err = s.appendOne(ctx, tx, r)
		if single {
			break
		}
		if results[i].err != nil {
			_, err = s.exec(ctx, tx, stmtRollbackTo)
		}
		if err == nil {
			_, err = s.exec(ctx, tx, stmtRelease)
		}
		if err != nil {
			tx.Rollback()
			fail(fmt.Errorf("sqlite: %w", err))
			return
		}
	}
	if single && results[0].err != nil {
		tx.Rollback()
		batch[0].done <- results[0]
		return
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("sqlite: %w", err))
		return
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

func (s *DB) appendOne(ctx context.Context, tx *sql.Tx, r *appendReq) (store.JobEvent, error) {
	var status string
	var jobID, eventID, eventType, eventHash, anchor sql.NullString
	var seq, seg, idx, created sql.NullInt64
	err := s.queryRow(ctx, tx, stmtHead, r.jobID).Scan(&status, &jobID, &seq, &seg, &idx, &eventID, &eventType, &eventHash, &anchor, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.JobEvent{}, store.ErrNotFound
	case err != nil:
		return store.JobEvent{}, fmt.Errorf("sqlite: job head: %w", err)
	case status != store.JobOpen:
		return store.JobEvent{}, store.ErrConflict
	}
	var last *store.JobEvent
	if seq.Valid {
		last = &store.JobEvent{JobID: jobID.String, Seq: seq.Int64, Segment: int(seg.Int64), Index: int(idx.Int64), EventID: eventID.String,
			EventType: eventType.String, EventHash: eventHash.String, Anchor: anchor.String, CreatedAt: fromUS(created.Int64)}
	}
	ev, items, err := r.next(last)
	if err != nil {
		return store.JobEvent{}, err
	}
	ev.JobID = r.jobID
	embedded, err := encodeItems(items)
	if err != nil {
		return store.JobEvent{}, err
	}
	_, err = s.exec(ctx, tx, stmtPutEvent,
		ev.JobID, ev.Seq, ev.Segment, ev.Index, ev.EventID, ev.EventType, ev.EventHash, ev.Event, orEmpty(ev.Payload), ev.Anchor, us(ev.CreatedAt), embedded)
	if isUnique(err) {
		return store.JobEvent{}, store.ErrConflict
	}
	if err != nil {
		return store.JobEvent{}, fmt.Errorf("sqlite: append event: %w", err)
	}
	return ev, nil
}

// appendPrepared runs a lone prepared append as one conditional INSERT in
// autocommit: it inserts only while the job is open and its last event is
// the prepared head (same sequence number and hash), which SQLite's single
// writer checks and applies atomically. done is false when nothing was
// inserted for a reason the full path must tell apart (the head moved, the
// job is not open or not there, an id repeats), and the caller then runs
// the full path.
func (s *DB) appendPrepared(ctx context.Context, r *appendReq) (appendRes, bool) {
	p := r.prepared
	ev := p.ev
	ev.JobID = r.jobID
	headSeq, headHash := int64(0), ""
	if p.head != nil {
		headSeq, headHash = p.head.Seq, p.head.EventHash
	}
	if ev.Seq != headSeq+1 {
		return appendRes{}, false
	}
	embedded, err := encodeItems(p.items)
	if err != nil {
		return appendRes{}, false
	}
	res, err := s.putEventAfter(ctx, nil, &ev, embedded, headSeq, headHash)
	if isUnique(err) {
		return appendRes{}, false
	}
	if err != nil {
		return appendRes{err: fmt.Errorf("sqlite: append event: %w", err)}, true
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return appendRes{}, false
	}
	s.preparedAppends.Add(1)
	return appendRes{ev: ev}, true
}

// putEventAfter runs stmtPutEventAfter for ev (in tx, or in autocommit
// when tx is nil): it inserts only while the job is open and its last
// event is headSeq with headHash.
func (s *DB) putEventAfter(ctx context.Context, tx *sql.Tx, ev *store.JobEvent, items []byte, headSeq int64, headHash string) (sql.Result, error) {
	return s.exec(ctx, tx, stmtPutEventAfter,
		ev.JobID, ev.Seq, ev.Segment, ev.Index, ev.EventID, ev.EventType, ev.EventHash, ev.Event, orEmpty(ev.Payload), ev.Anchor, us(ev.CreatedAt), items,
		ev.JobID, ev.JobID, headSeq, ev.JobID, headSeq, headHash)
}

// insertJournaled inserts journaled appends in one transaction. Each must
// still follow its head in an open job: this process held the lease when it
// journaled them, so anything else means the chain was written behind the
// lease's back, and the error makes the store fail closed.
func (s *DB) insertJournaled(ctx context.Context, batch []*jrec) error {
	var tx *sql.Tx // a lone record is one statement in autocommit
	if len(batch) > 1 {
		var err error
		if tx, err = s.w.BeginTx(ctx, nil); err != nil {
			return err
		}
		defer tx.Rollback()
	}
	for _, r := range batch {
		ev := &r.ev
		res, err := s.putEventAfter(ctx, tx, ev, r.items, ev.Seq-1, r.headHash)
		if err != nil {
			return fmt.Errorf("event %d of job %s: %w", ev.Seq, ev.JobID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("event %d of job %s no longer follows the job's last event, or the job closed", ev.Seq, ev.JobID)
		}
	}
	if tx == nil {
		return nil
	}
	return tx.Commit()
}

// embeddedItem is an item stored in its event's row.
type embeddedItem struct {
	Kind      string          `json:"k"`
	ItemID    string          `json:"i"`
	Segment   int             `json:"s"`
	EventHash string          `json:"h"`
	CreatedAt int64           `json:"t"`
	Body      json.RawMessage `json:"b"`
}

// encodeItems writes an event's evidence for its row, as the JSON array
// of embeddedItem that ListItems reads. Items repeated within the event
// are a conflict; evidence must be JSON.
func encodeItems(items []store.JobItem) ([]byte, error) {
	if len(items) == 0 {
		return []byte{}, nil
	}
	size := 2
	for _, it := range items {
		size += len(it.JSON) + len(it.ItemID) + len(it.EventHash) + 96
	}
	b := make([]byte, 0, size)
	for i, it := range items {
		for _, prev := range items[:i] {
			if prev.Kind == it.Kind && prev.ItemID == it.ItemID {
				return nil, store.ErrConflict
			}
		}
		if !canon.Valid(it.JSON) {
			return nil, fmt.Errorf("sqlite: evidence %s %s is not JSON", it.Kind, it.ItemID)
		}
		if i == 0 {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = append(b, `{"k":`...)
		b = canon.AppendString(b, it.Kind)
		b = append(b, `,"i":`...)
		b = canon.AppendString(b, it.ItemID)
		b = append(b, `,"s":`...)
		b = strconv.AppendInt(b, int64(it.Segment), 10)
		b = append(b, `,"h":`...)
		b = canon.AppendString(b, it.EventHash)
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, us(it.CreatedAt), 10)
		b = append(b, `,"b":`...)
		b = append(b, it.JSON...)
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

func (s *DB) insertItem(ctx context.Context, tx *sql.Tx, it *store.JobItem) error {
	err := s.queryRow(ctx, tx, stmtPutItem,
		it.JobID, it.JobID, it.Segment, it.Kind, it.ItemID, it.EventHash, it.JSON, us(it.CreatedAt)).Scan(&it.Seq)
	if isUnique(err) {
		return store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: add item: %w", err)
	}
	return nil
}

// ListEvents lists a job's events in order.
func (s *DB) ListEvents(ctx context.Context, jobID string) ([]store.JobEvent, error) {
	if s.jn != nil {
		if err := s.jn.settle(); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventCols+` FROM job_events WHERE job_id = ? ORDER BY seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	defer rows.Close()
	var out []store.JobEvent
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

const itemCols = `job_id, seq, segment, kind, item_id, event_hash, body, created_at`

// AddItem records evidence for an open job.
func (s *DB) AddItem(ctx context.Context, it store.JobItem) (store.JobItem, error) {
	if !canon.Valid(it.JSON) {
		return it, fmt.Errorf("sqlite: evidence %s %s is not JSON", it.Kind, it.ItemID)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return it, fmt.Errorf("sqlite: %w", err)
	}
	defer tx.Rollback()
	if err := s.jobOpen(ctx, tx, it.JobID); err != nil {
		return it, err
	}
	if err := s.insertItem(ctx, tx, &it); err != nil {
		return it, err
	}
	return it, tx.Commit()
}

// ListItems lists a job's evidence: for each event in order, the items
// stored with it and then those added on their own that name it; items
// naming no event of the job come last. Seq is the position in that list.
func (s *DB) ListItems(ctx context.Context, jobID string) ([]store.JobItem, error) {
	if s.jn != nil {
		if err := s.jn.settle(); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+itemCols+` FROM job_items WHERE job_id = ? ORDER BY seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: items: %w", err)
	}
	byEvent := map[string][]store.JobItem{}
	var standalone []store.JobItem
	for rows.Next() {
		var it store.JobItem
		var c int64
		if err := rows.Scan(&it.JobID, &it.Seq, &it.Segment, &it.Kind, &it.ItemID, &it.EventHash, &it.JSON, &c); err != nil {
			rows.Close()
			return nil, err
		}
		it.CreatedAt = fromUS(c)
		standalone = append(standalone, it)
		byEvent[it.EventHash] = append(byEvent[it.EventHash], it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	evRows, err := s.db.QueryContext(ctx, `SELECT event_hash, items FROM job_events WHERE job_id = ? ORDER BY seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: items: %w", err)
	}
	defer evRows.Close()
	var out []store.JobItem
	seen := map[string]bool{}
	for evRows.Next() {
		var hash string
		var raw []byte
		if err := evRows.Scan(&hash, &raw); err != nil {
			return nil, err
		}
		if len(raw) > 0 {
			var list []embeddedItem
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, fmt.Errorf("sqlite: evidence of event %s: %w", hash, err)
			}
			for _, e := range list {
				out = append(out, store.JobItem{JobID: jobID, Segment: e.Segment, Kind: e.Kind, ItemID: e.ItemID, EventHash: e.EventHash, JSON: e.Body, CreatedAt: fromUS(e.CreatedAt)})
			}
		}
		if !seen[hash] {
			seen[hash] = true
			out = append(out, byEvent[hash]...)
		}
	}
	if err := evRows.Err(); err != nil {
		return nil, err
	}
	for i := range standalone {
		if !seen[standalone[i].EventHash] {
			out = append(out, standalone[i])
		}
	}
	for i := range out {
		out[i].Seq = int64(i + 1)
	}
	return out, nil
}

// PutBundle stores a job's bundle part (replacing one with the same part).
func (s *DB) PutBundle(ctx context.Context, b store.Bundle) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO bundles (job_id, part, bundle_id, envelope, urm, trust_pulse, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (job_id, part) DO UPDATE SET bundle_id = excluded.bundle_id, envelope = excluded.envelope, urm = excluded.urm,
		trust_pulse = excluded.trust_pulse, created_at = excluded.created_at`,
		b.JobID, b.Part, b.BundleID, b.Envelope, orEmpty(b.URM), orEmpty(b.TrustPulse), us(b.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: put bundle: %w", err)
	}
	return nil
}

// ListBundles lists a job's bundles, the aggregate (part -1) first.
func (s *DB) ListBundles(ctx context.Context, jobID string) ([]store.Bundle, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT job_id, part, bundle_id, envelope, urm, trust_pulse, created_at FROM bundles WHERE job_id = ? ORDER BY part`, jobID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: bundles: %w", err)
	}
	defer rows.Close()
	var out []store.Bundle
	for rows.Next() {
		var b store.Bundle
		var c int64
		if err := rows.Scan(&b.JobID, &b.Part, &b.BundleID, &b.Envelope, &b.URM, &b.TrustPulse, &c); err != nil {
			return nil, err
		}
		b.CreatedAt = fromUS(c)
		out = append(out, b)
	}
	return out, rows.Err()
}

// PutAgent stores a custodial agent.
func (s *DB) PutAgent(ctx context.Context, a store.Agent) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO agents (did, name, sealed_key, created_at) VALUES (?, ?, ?, ?)`, a.DID, a.Name, a.SealedKey, us(a.CreatedAt))
	if isUnique(err) {
		return store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: put agent: %w", err)
	}
	return nil
}

// GetAgent returns a custodial agent.
func (s *DB) GetAgent(ctx context.Context, did string) (store.Agent, error) {
	var a store.Agent
	var c int64
	err := s.db.QueryRowContext(ctx, `SELECT did, name, sealed_key, created_at FROM agents WHERE did = ?`, did).Scan(&a.DID, &a.Name, &a.SealedKey, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("sqlite: get agent: %w", err)
	}
	a.CreatedAt = fromUS(c)
	return a, nil
}

// ListAgents lists custodial agents.
func (s *DB) ListAgents(ctx context.Context) ([]store.Agent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT did, name, sealed_key, created_at FROM agents ORDER BY created_at, did`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: agents: %w", err)
	}
	defer rows.Close()
	var out []store.Agent
	for rows.Next() {
		var a store.Agent
		var c int64
		if err := rows.Scan(&a.DID, &a.Name, &a.SealedKey, &c); err != nil {
			return nil, err
		}
		a.CreatedAt = fromUS(c)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AddUsage adds d to a job's usage unless that goes over limit.
func (s *DB) AddUsage(ctx context.Context, jobID string, d, limit store.Usage) (store.Usage, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.Usage{}, fmt.Errorf("sqlite: %w", err)
	}
	defer tx.Rollback()
	var u store.Usage
	err = tx.QueryRowContext(ctx, `SELECT requests, tokens_in, tokens_out FROM job_usage WHERE job_id = ?`, jobID).Scan(&u.Requests, &u.TokensIn, &u.TokensOut)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return store.Usage{}, fmt.Errorf("sqlite: usage: %w", err)
	}
	n := store.Usage{Requests: u.Requests + d.Requests, TokensIn: u.TokensIn + d.TokensIn, TokensOut: u.TokensOut + d.TokensOut}
	if n.Exceeds(limit) {
		return u, store.ErrLimit
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO job_usage (job_id, requests, tokens_in, tokens_out) VALUES (?, ?, ?, ?)
		ON CONFLICT (job_id) DO UPDATE SET requests = excluded.requests, tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out`,
		jobID, n.Requests, n.TokensIn, n.TokensOut); err != nil {
		return store.Usage{}, fmt.Errorf("sqlite: usage: %w", err)
	}
	return n, tx.Commit()
}

// GetUsage returns a job's usage (zero when nothing was counted).
func (s *DB) GetUsage(ctx context.Context, jobID string) (store.Usage, error) {
	var u store.Usage
	err := s.db.QueryRowContext(ctx, `SELECT requests, tokens_in, tokens_out FROM job_usage WHERE job_id = ?`, jobID).Scan(&u.Requests, &u.TokensIn, &u.TokensOut)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Usage{}, nil
	}
	if err != nil {
		return store.Usage{}, fmt.Errorf("sqlite: usage: %w", err)
	}
	return u, nil
}

const callCols = `nonce, job_id, fingerprint, status, http_status, content_type, body, receipt, created_at, updated_at`

func scanCall(sc interface{ Scan(...any) error }) (store.GatewayCall, error) {
	var c store.GatewayCall
	var created, updated int64
	err := sc.Scan(&c.Nonce, &c.JobID, &c.Fingerprint, &c.Status, &c.HTTPStatus, &c.ContentType, &c.Body, &c.Receipt, &created, &updated)
	c.CreatedAt, c.UpdatedAt = fromUS(created), fromUS(updated)
	return c, err
}

// ClaimCall inserts an in-flight call unless its job knows its nonce.
func (s *DB) ClaimCall(ctx context.Context, c store.GatewayCall) (store.GatewayCall, bool, error) {
	c.Status = store.CallInFlight
	res, err := s.w.ExecContext(ctx, `INSERT INTO gateway_calls (`+callCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, nonce) DO NOTHING`,
		c.Nonce, c.JobID, c.Fingerprint, c.Status, c.HTTPStatus, c.ContentType, bytesOf(c.Body), bytesOf(c.Receipt), us(c.CreatedAt), us(c.CreatedAt))
	if err != nil {
		return store.GatewayCall{}, false, fmt.Errorf("sqlite: claim call: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		c.UpdatedAt = c.CreatedAt
		return c, true, nil
	}
	got, err := s.GetCall(ctx, c.JobID, c.Nonce)
	return got, false, err
}

// CompleteCall records a call's outcome.
func (s *DB) CompleteCall(ctx context.Context, c store.GatewayCall) error {
	res, err := s.w.ExecContext(ctx, `UPDATE gateway_calls SET status = ?, http_status = ?, content_type = ?, body = ?, receipt = ?, updated_at = ? WHERE job_id = ? AND nonce = ?`,
		store.CallDone, c.HTTPStatus, c.ContentType, bytesOf(c.Body), bytesOf(c.Receipt), us(c.UpdatedAt), c.JobID, c.Nonce)
	if err != nil {
		return fmt.Errorf("sqlite: complete call: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ReleaseCall forgets an in-flight claim.
func (s *DB) ReleaseCall(ctx context.Context, jobID, nonce string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM gateway_calls WHERE job_id = ? AND nonce = ? AND status = ?`, jobID, nonce, store.CallInFlight); err != nil {
		return fmt.Errorf("sqlite: release call: %w", err)
	}
	return nil
}

// GetCall returns the job's call with nonce, or ErrNotFound.
func (s *DB) GetCall(ctx context.Context, jobID, nonce string) (store.GatewayCall, error) {
	c, err := scanCall(s.db.QueryRowContext(ctx, `SELECT `+callCols+` FROM gateway_calls WHERE job_id = ? AND nonce = ?`, jobID, nonce))
	if errors.Is(err, sql.ErrNoRows) {
		return c, store.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: call: %w", err)
	}
	return c, nil
}

// bytesOf keeps an empty value empty but never NULL.
func bytesOf(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
