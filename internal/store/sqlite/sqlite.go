// Package sqlite is clawea's embedded store: one SQLite database file
// (pure Go, modernc.org/sqlite) in write-ahead-log mode. It is the default
// back end; DSNs are "sqlite:PATH" or a plain path.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/clawea/clawea/internal/store"
)

func init() {
	store.Register("sqlite:", func(ctx context.Context, dsn string) (store.Store, error) {
		path, opt, err := ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return OpenWith(ctx, path, opt)
	})
}

// DB is the SQLite store.
type DB struct {
	db   *sql.DB // readers
	w    *sql.DB // the single writer (the same pool for :memory:)
	path string

	stmts map[string]*sql.Stmt

	qmu     sync.Mutex
	queue   []*appendReq
	leading bool
	closed  bool
	leaders sync.WaitGroup // a running batch leader

	preparedAppends atomic.Int64 // appends done in one statement (tests read it)

	jn *journal // nil for :memory: and with Options.NoJournal
}

// Options tune Open.
type Options struct {
	// NoJournal makes every append a transaction on the call's path
	// instead of journaling prepared appends (see journal.go).
	NoJournal bool
	// AcceptJournalLoss opens a database whose journal lost records that
	// may have been acknowledged (see ErrJournalLoss), logging what was
	// lost, instead of refusing to open.
	AcceptJournalLoss bool
	// Log receives the journal's reports (default slog.Default()).
	Log *slog.Logger
}

var (
	_ store.Store            = (*DB)(nil)
	_ store.PreparedAppender = (*DB)(nil)
)

// ParseDSN reads "sqlite:PATH" with optional settings after a '?':
// accept_journal_loss=true sets Options.AcceptJournalLoss.
func ParseDSN(dsn string) (string, Options, error) {
	var opt Options
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "sqlite:"), "?")
	if query == "" {
		return path, opt, nil
	}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "accept_journal_loss" && (v == "true" || v == "1"):
			opt.AcceptJournalLoss = true
		case k == "accept_journal_loss" && (v == "false" || v == "0"):
		default:
			return "", opt, fmt.Errorf("sqlite: unknown setting %q in the DSN (known: accept_journal_loss=true)", kv)
		}
	}
	return path, opt, nil
}

