package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clawea/clawea/internal/store"
)

const approvalCols = `id, job_id, tool, action, resource, args_hash, policy_hash, status, summary, request, decision, approver, created_at, expires_at, decided_at`

func scanApproval(sc pgx.Row) (store.Approval, error) {
	var a store.Approval
	var decided *time.Time
	err := sc.Scan(&a.ID, &a.JobID, &a.Tool, &a.Action, &a.Resource, &a.ArgsHash, &a.PolicyHash, &a.Status, &a.Summary, &a.Request,
		&a.Decision, &a.Approver, &a.CreatedAt, &a.ExpiresAt, &decided)
	a.CreatedAt, a.ExpiresAt, a.DecidedAt = a.CreatedAt.UTC(), a.ExpiresAt.UTC(), fromTZ(decided)
	return a, err
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return tz(t)
}

// CreateApproval inserts a pending approval unless one is pending for the
// same call.
func (d *DB) CreateApproval(ctx context.Context, a store.Approval) (store.Approval, bool, error) {
	a.Status = store.ApprovalPending
	tag, err := d.pool.Exec(ctx, `INSERT INTO approvals (`+approvalCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT DO NOTHING`,
		a.ID, a.JobID, a.Tool, a.Action, a.Resource, a.ArgsHash, a.PolicyHash, a.Status, bytesOf(a.Summary), bytesOf(a.Request),
		bytesOf(a.Decision), a.Approver, tz(a.CreatedAt), tz(a.ExpiresAt), nullTime(a.DecidedAt))
	if err != nil {
		return store.Approval{}, false, fmt.Errorf("postgres: approval: %w", err)
	}
	if tag.RowsAffected() == 1 {
		got, err := d.GetApproval(ctx, a.ID)
		return got, false, err
	}
	got, err := scanApproval(d.pool.QueryRow(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE job_id = $1 AND tool = $2 AND args_hash = $3 AND policy_hash = $4 AND status = $5`, a.JobID, a.Tool, a.ArgsHash, a.PolicyHash, store.ApprovalPending))
	if err != nil {
		return store.Approval{}, false, fmt.Errorf("postgres: approval: %w", err)
	}
	return got, true, nil
}

