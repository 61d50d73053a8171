package servicebus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
)

// Limits and defaults of the azservicebus Bus.
const (
	// DefaultMaxUnsettled is the default bound on peek-locked messages held
	// for settlement.
	DefaultMaxUnsettled = 10000
	// DefaultLockDuration is assumed for a peek-locked message that does not
	// say until when it is locked (Service Bus always does).
	DefaultLockDuration = time.Minute
	// PollWait is the wait used by Receive and ReceiveDeadLetter when the
	// caller passes a wait <= 0.
	PollWait = time.Second
	// MaxBatch caps max in Receive, ReceiveDeadLetter and Peek.
	MaxBatch = 1000

	lockGrace      = 30 * time.Second // clock skew allowance before a lock is dropped locally
	purgeBatch     = 250
	purgeWait      = time.Second
	purgeAfterMsg  = 50 * time.Millisecond
	maxPurgeRounds = 4000 // 1,000,000 messages
	closeTimeout   = 10 * time.Second
)

// ErrClosed is returned by every method of a closed Azure bus.
var ErrClosed = errors.New("servicebus: bus is closed")

// AzureOptions configures NewAzure. Exactly one of ConnectionString and
// Credential must be set.
type AzureOptions struct {
	// ConnectionString authenticates with a shared access key or signature:
	// "Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=...;SharedAccessKey=...".
	// The namespace argument of NewAzure may then be empty; if it is not, it
	// must name the same host.
	ConnectionString string
	// Credential authenticates with Microsoft Entra ID (for example a
	// credential from the azidentity package) against the namespace passed
	// to NewAzure.
	Credential azcore.TokenCredential
	// Client is passed to the SDK (TLS configuration, web sockets, retry
	// policy, application ID); nil means the SDK's defaults.
	Client *azservicebus.ClientOptions
	// MaxUnsettled bounds the peek-locked messages this bus holds for
	// Complete, Abandon and DeadLetter; <= 0 means DefaultMaxUnsettled.
	// When the bound is reached, Receive in PeekLock mode fails until some
	// are settled or their locks expire.
	MaxUnsettled int
	// LockDuration is assumed for a received message without a LockedUntil;
	// <= 0 means DefaultLockDuration.
	LockDuration time.Duration
}

// Azure is the Bus for a real Service Bus namespace, through the official
// azservicebus SDK. It is safe for concurrent use.
//
// Entity strings are queues ("orders", "shop/orders"), topics (Send only)
// or subscriptions ("<topic>/subscriptions/<name>", receive side only); see
// ErrInvalidEntity. The SDK settles a peek-locked message only through the
// receiver that received it, so the bus keeps each one (with its receiver)
// under its lock token until it is settled, its lock has expired (plus a
// grace for clock skew; after that ErrLockLost), or the bus is closed.
//
// Senders and receivers are created on first use and cached per entity (and
// per receive mode). Each receiver keeps the credit a call did not use: in
// PeekLock mode the SDK releases messages that arrive between calls, but in
// ReceiveAndDelete mode (and for ReceiveDeadLetter and PurgeDeadLetter,
// which share one receive-and-delete receiver on the dead-letter queue)
// Service Bus deletes a message as soon as it is sent, so messages arriving
// after a call returned are buffered and handed out by the next call in the
// same mode — and lost if the bus is closed first. Use PeekLock where losing
// a message matters.
type Azure struct {
	// namespaceSAS: the connection string holds a namespace-level SAS.
	namespaceSAS bool
	namespace    string
	client       *azservicebus.Client
	maxUnsettled int
	lockDuration time.Duration
	now          func() time.Time

	mu        sync.Mutex
	closed    bool
	senders   map[string]*azservicebus.Sender
	receivers map[receiverKey]*receiver
	locks     map[string]*heldLock
	reserved  int // PeekLock receive slots taken by calls in flight
}

var _ Bus = (*Azure)(nil)