// Open opens (creating if needed, mode 0600) the database at path and
// applies pending migrations; a file database journals prepared appends.
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opt Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		f.Close()
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(on)&_pragma=synchronous(normal)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// Readers share a small pool of long-lived connections; writes go
	// through one connection, so they queue in Go instead of spinning on
	// SQLite's busy handler, and its prepared statements stay warm.
	db.SetMaxIdleConns(8)
	db.SetMaxOpenConns(8)
	w := db
	if path == ":memory:" {
		db.SetMaxOpenConns(1)
	} else if w, err = sql.Open("sqlite", dsn); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	s := &DB{db: db, w: w, path: path}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if path != ":memory:" && !opt.NoJournal && journalSupported {
		if s.jn, err = openJournal(s, path, opt); err == nil {
			err = s.jn.recover()
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Backend returns "sqlite".
func (s *DB) Backend() string { return "sqlite" }

// Close refuses new appends, lets queued ones finish, and closes the
// database.
func (s *DB) Close() error {
	s.qmu.Lock()
	s.closed = true
	s.qmu.Unlock()
	s.leaders.Wait()
	var err error
	if s.jn != nil {
		err = s.jn.close()
	}
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	if s.w != s.db {
		if werr := s.w.Close(); err == nil {
			err = werr
		}
	}
	return err
}

// SQL exposes the database for tests that tamper with stored rows.
func (s *DB) SQL() *sql.DB { return s.db }

func (s *DB) migrate(ctx context.Context) error { return s.migrateWith(ctx, migrations) }

// migrateWith applies the migrations in ms not applied yet, each in its
// own transaction.
func (s *DB) migrateWith(ctx context.Context, ms []store.Migration) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS clawea_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrations table: %w", err)
	}
	for _, m := range ms {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM clawea_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: %w", err)
		}
		if n == 0 {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				tx.Rollback()
				return fmt.Errorf("sqlite: migration %d (%s): %w", m.Version, m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO clawea_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
				tx.Rollback()
				return fmt.Errorf("sqlite: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
	}
	return nil
}

var migrations = []store.Migration{
	{Version: 1, Name: "wpcs", SQL: `
CREATE TABLE wpcs (
	hash           TEXT PRIMARY KEY,
	policy_id      TEXT NOT NULL,
	policy_version TEXT NOT NULL,
	issuer_did     TEXT NOT NULL,
	payload        BLOB NOT NULL,
	envelope       BLOB NOT NULL,
	created_at     INTEGER NOT NULL
);
CREATE INDEX wpcs_policy_id ON wpcs (policy_id);`},
	{Version: 2, Name: "tokens and jobs", SQL: `
CREATE TABLE issuer_keys (
	kid        TEXT PRIMARY KEY,
	public_key BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	not_after  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE issued_tokens (
	token_hash  TEXT PRIMARY KEY,
	jti         TEXT NOT NULL UNIQUE,
	sub         TEXT NOT NULL,
	job_id      TEXT NOT NULL,
	scope_hash  TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	kid         TEXT NOT NULL,
	issued_at   INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	claims      BLOB NOT NULL
);
CREATE TABLE revocations (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	token_hash TEXT NOT NULL UNIQUE,
	reason     TEXT NOT NULL,
	revoked_by TEXT NOT NULL,
	job_id     TEXT NOT NULL,
	revoked_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE TABLE job_seq (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO job_seq (id, value) VALUES (1, 0);
CREATE TABLE jobs (
	id          TEXT PRIMARY KEY,
	agent_did   TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	scope_hash  TEXT NOT NULL,
	token_hash  TEXT NOT NULL,
	status      TEXT NOT NULL,
	labels      BLOB NOT NULL,
	budget      BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0,
	seq         INTEGER NOT NULL
);
CREATE INDEX jobs_seq ON jobs (seq);
CREATE INDEX jobs_status ON jobs (status, id);
CREATE TABLE job_events (
	job_id     TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	segment    INTEGER NOT NULL,
	idx        INTEGER NOT NULL,
	event_id   TEXT NOT NULL,
	event_type TEXT NOT NULL,
	event_hash TEXT NOT NULL,
	event      BLOB NOT NULL,
	payload    BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (job_id, seq),
	UNIQUE (job_id, event_id)
);
CREATE TABLE job_items (
	job_id     TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	segment    INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	item_id    TEXT NOT NULL,
	event_hash TEXT NOT NULL,
	body       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (job_id, seq),
	UNIQUE (job_id, kind, item_id)
);
CREATE TABLE bundles (
	job_id      TEXT NOT NULL,
	part        INTEGER NOT NULL,
	bundle_id   TEXT NOT NULL,
	envelope    BLOB NOT NULL,
	urm         BLOB NOT NULL,
	trust_pulse BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (job_id, part)
);
CREATE TABLE agents (
	did        TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	sealed_key BLOB NOT NULL,
	created_at INTEGER NOT NULL
);`},
	{Version: 3, Name: "gateway", SQL: `
ALTER TABLE job_events ADD COLUMN anchor TEXT NOT NULL DEFAULT '';
CREATE TABLE job_usage (
	job_id     TEXT PRIMARY KEY,
	requests   INTEGER NOT NULL DEFAULT 0,
	tokens_in  INTEGER NOT NULL DEFAULT 0,
	tokens_out INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE gateway_calls (
	nonce        TEXT PRIMARY KEY,
	job_id       TEXT NOT NULL,
	fingerprint  TEXT NOT NULL,
	status       TEXT NOT NULL,
	http_status  INTEGER NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL DEFAULT '',
	body         BLOB NOT NULL DEFAULT x'',
	receipt      BLOB NOT NULL DEFAULT x'',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
CREATE INDEX gateway_calls_job ON gateway_calls (job_id);`},
	// Every model and tool call writes one event with its receipt: the
	// receipt rides in the event's row (one insert instead of two, and no
	// second index to update); job_items keeps evidence added on its own.
	{Version: 4, Name: "evidence in event rows", SQL: `
ALTER TABLE job_events ADD COLUMN items BLOB NOT NULL DEFAULT x'';`},
	{Version: 5, Name: "tool gateway", SQL: `
CREATE TABLE approvals (
	id          TEXT PRIMARY KEY,
	job_id      TEXT NOT NULL,
	tool        TEXT NOT NULL,
	action      TEXT NOT NULL,
	resource    TEXT NOT NULL,
	args_hash   TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	status      TEXT NOT NULL,
	summary     BLOB NOT NULL,
	request     BLOB NOT NULL,
	decision    BLOB NOT NULL DEFAULT x'',
	approver    TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	decided_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approvals_call ON approvals (job_id, tool, args_hash, policy_hash, created_at);
CREATE UNIQUE INDEX approvals_one_pending ON approvals (job_id, tool, args_hash, policy_hash) WHERE status = 'pending';
CREATE INDEX approvals_status ON approvals (status, id);
CREATE TABLE lockdown_log (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	on_    INTEGER NOT NULL,
	by_    TEXT NOT NULL,
	reason TEXT NOT NULL,
	at     INTEGER NOT NULL
);
CREATE TABLE job_counters (
	job_id TEXT NOT NULL,
	name   TEXT NOT NULL,
	value  INTEGER NOT NULL,
	PRIMARY KEY (job_id, name)
);
CREATE TABLE bus_messages (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	namespace      TEXT NOT NULL,
	entity         TEXT NOT NULL,
	message_id     TEXT NOT NULL,
	subject        TEXT NOT NULL,
	content_type   TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	body           BLOB NOT NULL,
	properties     BLOB NOT NULL,
	state          TEXT NOT NULL,
	lock_token     TEXT NOT NULL DEFAULT '',
	locked_until   INTEGER NOT NULL DEFAULT 0,
	delivery_count INTEGER NOT NULL DEFAULT 0,
	enqueued_at    INTEGER NOT NULL,
	dead_reason    TEXT NOT NULL DEFAULT '',
	dead_desc      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX bus_messages_entity ON bus_messages (namespace, entity, state, seq);
CREATE INDEX bus_messages_lock ON bus_messages (lock_token);`},
	// An event's id is derived from its sequence number (evt_000042), so
	// UNIQUE (job_id, event_id) repeated the primary key and cost every
	// append a third B-tree and a WAL page. SQLite cannot drop a table
	// constraint, so the table is rebuilt without it.
	{Version: 6, Name: "job_events without the event id index", SQL: `
CREATE TABLE job_events_v6 (
	job_id     TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	segment    INTEGER NOT NULL,
	idx        INTEGER NOT NULL,
	event_id   TEXT NOT NULL,
	event_type TEXT NOT NULL,
	event_hash TEXT NOT NULL,
	event      BLOB NOT NULL,
	payload    BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	anchor     TEXT NOT NULL DEFAULT '',
	items      BLOB NOT NULL DEFAULT x'',
	PRIMARY KEY (job_id, seq)
);
INSERT INTO job_events_v6 (job_id, seq, segment, idx, event_id, event_type, event_hash, event, payload, created_at, anchor, items)
	SELECT job_id, seq, segment, idx, event_id, event_type, event_hash, event, payload, created_at, anchor, items FROM job_events ORDER BY job_id, seq;
DROP TABLE job_events;
ALTER TABLE job_events_v6 RENAME TO job_events;`},
	// Idempotency keys belong to their job: one job's key neither
	// answers nor blocks another's. The primary key becomes (job_id,
	// nonce); SQLite cannot change a primary key, so the table is rebuilt.
	{Version: 7, Name: "gateway calls keyed by job", SQL: `
CREATE TABLE gateway_calls_v7 (
	job_id       TEXT NOT NULL,
	nonce        TEXT NOT NULL,
	fingerprint  TEXT NOT NULL,
	status       TEXT NOT NULL,
	http_status  INTEGER NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL DEFAULT '',
	body         BLOB NOT NULL DEFAULT x'',
	receipt      BLOB NOT NULL DEFAULT x'',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (job_id, nonce)
);
INSERT INTO gateway_calls_v7 (job_id, nonce, fingerprint, status, http_status, content_type, body, receipt, created_at, updated_at)
	SELECT job_id, nonce, fingerprint, status, http_status, content_type, body, receipt, created_at, updated_at FROM gateway_calls;
DROP TABLE gateway_calls;
ALTER TABLE gateway_calls_v7 RENAME TO gateway_calls;`},
	// The policy lifecycle log: approvals, retirements, supersessions and
	// freezes, each with the operator's identity and signed statement.
	{Version: 8, Name: "policy lifecycle", SQL: `
CREATE TABLE policy_changes (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	action      TEXT NOT NULL,
	policy_hash TEXT NOT NULL,
	hashes      TEXT NOT NULL,
	actor       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	statement   BLOB NOT NULL,
	signature   TEXT NOT NULL,
	stmt_hash   TEXT NOT NULL,
	at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX policy_changes_statement ON policy_changes (stmt_hash) WHERE stmt_hash <> '';`},
	// The connector switches (clawea connector deny|allow).
	{Version: 9, Name: "connector switches", SQL: `
CREATE TABLE connector_switch_log (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	name   TEXT NOT NULL,
	denied INTEGER NOT NULL,
	by_    TEXT NOT NULL,
	reason TEXT NOT NULL,
	at     INTEGER NOT NULL
);
CREATE INDEX connector_switch_name ON connector_switch_log (name, seq);`},
}

func toTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// PutWPC stores a policy unless its hash exists.
func (s *DB) PutWPC(ctx context.Context, w store.WPC) (store.WPC, bool, error) {
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now()
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO wpcs (hash, policy_id, policy_version, issuer_did, payload, envelope, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
		w.Hash, w.PolicyID, w.PolicyVersion, w.IssuerDID, w.Payload, w.Envelope, w.CreatedAt.UnixMicro())
	if err != nil {
		return store.WPC{}, false, fmt.Errorf("sqlite: put wpc: %w", err)
	}
	n, _ := res.RowsAffected()
	stored, err := s.GetWPC(ctx, w.Hash)
	return stored, n == 0, err
}

// GetWPC returns the policy with hash.
func (s *DB) GetWPC(ctx context.Context, hash string) (store.WPC, error) {
	var w store.WPC
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT hash, policy_id, policy_version, issuer_did, payload, envelope, created_at FROM wpcs WHERE hash = ?`, hash).
		Scan(&w.Hash, &w.PolicyID, &w.PolicyVersion, &w.IssuerDID, &w.Payload, &w.Envelope, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return w, store.ErrNotFound
	}
	if err != nil {
		return w, fmt.Errorf("sqlite: get wpc: %w", err)
	}
	w.CreatedAt = toTime(created)
	return w, nil
}

// ListWPCs lists policies ordered by hash.
func (s *DB) ListWPCs(ctx context.Context, after string, limit int) ([]store.WPC, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT hash, policy_id, policy_version, issuer_did, payload, envelope, created_at FROM wpcs WHERE hash > ? ORDER BY hash LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list wpcs: %w", err)
	}
	defer rows.Close()
	var out []store.WPC
	for rows.Next() {
		var w store.WPC
		var created int64
		if err := rows.Scan(&w.Hash, &w.PolicyID, &w.PolicyVersion, &w.IssuerDID, &w.Payload, &w.Envelope, &created); err != nil {
			return nil, fmt.Errorf("sqlite: list wpcs: %w", err)
		}
		w.CreatedAt = toTime(created)
		out = append(out, w)
	}
	return out, rows.Err()
}
