// Package sqlite is clawea's embedded store: one SQLite database file
// (pure Go, modernc.org/sqlite) in write-ahead-log mode. It is the default
// back end; DSNs are "sqlite:PATH" or a plain path.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/clawea/clawea/internal/store"
)

func init() {
	store.Register("sqlite:", func(ctx context.Context, dsn string) (store.Store, error) {
		return Open(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	})
}

// DB is the SQLite store.
type DB struct {
	db   *sql.DB
	path string
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed, mode 0600) the database at path and
// applies pending migrations.
func Open(ctx context.Context, path string) (*DB, error) {
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
	if path == ":memory:" {
		db.SetMaxOpenConns(1)
	}
	s := &DB{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Backend returns "sqlite".
func (s *DB) Backend() string { return "sqlite" }

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// SQL exposes the database for tests that tamper with stored rows.
func (s *DB) SQL() *sql.DB { return s.db }

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS clawea_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrations table: %w", err)
	}
	for _, m := range migrations {
		tx, err := s.db.BeginTx(ctx, nil)
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
}

func toTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// PutWPC stores a policy unless its hash exists.
func (s *DB) PutWPC(ctx context.Context, w store.WPC) (store.WPC, bool, error) {
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now()
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO wpcs (hash, policy_id, policy_version, issuer_did, payload, envelope, created_at)
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
