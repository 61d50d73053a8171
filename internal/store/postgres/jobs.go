package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/clawea/clawea/internal/store"
)

// Advisory lock keys that serialise writers whose sequence numbers
// followers read, so that sequence order is commit order and a follower
// polling "seq > last" never skips a row committed late.
const (
	lockRevocations = 0x636c6177_01
	lockJobChanges  = 0x636c6177_02
)

// tz prepares a time for a TIMESTAMPTZ column; the zero time is stored as
// 0001-01-01 UTC, which PostgreSQL represents exactly, and reads back as
// the zero time.
func tz(t time.Time) any {
	return t.UTC().Truncate(time.Microsecond)
}

func fromTZ(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func orEmpty(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// PutIssuerKey inserts an issuer key or moves its end earlier: a retired
// key is never made active again, nor its end later. An active key has no
// end (NULL; rows written before this rule may hold year 1).
func (d *DB) PutIssuerKey(ctx context.Context, k store.IssuerKey) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO issuer_keys (kid, public_key, created_at, not_after) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kid) DO UPDATE SET not_after = CASE
			WHEN issuer_keys.not_after IS NULL OR issuer_keys.not_after < '1970-01-01' THEN EXCLUDED.not_after
			WHEN EXCLUDED.not_after IS NULL THEN issuer_keys.not_after
			ELSE LEAST(issuer_keys.not_after, EXCLUDED.not_after) END`, k.Kid, k.PublicKey, tz(k.CreatedAt), nullTime(k.NotAfter))
	if err != nil {
		return fmt.Errorf("postgres: put issuer key: %w", err)
	}
	return nil
}

// ListIssuerKeys lists every issuer key, oldest first.
func (d *DB) ListIssuerKeys(ctx context.Context) ([]store.IssuerKey, error) {
	rows, err := d.pool.Query(ctx, `SELECT kid, public_key, created_at, not_after FROM issuer_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list issuer keys: %w", err)
	}
	defer rows.Close()
	var out []store.IssuerKey
	for rows.Next() {
		var k store.IssuerKey
		var na *time.Time
		if err := rows.Scan(&k.Kid, &k.PublicKey, &k.CreatedAt, &na); err != nil {
			return nil, err
		}
		k.CreatedAt, k.NotAfter = k.CreatedAt.UTC(), fromTZ(na)
		out = append(out, k)
	}
	return out, rows.Err()
}

// PutIssuedToken records an issued token.
func (d *DB) PutIssuedToken(ctx context.Context, t store.IssuedToken) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO issued_tokens (token_hash, jti, sub, job_id, scope_hash, policy_hash, kid, issued_at, expires_at, claims)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, t.TokenHash, t.JTI, t.Sub, t.JobID, t.ScopeHash, t.PolicyHash, t.Kid, tz(t.IssuedAt), tz(t.ExpiresAt), t.Claims)
	if isUnique(err) {
		return store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("postgres: put issued token: %w", err)
	}
	return nil
}

// GetIssuedToken returns an issued token by hash.
func (d *DB) GetIssuedToken(ctx context.Context, hash string) (store.IssuedToken, error) {
	var t store.IssuedToken
	err := d.pool.QueryRow(ctx, `SELECT token_hash, jti, sub, job_id, scope_hash, policy_hash, kid, issued_at, expires_at, claims FROM issued_tokens WHERE token_hash = $1`, hash).
		Scan(&t.TokenHash, &t.JTI, &t.Sub, &t.JobID, &t.ScopeHash, &t.PolicyHash, &t.Kid, &t.IssuedAt, &t.ExpiresAt, &t.Claims)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, store.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("postgres: get issued token: %w", err)
	}
	t.IssuedAt, t.ExpiresAt = t.IssuedAt.UTC(), t.ExpiresAt.UTC()
	return t, nil
}

const revCols = `seq, token_hash, reason, revoked_by, job_id, revoked_at, expires_at`

