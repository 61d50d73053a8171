// Package servicebus is the tool gateway's Azure Service Bus connector: a
// narrow interface over queues (and topic subscriptions) with two
// implementations — the official azservicebus client for real namespaces
// (contract-tested against a small AMQP 1.0 stub broker), and a local queue
// kept in clawea's store for the embedded default and the tests.
package servicebus

import (
	"context"
	"net/http"
	"time"

	"github.com/clawea/clawea/internal/connector"
)

// ReceiveMode is how Receive takes messages.
type ReceiveMode string

// Receive modes.
const (
	PeekLock         ReceiveMode = "peek_lock"          // locked; settle with Complete, Abandon or DeadLetter
	ReceiveAndDelete ReceiveMode = "receive_and_delete" // removed as received
)

// Message is a message sent or received.
type Message struct {
	MessageID     string
	Subject       string
	ContentType   string
	CorrelationID string
	Body          []byte
	// Properties are the application properties (string, number or bool
	// values).
	Properties map[string]any
	// Set on received messages:
	SequenceNumber   int64
	EnqueuedAt       time.Time
	DeliveryCount    int
	LockToken        string // peek-lock only
	LockedUntil      time.Time
	DeadLetterReason string
}

// Bus is one namespace.
type Bus interface {
	// Namespace is the namespace's name (as in sb://<namespace>/...).
	Namespace() string
	Send(ctx context.Context, entity string, m Message) error
	// Peek returns up to max messages without locking or removing them.
	Peek(ctx context.Context, entity string, max int) ([]Message, error)
	// Receive waits up to wait for at least one message and returns up to
	// max.
	Receive(ctx context.Context, entity string, max int, mode ReceiveMode, wait time.Duration) ([]Message, error)
	Complete(ctx context.Context, entity, lockToken string) error
	Abandon(ctx context.Context, entity, lockToken string) error
	DeadLetter(ctx context.Context, entity, lockToken, reason, description string) error
	// ReceiveDeadLetter takes messages from the entity's dead-letter queue
	// (receive and delete).
	ReceiveDeadLetter(ctx context.Context, entity string, max int, wait time.Duration) ([]Message, error)
	// PurgeDeadLetter removes every message of the dead-letter queue and
	// returns how many.
	PurgeDeadLetter(ctx context.Context, entity string) (int, error)
	Close() error
}

// Errors a Bus returns (wrapped with detail). A failure of the service or
// of the way to it wraps at most one of them; see mapError in azure.go for
// the AMQP conditions and SDK codes behind each. Each is of the connector
// failure class that gives its code (connector.Err*, or Service Bus's own
// codes for a lost lock and a message too large).
var (
	ErrNotFound = connector.Sentinel("servicebus: entity not found", connector.ErrNotFound)
	ErrLockLost = connector.Sentinel("servicebus: message lock lost or unknown",
		&connector.Coded{Code: CodeLockLost, Status: http.StatusConflict, What: "the message's lock is lost, expired or unknown"})
	ErrTooLarge = connector.Sentinel("servicebus: message too large",
		&connector.Coded{Code: CodeTooLarge, Status: http.StatusRequestEntityTooLarge, What: "the message is too large"})
	ErrForbidden = connector.Sentinel("servicebus: forbidden", connector.ErrForbidden)
	// ErrConflict: the entity or message is held or exists in a way that
	// refuses the operation (amqp:resource-locked, session locks,
	// entity-already-exists).
	ErrConflict = connector.Sentinel("servicebus: conflict", connector.ErrConflict)
	// ErrThrottled: the namespace is busy (com.microsoft:server-busy),
	// after the SDK's retries.
	ErrThrottled = connector.Sentinel("servicebus: throttled", connector.ErrThrottled)
	// ErrUnreachable: the namespace could not be reached or the connection
	// was lost for good (transport errors, azservicebus CodeConnectionLost,
	// AMQP connection errors).
	ErrUnreachable = connector.Sentinel("servicebus: namespace unreachable", connector.ErrUnreachable)
	// ErrTimeout: a deadline passed (the call's context, a transport
	// timeout, or com.microsoft:timeout from the service).
	ErrTimeout = connector.Sentinel("servicebus: timed out", connector.ErrTimeout)
)

// Codes of Service Bus's own failure classes.
const (
	CodeLockLost = "SERVICEBUS_LOCK_LOST"
	CodeTooLarge = "SERVICEBUS_MESSAGE_TOO_LARGE"
)

// Named returns b under another namespace name: the name policies and tool
// calls use (sb://<name>/<entity>) rather than the host b connects to. The
// name is kept in lower case (CanonicalNamespace's fold); callers check it
// with CanonicalNamespace first.
func Named(b Bus, name string) Bus { return named{Bus: b, name: lowerASCII(name)} }

type named struct {
	Bus
	name string
}

func (n named) Namespace() string { return n.name }

// NamespaceSAS reports whether the bus authenticates with a namespace-level
// shared access key or signature (NamespaceLevelSAS).
func (n named) NamespaceSAS() bool { return HasNamespaceSAS(n.Bus) }

// HasNamespaceSAS reports whether b authenticates with a namespace-level
// shared access key or signature.
func HasNamespaceSAS(b Bus) bool {
	f, ok := b.(interface{ NamespaceSAS() bool })
	return ok && f.NamespaceSAS()
}
