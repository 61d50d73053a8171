// Package localbus is the Service Bus connector's embedded default: queues
// kept in clawea's store (SQLite or PostgreSQL), with peek-lock and
// receive-and-delete, lock expiry, abandon, dead-lettering and purging. It
// stands in for a namespace in the demo and the tests, and lets several
// gateway instances on PostgreSQL share queues.
package localbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/store"
)

// MaxMessageBytes is the largest body accepted (Service Bus standard tier).
const MaxMessageBytes = 256 << 10

// Bus is one local namespace.
type Bus struct {
	st      store.Bus
	ns      string
	lockFor time.Duration
	now     func() time.Time
	poll    time.Duration
}

// Options configure a Bus.
type Options struct {
	// LockDuration is how long a peek-lock holds a message (default 60 s,
	// as Service Bus).
	LockDuration time.Duration
	Now          func() time.Time
}

// New returns the local namespace ns over st. Like Service Bus, the local
// bus compares namespace and entity names without regard to case: both are
// kept in their canonical (lower-case) form, and an entity outside the
// grammar of servicebus.CanonicalEntity is refused.
func New(st store.Bus, ns string, opt Options) *Bus {
	if c, err := servicebus.CanonicalNamespace(ns); err == nil {
		ns = c
	} else {
		ns = strings.Map(func(r rune) rune { // the same fold, ASCII only
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, ns)
	}
	b := &Bus{st: st, ns: ns, lockFor: opt.LockDuration, now: opt.Now, poll: 50 * time.Millisecond}
	if b.lockFor <= 0 {
		b.lockFor = time.Minute
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

var _ servicebus.Bus = (*Bus)(nil)

// Namespace returns the namespace's name.
func (b *Bus) Namespace() string { return b.ns }

// Close does nothing: the store belongs to the caller.
func (b *Bus) Close() error { return nil }

func newMessageID() string {
	var r [16]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// Send enqueues a message.
func (b *Bus) Send(ctx context.Context, entity string, m servicebus.Message) error {
	entity, err := servicebus.CanonicalEntity(entity)
	if err != nil {
		return err
	}
	if strings.Contains(entity, "/subscriptions/") {
		// As Azure: a message goes to the topic, never into one
		// subscription directly.
		return fmt.Errorf("%w: cannot send to subscription %q; send to its topic", servicebus.ErrInvalidEntity, entity)
	}
	if len(m.Body) > MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes (at most %d)", servicebus.ErrTooLarge, len(m.Body), MaxMessageBytes)
	}
	props := []byte("{}")
	if len(m.Properties) > 0 {
		var err error
		if props, err = json.Marshal(m.Properties); err != nil {
			return fmt.Errorf("servicebus: application properties: %w", err)
		}
	}
	if m.MessageID == "" {
		m.MessageID = newMessageID()
	}
	_, err = b.st.BusSend(ctx, store.BusMessage{Namespace: b.ns, Entity: entity, MessageID: m.MessageID, Subject: m.Subject,
		ContentType: m.ContentType, CorrelationID: m.CorrelationID, Body: m.Body, Properties: props, EnqueuedAt: b.now()})
	return err
}

func convert(ms []store.BusMessage) []servicebus.Message {
	out := make([]servicebus.Message, 0, len(ms))
	for _, m := range ms {
		var props map[string]any
		json.Unmarshal(m.Properties, &props)
		msg := servicebus.Message{MessageID: m.MessageID, Subject: m.Subject, ContentType: m.ContentType, CorrelationID: m.CorrelationID,
			Body: m.Body, Properties: props, SequenceNumber: m.Seq, EnqueuedAt: m.EnqueuedAt, DeliveryCount: m.DeliveryCount,
			DeadLetterReason: m.DeadReason}
		if m.State == store.MsgLocked {
			msg.LockToken, msg.LockedUntil = m.LockToken, m.LockedUntil
		}
		out = append(out, msg)
	}
	return out
}

// Peek lists messages without taking them.
func (b *Bus) Peek(ctx context.Context, entity string, max int) ([]servicebus.Message, error) {
	entity, err := servicebus.CanonicalEntity(entity)
	if err != nil {
		return nil, err
	}
	ms, err := b.st.BusPeek(ctx, b.ns, entity, bound(max))
	if err != nil {
		return nil, err
	}
	out := convert(ms)
	for i := range out { // a peek never hands out a lock
		out[i].LockToken, out[i].LockedUntil = "", time.Time{}
	}
	return out, nil
}

func bound(max int) int {
	if max <= 0 {
		return 1
	}
	return min(max, 100)
}

// Receive waits up to wait for messages.
func (b *Bus) Receive(ctx context.Context, entity string, max int, mode servicebus.ReceiveMode, wait time.Duration) ([]servicebus.Message, error) {
	entity, err := servicebus.CanonicalEntity(entity)
	if err != nil {
		return nil, err
	}
	lockFor := b.lockFor
	switch mode {
	case servicebus.PeekLock:
	case servicebus.ReceiveAndDelete:
		lockFor = 0
	default:
		return nil, fmt.Errorf("servicebus: receive mode must be %s or %s", servicebus.PeekLock, servicebus.ReceiveAndDelete)
	}
	deadline := time.Now().Add(wait)
	for {
		ms, err := b.st.BusReceive(ctx, b.ns, entity, bound(max), lockFor, b.now())
		if err != nil || len(ms) > 0 {
			return convert(ms), err
		}
		if !time.Now().Before(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(min(b.poll, time.Until(deadline))):
		}
	}
}

func (b *Bus) settle(ctx context.Context, entity, token, action, reason, desc string) error {
	entity, err := servicebus.CanonicalEntity(entity)
	if err != nil {
		return err
	}
	err = b.st.BusSettle(ctx, b.ns, entity, token, action, reason, desc, b.now())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", servicebus.ErrLockLost, token)
	}
	return err
}

// Complete removes a locked message.
func (b *Bus) Complete(ctx context.Context, entity, lockToken string) error {
	return b.settle(ctx, entity, lockToken, "complete", "", "")
}

// Abandon unlocks a message for redelivery.
func (b *Bus) Abandon(ctx context.Context, entity, lockToken string) error {
	return b.settle(ctx, entity, lockToken, "abandon", "", "")
}

// DeadLetter moves a locked message to the dead-letter queue.
func (b *Bus) DeadLetter(ctx context.Context, entity, lockToken, reason, description string) error {
	return b.settle(ctx, entity, lockToken, "deadletter", reason, description)
}

// ReceiveDeadLetter takes dead-lettered messages.
func (b *Bus) ReceiveDeadLetter(ctx context.Context, entity string, max int, wait time.Duration) ([]servicebus.Message, error) {
	entity, err := servicebus.CanonicalEntity(entity)
	if err != nil {
		return nil, err
	}
	ms, err := b.st.BusReceiveDead(ctx, b.ns, entity, bound(max))
	return convert(ms), err
}

// PurgeDeadLetter deletes the dead-letter queue's messages.
func (b *Bus) PurgeDeadLetter(ctx context.Context, entity string) (int, error) {
	entity, err := servicebus.CanonicalEntity(entity)
	if err != nil {
		return 0, err
	}
	return b.st.BusPurgeDead(ctx, b.ns, entity)
}