type receiverKind int

const (
	kindPeekLock receiverKind = iota
	kindReceiveAndDelete
	kindDeadLetter // receive and delete on the dead-letter sub-queue
	kindPeek       // never issues credit; used for PeekMessages only
)

type receiverKey struct {
	entity string // entityRef.key()
	kind   receiverKind
}

// receiver is a cached SDK receiver. The SDK refuses concurrent
// ReceiveMessages calls on one receiver, so sem serialises them.
type receiver struct {
	r   *azservicebus.Receiver
	sem chan struct{}
}

// heldLock is a peek-locked message waiting for settlement.
type heldLock struct {
	entity string // entityRef.key()
	name   string // entityRef.String(), for messages
	rcv    *receiver
	msg    *azservicebus.ReceivedMessage
	until  time.Time
	busy   bool // a settlement is in flight
}

// NewAzure connects (lazily: the first operation dials) to a Service Bus
// namespace. namespace is the fully qualified namespace
// ("contoso.servicebus.windows.net"; a bare "contoso" is completed with
// ".servicebus.windows.net"); with a connection string it may be empty.
func NewAzure(namespace string, opt AzureOptions) (*Azure, error) {
	var (
		fqdn         string
		client       *azservicebus.Client
		err          error
		namespaceSAS bool
	)
	switch {
	case opt.ConnectionString != "" && opt.Credential != nil:
		return nil, errors.New("servicebus: set either a connection string or a credential, not both")
	case opt.ConnectionString != "":
		fqdn, err = endpointHost(opt.ConnectionString)
		if err != nil {
			return nil, err
		}
		if namespace != "" && !sameNamespace(namespace, fqdn) {
			return nil, fmt.Errorf("servicebus: namespace %q does not match the connection string's endpoint %q", namespace, fqdn)
		}
		namespaceSAS, _ = NamespaceLevelSAS(opt.ConnectionString)
		client, err = azservicebus.NewClientFromConnectionString(opt.ConnectionString, opt.Client)
		if err != nil {
			// The SDK's parse errors do not quote the secret.
			return nil, fmt.Errorf("servicebus: connection string: %w", err)
		}
	case opt.Credential != nil:
		fqdn, err = fullyQualified(namespace)
		if err != nil {
			return nil, err
		}
		client, err = azservicebus.NewClient(fqdn, opt.Credential, opt.Client)
		if err != nil {
			return nil, fmt.Errorf("servicebus: namespace %q: %w", fqdn, err)
		}
	default:
		return nil, errors.New("servicebus: a connection string or a credential is required")
	}
	a := &Azure{
		namespaceSAS: namespaceSAS,
		namespace:    fqdn,
		client:       client,
		maxUnsettled: opt.MaxUnsettled,
		lockDuration: opt.LockDuration,
		now:          time.Now,
		senders:      map[string]*azservicebus.Sender{},
		receivers:    map[receiverKey]*receiver{},
		locks:        map[string]*heldLock{},
	}
	if a.maxUnsettled <= 0 {
		a.maxUnsettled = DefaultMaxUnsettled
	}
	if a.lockDuration <= 0 {
		a.lockDuration = DefaultLockDuration
	}
	return a, nil
}

// Namespace is the fully qualified namespace host, as in
// sb://<namespace>/ (for example "contoso.servicebus.windows.net", or
// "127.0.0.1:5672" for a local emulator).
func (a *Azure) Namespace() string { return a.namespace }

