package servicebus

// Contract tests of the azservicebus Bus against the sbstub AMQP broker
// (amqpstub). They show that the adapter drives the SDK correctly; they
// prove nothing about the semantics of a real Service Bus namespace. They
// are skipped when python3 with the proton module is missing, unless
// CLAWEA_REQUIRE_AMQP=1.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/clawea/clawea/internal/connector/servicebus/amqpstub"
)

const (
	testTimeout = 60 * time.Second
	shortWait   = 300 * time.Millisecond
	longWait    = 5 * time.Second
)

// stubBus starts a stub broker (extra args go to sbstub.py) and an Azure bus
// connected to it; both end with the test.
func stubBus(t *testing.T, opt AzureOptions, args ...string) *Azure {
	t.Helper()
	t.Parallel()
	s := amqpstub.Start(t, args...)
	opt.ConnectionString = s.ConnectionString()
	if opt.Client == nil {
		// Fail fast instead of the SDK's minutes of retries.
		opt.Client = &azservicebus.ClientOptions{RetryOptions: azservicebus.RetryOptions{
			MaxRetries: 1, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond,
		}}
	}
	bus, err := NewAzure("", opt)
	if err != nil {
		t.Fatalf("NewAzure: %v", err)
	}
	if got, want := bus.Namespace(), s.Addr(); got != want {
		t.Errorf("Namespace() = %q, want %q", got, want)
	}
	t.Cleanup(func() {
		if err := bus.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return bus
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// receiveN receives until it has n messages, failing after a bounded number
// of empty waits.
func receiveN(ctx context.Context, t *testing.T, bus Bus, entity string, n int, mode ReceiveMode) []Message {
	t.Helper()
	var got []Message
	for tries := 0; len(got) < n && tries < 10; tries++ {
		ms, err := bus.Receive(ctx, entity, n-len(got), mode, longWait)
		if err != nil {
			t.Fatalf("Receive(%q, %s): %v", entity, mode, err)
		}
		got = append(got, ms...)
	}
	if len(got) != n {
		t.Fatalf("Receive(%q, %s): got %d messages, want %d", entity, mode, len(got), n)
	}
	return got
}

func expectEmpty(ctx context.Context, t *testing.T, bus Bus, entity string) {
	t.Helper()
	ms, err := bus.Receive(ctx, entity, 10, PeekLock, shortWait)
	if err != nil {
		t.Fatalf("Receive(%q): %v", entity, err)
	}
	if len(ms) != 0 {
		t.Fatalf("Receive(%q): got %d messages, want none: %+v", entity, len(ms), ms)
	}
}

func send(ctx context.Context, t *testing.T, bus Bus, entity string, msgs ...Message) {
	t.Helper()
	for _, m := range msgs {
		if err := bus.Send(ctx, entity, m); err != nil {
			t.Fatalf("Send(%q, %q): %v", entity, m.MessageID, err)
		}
	}
}

func TestAzureSendReceiveRoundTrip(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	in := Message{
		MessageID:     "m-1",
		Subject:       "order.created",
		ContentType:   "application/json",
		CorrelationID: "corr-9",
		Body:          []byte(`{"id":42}`),
		Properties: map[string]any{
			"tenant": "acme",
			"count":  7,
			"small":  int32(-3),
			"ratio":  0.25,
			"urgent": true,
			"at":     when,
		},
	}
	before := time.Now().Add(-time.Minute)
	send(ctx, t, bus, "orders", in)

	got := receiveN(ctx, t, bus, "orders", 1, PeekLock)[0]
	if got.MessageID != in.MessageID || got.Subject != in.Subject || got.ContentType != in.ContentType ||
		got.CorrelationID != in.CorrelationID || !bytes.Equal(got.Body, in.Body) {
		t.Errorf("round trip changed the message:\n got %+v\nwant %+v", got, in)
	}
	wantProps := map[string]any{
		"tenant": "acme", "count": int64(7), "small": int64(-3), "ratio": 0.25, "urgent": true,
		"at": when.Format(time.RFC3339Nano),
	}
	if fmt.Sprint(got.Properties) != fmt.Sprint(wantProps) {
		t.Errorf("properties = %#v, want %#v", got.Properties, wantProps)
	}
	if got.SequenceNumber <= 0 || got.EnqueuedAt.Before(before) || got.DeliveryCount != 1 {
		t.Errorf("broker fields: seq %d, enqueued %s, delivery count %d", got.SequenceNumber, got.EnqueuedAt, got.DeliveryCount)
	}
	if len(got.LockToken) != 36 || !got.LockedUntil.After(time.Now()) {
		t.Errorf("lock: token %q, locked until %s", got.LockToken, got.LockedUntil)
	}
	if err := bus.Complete(ctx, "orders", got.LockToken); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	expectEmpty(ctx, t, bus, "orders")
	// Settling twice: the lock is gone.
	if err := bus.Complete(ctx, "orders", got.LockToken); !errors.Is(err, ErrLockLost) {
		t.Errorf("second Complete: %v, want ErrLockLost", err)
	}
}

func TestAzureLargeMessage(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	body := make([]byte, 200*1024) // several AMQP frames each way
	for i := range body {
		body[i] = byte(i * 7)
	}
	send(ctx, t, bus, "big", Message{MessageID: "big", Body: body})
	for _, mode := range []func() []Message{
		func() []Message { ms, _ := bus.Peek(ctx, "big", 1); return ms },
		func() []Message { return receiveN(ctx, t, bus, "big", 1, ReceiveAndDelete) },
	} {
		ms := mode()
		if len(ms) != 1 || !bytes.Equal(ms[0].Body, body) {
			t.Fatalf("large message did not survive: %d messages", len(ms))
		}
	}
}

func TestAzureReceiveAndDelete(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	for i := range 3 {
		send(ctx, t, bus, "jobs", Message{MessageID: fmt.Sprint("j", i), Body: []byte{byte(i)}})
	}
	got := receiveN(ctx, t, bus, "jobs", 3, ReceiveAndDelete)
	for i, m := range got {
		if m.MessageID != fmt.Sprint("j", i) || m.LockToken != "" || !m.LockedUntil.IsZero() {
			t.Errorf("message %d: %+v", i, m)
		}
	}
	expectEmpty(ctx, t, bus, "jobs")
}

func TestAzureAbandonRedelivers(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	send(ctx, t, bus, "work", Message{MessageID: "w1", Body: []byte("x")})
	first := receiveN(ctx, t, bus, "work", 1, PeekLock)[0]
	if err := bus.Abandon(ctx, "work", first.LockToken); err != nil {
		t.Fatalf("Abandon: %v", err)
	}
	again := receiveN(ctx, t, bus, "work", 1, PeekLock)[0]
	if again.MessageID != "w1" || again.DeliveryCount != first.DeliveryCount+1 || again.LockToken == first.LockToken {
		t.Errorf("redelivery: %+v after %+v", again, first)
	}
	if err := bus.Complete(ctx, "work", again.LockToken); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	expectEmpty(ctx, t, bus, "work")
}

func TestAzureDeadLetter(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	send(ctx, t, bus, "payments", Message{MessageID: "p1", Body: []byte("bad"), Properties: map[string]any{"k": "v"}})
	m := receiveN(ctx, t, bus, "payments", 1, PeekLock)[0]
	if err := bus.DeadLetter(ctx, "payments", m.LockToken, "ValidationFailed", "amount is negative"); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	expectEmpty(ctx, t, bus, "payments")

	var dead []Message
	for tries := 0; len(dead) == 0 && tries < 5; tries++ {
		ms, err := bus.ReceiveDeadLetter(ctx, "payments", 10, longWait)
		if err != nil {
			t.Fatalf("ReceiveDeadLetter: %v", err)
		}
		dead = append(dead, ms...)
	}
	if len(dead) != 1 {
		t.Fatalf("ReceiveDeadLetter: got %d messages, want 1", len(dead))
	}
	d := dead[0]
	if d.MessageID != "p1" || string(d.Body) != "bad" || d.DeadLetterReason != "ValidationFailed" || d.LockToken != "" {
		t.Errorf("dead letter: %+v", d)
	}
	if d.Properties["DeadLetterErrorDescription"] != "amount is negative" || d.Properties["k"] != "v" {
		t.Errorf("dead letter properties: %#v", d.Properties)
	}
	ms, err := bus.ReceiveDeadLetter(ctx, "payments", 10, shortWait)
	if err != nil || len(ms) != 0 {
		t.Errorf("dead-letter queue after receive: %d messages, %v", len(ms), err)
	}
}

func TestAzurePurgeDeadLetter(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	const n = 4
	for i := range n {
		send(ctx, t, bus, "inbox", Message{MessageID: fmt.Sprint("i", i)})
	}
	for _, m := range receiveN(ctx, t, bus, "inbox", n, PeekLock) {
		if err := bus.DeadLetter(ctx, "inbox", m.LockToken, "r", "d"); err != nil {
			t.Fatalf("DeadLetter: %v", err)
		}
	}
	got, err := bus.PurgeDeadLetter(ctx, "inbox")
	if err != nil || got != n {
		t.Fatalf("PurgeDeadLetter = %d, %v; want %d", got, err, n)
	}
	got, err = bus.PurgeDeadLetter(ctx, "inbox")
	if err != nil || got != 0 {
		t.Fatalf("second PurgeDeadLetter = %d, %v; want 0", got, err)
	}
	expectEmpty(ctx, t, bus, "inbox")
}

func TestAzureLockTokens(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	for _, settle := range []func(tok string) error{
		func(tok string) error { return bus.Complete(ctx, "q", tok) },
		func(tok string) error { return bus.Abandon(ctx, "q", tok) },
		func(tok string) error { return bus.DeadLetter(ctx, "q", tok, "r", "d") },
	} {
		for _, tok := range []string{"", "not-a-token", "8c3d3131-aad6-4add-8000-000000000000"} {
			if err := settle(tok); !errors.Is(err, ErrLockLost) {
				t.Errorf("settle(%q) = %v, want ErrLockLost", tok, err)
			}
		}
	}
	send(ctx, t, bus, "q", Message{MessageID: "a"})
	m := receiveN(ctx, t, bus, "q", 1, PeekLock)[0]
	// The token belongs to "q", not "other".
	if err := bus.Complete(ctx, "other", m.LockToken); !errors.Is(err, ErrLockLost) {
		t.Errorf("Complete on another entity = %v, want ErrLockLost", err)
	}
	// Tokens are case-insensitive and may have braces.
	if err := bus.Complete(ctx, "Q", "{"+strings.ToUpper(m.LockToken)+"}"); err != nil {
		t.Errorf("Complete with an upper-case token: %v", err)
	}
}

func TestAzureEmptyReceiveReturnsAfterWait(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	for _, mode := range []ReceiveMode{PeekLock, ReceiveAndDelete} {
		start := time.Now()
		ms, err := bus.Receive(ctx, "empty", 5, mode, 700*time.Millisecond)
		took := time.Since(start)
		if err != nil || len(ms) != 0 {
			t.Fatalf("Receive(%s) on an empty queue = %d messages, %v", mode, len(ms), err)
		}
		if took < 600*time.Millisecond || took > 10*time.Second {
			t.Errorf("Receive(%s) returned after %s, want about the wait", mode, took)
		}
	}
	ms, err := bus.ReceiveDeadLetter(ctx, "empty", 5, 0)
	if err != nil || len(ms) != 0 {
		t.Fatalf("ReceiveDeadLetter on an empty queue = %d messages, %v", len(ms), err)
	}
	// A caller deadline shorter than the wait ends the call with its error.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := bus.Receive(short, "empty", 1, PeekLock, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive past the caller's deadline = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Receive ignored the caller's deadline: %s", took)
	}
}

func TestAzurePeek(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	ms, err := bus.Peek(ctx, "browse", 10)
	if err != nil || len(ms) != 0 {
		t.Fatalf("Peek on an empty queue = %d messages, %v", len(ms), err)
	}
	send(ctx, t, bus, "browse", Message{MessageID: "b1", Subject: "one"}, Message{MessageID: "b2"}, Message{MessageID: "b3"})
	for range 2 { // Peek is stateless: the same head each time.
		ms, err = bus.Peek(ctx, "browse", 2)
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		if len(ms) != 2 || ms[0].MessageID != "b1" || ms[1].MessageID != "b2" || ms[0].Subject != "one" {
			t.Fatalf("Peek = %+v", ms)
		}
		if ms[0].LockToken != "" || ms[0].SequenceNumber >= ms[1].SequenceNumber {
			t.Errorf("peeked messages: %+v", ms)
		}
	}
	got := receiveN(ctx, t, bus, "browse", 3, ReceiveAndDelete)
	if got[0].MessageID != "b1" {
		t.Errorf("after Peek, Receive got %+v", got)
	}
}

func TestAzureLockExpiry(t *testing.T) {
	bus := stubBus(t, AzureOptions{}, "--lock-seconds", "1")
	ctx := testContext(t)
	send(ctx, t, bus, "slow", Message{MessageID: "s1"})
	m := receiveN(ctx, t, bus, "slow", 1, PeekLock)[0]
	if d := time.Until(m.LockedUntil); d > 2*time.Second {
		t.Fatalf("locked until %s, want about a second", m.LockedUntil)
	}
	time.Sleep(time.Until(m.LockedUntil) + 500*time.Millisecond)
	if err := bus.Complete(ctx, "slow", m.LockToken); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Complete after the lock expired = %v, want ErrLockLost", err)
	}
	again := receiveN(ctx, t, bus, "slow", 1, PeekLock)[0]
	if again.MessageID != "s1" || again.DeliveryCount < 2 {
		t.Errorf("after expiry: %+v", again)
	}
	if err := bus.Complete(ctx, "slow", again.LockToken); err != nil {
		t.Errorf("Complete: %v", err)
	}
}

func TestAzureMaxDeliveryCount(t *testing.T) {
	bus := stubBus(t, AzureOptions{}, "--max-delivery-count", "2")
	ctx := testContext(t)
	send(ctx, t, bus, "poison", Message{MessageID: "x"})
	for range 2 {
		m := receiveN(ctx, t, bus, "poison", 1, PeekLock)[0]
		if err := bus.Abandon(ctx, "poison", m.LockToken); err != nil {
			t.Fatalf("Abandon: %v", err)
		}
	}
	dead, err := bus.ReceiveDeadLetter(ctx, "poison", 1, longWait)
	if err != nil || len(dead) != 1 || dead[0].DeadLetterReason != "MaxDeliveryCountExceeded" {
		t.Fatalf("ReceiveDeadLetter = %+v, %v", dead, err)
	}
}

func TestAzureErrors(t *testing.T) {
	bus := stubBus(t, AzureOptions{}, "--absent", "missing", "--deny", "secret")
	ctx := testContext(t)

	err := bus.Send(ctx, "missing", Message{Body: []byte("x")})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Send to an absent queue = %v, want ErrNotFound naming it", err)
	}
	if _, err := bus.Receive(ctx, "missing", 1, PeekLock, shortWait); !errors.Is(err, ErrNotFound) {
		t.Errorf("Receive from an absent queue = %v, want ErrNotFound", err)
	}
	if _, err := bus.Peek(ctx, "missing", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Peek on an absent queue = %v, want ErrNotFound", err)
	}
	if err := bus.Send(ctx, "secret", Message{Body: []byte("x")}); !errors.Is(err, ErrForbidden) {
		t.Errorf("Send to a denied queue = %v, want ErrForbidden", err)
	}
	big := Message{Body: bytes.Repeat([]byte("x"), 300*1024)}
	if err := bus.Send(ctx, "q", big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Send of 300 KiB = %v, want ErrTooLarge", err)
	}
	if err := bus.Send(ctx, "t/subscriptions/s", Message{}); !errors.Is(err, ErrInvalidEntity) {
		t.Errorf("Send to a subscription = %v, want ErrInvalidEntity", err)
	}
	if err := bus.Send(ctx, "q", Message{Properties: map[string]any{"bad": []int{1}}}); err == nil {
		t.Error("Send with a slice property succeeded")
	}
	if _, err := bus.Receive(ctx, "q/$DeadLetterQueue", 1, PeekLock, shortWait); !errors.Is(err, ErrInvalidEntity) {
		t.Errorf("Receive from a sub-queue path = %v, want ErrInvalidEntity", err)
	}
	if _, err := bus.Receive(ctx, "q", 1, "sideways", shortWait); err == nil {
		t.Error("Receive with an unknown mode succeeded")
	}
	if _, err := bus.Receive(ctx, "q", 0, PeekLock, shortWait); err == nil {
		t.Error("Receive with max 0 succeeded")
	}
	// The bus still works after the errors.
	send(ctx, t, bus, "q", Message{MessageID: "ok"})
	if m := receiveN(ctx, t, bus, "q", 1, ReceiveAndDelete)[0]; m.MessageID != "ok" {
		t.Errorf("received %+v", m)
	}
}

