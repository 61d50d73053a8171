package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/clawea/clawea/internal/store"
)

const lockPolicyChanges = 0x636c6177_03

// AddPolicyChange appends to the policy lifecycle log. Appends are
// serialised so that sequence numbers commit in order and a follower
// reading "after seq" misses none.
func (d *DB) AddPolicyChange(ctx context.Context, c store.PolicyChange) (store.PolicyChange, error) {
	hashes, _ := json.Marshal(nonNil(c.Hashes))
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockPolicyChanges); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO policy_changes (action, policy_hash, hashes, actor, reason, statement, signature, stmt_hash, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq`, c.Action, c.PolicyHash, string(hashes), c.Actor, c.Reason,
			nonNilBytes(c.Statement), c.Signature, store.StatementHash(c.Statement), tz(c.At)).Scan(&c.Seq)
	})
	if isUnique(err) {
		return c, store.ErrConflict
	}
	if err != nil {
		return c, fmt.Errorf("postgres: policy change: %w", err)
	}
	return c, nil
}

// PolicyChangesSince lists lifecycle changes after a sequence number.
func (d *DB) PolicyChangesSince(ctx context.Context, after int64, limit int) ([]store.PolicyChange, error) {
	rows, err := d.pool.Query(ctx, `SELECT seq, action, policy_hash, hashes, actor, reason, statement, signature, at
		FROM policy_changes WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: policy changes: %w", err)
	}
	defer rows.Close()
	var out []store.PolicyChange
	for rows.Next() {
		var c store.PolicyChange
		var hashes string
		if err := rows.Scan(&c.Seq, &c.Action, &c.PolicyHash, &hashes, &c.Actor, &c.Reason, &c.Statement, &c.Signature, &c.At); err != nil {
			return nil, fmt.Errorf("postgres: policy changes: %w", err)
		}
		if err := json.Unmarshal([]byte(hashes), &c.Hashes); err != nil {
			return nil, fmt.Errorf("postgres: policy change %d: %w", c.Seq, err)
		}
		c.At = c.At.UTC()
		if len(c.Hashes) == 0 {
			c.Hashes = nil
		}
		if len(c.Statement) == 0 {
			c.Statement = nil
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