// Send sends one message to a queue or topic.
func (a *Azure) Send(ctx context.Context, entity string, m Message) error {
	ent, err := parseEntity(entity)
	if err != nil {
		return err
	}
	if ent.IsSubscription() {
		return fmt.Errorf("%w: cannot send to subscription %q; send to its topic %q", ErrInvalidEntity, ent, ent.Topic)
	}
	props, err := toAMQPProperties(m.Properties)
	if err != nil {
		return err
	}
	msg := &azservicebus.Message{
		Body:                  m.Body,
		ApplicationProperties: props,
	}
	if msg.Body == nil {
		msg.Body = []byte{}
	}
	if m.MessageID != "" {
		msg.MessageID = &m.MessageID
	}
	if m.Subject != "" {
		msg.Subject = &m.Subject
	}
	if m.ContentType != "" {
		msg.ContentType = &m.ContentType
	}
	if m.CorrelationID != "" {
		msg.CorrelationID = &m.CorrelationID
	}
	s, err := a.sender(ent)
	if err != nil {
		return err
	}
	_, err = guard("send", func() (struct{}, error) { return struct{}{}, s.SendMessage(ctx, msg, nil) })
	return mapError("send to", ent, err)
}

// Peek returns up to max messages from the head of the entity (by sequence
// number) without locking or removing them.
func (a *Azure) Peek(ctx context.Context, entity string, max int) ([]Message, error) {
	ent, err := parseEntity(entity)
	if err != nil {
		return nil, err
	}
	if max, err = checkMax(max); err != nil {
		return nil, err
	}
	rcv, err := a.receiver(ent, kindPeek)
	if err != nil {
		return nil, err
	}
	// An explicit start keeps Peek stateless (the SDK would otherwise
	// continue after the last message it peeked).
	from := int64(1)
	msgs, err := guard("peek", func() ([]*azservicebus.ReceivedMessage, error) {
		return rcv.r.PeekMessages(ctx, max, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
	})
	if err != nil {
		return nil, mapError("peek", ent, err)
	}
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, convert(m, false))
	}
	return out, nil
}

// Receive waits up to wait (PollWait when wait <= 0; never beyond ctx) for
// at least one message and returns up to max (at most MaxBatch). An empty
// result with a nil error means nothing arrived in time. In PeekLock mode
// each message carries a LockToken for Complete, Abandon or DeadLetter.
func (a *Azure) Receive(ctx context.Context, entity string, max int, mode ReceiveMode, wait time.Duration) ([]Message, error) {
	ent, err := parseEntity(entity)
	if err != nil {
		return nil, err
	}
	var kind receiverKind
	switch mode {
	case PeekLock:
		kind = kindPeekLock
	case ReceiveAndDelete:
		kind = kindReceiveAndDelete
	default:
		return nil, fmt.Errorf("servicebus: unknown receive mode %q (want %q or %q)", mode, PeekLock, ReceiveAndDelete)
	}
	if max, err = checkMax(max); err != nil {
		return nil, err
	}
	rcv, err := a.receiver(ent, kind)
	if err != nil {
		return nil, err
	}
	if kind == kindReceiveAndDelete {
		msgs, err := a.receive(ctx, rcv, max, wait, nil)
		if err != nil {
			return nil, mapError("receive from", ent, err)
		}
		return convertAll(msgs, false), nil
	}

	slots, err := a.reserve(max)
	if err != nil {
		return nil, err
	}
	msgs, err := a.receive(ctx, rcv, slots, wait, nil)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reserved -= slots
	if err != nil {
		return nil, mapError("receive from", ent, err)
	}
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		msg := convert(m, true)
		until := msg.LockedUntil
		if until.IsZero() {
			until = a.now().Add(a.lockDuration)
			msg.LockedUntil = until
		}
		// A closed bus cannot settle, nor can anyone settle a message
		// without a lock token; such messages come back when their locks
		// expire.
		if m.LockToken == ([16]byte{}) {
			msg.LockToken = ""
		} else if !a.closed {
			a.locks[msg.LockToken] = &heldLock{entity: ent.key(), name: ent.String(), rcv: rcv, msg: m, until: until}
		}
		out = append(out, msg)
	}
	return out, nil
}