func TestAzureSubscription(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	// The stub learns of a subscription when a link attaches to it (real
	// subscriptions are created with the administration API).
	for _, sub := range []string{"events/subscriptions/audit", "events/Subscriptions/billing"} {
		if ms, err := bus.Receive(ctx, sub, 1, PeekLock, shortWait); err != nil || len(ms) != 0 {
			t.Fatalf("Receive(%q) = %d, %v", sub, len(ms), err)
		}
	}
	send(ctx, t, bus, "events", Message{MessageID: "e1", Subject: "hello"})
	for _, sub := range []string{"events/subscriptions/audit", "events/subscriptions/billing"} {
		m := receiveN(ctx, t, bus, sub, 1, PeekLock)[0]
		if m.MessageID != "e1" || m.Subject != "hello" {
			t.Errorf("%s got %+v", sub, m)
		}
		if err := bus.DeadLetter(ctx, sub, m.LockToken, "r", "d"); err != nil {
			t.Errorf("DeadLetter on %s: %v", sub, err)
		}
		if n, err := bus.PurgeDeadLetter(ctx, sub); err != nil || n != 1 {
			t.Errorf("PurgeDeadLetter(%s) = %d, %v", sub, n, err)
		}
	}
}

func TestAzureMaxUnsettled(t *testing.T) {
	bus := stubBus(t, AzureOptions{MaxUnsettled: 2})
	ctx := testContext(t)
	for i := range 3 {
		send(ctx, t, bus, "q", Message{MessageID: fmt.Sprint(i)})
	}
	held := receiveN(ctx, t, bus, "q", 2, PeekLock)
	if _, err := bus.Receive(ctx, "q", 1, PeekLock, shortWait); err == nil {
		t.Fatal("Receive beyond MaxUnsettled succeeded")
	}
	if err := bus.Complete(ctx, "q", held[0].LockToken); err != nil {
		t.Fatal(err)
	}
	rest := receiveN(ctx, t, bus, "q", 1, PeekLock)
	for _, m := range append(held[1:], rest...) {
		if err := bus.Complete(ctx, "q", m.LockToken); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAzureConcurrentUse(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	const senders, each = 4, 10
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := bus.Send(ctx, "busy", Message{MessageID: fmt.Sprintf("%d-%d", s, i)}); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	seen := map[string]int{}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for empty := 0; empty < 3; {
				ms, err := bus.Receive(ctx, "busy", 5, PeekLock, time.Second)
				if err != nil {
					t.Errorf("Receive: %v", err)
					return
				}
				if len(ms) == 0 {
					empty++
					continue
				}
				for _, m := range ms {
					if err := bus.Complete(ctx, "busy", m.LockToken); err != nil {
						t.Errorf("Complete: %v", err)
					}
					mu.Lock()
					seen[m.MessageID]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != senders*each {
		t.Errorf("received %d distinct messages, want %d", len(seen), senders*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s completed %d times", id, n)
		}
	}
}

func TestAzureClose(t *testing.T) {
	bus := stubBus(t, AzureOptions{})
	ctx := testContext(t)
	send(ctx, t, bus, "q", Message{MessageID: "c"})
	m := receiveN(ctx, t, bus, "q", 1, PeekLock)[0]
	if err := bus.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := bus.Send(ctx, "q", Message{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	if _, err := bus.Receive(ctx, "q", 1, PeekLock, shortWait); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close = %v, want ErrClosed", err)
	}
	if err := bus.Complete(ctx, "q", m.LockToken); !errors.Is(err, ErrClosed) {
		t.Errorf("Complete after Close = %v, want ErrClosed", err)
	}
}

// TestAzureSurvivesSDKPanic sends, with the SDK itself, a message whose
// DeadLetterReason property is not a string: azservicebus v1.11 panics when
// it converts such a message, and the bus must turn that into an error.
func TestAzureSurvivesSDKPanic(t *testing.T) {
	t.Parallel()
	s := amqpstub.Start(t)
	ctx := testContext(t)
	client, err := azservicebus.NewClientFromConnectionString(s.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	sender, err := client.NewSender("poisoned", nil)
	if err != nil {
		t.Fatal(err)
	}
	poison := &azservicebus.Message{Body: []byte("x"), ApplicationProperties: map[string]any{"DeadLetterReason": int64(5)}}
	if err := sender.SendMessage(ctx, poison, nil); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}

	bus, err := NewAzure("", AzureOptions{ConnectionString: s.ConnectionString()})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if _, err := bus.Peek(ctx, "poisoned", 1); !errors.Is(err, errSDKPanic) {
		t.Errorf("Peek of a malformed message = %v, want the SDK panic as an error", err)
	}
	var rerr error
	for tries := 0; rerr == nil && tries < 5; tries++ {
		_, rerr = bus.Receive(ctx, "poisoned", 1, PeekLock, longWait)
	}
	if !errors.Is(rerr, errSDKPanic) {
		t.Errorf("Receive of a malformed message = %v, want the SDK panic as an error", rerr)
	}
	// Our own Send refuses to create such a message.
	if err := bus.Send(ctx, "q", Message{Properties: map[string]any{"DeadLetterReason": 5}}); err == nil {
		t.Error("Send with a non-string DeadLetterReason succeeded")
	}
	// The bus still works.
	send(ctx, t, bus, "q", Message{MessageID: "fine"})
	if m := receiveN(ctx, t, bus, "q", 1, PeekLock)[0]; m.MessageID != "fine" {
		t.Errorf("received %+v", m)
	}
}
