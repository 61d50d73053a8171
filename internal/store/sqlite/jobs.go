package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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

// PutIssuerKey inserts or updates an issuer key.
func (s *DB) PutIssuerKey(ctx context.Context, k store.IssuerKey) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO issuer_keys (kid, public_key, created_at, not_after) VALUES (?, ?, ?, ?)
		ON CONFLICT (kid) DO UPDATE SET not_after = excluded.not_after`, k.Kid, k.PublicKey, us(k.CreatedAt), us(k.NotAfter))
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
	_, err := s.db.ExecContext(ctx, `INSERT INTO issued_tokens (token_hash, jti, sub, job_id, scope_hash, policy_hash, kid, issued_at, expires_at, claims)
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
	res, err := s.db.ExecContext(ctx, `INSERT INTO revocations (token_hash, reason, revoked_by, job_id, revoked_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
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
	tx, err := s.db.BeginTx(ctx, nil)
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
	tx, err := s.db.BeginTx(ctx, nil)
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

func jobOpen(ctx context.Context, tx *sql.Tx, id string) error {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM jobs WHERE id = ?`, id).Scan(&status)
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
func (s *DB) AppendEvent(ctx context.Context, jobID string, next func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error)) (store.JobEvent, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.JobEvent{}, fmt.Errorf("sqlite: %w", err)
	}
	defer tx.Rollback()
	if err := jobOpen(ctx, tx, jobID); err != nil {
		return store.JobEvent{}, err
	}
	var last *store.JobEvent
	e, err := scanEvent(tx.QueryRowContext(ctx, `SELECT `+eventCols+` FROM job_events WHERE job_id = ? ORDER BY seq DESC LIMIT 1`, jobID))
	switch {
	case err == nil:
		last = &e
	case !errors.Is(err, sql.ErrNoRows):
		return store.JobEvent{}, fmt.Errorf("sqlite: last event: %w", err)
	}
	ev, items, err := next(last)
	if err != nil {
		return store.JobEvent{}, err
	}
	ev.JobID = jobID
	_, err = tx.ExecContext(ctx, `INSERT INTO job_events (`+eventCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.JobID, ev.Seq, ev.Segment, ev.Index, ev.EventID, ev.EventType, ev.EventHash, ev.Event, orEmpty(ev.Payload), ev.Anchor, us(ev.CreatedAt))
	if isUnique(err) {
		return store.JobEvent{}, store.ErrConflict
	}
	if err != nil {
		return store.JobEvent{}, fmt.Errorf("sqlite: append event: %w", err)
	}
	for _, it := range items {
		it.JobID = jobID
		if err := insertItem(ctx, tx, &it); err != nil {
			return store.JobEvent{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return store.JobEvent{}, fmt.Errorf("sqlite: %w", err)
	}
	return ev, nil
}

func insertItem(ctx context.Context, tx *sql.Tx, it *store.JobItem) error {
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM job_items WHERE job_id = ?`, it.JobID).Scan(&it.Seq); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO job_items (`+itemCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		it.JobID, it.Seq, it.Segment, it.Kind, it.ItemID, it.EventHash, it.JSON, us(it.CreatedAt))
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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return it, fmt.Errorf("sqlite: %w", err)
	}
	defer tx.Rollback()
	if err := jobOpen(ctx, tx, it.JobID); err != nil {
		return it, err
	}
	if err := insertItem(ctx, tx, &it); err != nil {
		return it, err
	}
	return it, tx.Commit()
}

// ListItems lists a job's evidence in order.
func (s *DB) ListItems(ctx context.Context, jobID string) ([]store.JobItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+itemCols+` FROM job_items WHERE job_id = ? ORDER BY seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: items: %w", err)
	}
	defer rows.Close()
	var out []store.JobItem
	for rows.Next() {
		var it store.JobItem
		var c int64
		if err := rows.Scan(&it.JobID, &it.Seq, &it.Segment, &it.Kind, &it.ItemID, &it.EventHash, &it.JSON, &c); err != nil {
			return nil, err
		}
		it.CreatedAt = fromUS(c)
		out = append(out, it)
	}
	return out, rows.Err()
}

// PutBundle stores a job's bundle part (replacing one with the same part).
func (s *DB) PutBundle(ctx context.Context, b store.Bundle) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO bundles (job_id, part, bundle_id, envelope, urm, trust_pulse, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
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
	_, err := s.db.ExecContext(ctx, `INSERT INTO agents (did, name, sealed_key, created_at) VALUES (?, ?, ?, ?)`, a.DID, a.Name, a.SealedKey, us(a.CreatedAt))
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
	tx, err := s.db.BeginTx(ctx, nil)
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

// ClaimCall inserts an in-flight call unless its nonce is known.
func (s *DB) ClaimCall(ctx context.Context, c store.GatewayCall) (store.GatewayCall, bool, error) {
	c.Status = store.CallInFlight
	res, err := s.db.ExecContext(ctx, `INSERT INTO gateway_calls (`+callCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (nonce) DO NOTHING`,
		c.Nonce, c.JobID, c.Fingerprint, c.Status, c.HTTPStatus, c.ContentType, bytesOf(c.Body), bytesOf(c.Receipt), us(c.CreatedAt), us(c.CreatedAt))
	if err != nil {
		return store.GatewayCall{}, false, fmt.Errorf("sqlite: claim call: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		c.UpdatedAt = c.CreatedAt
		return c, true, nil
	}
	got, err := s.GetCall(ctx, c.Nonce)
	return got, false, err
}

// CompleteCall records a call's outcome.
func (s *DB) CompleteCall(ctx context.Context, c store.GatewayCall) error {
	res, err := s.db.ExecContext(ctx, `UPDATE gateway_calls SET status = ?, http_status = ?, content_type = ?, body = ?, receipt = ?, updated_at = ? WHERE nonce = ?`,
		store.CallDone, c.HTTPStatus, c.ContentType, bytesOf(c.Body), bytesOf(c.Receipt), us(c.UpdatedAt), c.Nonce)
	if err != nil {
		return fmt.Errorf("sqlite: complete call: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ReleaseCall forgets an in-flight claim.
func (s *DB) ReleaseCall(ctx context.Context, nonce string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM gateway_calls WHERE nonce = ? AND status = ?`, nonce, store.CallInFlight); err != nil {
		return fmt.Errorf("sqlite: release call: %w", err)
	}
	return nil
}

// GetCall returns the call with nonce, or ErrNotFound.
func (s *DB) GetCall(ctx context.Context, nonce string) (store.GatewayCall, error) {
	c, err := scanCall(s.db.QueryRowContext(ctx, `SELECT `+callCols+` FROM gateway_calls WHERE nonce = ?`, nonce))
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