// Complete removes a peek-locked message.
func (a *Azure) Complete(ctx context.Context, entity, lockToken string) error {
	return a.settle(ctx, "complete on", entity, lockToken, func(ctx context.Context, r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error {
		return r.CompleteMessage(ctx, m, nil)
	})
}

// Abandon releases the lock of a peek-locked message, making it available
// again with its delivery count increased.
func (a *Azure) Abandon(ctx context.Context, entity, lockToken string) error {
	return a.settle(ctx, "abandon on", entity, lockToken, func(ctx context.Context, r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error {
		return r.AbandonMessage(ctx, m, nil)
	})
}

// DeadLetter moves a peek-locked message to the entity's dead-letter queue
// with a reason and a description.
func (a *Azure) DeadLetter(ctx context.Context, entity, lockToken, reason, description string) error {
	return a.settle(ctx, "dead-letter on", entity, lockToken, func(ctx context.Context, r *azservicebus.Receiver, m *azservicebus.ReceivedMessage) error {
		return r.DeadLetterMessage(ctx, m, &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &description})
	})
}

// ReceiveDeadLetter takes (receive and delete) up to max messages from the
// entity's dead-letter queue, waiting as Receive does.
func (a *Azure) ReceiveDeadLetter(ctx context.Context, entity string, max int, wait time.Duration) ([]Message, error) {
	ent, err := parseEntity(entity)
	if err != nil {
		return nil, err
	}
	if max, err = checkMax(max); err != nil {
		return nil, err
	}
	rcv, err := a.receiver(ent, kindDeadLetter)
	if err != nil {
		return nil, err
	}
	msgs, err := a.receive(ctx, rcv, max, wait, nil)
	if err != nil {
		return nil, mapError("receive dead letters of", ent, err)
	}
	return convertAll(msgs, false), nil
}

// PurgeDeadLetter receives and deletes dead-lettered messages until none
// arrives within a second, and returns how many it removed. It stops with an
// error after a million messages, or when ctx ends (returning the count so
// far).
func (a *Azure) PurgeDeadLetter(ctx context.Context, entity string) (int, error) {
	ent, err := parseEntity(entity)
	if err != nil {
		return 0, err
	}
	rcv, err := a.receiver(ent, kindDeadLetter)
	if err != nil {
		return 0, err
	}
	opts := &azservicebus.ReceiveMessagesOptions{TimeAfterFirstMessage: purgeAfterMsg}
	total := 0
	for range maxPurgeRounds {
		msgs, err := a.receive(ctx, rcv, purgeBatch, purgeWait, opts)
		if err != nil {
			return total, mapError("purge dead letters of", ent, err)
		}
		if len(msgs) == 0 {
			return total, nil
		}
		total += len(msgs)
	}
	return total, fmt.Errorf("servicebus: purge dead letters of %q: stopped after %d messages; the dead-letter queue may not be empty", ent, total)
}

// Close closes every sender and receiver and the connection. Peek-locked
// messages not yet settled become available again when their locks expire.
// Close is idempotent.
func (a *Azure) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	senders, receivers := a.senders, a.receivers
	a.senders, a.receivers, a.locks = nil, nil, nil
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var errs []error
	for name, s := range senders {
		if err := s.Close(ctx); err != nil && !isClosedErr(err) {
			errs = append(errs, fmt.Errorf("servicebus: closing sender for %q: %w", name, err))
		}
	}
	for key, r := range receivers {
		if err := r.r.Close(ctx); err != nil && !isClosedErr(err) {
			errs = append(errs, fmt.Errorf("servicebus: closing receiver for %q: %w", key.entity, err))
		}
	}
	if err := a.client.Close(ctx); err != nil && !isClosedErr(err) {
		errs = append(errs, fmt.Errorf("servicebus: closing connection to %s: %w", a.namespace, err))
	}
	return errors.Join(errs...)
}

// --- internals ---

func checkMax(max int) (int, error) {
	if max <= 0 {
		return 0, fmt.Errorf("servicebus: max must be at least 1, got %d", max)
	}
	return min(max, MaxBatch), nil
}

