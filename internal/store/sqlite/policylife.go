package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/clawea/clawea/internal/store"
)

// AddPolicyChange appends to the policy lifecycle log.
func (s *DB) AddPolicyChange(ctx context.Context, c store.PolicyChange) (store.PolicyChange, error) {
	hashes := []byte("[]")
	if len(c.Hashes) > 0 {
		hashes, _ = json.Marshal(c.Hashes)
	}
	stmt := c.Statement
	if stmt == nil {
		stmt = []byte{}
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO policy_changes (action, policy_hash, hashes, actor, reason, statement, signature, stmt_hash, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.Action, c.PolicyHash, string(hashes), c.Actor, c.Reason, stmt, c.Signature,
		store.StatementHash(c.Statement), us(c.At))
	if isUnique(err) {
		return c, store.ErrConflict
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: policy change: %w", err)
	}
	c.Seq, _ = res.LastInsertId()
	return c, nil
}

// PolicyChangesSince lists lifecycle changes after a sequence number.
func (s *DB) PolicyChangesSince(ctx context.Context, after int64, limit int) ([]store.PolicyChange, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, action, policy_hash, hashes, actor, reason, statement, signature, at
		FROM policy_changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: policy changes: %w", err)
	}
	defer rows.Close()
	var out []store.PolicyChange
	for rows.Next() {
		var c store.PolicyChange
		var hashes string
		var at int64
		if err := rows.Scan(&c.Seq, &c.Action, &c.PolicyHash, &hashes, &c.Actor, &c.Reason, &c.Statement, &c.Signature, &at); err != nil {
			return nil, fmt.Errorf("sqlite: policy changes: %w", err)
		}
		if err := json.Unmarshal([]byte(hashes), &c.Hashes); err != nil {
			return nil, fmt.Errorf("sqlite: policy change %d: %w", c.Seq, err)
		}
		if len(c.Hashes) == 0 {
			c.Hashes = nil
		}
		if len(c.Statement) == 0 {
			c.Statement = nil
		}
		c.At = fromUS(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
