package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/clawea/clawea/internal/store"
)

const approvalCols = `id, job_id, tool, action, resource, args_hash, policy_hash, status, summary, request, decision, approver, created_at, expires_at, decided_at`

func scanApproval(sc interface{ Scan(...any) error }) (store.Approval, error) {
	var a store.Approval
	var created, expires, decided int64
	err := sc.Scan(&a.ID, &a.JobID, &a.Tool, &a.Action, &a.Resource, &a.ArgsHash, &a.PolicyHash, &a.Status, &a.Summary, &a.Request,
		&a.Decision, &a.Approver, &created, &expires, &decided)
	a.CreatedAt, a.ExpiresAt, a.DecidedAt = fromUS(created), fromUS(expires), fromUS(decided)
	return a, err
}

// CreateApproval inserts a pending approval unless one is pending for the
// same call.
func (s *DB) CreateApproval(ctx context.Context, a store.Approval) (store.Approval, bool, error) {
	a.Status = store.ApprovalPending
	res, err := s.w.ExecContext(ctx, `INSERT INTO approvals (`+approvalCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		a.ID, a.JobID, a.Tool, a.Action, a.Resource, a.ArgsHash, a.PolicyHash, a.Status, bytesOf(a.Summary), bytesOf(a.Request),
		bytesOf(a.Decision), a.Approver, us(a.CreatedAt), us(a.ExpiresAt), us(a.DecidedAt))
	if err != nil {
		return store.Approval{}, false, fmt.Errorf("sqlite: approval: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		got, err := s.GetApproval(ctx, a.ID)
		return got, false, err
	}
	got, err := scanApproval(s.db.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE job_id = ? AND tool = ? AND args_hash = ? AND policy_hash = ? AND status = ?`, a.JobID, a.Tool, a.ArgsHash, a.PolicyHash, store.ApprovalPending))
	if err != nil {
		return store.Approval{}, false, fmt.Errorf("sqlite: approval: %w", err)
	}
	return got, true, nil
}

// GetApproval returns an approval, or ErrNotFound.
func (s *DB) GetApproval(ctx context.Context, id string) (store.Approval, error) {
	a, err := scanApproval(s.db.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("sqlite: approval: %w", err)
	}
	return a, nil
}

// FindApproval returns the newest approval for a call.
func (s *DB) FindApproval(ctx context.Context, jobID, tool, argsHash, policyHash string) (store.Approval, error) {
	a, err := scanApproval(s.db.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE job_id = ? AND tool = ? AND args_hash = ? AND policy_hash = ? ORDER BY created_at DESC, id DESC LIMIT 1`, jobID, tool, argsHash, policyHash))
	if errors.Is(err, sql.ErrNoRows) {
		return a, store.ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("sqlite: approval: %w", err)
	}
	return a, nil
}

// ListApprovals lists approvals by id.
func (s *DB) ListApprovals(ctx context.Context, status, after string, limit int) ([]store.Approval, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	q := `SELECT ` + approvalCols + ` FROM approvals WHERE id > ?`
	args := []any{after}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: approvals: %w", err)
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
func (s *DB) SetApprovalStatus(ctx context.Context, id, from, to, approver string, decision []byte, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE approvals SET status = ?,
		approver = CASE WHEN ? = '' THEN approver ELSE ? END,
		decision = CASE WHEN length(?) = 0 THEN decision ELSE ? END,
		decided_at = CASE WHEN ? = 0 THEN decided_at ELSE ? END
		WHERE id = ? AND status = ?`, to, approver, approver, bytesOf(decision), bytesOf(decision), us(at), us(at), id, from)
	if err != nil {
		return fmt.Errorf("sqlite: approval: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetApproval(ctx, id); errors.Is(err, store.ErrNotFound) {
			return store.ErrNotFound
		}
		return store.ErrConflict
	}
	return nil
}

// SetLockdown records a lockdown change.
func (s *DB) SetLockdown(ctx context.Context, l store.Lockdown) (store.Lockdown, error) {
	on := 0
	if l.On {
		on = 1
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO lockdown_log (on_, by_, reason, at) VALUES (?, ?, ?, ?)`, on, l.By, l.Reason, us(l.At))
	if err != nil {
		return l, fmt.Errorf("sqlite: lockdown: %w", err)
	}
	l.Seq, _ = res.LastInsertId()
	return l, nil
}