func scanRev(sc pgx.Row) (store.Revocation, error) {
	var r store.Revocation
	err := sc.Scan(&r.Seq, &r.TokenHash, &r.Reason, &r.RevokedBy, &r.JobID, &r.RevokedAt, &r.ExpiresAt)
	r.RevokedAt, r.ExpiresAt = r.RevokedAt.UTC(), r.ExpiresAt.UTC()
	return r, err
}

// Revoke records a revocation unless the token is already revoked.
func (d *DB) Revoke(ctx context.Context, r store.Revocation) (store.Revocation, bool, error) {
	var inserted bool
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockRevocations); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO revocations (token_hash, reason, revoked_by, job_id, revoked_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (token_hash) DO NOTHING`, r.TokenHash, r.Reason, r.RevokedBy, r.JobID, tz(r.RevokedAt), tz(r.ExpiresAt))
		inserted = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return r, false, fmt.Errorf("postgres: revoke: %w", err)
	}
	got, err := d.GetRevocation(ctx, r.TokenHash)
	return got, !inserted, err
}

// GetRevocation returns the revocation of a token.
func (d *DB) GetRevocation(ctx context.Context, hash string) (store.Revocation, error) {
	r, err := scanRev(d.pool.QueryRow(ctx, `SELECT `+revCols+` FROM revocations WHERE token_hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, store.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("postgres: get revocation: %w", err)
	}
	return r, nil
}

// RevocationsSince lists revocations after a sequence number.
func (d *DB) RevocationsSince(ctx context.Context, after int64, limit int) ([]store.Revocation, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+revCols+` FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: revocations: %w", err)
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

func scanJob(sc pgx.Row) (store.Job, error) {
	var j store.Job
	var fin *time.Time
	err := sc.Scan(&j.ID, &j.AgentDID, &j.PolicyHash, &j.ScopeHash, &j.TokenHash, &j.Status, &j.Labels, &j.Budget, &j.CreatedAt, &j.ExpiresAt, &fin, &j.Seq)
	j.CreatedAt, j.ExpiresAt, j.FinishedAt = j.CreatedAt.UTC(), j.ExpiresAt.UTC(), fromTZ(fin)
	return j, err
}

// CreateJob inserts a job.
func (d *DB) CreateJob(ctx context.Context, j store.Job) error {
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockJobChanges); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO jobs (`+jobCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, nextval('job_changes'))`,
			j.ID, j.AgentDID, j.PolicyHash, j.ScopeHash, j.TokenHash, j.Status, orEmpty(j.Labels), orEmpty(j.Budget), tz(j.CreatedAt), tz(j.ExpiresAt), tz(j.FinishedAt))
		return err
	})
	if isUnique(err) {
		return store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("postgres: create job: %w", err)
	}
	return nil
}

// GetJob returns a job.
func (d *DB) GetJob(ctx context.Context, id string) (store.Job, error) {
	j, err := scanJob(d.pool.QueryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return j, store.ErrNotFound
	}
	if err != nil {
		return j, fmt.Errorf("postgres: get job: %w", err)
	}
	return j, nil
}

func (d *DB) queryJobs(ctx context.Context, q string, args ...any) ([]store.Job, error) {
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", err)
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
func (d *DB) ListJobs(ctx context.Context, after, status string, limit int) ([]store.Job, error) {
	if status == "" {
		return d.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	}
	return d.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3`, status, after, limit)
}

// JobsChangedSince lists jobs changed after a sequence number.
func (d *DB) JobsChangedSince(ctx context.Context, after int64, limit int) ([]store.Job, error) {
	return d.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
}

// SetJobStatus changes a job's status if it is in from.
func (d *DB) SetJobStatus(ctx context.Context, id, from, to string, at time.Time) error {
	var n int64
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockJobChanges); err != nil {
			return err
		}
		var fin any // NULL keeps the old value
		if to == store.JobFinished || to == store.JobFinishing {
			fin = tz(at)
		}
		tag, err := tx.Exec(ctx, `UPDATE jobs SET status = $1, seq = nextval('job_changes'), finished_at = COALESCE($2, finished_at) WHERE id = $3 AND status = $4`,
			to, fin, id, from)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set job status: %w", err)
	}
	if n == 0 {
		if _, err := d.GetJob(ctx, id); errors.Is(err, store.ErrNotFound) {
			return store.ErrNotFound
		}
		return store.ErrConflict
	}
	return nil
}

