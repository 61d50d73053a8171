// Package postgres is clawea's shared store on PostgreSQL (pgx), for
// several instances that must see the same revocations, jobs, approvals
// and receipts. DSNs start with postgres:// or postgresql://.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/clawea/clawea/internal/store"
)

func init() {
	open := func(ctx context.Context, dsn string) (store.Store, error) { return Open(ctx, dsn) }
	store.Register("postgres://", open)
	store.Register("postgresql://", open)
}

// DB is the PostgreSQL store.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// Open connects and applies pending migrations.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad DSN %s: %w", store.Redact(dsn), err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach %s: %w", store.Redact(dsn), err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Backend returns "postgres".
func (d *DB) Backend() string { return "postgres" }

// Close closes the pool.
func (d *DB) Close() error { d.pool.Close(); return nil }

// Pool exposes the pool for tests that tamper with stored rows.
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// migrationLock is the advisory lock key that serialises migrations of
// instances starting together.
const migrationLock = 0x636c61776561 // "clawea"

func (d *DB) migrate(ctx context.Context) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS clawea_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: migrations table: %w", err)
	}
	for _, m := range migrations {
		var n int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM clawea_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if n > 0 {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO clawea_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	return nil
}

var migrations = []store.Migration{
	{Version: 1, Name: "wpcs", SQL: `
CREATE TABLE wpcs (
	hash           TEXT COLLATE "C" PRIMARY KEY,
	policy_id      TEXT NOT NULL,
	policy_version TEXT NOT NULL,
	issuer_did     TEXT NOT NULL,
	payload        BYTEA NOT NULL,
	envelope       BYTEA NOT NULL,
	created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX wpcs_policy_id ON wpcs (policy_id);`},
	{Version: 2, Name: "tokens and jobs", SQL: `
CREATE TABLE issuer_keys (
	kid        TEXT PRIMARY KEY,
	public_key BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	not_after  TIMESTAMPTZ
);
CREATE TABLE issued_tokens (
	token_hash  TEXT PRIMARY KEY,
	jti         TEXT NOT NULL UNIQUE,
	sub         TEXT NOT NULL,
	job_id      TEXT NOT NULL,
	scope_hash  TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	kid         TEXT NOT NULL,
	issued_at   TIMESTAMPTZ NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL,
	claims      BYTEA NOT NULL
);
CREATE TABLE revocations (
	seq        BIGSERIAL PRIMARY KEY,
	token_hash TEXT NOT NULL UNIQUE,
	reason     TEXT NOT NULL,
	revoked_by TEXT NOT NULL,
	job_id     TEXT NOT NULL,
	revoked_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE SEQUENCE job_changes;
CREATE TABLE jobs (
	id          TEXT COLLATE "C" PRIMARY KEY,
	agent_did   TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	scope_hash  TEXT NOT NULL,
	token_hash  TEXT NOT NULL,
	status      TEXT NOT NULL,
	labels      BYTEA NOT NULL,
	budget      BYTEA NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL,
	finished_at TIMESTAMPTZ,
	seq         BIGINT NOT NULL
);
CREATE INDEX jobs_seq ON jobs (seq);
CREATE INDEX jobs_status ON jobs (status, id);
CREATE TABLE job_events (
	job_id     TEXT NOT NULL,
	seq        BIGINT NOT NULL,
	segment    INTEGER NOT NULL,
	idx        INTEGER NOT NULL,
	event_id   TEXT NOT NULL,
	event_type TEXT NOT NULL,
	event_hash TEXT NOT NULL,
	event      BYTEA NOT NULL,
	payload    BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (job_id, seq),
	UNIQUE (job_id, event_id)
);
CREATE TABLE job_items (
	job_id     TEXT NOT NULL,
	seq        BIGINT NOT NULL,
	segment    INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	item_id    TEXT NOT NULL,
	event_hash TEXT NOT NULL,
	body       BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (job_id, seq),
	UNIQUE (job_id, kind, item_id)
);
CREATE TABLE bundles (
	job_id      TEXT NOT NULL,
	part        INTEGER NOT NULL,
	bundle_id   TEXT NOT NULL,
	envelope    BYTEA NOT NULL,
	urm         BYTEA NOT NULL,
	trust_pulse BYTEA NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (job_id, part)
);
CREATE TABLE agents (
	did        TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	sealed_key BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);`},
	{Version: 3, Name: "gateway", SQL: `
ALTER TABLE job_events ADD COLUMN anchor TEXT NOT NULL DEFAULT '';
CREATE TABLE job_usage (
	job_id     TEXT PRIMARY KEY,
	requests   BIGINT NOT NULL DEFAULT 0,
	tokens_in  BIGINT NOT NULL DEFAULT 0,
	tokens_out BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE gateway_calls (
	nonce        TEXT PRIMARY KEY,
	job_id       TEXT NOT NULL,
	fingerprint  TEXT NOT NULL,
	status       TEXT NOT NULL,
	http_status  INTEGER NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL DEFAULT '',
	body         BYTEA NOT NULL DEFAULT '',
	receipt      BYTEA NOT NULL DEFAULT '',
	created_at   TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX gateway_calls_job ON gateway_calls (job_id);`},
	{Version: 4, Name: "tool gateway", SQL: `
CREATE TABLE approvals (
	id          TEXT COLLATE "C" PRIMARY KEY,
	job_id      TEXT NOT NULL,
	tool        TEXT NOT NULL,
	action      TEXT NOT NULL,
	resource    TEXT NOT NULL,
	args_hash   TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	status      TEXT NOT NULL,
	summary     BYTEA NOT NULL,
	request     BYTEA NOT NULL,
	decision    BYTEA NOT NULL DEFAULT '',
	approver    TEXT NOT NULL DEFAULT '',
	created_at  TIMESTAMPTZ NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL,
	decided_at  TIMESTAMPTZ
);
CREATE INDEX approvals_call ON approvals (job_id, tool, args_hash, policy_hash, created_at);
CREATE UNIQUE INDEX approvals_one_pending ON approvals (job_id, tool, args_hash, policy_hash) WHERE status = 'pending';
CREATE INDEX approvals_status ON approvals (status, id);
CREATE TABLE lockdown_log (
	seq    BIGSERIAL PRIMARY KEY,
	on_    BOOLEAN NOT NULL,
	by_    TEXT NOT NULL,
	reason TEXT NOT NULL,
	at     TIMESTAMPTZ NOT NULL
);
CREATE TABLE job_counters (
	job_id TEXT NOT NULL,
	name   TEXT NOT NULL,
	value  BIGINT NOT NULL,
	PRIMARY KEY (job_id, name)
);
CREATE TABLE bus_messages (
	seq            BIGSERIAL PRIMARY KEY,
	namespace      TEXT NOT NULL,
	entity         TEXT NOT NULL,
	message_id     TEXT NOT NULL,
	subject        TEXT NOT NULL,
	content_type   TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	body           BYTEA NOT NULL,
	properties     BYTEA NOT NULL,
	state          TEXT NOT NULL,
	lock_token     TEXT NOT NULL DEFAULT '',
	locked_until   TIMESTAMPTZ,
	delivery_count INTEGER NOT NULL DEFAULT 0,
	enqueued_at    TIMESTAMPTZ NOT NULL,
	dead_reason    TEXT NOT NULL DEFAULT '',
	dead_desc      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX bus_messages_entity ON bus_messages (namespace, entity, state, seq);
CREATE INDEX bus_messages_lock ON bus_messages (lock_token);`},
	// Idempotency keys belong to their job: one job's key neither
	// answers nor blocks another's. The primary key (job_id, nonce) also
	// serves lookups by job, so the job index goes.
	{Version: 5, Name: "gateway calls keyed by job", SQL: `
ALTER TABLE gateway_calls DROP CONSTRAINT gateway_calls_pkey;
ALTER TABLE gateway_calls ADD PRIMARY KEY (job_id, nonce);
DROP INDEX gateway_calls_job;`},
	// The policy lifecycle log: approvals, retirements, supersessions and
	// freezes, each with the operator's identity and signed statement.
	{Version: 6, Name: "policy lifecycle", SQL: `
CREATE TABLE policy_changes (
	seq         BIGSERIAL PRIMARY KEY,
	action      TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	hashes      TEXT NOT NULL,
	actor       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	statement   BYTEA NOT NULL,
	signature   TEXT NOT NULL,
	stmt_hash   TEXT NOT NULL,
	at          TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX policy_changes_statement ON policy_changes (stmt_hash) WHERE stmt_hash <> '';`},
	// The connector switches (clawea connector deny|allow).
	{Version: 7, Name: "connector switches", SQL: `
CREATE TABLE connector_switch_log (
	seq    BIGSERIAL PRIMARY KEY,
	name   TEXT NOT NULL,
	denied BOOLEAN NOT NULL,
	by_    TEXT NOT NULL,
	reason TEXT NOT NULL,
	at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX connector_switch_name ON connector_switch_log (name, seq);`},
}

// PutWPC stores a policy unless its hash exists.
func (d *DB) PutWPC(ctx context.Context, w store.WPC) (store.WPC, bool, error) {
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now()
	}
	tag, err := d.pool.Exec(ctx, `INSERT INTO wpcs (hash, policy_id, policy_version, issuer_did, payload, envelope, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING`,
		w.Hash, w.PolicyID, w.PolicyVersion, w.IssuerDID, w.Payload, w.Envelope, w.CreatedAt.UTC().Truncate(time.Microsecond))
	if err != nil {
		return store.WPC{}, false, fmt.Errorf("postgres: put wpc: %w", err)
	}
	stored, err := d.GetWPC(ctx, w.Hash)
	return stored, tag.RowsAffected() == 0, err
}