// GetApproval returns an approval, or ErrNotFound.
func (d *DB) GetApproval(ctx context.Context, id string) (store.Approval, error) {
	a, err := scanApproval(d.pool.QueryRow(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("postgres: approval: %w", err)
	}
	return a, nil
}

// FindApproval returns the newest approval for a call.
func (d *DB) FindApproval(ctx context.Context, jobID, tool, argsHash, policyHash string) (store.Approval, error) {
	a, err := scanApproval(d.pool.QueryRow(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE job_id = $1 AND tool = $2 AND args_hash = $3 AND policy_hash = $4 ORDER BY created_at DESC, id DESC LIMIT 1`, jobID, tool, argsHash, policyHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("postgres: approval: %w", err)
	}
	return a, nil
}

// ListApprovals lists approvals by id.
func (d *DB) ListApprovals(ctx context.Context, status, after string, limit int) ([]store.Approval, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := d.pool.Query(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id > $1 AND ($2 = '' OR status = $2) ORDER BY id LIMIT $3`, after, status, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: approvals: %w", err)
	}
	defer rows.Close()
	var out []store.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetApprovalStatus moves an approval between states.
func (d *DB) SetApprovalStatus(ctx context.Context, id, from, to, approver string, decision []byte, at time.Time) error {
	tag, err := d.pool.Exec(ctx, `UPDATE approvals SET status = $1,
		approver = CASE WHEN $2 = '' THEN approver ELSE $2 END,
		decision = CASE WHEN length($3::bytea) = 0 THEN decision ELSE $3 END,
		decided_at = COALESCE($4, decided_at)
		WHERE id = $5 AND status = $6`, to, approver, bytesOf(decision), nullTime(at), id, from)
	if err != nil {
		return fmt.Errorf("postgres: approval: %w", err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := d.GetApproval(ctx, id); errors.Is(err, store.ErrNotFound) {
			return store.ErrNotFound
		}
		return store.ErrConflict
	}
	return nil
}

// SetLockdown records a lockdown change.
func (d *DB) SetLockdown(ctx context.Context, l store.Lockdown) (store.Lockdown, error) {
	err := d.pool.QueryRow(ctx, `INSERT INTO lockdown_log (on_, by_, reason, at) VALUES ($1, $2, $3, $4) RETURNING seq`, l.On, l.By, l.Reason, tz(l.At)).Scan(&l.Seq)
	if err != nil {
		return l, fmt.Errorf("postgres: lockdown: %w", err)
	}
	return l, nil
}

// GetLockdown returns the current switch (off when never set).
func (d *DB) GetLockdown(ctx context.Context) (store.Lockdown, error) {
	log, err := d.LockdownLog(ctx, 1)
	if err != nil || len(log) == 0 {
		return store.Lockdown{}, err
	}
	return log[0], nil
}

// LockdownLog lists the newest changes first.
func (d *DB) LockdownLog(ctx context.Context, limit int) ([]store.Lockdown, error) {
	rows, err := d.pool.Query(ctx, `SELECT seq, on_, by_, reason, at FROM lockdown_log ORDER BY seq DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: lockdown: %w", err)
	}
	defer rows.Close()
	var out []store.Lockdown
	for rows.Next() {
		var l store.Lockdown
		if err := rows.Scan(&l.Seq, &l.On, &l.By, &l.Reason, &l.At); err != nil {
			return nil, err
		}
		l.At = l.At.UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

// AddCounter adds delta to a job's counter.
func (d *DB) AddCounter(ctx context.Context, jobID, name string, delta int64) (int64, error) {
	var v int64
	err := d.pool.QueryRow(ctx, `INSERT INTO job_counters (job_id, name, value) VALUES ($1, $2, $3)
		ON CONFLICT (job_id, name) DO UPDATE SET value = job_counters.value + EXCLUDED.value RETURNING value`, jobID, name, delta).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("postgres: counter: %w", err)
	}
	return v, nil
}

const busCols = `seq, namespace, entity, message_id, subject, content_type, correlation_id, body, properties, state, lock_token, locked_until, delivery_count, enqueued_at, dead_reason, dead_desc`

func scanBus(sc pgx.Row) (store.BusMessage, error) {
	var m store.BusMessage
	var locked *time.Time
	err := sc.Scan(&m.Seq, &m.Namespace, &m.Entity, &m.MessageID, &m.Subject, &m.ContentType, &m.CorrelationID, &m.Body, &m.Properties,
		&m.State, &m.LockToken, &locked, &m.DeliveryCount, &m.EnqueuedAt, &m.DeadReason, &m.DeadDesc)
	m.LockedUntil, m.EnqueuedAt = fromTZ(locked), m.EnqueuedAt.UTC()
	return m, err
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func queryBus(ctx context.Context, q querier, query string, args ...any) ([]store.BusMessage, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: bus: %w", err)
	}
	defer rows.Close()
	var out []store.BusMessage
	for rows.Next() {
		m, err := scanBus(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// BusSend enqueues a message.
func (d *DB) BusSend(ctx context.Context, m store.BusMessage) (store.BusMessage, error) {
	m.State = store.MsgActive
	err := d.pool.QueryRow(ctx, `INSERT INTO bus_messages (namespace, entity, message_id, subject, content_type, correlation_id, body, properties, state, enqueued_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq`, m.Namespace, m.Entity, m.MessageID, m.Subject, m.ContentType, m.CorrelationID,
		bytesOf(m.Body), orEmpty(m.Properties), m.State, tz(m.EnqueuedAt)).Scan(&m.Seq)
	if err != nil {
		return m, fmt.Errorf("postgres: bus: %w", err)
	}
	return m, nil
}

// BusPeek lists active messages.
func (d *DB) BusPeek(ctx context.Context, ns, entity string, max int) ([]store.BusMessage, error) {
	return queryBus(ctx, d.pool, `SELECT `+busCols+` FROM bus_messages WHERE namespace = $1 AND entity = $2 AND state != $3 ORDER BY seq LIMIT $4`,
		ns, entity, store.MsgDeadLetter, max)
}

func newLockToken() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// BusReceive takes messages: locked (peek-lock) or deleted. Rows are taken
// with FOR UPDATE SKIP LOCKED, so concurrent receivers get different
// messages.
func (d *DB) BusReceive(ctx context.Context, ns, entity string, max int, lockFor time.Duration, now time.Time) ([]store.BusMessage, error) {
	var out []store.BusMessage
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		msgs, err := queryBus(ctx, tx, `SELECT `+busCols+` FROM bus_messages WHERE namespace = $1 AND entity = $2
			AND (state = $3 OR (state = $4 AND locked_until <= $5)) ORDER BY seq LIMIT $6 FOR UPDATE SKIP LOCKED`,
			ns, entity, store.MsgActive, store.MsgLocked, tz(now), max)
		if err != nil {
			return err
		}
		for i := range msgs {
			m := &msgs[i]
			m.DeliveryCount++
			if lockFor > 0 {
				m.State, m.LockToken, m.LockedUntil = store.MsgLocked, newLockToken(), now.Add(lockFor)
				_, err = tx.Exec(ctx, `UPDATE bus_messages SET state = $1, lock_token = $2, locked_until = $3, delivery_count = $4 WHERE seq = $5`,
					m.State, m.LockToken, tz(m.LockedUntil), m.DeliveryCount, m.Seq)
			} else {
				_, err = tx.Exec(ctx, `DELETE FROM bus_messages WHERE seq = $1`, m.Seq)
			}
			if err != nil {
				return err
			}
		}
		out = msgs
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: bus: %w", err)
	}
	return out, nil
}

// BusSettle completes, abandons or dead-letters a locked message.
func (d *DB) BusSettle(ctx context.Context, ns, entity, lockToken, action, reason, desc string, now time.Time) error {
	where := ` WHERE namespace = $1 AND entity = $2 AND lock_token = $3 AND state = $4 AND locked_until > $5`
	args := []any{ns, entity, lockToken, store.MsgLocked, tz(now)}
	var q string
	switch action {
	case "complete":
		q = `DELETE FROM bus_messages` + where
	case "abandon":
		q = `UPDATE bus_messages SET state = $6, lock_token = '', locked_until = NULL` + where
		args = append(args, store.MsgActive)
	case "deadletter":
		q = `UPDATE bus_messages SET state = $6, lock_token = '', locked_until = NULL, dead_reason = $7, dead_desc = $8` + where
		args = append(args, store.MsgDeadLetter, reason, desc)
	default:
		return fmt.Errorf("postgres: bus: unknown settlement %q", action)
	}
	tag, err := d.pool.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("postgres: bus: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// BusReceiveDead takes dead-lettered messages.
func (d *DB) BusReceiveDead(ctx context.Context, ns, entity string, max int) ([]store.BusMessage, error) {
	return queryBus(ctx, d.pool, `DELETE FROM bus_messages WHERE seq IN (SELECT seq FROM bus_messages WHERE namespace = $1 AND entity = $2 AND state = $3
		ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING `+busCols, ns, entity, store.MsgDeadLetter, max)
}

// BusPurgeDead deletes an entity's dead letters.
func (d *DB) BusPurgeDead(ctx context.Context, ns, entity string) (int, error) {
	tag, err := d.pool.Exec(ctx, `DELETE FROM bus_messages WHERE namespace = $1 AND entity = $2 AND state = $3`, ns, entity, store.MsgDeadLetter)
	if err != nil {
		return 0, fmt.Errorf("postgres: bus: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// SetConnectorSwitch records a connector switch change.
func (d *DB) SetConnectorSwitch(ctx context.Context, c store.ConnectorSwitch) (store.ConnectorSwitch, error) {
	err := d.pool.QueryRow(ctx, `INSERT INTO connector_switch_log (name, denied, by_, reason, at) VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
		c.Name, c.Denied, c.By, c.Reason, tz(c.At)).Scan(&c.Seq)
	if err != nil {
		return c, fmt.Errorf("postgres: connector switch: %w", err)
	}
	return c, nil
}

// DeniedConnectors lists the connectors whose newest change denies them.
func (d *DB) DeniedConnectors(ctx context.Context) ([]store.ConnectorSwitch, error) {
	return d.connectorSwitches(ctx, `SELECT seq, name, denied, by_, reason, at FROM connector_switch_log l
		WHERE seq = (SELECT MAX(seq) FROM connector_switch_log WHERE name = l.name) AND denied ORDER BY name`)
}

// ConnectorSwitchLog lists the newest changes first.
func (d *DB) ConnectorSwitchLog(ctx context.Context, limit int) ([]store.ConnectorSwitch, error) {
	return d.connectorSwitches(ctx, `SELECT seq, name, denied, by_, reason, at FROM connector_switch_log ORDER BY seq DESC LIMIT $1`, limit)
}

func (d *DB) connectorSwitches(ctx context.Context, q string, args ...any) ([]store.ConnectorSwitch, error) {
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: connector switches: %w", err)
	}
	defer rows.Close()
	var out []store.ConnectorSwitch
	for rows.Next() {
		var c store.ConnectorSwitch
		if err := rows.Scan(&c.Seq, &c.Name, &c.Denied, &c.By, &c.Reason, &c.At); err != nil {
			return nil, err
		}
		c.At = c.At.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