func lockOpenJob(ctx context.Context, tx pgx.Tx, id string) error {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM jobs WHERE id = $1 FOR UPDATE`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	if status != store.JobOpen {
		return store.ErrConflict
	}
	return nil
}

const eventCols = `job_id, seq, segment, idx, event_id, event_type, event_hash, event, payload, anchor, created_at`

func scanEvent(sc pgx.Row) (store.JobEvent, error) {
	var e store.JobEvent
	err := sc.Scan(&e.JobID, &e.Seq, &e.Segment, &e.Index, &e.EventID, &e.EventType, &e.EventHash, &e.Event, &e.Payload, &e.Anchor, &e.CreatedAt)
	e.CreatedAt = e.CreatedAt.UTC()
	return e, err
}

// AppendEvent appends an event to an open job's chain atomically.
func (d *DB) AppendEvent(ctx context.Context, jobID string, next func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error)) (store.JobEvent, error) {
	var out store.JobEvent
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if err := lockOpenJob(ctx, tx, jobID); err != nil {
			return err
		}
		var last *store.JobEvent
		e, err := scanEvent(tx.QueryRow(ctx, `SELECT `+eventCols+` FROM job_events WHERE job_id = $1 ORDER BY seq DESC LIMIT 1`, jobID))
		switch {
		case err == nil:
			last = &e
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		ev, items, err := next(last)
		if err != nil {
			return err
		}
		ev.JobID = jobID
		if _, err = tx.Exec(ctx, `INSERT INTO job_events (`+eventCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			ev.JobID, ev.Seq, ev.Segment, ev.Index, ev.EventID, ev.EventType, ev.EventHash, ev.Event, orEmpty(ev.Payload), ev.Anchor, tz(ev.CreatedAt)); err != nil {
			return err
		}
		for _, it := range items {
			it.JobID = jobID
			if err := insertItem(ctx, tx, &it); err != nil {
				return err
			}
		}
		out = ev
		return nil
	})
	if isUnique(err) {
		return out, store.ErrConflict
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return out, err
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return out, fmt.Errorf("postgres: append event: %w", err)
		}
		return out, err
	}
	return out, nil
}

// ListEvents lists a job's events in order.
func (d *DB) ListEvents(ctx context.Context, jobID string) ([]store.JobEvent, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+eventCols+` FROM job_events WHERE job_id = $1 ORDER BY seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
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
func (d *DB) AddItem(ctx context.Context, it store.JobItem) (store.JobItem, error) {
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if err := lockOpenJob(ctx, tx, it.JobID); err != nil {
			return err
		}
		return insertItem(ctx, tx, &it)
	})
	if isUnique(err) {
		return it, store.ErrConflict
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return it, err
	}
	if err != nil {
		return it, fmt.Errorf("postgres: add item: %w", err)
	}
	return it, nil
}

func insertItem(ctx context.Context, tx pgx.Tx, it *store.JobItem) error {
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM job_items WHERE job_id = $1`, it.JobID).Scan(&it.Seq); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO job_items (`+itemCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		it.JobID, it.Seq, it.Segment, it.Kind, it.ItemID, it.EventHash, it.JSON, tz(it.CreatedAt))
	return err
}

// ListItems lists a job's evidence in order.
func (d *DB) ListItems(ctx context.Context, jobID string) ([]store.JobItem, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+itemCols+` FROM job_items WHERE job_id = $1 ORDER BY seq`, jobID)
	if err != nil {
		return nil, fmt.Errorf("postgres: items: %w", err)
	}
	defer rows.Close()
	var out []store.JobItem
	for rows.Next() {
		var it store.JobItem
		if err := rows.Scan(&it.JobID, &it.Seq, &it.Segment, &it.Kind, &it.ItemID, &it.EventHash, &it.JSON, &it.CreatedAt); err != nil {
			return nil, err
		}
		it.CreatedAt = it.CreatedAt.UTC()
		out = append(out, it)
	}
	return out, rows.Err()
}