// GetWPC returns the policy with hash.
func (d *DB) GetWPC(ctx context.Context, hash string) (store.WPC, error) {
	var w store.WPC
	err := d.pool.QueryRow(ctx, `SELECT hash, policy_id, policy_version, issuer_did, payload, envelope, created_at FROM wpcs WHERE hash = $1`, hash).
		Scan(&w.Hash, &w.PolicyID, &w.PolicyVersion, &w.IssuerDID, &w.Payload, &w.Envelope, &w.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return w, store.ErrNotFound
	}
	if err != nil {
		return w, fmt.Errorf("postgres: get wpc: %w", err)
	}
	w.CreatedAt = w.CreatedAt.UTC()
	return w, nil
}

// ListWPCs lists policies ordered by hash.
func (d *DB) ListWPCs(ctx context.Context, after string, limit int) ([]store.WPC, error) {
	rows, err := d.pool.Query(ctx, `SELECT hash, policy_id, policy_version, issuer_did, payload, envelope, created_at FROM wpcs WHERE hash > $1 ORDER BY hash LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list wpcs: %w", err)
	}
	defer rows.Close()
	var out []store.WPC
	for rows.Next() {
		var w store.WPC
		if err := rows.Scan(&w.Hash, &w.PolicyID, &w.PolicyVersion, &w.IssuerDID, &w.Payload, &w.Envelope, &w.CreatedAt); err != nil {
			return nil, fmt.Errorf("postgres: list wpcs: %w", err)
		}
		w.CreatedAt = w.CreatedAt.UTC()
		out = append(out, w)
	}
	return out, rows.Err()
}