func (a *Azure) sender(ent entityRef) (*azservicebus.Sender, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	if s, ok := a.senders[ent.key()]; ok {
		return s, nil
	}
	s, err := a.client.NewSender(ent.Queue, nil)
	if err != nil {
		return nil, mapError("create sender for", ent, err)
	}
	a.senders[ent.key()] = s
	return s, nil
}

func (a *Azure) receiver(ent entityRef, kind receiverKind) (*receiver, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	key := receiverKey{entity: ent.key(), kind: kind}
	if r, ok := a.receivers[key]; ok {
		return r, nil
	}
	opts := &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock}
	switch kind {
	case kindReceiveAndDelete:
		opts.ReceiveMode = azservicebus.ReceiveModeReceiveAndDelete
	case kindDeadLetter:
		opts.ReceiveMode = azservicebus.ReceiveModeReceiveAndDelete
		opts.SubQueue = azservicebus.SubQueueDeadLetter
	}
	var (
		r   *azservicebus.Receiver
		err error
	)
	if ent.IsSubscription() {
		r, err = a.client.NewReceiverForSubscription(ent.Topic, ent.Subscription, opts)
	} else {
		r, err = a.client.NewReceiverForQueue(ent.Queue, opts)
	}
	if err != nil {
		return nil, mapError("create receiver for", ent, err)
	}
	rcv := &receiver{r: r, sem: make(chan struct{}, 1)}
	a.receivers[key] = rcv
	return rcv, nil
}

// receive runs one ReceiveMessages call. The wait covers queueing behind
// another call on the same receiver; running out of it is not an error.
func (a *Azure) receive(ctx context.Context, rcv *receiver, max int, wait time.Duration, opts *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error) {
	if wait <= 0 {
		wait = PollWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	select {
	case rcv.sem <- struct{}{}:
	case <-wctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, nil
	}
	defer func() { <-rcv.sem }()
	msgs, err := guard("receive", func() ([]*azservicebus.ReceivedMessage, error) {
		return rcv.r.ReceiveMessages(wctx, max, opts)
	})
	if err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			// Our wait ran out: nothing arrived.
			return nil, nil
		}
		return nil, err
	}
	return msgs, nil
}

// reserve takes up to max PeekLock slots, after dropping expired locks.
func (a *Azure) reserve(max int) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, ErrClosed
	}
	now := a.now()
	for token, l := range a.locks {
		if !l.busy && now.After(l.until.Add(lockGrace)) {
			delete(a.locks, token)
		}
	}
	free := a.maxUnsettled - len(a.locks) - a.reserved
	if free <= 0 {
		return 0, fmt.Errorf("servicebus: %d peek-locked messages are waiting for settlement (the limit is %d); complete, abandon or dead-letter some first", len(a.locks)+a.reserved, a.maxUnsettled)
	}
	n := min(max, free)
	a.reserved += n
	return n, nil
}

// settle looks up a held message by lock token and settles it with fn.
func (a *Azure) settle(ctx context.Context, op, entity, lockToken string, fn func(context.Context, *azservicebus.Receiver, *azservicebus.ReceivedMessage) error) error {
	ent, err := parseEntity(entity)
	if err != nil {
		return err
	}
	token := normaliseToken(lockToken)
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	l, ok := a.locks[token]
	switch {
	case !ok:
		a.mu.Unlock()
		return fmt.Errorf("%w: %s %q: no peek-locked message with lock token %q (unknown, already settled, expired, or received by another client)", ErrLockLost, op, ent, lockToken)
	case l.entity != ent.key():
		a.mu.Unlock()
		return fmt.Errorf("%w: %s %q: lock token %q belongs to a message of %q", ErrLockLost, op, ent, lockToken, l.name)
	case a.now().After(l.until.Add(lockGrace)):
		delete(a.locks, token)
		a.mu.Unlock()
		return fmt.Errorf("%w: %s %q: the lock expired at %s", ErrLockLost, op, ent, l.until.UTC().Format(time.RFC3339))
	case l.busy:
		a.mu.Unlock()
		return fmt.Errorf("servicebus: %s %q: the message with lock token %q is already being settled", op, ent, lockToken)
	}
	l.busy = true
	a.mu.Unlock()

	_, err = guard("settle", func() (struct{}, error) { return struct{}{}, fn(ctx, l.rcv.r, l.msg) })
	mapped := mapError(op, ent, err)

	a.mu.Lock()
	l.busy = false
	if a.locks != nil && (err == nil || errors.Is(mapped, ErrLockLost) || errors.Is(mapped, ErrNotFound)) {
		delete(a.locks, token)
	}
	a.mu.Unlock()
	return mapped
}