// PutBundle stores a job's bundle part.
func (d *DB) PutBundle(ctx context.Context, b store.Bundle) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO bundles (job_id, part, bundle_id, envelope, urm, trust_pulse, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (job_id, part) DO UPDATE SET bundle_id = EXCLUDED.bundle_id, envelope = EXCLUDED.envelope, urm = EXCLUDED.urm,
		trust_pulse = EXCLUDED.trust_pulse, created_at = EXCLUDED.created_at`,
		b.JobID, b.Part, b.BundleID, b.Envelope, orEmpty(b.URM), orEmpty(b.TrustPulse), tz(b.CreatedAt))
	if err != nil {
		return fmt.Errorf("postgres: put bundle: %w", err)
	}
	return nil
}

// ListBundles lists a job's bundles, the aggregate (part -1) first.
func (d *DB) ListBundles(ctx context.Context, jobID string) ([]store.Bundle, error) {
	rows, err := d.pool.Query(ctx, `SELECT job_id, part, bundle_id, envelope, urm, trust_pulse, created_at FROM bundles WHERE job_id = $1 ORDER BY part`, jobID)
	if err != nil {
		return nil, fmt.Errorf("postgres: bundles: %w", err)
	}
	defer rows.Close()
	var out []store.Bundle
	for rows.Next() {
		var b store.Bundle
		if err := rows.Scan(&b.JobID, &b.Part, &b.BundleID, &b.Envelope, &b.URM, &b.TrustPulse, &b.CreatedAt); err != nil {
			return nil, err
		}
		b.CreatedAt = b.CreatedAt.UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}

// PutAgent stores a custodial agent.
func (d *DB) PutAgent(ctx context.Context, a store.Agent) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO agents (did, name, sealed_key, created_at) VALUES ($1, $2, $3, $4)`, a.DID, a.Name, a.SealedKey, tz(a.CreatedAt))
	if isUnique(err) {
		return store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("postgres: put agent: %w", err)
	}
	return nil
}