// GetLockdown returns the current switch (off when never set).
func (s *DB) GetLockdown(ctx context.Context) (store.Lockdown, error) {
	log, err := s.LockdownLog(ctx, 1)
	if err != nil || len(log) == 0 {
		return store.Lockdown{}, err
	}
	return log[0], nil
}

// LockdownLog lists the newest changes first.
func (s *DB) LockdownLog(ctx context.Context, limit int) ([]store.Lockdown, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, on_, by_, reason, at FROM lockdown_log ORDER BY seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lockdown: %w", err)
	}
	defer rows.Close()
	var out []store.Lockdown
	for rows.Next() {
		var l store.Lockdown
		var on int
		var at int64
		if err := rows.Scan(&l.Seq, &on, &l.By, &l.Reason, &at); err != nil {
			return nil, err
		}
		l.On, l.At = on == 1, fromUS(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// AddCounter adds delta to a job's counter.
func (s *DB) AddCounter(ctx context.Context, jobID, name string, delta int64) (int64, error) {
	var v int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO job_counters (job_id, name, value) VALUES (?, ?, ?)
		ON CONFLICT (job_id, name) DO UPDATE SET value = value + excluded.value RETURNING value`, jobID, name, delta).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("sqlite: counter: %w", err)
	}
	return v, nil
}

const busCols = `seq, namespace, entity, message_id, subject, content_type, correlation_id, body, properties, state, lock_token, locked_until, delivery_count, enqueued_at, dead_reason, dead_desc`

func scanBus(sc interface{ Scan(...any) error }) (store.BusMessage, error) {
	var m store.BusMessage
	var locked, enq int64
	err := sc.Scan(&m.Seq, &m.Namespace, &m.Entity, &m.MessageID, &m.Subject, &m.ContentType, &m.CorrelationID, &m.Body, &m.Properties,
		&m.State, &m.LockToken, &locked, &m.DeliveryCount, &enq, &m.DeadReason, &m.DeadDesc)
	m.LockedUntil, m.EnqueuedAt = fromUS(locked), fromUS(enq)
	return m, err
}

func queryBus(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]store.BusMessage, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: bus: %w", err)
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
func (s *DB) BusSend(ctx context.Context, m store.BusMessage) (store.BusMessage, error) {
	m.State = store.MsgActive
	res, err := s.w.ExecContext(ctx, `INSERT INTO bus_messages (namespace, entity, message_id, subject, content_type, correlation_id, body, properties, state, enqueued_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.Namespace, m.Entity, m.MessageID, m.Subject, m.ContentType, m.CorrelationID, bytesOf(m.Body), orEmpty(m.Properties), m.State, us(m.EnqueuedAt))
	if err != nil {
		return m, fmt.Errorf("sqlite: bus: %w", err)
	}
	m.Seq, _ = res.LastInsertId()
	return m, nil
}

// BusPeek lists active messages.
func (s *DB) BusPeek(ctx context.Context, ns, entity string, max int) ([]store.BusMessage, error) {
	return queryBus(ctx, s.db, `SELECT `+busCols+` FROM bus_messages WHERE namespace = ? AND entity = ? AND state != ? ORDER BY seq LIMIT ?`,
		ns, entity, store.MsgDeadLetter, max)
}

func newLockToken() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// BusReceive takes messages: locked (peek-lock) or deleted.
func (s *DB) BusReceive(ctx context.Context, ns, entity string, max int, lockFor time.Duration, now time.Time) ([]store.BusMessage, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: bus: %w", err)
	}
	defer tx.Rollback()
	msgs, err := queryBus(ctx, tx, `SELECT `+busCols+` FROM bus_messages WHERE namespace = ? AND entity = ?
		AND (state = ? OR (state = ? AND locked_until <= ?)) ORDER BY seq LIMIT ?`, ns, entity, store.MsgActive, store.MsgLocked, us(now), max)
	if err != nil {
		return nil, err
	}
	for i := range msgs {
		m := &msgs[i]
		m.DeliveryCount++
		if lockFor > 0 {
			m.State, m.LockToken, m.LockedUntil = store.MsgLocked, newLockToken(), now.Add(lockFor)
			_, err = tx.ExecContext(ctx, `UPDATE bus_messages SET state = ?, lock_token = ?, locked_until = ?, delivery_count = ? WHERE seq = ?`,
				m.State, m.LockToken, us(m.LockedUntil), m.DeliveryCount, m.Seq)
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM bus_messages WHERE seq = ?`, m.Seq)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: bus: %w", err)
		}
	}
	return msgs, tx.Commit()
}

// BusSettle completes, abandons or dead-letters a locked message.
func (s *DB) BusSettle(ctx context.Context, ns, entity, lockToken, action, reason, desc string, now time.Time) error {
	var res sql.Result
	var err error
	where := ` WHERE namespace = ? AND entity = ? AND lock_token = ? AND state = ? AND locked_until > ?`
	args := []any{ns, entity, lockToken, store.MsgLocked, us(now)}
	switch action {
	case "complete":
		res, err = s.w.ExecContext(ctx, `DELETE FROM bus_messages`+where, args...)
	case "abandon":
		res, err = s.w.ExecContext(ctx, `UPDATE bus_messages SET state = ?, lock_token = '', locked_until = 0`+where, append([]any{store.MsgActive}, args...)...)
	case "deadletter":
		res, err = s.w.ExecContext(ctx, `UPDATE bus_messages SET state = ?, lock_token = '', locked_until = 0, dead_reason = ?, dead_desc = ?`+where,
			append([]any{store.MsgDeadLetter, reason, desc}, args...)...)
	default:
		return fmt.Errorf("sqlite: bus: unknown settlement %q", action)
	}
	if err != nil {
		return fmt.Errorf("sqlite: bus: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// BusReceiveDead takes dead-lettered messages.
func (s *DB) BusReceiveDead(ctx context.Context, ns, entity string, max int) ([]store.BusMessage, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: bus: %w", err)
	}
	defer tx.Rollback()
	msgs, err := queryBus(ctx, tx, `SELECT `+busCols+` FROM bus_messages WHERE namespace = ? AND entity = ? AND state = ? ORDER BY seq LIMIT ?`,
		ns, entity, store.MsgDeadLetter, max)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if _, err := tx.ExecContext(ctx, `DELETE FROM bus_messages WHERE seq = ?`, m.Seq); err != nil {
			return nil, fmt.Errorf("sqlite: bus: %w", err)
		}
	}
	return msgs, tx.Commit()
}

// BusPurgeDead deletes an entity's dead letters.
func (s *DB) BusPurgeDead(ctx context.Context, ns, entity string) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM bus_messages WHERE namespace = ? AND entity = ? AND state = ?`, ns, entity, store.MsgDeadLetter)
	if err != nil {
		return 0, fmt.Errorf("sqlite: bus: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// SetConnectorSwitch records a connector switch change.
func (s *DB) SetConnectorSwitch(ctx context.Context, c store.ConnectorSwitch) (store.ConnectorSwitch, error) {
	denied := 0
	if c.Denied {
		denied = 1
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO connector_switch_log (name, denied, by_, reason, at) VALUES (?, ?, ?, ?, ?)`, c.Name, denied, c.By, c.Reason, us(c.At))
	if err != nil {
		return c, fmt.Errorf("sqlite: connector switch: %w", err)
	}
	c.Seq, _ = res.LastInsertId()
	return c, nil
}

// DeniedConnectors lists the connectors whose newest change denies them.
func (s *DB) DeniedConnectors(ctx context.Context) ([]store.ConnectorSwitch, error) {
	return s.connectorSwitches(ctx, `SELECT seq, name, denied, by_, reason, at FROM connector_switch_log l
		WHERE seq = (SELECT MAX(seq) FROM connector_switch_log WHERE name = l.name) AND denied = 1 ORDER BY name`)
}

// ConnectorSwitchLog lists the newest changes first.
func (s *DB) ConnectorSwitchLog(ctx context.Context, limit int) ([]store.ConnectorSwitch, error) {
	return s.connectorSwitches(ctx, `SELECT seq, name, denied, by_, reason, at FROM connector_switch_log ORDER BY seq DESC LIMIT ?`, limit)
}

func (s *DB) connectorSwitches(ctx context.Context, q string, args ...any) ([]store.ConnectorSwitch, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: connector switches: %w", err)
	}
	defer rows.Close()
	var out []store.ConnectorSwitch
	for rows.Next() {
		var c store.ConnectorSwitch
		var denied int
		var at int64
		if err := rows.Scan(&c.Seq, &c.Name, &denied, &c.By, &c.Reason, &at); err != nil {
			return nil, err
		}
		c.Denied, c.At = denied == 1, fromUS(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