// normaliseToken accepts a lock token in any case, with or without braces.
func normaliseToken(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "{")
	s = strings.TrimSuffix(s, "}")
	return strings.ToLower(s)
}

func convertAll(msgs []*azservicebus.ReceivedMessage, locked bool) []Message {
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, convert(m, locked))
	}
	return out
}

// convert maps a received message; locked adds the lock token and expiry.
func convert(m *azservicebus.ReceivedMessage, locked bool) Message {
	out := Message{
		MessageID:     m.MessageID,
		Body:          bodyOf(m),
		Properties:    fromAMQPProperties(m.ApplicationProperties),
		DeliveryCount: int(m.DeliveryCount),
	}
	if out.MessageID == "" && m.RawAMQPMessage != nil && m.RawAMQPMessage.Properties != nil {
		out.MessageID = idString(m.RawAMQPMessage.Properties.MessageID)
	}
	if m.Subject != nil {
		out.Subject = *m.Subject
	}
	if m.ContentType != nil {
		out.ContentType = *m.ContentType
	}
	if m.CorrelationID != nil {
		out.CorrelationID = *m.CorrelationID
	} else if m.RawAMQPMessage != nil && m.RawAMQPMessage.Properties != nil {
		out.CorrelationID = idString(m.RawAMQPMessage.Properties.CorrelationID)
	}
	if m.SequenceNumber != nil {
		out.SequenceNumber = *m.SequenceNumber
	}
	if m.EnqueuedTime != nil {
		out.EnqueuedAt = *m.EnqueuedTime
	}
	if m.DeadLetterReason != nil {
		out.DeadLetterReason = *m.DeadLetterReason
	}
	if locked {
		out.LockToken = amqp.UUID(m.LockToken).String()
		if m.LockedUntil != nil {
			out.LockedUntil = *m.LockedUntil
		}
	}
	return out
}

// mapError wraps an SDK error with the operation and entity, and with the
// sentinel of its class where one applies: ErrTooLarge, ErrNotFound,
// ErrForbidden, ErrLockLost, ErrConflict, ErrThrottled, ErrUnreachable or
// ErrTimeout. A caller's cancellation keeps context.Canceled and gets no
// class.
func mapError(op string, ent entityRef, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrClosed) {
		return err
	}
	sentinel := classOf(err)
	if sentinel != nil {
		return fmt.Errorf("%w: %s %q: %w", sentinel, op, ent, err)
	}
	return fmt.Errorf("servicebus: %s %q: %w", op, ent, err)
}

// Service Bus AMQP conditions beyond go-amqp's constants.
const (
	condServerBusy          = amqp.ErrCond("com.microsoft:server-busy")
	condTimeout             = amqp.ErrCond("com.microsoft:timeout")
	condLockLost            = amqp.ErrCond("com.microsoft:message-lock-lost")
	condSessionLockLost     = amqp.ErrCond("com.microsoft:session-lock-lost")
	condSessionCannotBeLock = amqp.ErrCond("com.microsoft:session-cannot-be-locked")
	condEntityAlreadyExists = amqp.ErrCond("com.microsoft:entity-already-exists")
	condMessageNotFound     = amqp.ErrCond("com.microsoft:message-not-found")
	condSessionNotFound     = amqp.ErrCond("com.microsoft:session-not-found")
	condPublisherRevoked    = amqp.ErrCond("com.microsoft:publisher-revoked")
)