// GetAgent returns a custodial agent.
func (d *DB) GetAgent(ctx context.Context, did string) (store.Agent, error) {
	var a store.Agent
	err := d.pool.QueryRow(ctx, `SELECT did, name, sealed_key, created_at FROM agents WHERE did = $1`, did).Scan(&a.DID, &a.Name, &a.SealedKey, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("postgres: get agent: %w", err)
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return a, nil
}

// ListAgents lists custodial agents.
func (d *DB) ListAgents(ctx context.Context) ([]store.Agent, error) {
	rows, err := d.pool.Query(ctx, `SELECT did, name, sealed_key, created_at FROM agents ORDER BY created_at, did`)
	if err != nil {
		return nil, fmt.Errorf("postgres: agents: %w", err)
	}
	defer rows.Close()
	var out []store.Agent
	for rows.Next() {
		var a store.Agent
		if err := rows.Scan(&a.DID, &a.Name, &a.SealedKey, &a.CreatedAt); err != nil {
			return nil, err
		}
		a.CreatedAt = a.CreatedAt.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// AddUsage adds d to a job's usage unless that goes over limit.
func (d *DB) AddUsage(ctx context.Context, jobID string, delta, limit store.Usage) (store.Usage, error) {
	var out store.Usage
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO job_usage (job_id) VALUES ($1) ON CONFLICT (job_id) DO NOTHING`, jobID); err != nil {
			return err
		}
		var u store.Usage
		if err := tx.QueryRow(ctx, `SELECT requests, tokens_in, tokens_out FROM job_usage WHERE job_id = $1 FOR UPDATE`, jobID).Scan(&u.Requests, &u.TokensIn, &u.TokensOut); err != nil {
			return err
		}
		n := store.Usage{Requests: u.Requests + delta.Requests, TokensIn: u.TokensIn + delta.TokensIn, TokensOut: u.TokensOut + delta.TokensOut}
		if n.Exceeds(limit) {
			out = u
			return store.ErrLimit
		}
		out = n
		_, err := tx.Exec(ctx, `UPDATE job_usage SET requests = $2, tokens_in = $3, tokens_out = $4 WHERE job_id = $1`, jobID, n.Requests, n.TokensIn, n.TokensOut)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrLimit) {
		return out, fmt.Errorf("postgres: usage: %w", err)
	}
	return out, err
}

// GetUsage returns a job's usage (zero when nothing was counted).
func (d *DB) GetUsage(ctx context.Context, jobID string) (store.Usage, error) {
	var u store.Usage
	err := d.pool.QueryRow(ctx, `SELECT requests, tokens_in, tokens_out FROM job_usage WHERE job_id = $1`, jobID).Scan(&u.Requests, &u.TokensIn, &u.TokensOut)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Usage{}, nil
	}
	if err != nil {
		return u, fmt.Errorf("postgres: usage: %w", err)
	}
	return u, nil
}

const callCols = `nonce, job_id, fingerprint, status, http_status, content_type, body, receipt, created_at, updated_at`

func scanCall(sc pgx.Row) (store.GatewayCall, error) {
	var c store.GatewayCall
	err := sc.Scan(&c.Nonce, &c.JobID, &c.Fingerprint, &c.Status, &c.HTTPStatus, &c.ContentType, &c.Body, &c.Receipt, &c.CreatedAt, &c.UpdatedAt)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// ClaimCall inserts an in-flight call unless its job knows its nonce.
func (d *DB) ClaimCall(ctx context.Context, c store.GatewayCall) (store.GatewayCall, bool, error) {
	c.Status = store.CallInFlight
	tag, err := d.pool.Exec(ctx, `INSERT INTO gateway_calls (`+callCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (job_id, nonce) DO NOTHING`,
		c.Nonce, c.JobID, c.Fingerprint, c.Status, c.HTTPStatus, c.ContentType, bytesOf(c.Body), bytesOf(c.Receipt), tz(c.CreatedAt))
	if err != nil {
		return store.GatewayCall{}, false, fmt.Errorf("postgres: claim call: %w", err)
	}
	if tag.RowsAffected() == 1 {
		c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Microsecond)
		c.UpdatedAt = c.CreatedAt
		return c, true, nil
	}
	got, err := d.GetCall(ctx, c.JobID, c.Nonce)
	return got, false, err
}

// CompleteCall records a call's outcome.
func (d *DB) CompleteCall(ctx context.Context, c store.GatewayCall) error {
	tag, err := d.pool.Exec(ctx, `UPDATE gateway_calls SET status = $2, http_status = $3, content_type = $4, body = $5, receipt = $6, updated_at = $7 WHERE nonce = $1 AND job_id = $8`,
		c.Nonce, store.CallDone, c.HTTPStatus, c.ContentType, bytesOf(c.Body), bytesOf(c.Receipt), tz(c.UpdatedAt), c.JobID)
	if err != nil {
		return fmt.Errorf("postgres: complete call: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ReleaseCall forgets an in-flight claim.
func (d *DB) ReleaseCall(ctx context.Context, jobID, nonce string) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM gateway_calls WHERE job_id = $1 AND nonce = $2 AND status = $3`, jobID, nonce, store.CallInFlight); err != nil {
		return fmt.Errorf("postgres: release call: %w", err)
	}
	return nil
}

// GetCall returns the job's call with nonce, or ErrNotFound.
func (d *DB) GetCall(ctx context.Context, jobID, nonce string) (store.GatewayCall, error) {
	c, err := scanCall(d.pool.QueryRow(ctx, `SELECT `+callCols+` FROM gateway_calls WHERE job_id = $1 AND nonce = $2`, jobID, nonce))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, store.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("postgres: call: %w", err)
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