// classOf is the sentinel of an SDK error's class, or nil.
func classOf(err error) error {
	if errors.Is(err, azservicebus.ErrMessageTooLarge) {
		return ErrTooLarge
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	// The AMQP condition is the most specific; the SDK's code comes from it
	// or from where the error was delivered.
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		switch amqpErr.Condition {
		case amqp.ErrCondNotFound, condMessageNotFound, condSessionNotFound:
			return ErrNotFound
		case amqp.ErrCondUnauthorizedAccess, condPublisherRevoked:
			return ErrForbidden
		case amqp.ErrCondMessageSizeExceeded:
			return ErrTooLarge
		case condLockLost:
			return ErrLockLost
		case amqp.ErrCondResourceLocked, condSessionLockLost, condSessionCannotBeLock, condEntityAlreadyExists:
			return ErrConflict
		case condServerBusy:
			return ErrThrottled
		case condTimeout:
			return ErrTimeout
		case amqp.ErrCondConnectionForced, amqp.ErrCondConnectionRedirect, amqp.ErrCondFramingError:
			return ErrUnreachable
		}
	}
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		switch sbErr.Code {
		case azservicebus.CodeNotFound:
			return ErrNotFound
		case azservicebus.CodeUnauthorizedAccess:
			return ErrForbidden
		case azservicebus.CodeLockLost:
			return ErrLockLost
		case azservicebus.CodeTimeout:
			return ErrTimeout
		case azservicebus.CodeConnectionLost:
			return ErrUnreachable
		case azservicebus.CodeClosed:
			return ErrClosed
		}
	}
	// A management (RPC) answer's status.
	var rpc interface{ RPCCode() int }
	if errors.As(err, &rpc) {
		switch rpc.RPCCode() {
		case 401, 403:
			return ErrForbidden
		case 404:
			return ErrNotFound
		case 408:
			return ErrTimeout
		case 409:
			return ErrConflict
		case 410:
			return ErrLockLost
		case 413:
			return ErrTooLarge
		case 429:
			return ErrThrottled
		case 502, 503, 504:
			return ErrUnreachable
		}
	}
	// The way to the namespace: a dial that failed (even by timing out)
	// is unreachable; another network timeout is a timeout.
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return ErrUnreachable
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return ErrTimeout
	}
	var (
		connErr *amqp.ConnError
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &connErr), errors.As(err, &opErr), errors.As(err, &dnsErr),
		errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrUnreachable
	}
	return nil
}

// errSDKPanic marks an error made from a panic inside the SDK.
var errSDKPanic = errors.New("servicebus: the azservicebus SDK panicked")

// guard runs an SDK call and turns a panic into an error. azservicebus
// v1.11 asserts the types of some application properties and annotations
// of received messages without checking (for example a non-string
// "DeadLetterReason" set by any sender), so one malformed message must not
// crash the gateway. Messages of a batch that panicked are not returned:
// peek-locked ones come back when their locks expire, received-and-deleted
// ones are lost.
func guard[T any](op string, f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("%w during %s (probably on a malformed message): %v", errSDKPanic, op, r)
		}
	}()
	return f()
}

func isClosedErr(err error) bool {
	var sbErr *azservicebus.Error
	return errors.As(err, &sbErr) && sbErr.Code == azservicebus.CodeClosed
}

// NamespaceSAS reports whether the connection string holds a
// namespace-level shared access key or signature (NamespaceLevelSAS).
func (a *Azure) NamespaceSAS() bool { return a.namespaceSAS }
